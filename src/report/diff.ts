/** Unified diffs of planned file changes, and their colouring for terminals. */
import { createTwoFilesPatch } from 'diff';
import type { FileChange } from '../modules/module.js';
import type { FileDiff } from './events.js';

/** Above this many bytes a side is summarised instead of diffed (a diff of megabytes helps nobody). */
const MAX_DIFF_BYTES = 1024 * 1024;

function text(b: Buffer): string {
  const utf8 = b.toString('utf8');
  return Buffer.from(utf8, 'utf8').equals(b) ? utf8 : b.toString('latin1');
}

export function fileDiff(change: FileChange): FileDiff {
  const created = change.before === null;
  const before = change.before ?? Buffer.alloc(0);
  if (before.length > MAX_DIFF_BYTES || change.after.length > MAX_DIFF_BYTES) {
    return { path: change.path, created, diff: `--- ${change.path}\n+++ ${change.path}\n(${before.length} bytes → ${change.after.length} bytes; too large to show)\n` };
  }
  if (before.equals(change.after)) {
    return { path: change.path, created, diff: '' };
  }
  const patch = createTwoFilesPatch(
    created ? '/dev/null' : `${change.path} (before)`,
    `${change.path} (after)`,
    text(before),
    text(change.after),
    undefined,
    undefined,
    { context: 3 },
  );
  // The first line of the library's output is a "====" separator we do not want.
  const diff = patch.replace(/^=+\n/, '').replace(/^Index: .*\n/, '');
  return { path: change.path, created, diff };
}

const RED = '\x1b[31m';
const GREEN = '\x1b[32m';
const CYAN = '\x1b[36m';
const BOLD = '\x1b[1m';
const RESET = '\x1b[0m';

export function colourDiff(diff: string): string {
  return diff
    .split('\n')
    .map((l) => {
      if (l.startsWith('+++') || l.startsWith('---')) return `${BOLD}${l}${RESET}`;
      if (l.startsWith('+')) return `${GREEN}${l}${RESET}`;
      if (l.startsWith('-')) return `${RED}${l}${RESET}`;
      if (l.startsWith('@@')) return `${CYAN}${l}${RESET}`;
      return l;
    })
    .join('\n');
}

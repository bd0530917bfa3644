/** blockinfile: a block of lines between two marker lines, inserted, replaced or removed as a unit. */
import { fileAttrSchema, fileAttrProblem, hostPathProblem, joinLines, planTextEdit, pyRegex, splitLines } from './file-common.js';
import type { ArgsOf, Module } from './module.js';

export type BlockinfileArgs = ArgsOf<typeof blockinfileSchema>;

export const DEFAULT_MARKER = '# {mark} PROVISION MANAGED BLOCK';

export function editBlock(text: string, args: BlockinfileArgs): { text: string; changed: boolean; msg: string } {
  const { lines, newline, finalNewline } = splitLines(text);
  const marker = args.marker ?? DEFAULT_MARKER;
  const begin = marker.replace('{mark}', args.marker_begin ?? 'BEGIN');
  const end = marker.replace('{mark}', args.marker_end ?? 'END');
  const b = lines.findIndex((l) => l === begin);
  const e = b >= 0 ? lines.findIndex((l, i) => i > b && l === end) : -1;
  const present = b >= 0 && e >= 0;
  const blockText = (args.block ?? '').replace(/\r?\n$/, '');
  // An empty block means "no block", as in Ansible.
  const remove = (args.state ?? 'present') === 'absent' || blockText === '';

  if (remove) {
    if (!present) return { text, changed: false, msg: 'the block is absent' };
    const next = [...lines.slice(0, b), ...lines.slice(e + 1)];
    return { text: joinLines(next, newline, finalNewline), changed: true, msg: 'block removed' };
  }
  const block = [begin, ...blockText.split(/\r?\n/), end];
  if (present) {
    const current = lines.slice(b, e + 1);
    if (current.length === block.length && current.every((l, i) => l === block[i])) return { text, changed: false, msg: 'the block is present' };
    const next = [...lines.slice(0, b), ...block, ...lines.slice(e + 1)];
    return { text: joinLines(next, newline, true), changed: true, msg: 'block updated' };
  }
  let at = lines.length;
  const last = (re: RegExp) => lines.reduce((found, l, i) => (re.test(l) ? i : found), -1);
  if (args.insertbefore === 'BOF') at = 0;
  else if (args.insertbefore !== undefined) {
    const i = last(pyRegex(args.insertbefore, 'insertbefore'));
    if (i >= 0) at = i;
  } else if (args.insertafter !== undefined && args.insertafter !== 'EOF') {
    const i = last(pyRegex(args.insertafter, 'insertafter'));
    if (i >= 0) at = i + 1;
  }
  const next = [...lines.slice(0, at), ...block, ...lines.slice(at)];
  return { text: joinLines(next, newline, true), changed: true, msg: 'block inserted' };
}

const blockinfileSchema = {
  additionalProperties: false,
  required: ['path'],
  properties: {
    path: { type: 'string', minLength: 1, description: 'File to edit.' },
    block: { type: 'string', description: 'Lines to put between the markers; empty removes the block.' },
    marker: { type: 'string', pattern: '\\{mark\\}', description: `Marker line template with {mark} (default "${DEFAULT_MARKER}").` },
    marker_begin: { type: 'string', description: 'Replaces {mark} in the first marker (default BEGIN).' },
    marker_end: { type: 'string', description: 'Replaces {mark} in the last marker (default END).' },
    state: { enum: ['present', 'absent'], description: 'present (default) or absent.' },
    insertafter: { type: 'string', description: 'EOF (default) or a regexp: where a new block goes.' },
    insertbefore: { type: 'string', description: 'BOF or a regexp: where a new block goes.' },
    create: { type: 'boolean', description: 'Create the file if it does not exist.' },
    ...fileAttrSchema,
  },
} as const;

export const blockinfileModule: Module<BlockinfileArgs> = {
  name: 'blockinfile',
  aliases: { dest: 'path', destfile: 'path', name: 'path' },
  description: 'Insert, update or remove a block of lines between marker lines.',
  schema: blockinfileSchema,
  check(args) {
    if (args.insertafter !== undefined && args.insertbefore !== undefined) return 'use "insertafter" or "insertbefore", not both';
    const marker = args.marker ?? DEFAULT_MARKER;
    if ((args.marker_begin ?? 'BEGIN') === (args.marker_end ?? 'END') || !marker.includes('{mark}')) return 'the begin and end markers must differ';
    return hostPathProblem('path', args.path) ?? fileAttrProblem(args);
  },
  reads: (args) => ({ files: [args.path] }),
  plan: (ctx, args) => planTextEdit(ctx, args, (text) => editBlock(text, args)),
};

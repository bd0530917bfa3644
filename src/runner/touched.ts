/**
 * A command whose effect is limited to named paths (chown, chmod, mkdir, touch, rm of one path): the cache
 * forgets only what it read of those paths, their parents and what lies below them, instead of everything.
 *
 * Paths are compared as written, so the host must confirm, after the command, that this comparison is sound:
 * no symbolic link on the way to a touched path or to a cached one (another name for the same file), and no
 * second hard link to a touched regular file. The script runs in a subshell, and a trailer reports those checks
 * on the last line of stdout, which is taken off before the module sees the output. Without that line (the step
 * was cut short) or with a link found, everything is forgotten as for any other command.
 */
import path from 'node:path';
import type { ExecResult } from '../connection/connection.js';
import { quote } from '../connection/shell-quote.js';

const MARK = '@@PV-TOUCHED';

/** A path without `.`, `..`, repeated or trailing slashes (as a key to compare; '' stays ''). */
export function normalPath(p: string): string {
  if (!p) return p;
  const n = path.posix.normalize(p);
  return n.length > 1 ? n.replace(/\/+$/, '') : n;
}

/** Every directory on the way to `p`, `/` left out: /a/b/c → /a, /a/b. */
export function parentsOf(p: string): string[] {
  const out: string[] = [];
  let d = path.posix.dirname(normalPath(p));
  while (d !== '/' && d !== '.' && !out.includes(d)) {
    out.unshift(d);
    d = path.posix.dirname(d);
  }
  return out;
}

/** What the trailer found: links (by index into the checked list), or that the command was cut short. */
export interface TouchedReport {
  /** the trailer ran: the comparison by path is sound for every path not in `links` */
  complete: boolean;
  /** a touched path has a second name (a hard link, or a symbolic link on its way) */
  touchedLinked: boolean;
  /** checked paths that are symbolic links */
  links: Set<string>;
}

/**
 * `script` in a subshell, followed by the trailer that checks `touched` and `cached` (absolute paths) for links;
 * `checked` is the list the trailer's indices refer to.
 */
export function touchedScript(script: string, touched: string[], cached: string[]): { script: string; checked: string[] } {
  const { checked, files } = touchedChecks(touched, cached);
  const lines = [
    `(\n${script}\n)`,
    'pv_rc=$?',
    "pv_l=''",
    'pv_i=0',
    // Symbolic links among the paths compared by name, by index.
    ...(checked.length ? [`for pv_p in ${checked.map(quote).join(' ')}; do [ -L "$pv_p" ] && pv_l="$pv_l $pv_i"; pv_i=$((pv_i+1)); done`] : []),
    "pv_h=''",
    // A touched regular file with another name elsewhere (its link count above 1).
    ...(files.length ? [`for pv_p in ${files.map(quote).join(' ')}; do if [ -f "$pv_p" ] && [ "$(stat -c %h -- "$pv_p" 2>/dev/null || echo 2)" != 1 ]; then pv_h=1; fi; done`] : []),
    `printf '\\n${MARK} %s%s\\n' "\${pv_h:-0}" "$pv_l"`,
    'exit $pv_rc',
  ];
  return { script: lines.join('\n'), checked };
}

/** The paths the trailer checks for symbolic links, and the touched paths whose link count it checks. */
export function touchedChecks(touched: string[], cached: string[]): { checked: string[]; files: string[] } {
  const checked: string[] = [];
  const add = (p: string) => {
    if (p.startsWith('/') && p !== '/' && !checked.includes(p)) checked.push(p);
  };
  for (const p of [...touched, ...cached].map(normalPath)) {
    parentsOf(p).forEach(add);
    add(p);
  }
  return { checked, files: touched.map(normalPath).filter((p) => p.startsWith('/')) };
}

/** The trailer's report, and the result as the command itself gave it (the trailer's line taken off stdout). */
export function parseTouched(r: ExecResult, checked: string[]): { result: ExecResult; report: TouchedReport } {
  const out = r.stdout;
  const end = out.length > 0 && out[out.length - 1] === 0x0a ? out.length - 1 : -1;
  const start = end < 0 ? -1 : out.lastIndexOf(0x0a, end - 1);
  const line = start < 0 ? '' : out.subarray(start + 1, end).toString();
  const m = new RegExp(`^${MARK} ([01])((?: \\d+)*)$`).exec(line);
  if (!m) return { result: r, report: { complete: false, touchedLinked: true, links: new Set() } };
  const links = new Set(
    m[2]!
      .trim()
      .split(' ')
      .filter(Boolean)
      .map((i) => checked[Number(i)]!)
      .filter((p) => p !== undefined),
  );
  return { result: { ...r, stdout: out.subarray(0, start) }, report: { complete: true, touchedLinked: m[1] === '1', links } };
}

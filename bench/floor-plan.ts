/**
 * What the floor (bench/floor.sh) does on each host, written as files: the read script, the lines it prints on a
 * host in the wanted state, a fragment per item that puts it right, and the tail run after any change.
 *
 * The wanted state is not computed here: it is read (with the same read script, through nsenter, untimed) from
 * hosts that a provision run has just converged, so the floor writes exactly the bytes provision writes.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { posix, join } from 'node:path';
import { heredocTo, quote } from '../src/connection/shell-quote.js';

/** One thing the job edits on a host: a file's content, or a file's mode and owner. */
export type FloorItem = { kind: 'file'; path: string } | { kind: 'meta'; path: string };

export interface FloorHostPlan {
  /** the name floor.sh passes to ssh (the lab's short name, which its ssh_config knows) */
  host: string;
  items: FloorItem[];
  /** the lines `readScript(items)` prints on a converged host */
  want: string[];
  /** shell run after the fragments when anything changed (restarts), or '' */
  tail: string;
}

/** One line per item: a file as base64 (or `-` when it does not exist), metadata as `MODE USER:GROUP` (or `-`). */
export function readScript(items: FloorItem[]): string {
  const lines = ['pv_f() { if [ -f "$1" ]; then base64 -w0 "$1"; echo; else echo -; fi; }'];
  for (const it of items) {
    lines.push(it.kind === 'file' ? `pv_f ${quote(it.path)}` : `stat -c '%a %U:%G' ${quote(it.path)} 2>/dev/null || echo -`);
  }
  return lines.join('\n');
}

/** The shell that makes one item match its wanted line. */
export function fixScript(item: FloorItem, want: string): string {
  const p = quote(item.path);
  if (item.kind === 'meta') {
    if (want === '-') return ':';
    const [mode, owner] = want.split(' ');
    return `chown ${quote(owner!)} ${p} && chmod ${quote(mode!)} ${p} || exit 70`;
  }
  if (want === '-') return `rm -f ${p} || exit 70`;
  const dir = posix.dirname(item.path);
  return [
    `[ -d ${quote(dir)} ] || mkdir -p ${quote(dir)} || exit 70`,
    `pv_t=$(mktemp ${quote(`${dir}/.${posix.basename(item.path)}.`)}XXXXXX) || exit 70`,
    heredocTo('"$pv_t"', Buffer.from(want, 'base64'), '|| exit 70').trimEnd(),
    `if [ -e ${p} ]; then chmod --reference=${p} "$pv_t" && chown --reference=${p} "$pv_t"; else chmod 0644 "$pv_t"; fi || exit 70`,
    `sync "$pv_t" && mv -f "$pv_t" ${p} || exit 70`,
    `sync ${quote(dir)}`,
  ].join('\n');
}

/** Write PLAN_DIR/HOST/{read,want,fix.N,tail} for floor.sh. */
export function writeFloorPlan(dir: string, plans: FloorHostPlan[]): void {
  for (const p of plans) {
    if (p.want.length !== p.items.length) throw new Error(`${p.host}: ${p.want.length} wanted lines for ${p.items.length} items`);
    const d = join(dir, p.host);
    mkdirSync(d, { recursive: true });
    writeFileSync(join(d, 'read'), `${readScript(p.items)}\n`);
    writeFileSync(join(d, 'want'), `${p.want.join('\n')}\n`);
    p.items.forEach((it, i) => writeFileSync(join(d, `fix.${i}`), `${fixScript(it, p.want[i]!)}\n`));
    writeFileSync(join(d, 'tail'), `${p.tail || ':'}\n`);
  }
}

export interface FloorHostResult {
  execs: number;
  status: 'ok' | 'pending' | 'changed' | 'failed';
}

/** `@@host HOST EXECS STATUS` lines of floor.sh's output, by host. */
export function parseFloorOutput(stdout: string): Map<string, FloorHostResult> {
  const out = new Map<string, FloorHostResult>();
  for (const line of stdout.split('\n')) {
    const m = /^@@host (\S+) (\d+) (ok|pending|changed|failed)$/.exec(line);
    if (m) out.set(m[1]!, { execs: Number(m[2]), status: m[3] as FloorHostResult['status'] });
  }
  return out;
}

/**
 * Shared by the fault suite: looking inside lab hosts without SSH (labExec), finding and killing the sshd session
 * that serves provision's connection, bounded polling, and running provision through the CLI against the lab.
 */
import { createHash } from 'node:crypto';
import { labExec, type LabHost, type LabState } from '../../lab/lab.js';
import { type CliResult, labArgs, runCli } from '../../support/cli.js';
import { writeFiles } from '../../support/tmp.js';

export { results, warnings } from '../../support/events.js';

export const sha = (b: Buffer | string): string => createHash('sha256').update(b).digest('hex');

export const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/** Run a script inside a host as root; its stdout, or an error with what it printed. */
export async function sh(host: LabHost, script: string, stdin?: Buffer | string): Promise<string> {
  const r = await labExec(host, script, { timeoutMs: 120_000, ...(stdin !== undefined ? { stdin } : {}) });
  if (r.code !== 0) throw new Error(`${host.name}: ${script.slice(0, 200)} exited ${r.code}: ${r.stderr}`);
  return r.stdout;
}

/**
 * Poll `probe` every `everyMs` until it returns something other than null, or `timeoutMs` passed (then null).
 * The probes are the only waiting in this suite: no fixed sleeps stand in for "long enough".
 */
export async function poll<T>(probe: () => Promise<T | null>, timeoutMs: number, everyMs = 50): Promise<T | null> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const v = await probe();
    if (v !== null) return v;
    if (Date.now() > end) return null;
    await sleep(everyMs);
  }
}

/** A process inside a host. */
export interface HostProcess {
  pid: number;
  ppid: number;
  args: string;
  /** bytes it has read so far (/proc/PID/io rchar) */
  read: number;
}

/**
 * Every process of a host with its arguments, and for scripts how much they have read. One `ps` and shell
 * builtins only: the polls that time a kill must be quick even on a loaded machine.
 */
export async function processes(host: LabHost): Promise<HostProcess[]> {
  const out = await sh(
    host,
    `ps -eo pid=,ppid=,args= | while read -r pid ppid args; do r=0
case "$args" in "sh -s"*) while read -r k v; do [ "$k" = rchar: ] && r=$v; done < /proc/$pid/io 2>/dev/null ;; esac
printf '%s\\t%s\\t%s\\t%s\\n' "$pid" "$ppid" "$r" "$args"; done`,
  );
  return out
    .split('\n')
    .filter(Boolean)
    .map((l) => {
      const [pid, ppid, read, ...args] = l.split('\t');
      return { pid: Number(pid), ppid: Number(ppid), read: Number(read), args: args.join('\t').trim() };
    });
}

/** sshd processes serving a connection (not the listener): killing them drops the connection as a network fault would. */
export function sshdSessions(ps: HostProcess[]): HostProcess[] {
  return ps.filter((p) => /^sshd: /.test(p.args) && !p.args.includes('[listener]'));
}

/** Scripts provision runs: `sh -s` reading the script on stdin (directly, or exec'd under sudo). */
export function scripts(ps: HostProcess[]): HostProcess[] {
  return ps.filter((p) => p.args === 'sh -s' || p.args.startsWith('sh -s '));
}

/** Kill every sshd session process of a host by its pid; returns the pids killed. */
export async function killSessions(host: LabHost): Promise<number[]> {
  const pids = sshdSessions(await processes(host)).map((p) => p.pid);
  if (pids.length) await labExec(host, `kill -KILL ${pids.join(' ')} 2>/dev/null; true`);
  return pids;
}

/**
 * Wait until nothing provision started runs on the host any more: no sshd session, no script (a script whose
 * connection died keeps running until it ends on its own). False when that takes longer than `timeoutMs`.
 */
export async function waitQuiet(host: LabHost, timeoutMs = 120_000): Promise<boolean> {
  const quiet = await poll(async () => {
    const ps = await processes(host);
    return sshdSessions(ps).length + scripts(ps).length === 0 ? true : null;
  }, timeoutMs, 200);
  return quiet === true;
}

/** Write a playbook (and any files beside it) into a directory; returns the playbook's path. */
export function writePlaybook(dir: string, name: string, text: string, files: Record<string, string | Buffer> = {}): string {
  writeFiles(dir, files);
  return writeFiles(dir, { [name]: text });
}

/** `provision run PLAYBOOK` against the lab with --json and no retry file, plus `extra` flags. */
export function provision(lab: LabState, playbook: string, extra: string[] = []): Promise<CliResult> {
  return runCli(['run', playbook, ...labArgs(lab), '--json', '--no-retry-file', ...extra]);
}

/** Paths of provision's temporary files left in a directory of a host (`.NAME.provision-XXXXXX`). */
export async function leftovers(host: LabHost, dir: string): Promise<string[]> {
  return (await sh(host, `ls -A ${dir} | grep -F .provision- || true`)).split('\n').filter(Boolean);
}

/** sha256 of a file on a host, or "absent". */
export async function hostSha(host: LabHost, file: string): Promise<string> {
  return (await sh(host, `if [ -e ${file} ]; then sha256sum < ${file} | cut -c1-64; else echo absent; fi`)).trim();
}

/** Random bytes that are also valid UTF-8 text lines (so a file's diff can be shown), `size` bytes long. */
export function randomText(size: number, label: string): Buffer {
  const head = Buffer.from(`${label}\n`);
  const body = Buffer.alloc(Math.max(0, size - head.length));
  const alphabet = 'abcdefghijklmnopqrstuvwxyz0123456789';
  for (let i = 0; i < body.length; i++) body[i] = i % 80 === 79 ? 10 : alphabet.charCodeAt(Math.floor(Math.random() * alphabet.length));
  return Buffer.concat([head, body]);
}

/**
 * Measuring one run of a tool as a child process: wall time, the CPU of its whole process tree, the largest
 * single process's peak RSS, and the peak memory of the tree sampled while it runs.
 *
 * The tree is put in a cgroup of its own (cgroup v2), so CPU spent by processes that leave it, such as the SSH
 * ControlPersist masters that OpenSSH daemonizes for the floor and for Ansible, is counted too, and every process
 * it leaves behind is known by pid and ended. Without a writable cgroup v2 hierarchy the figures fall back to
 * GNU time's, which only cover the processes the tool waits for (the output says which was used).
 */
import { spawn } from 'node:child_process';
import { closeSync, existsSync, mkdirSync, openSync, readdirSync, readFileSync, rmdirSync, statSync } from 'node:fs';
import { join } from 'node:path';

/** Where a writable cgroup v2 hierarchy is mounted on this machine, or null. */
export function findCgroup2Root(): string | null {
  const mounts = readFileSync('/proc/self/mounts', 'utf8').split('\n');
  for (const line of mounts) {
    const [, mountPoint, type] = line.split(' ');
    if (type !== 'cgroup2' || !mountPoint) continue;
    try {
      if (statSync(join(mountPoint, 'cgroup.procs')).isFile()) return mountPoint;
    } catch {
      continue;
    }
  }
  return null;
}

export interface Measurement {
  /** the command line, for the record */
  command: string[];
  exitCode: number | null;
  wallS: number;
  userS: number;
  sysS: number;
  /** where CPU and the tree's processes were counted: the cgroup, or GNU time (waited-for processes only) */
  cpuSource: 'cgroup' | 'gnu-time';
  /** largest peak RSS of a single process of the tree (GNU time %M: the tool and the children it waited for) */
  maxRssMb: number;
  /** peak of the sum of proportional set sizes (PSS) of the tree's processes, sampled every `sampleMs` */
  peakTreePssMb: number;
  /** most processes seen at once in the tree */
  peakProcesses: number;
  /** processes still running when the tool exited (ended by pid before the next run) */
  leftovers: number;
  stdoutFile: string;
  stderrFile: string;
}

export interface MeasureOptions {
  command: string[];
  env: NodeJS.ProcessEnv;
  cwd: string;
  /** files the child's stdout and stderr go to */
  stdoutFile: string;
  stderrFile: string;
  /** the run is given up (and its tree ended) after this long */
  timeoutMs: number;
  /** cgroup v2 root, or null to rely on GNU time alone */
  cgroupRoot: string | null;
  /** a unique name for the cgroup of this run */
  label: string;
  sampleMs?: number;
}

/** `%e %U %S %M` as GNU time prints it (the last line: earlier lines may say the command exited non-zero). */
export function parseGnuTime(text: string): { wallS: number; userS: number; sysS: number; maxRssKb: number } | null {
  const lines = text.trim().split('\n');
  const fields = (lines[lines.length - 1] ?? '').trim().split(/\s+/).map(Number);
  if (fields.length !== 4 || fields.some((n) => !Number.isFinite(n))) return null;
  const [wallS, userS, sysS, maxRssKb] = fields as [number, number, number, number];
  return { wallS, userS, sysS, maxRssKb };
}

/** usage, user and system time from a cgroup v2 cpu.stat, in seconds. */
export function parseCpuStat(text: string): { userS: number; sysS: number } {
  const v = new Map(
    text
      .trim()
      .split('\n')
      .map((l) => l.split(' ') as [string, string]),
  );
  return { userS: Number(v.get('user_usec') ?? 0) / 1e6, sysS: Number(v.get('system_usec') ?? 0) / 1e6 };
}

/** Proportional set size of a process in kB (smaps_rollup), its RSS when that cannot be read, 0 when it is gone. */
export function processPssKb(pid: number): number {
  try {
    const m = /^Pss:\s+(\d+) kB/m.exec(readFileSync(`/proc/${pid}/smaps_rollup`, 'utf8'));
    if (m) return Number(m[1]);
  } catch {
    // gone, or smaps_rollup not available: try statm below
  }
  try {
    const pages = Number(readFileSync(`/proc/${pid}/statm`, 'utf8').split(' ')[1]);
    return (pages * 4096) / 1024;
  } catch {
    return 0;
  }
}

function readPids(file: string): number[] {
  try {
    return readFileSync(file, 'utf8')
      .split('\n')
      .filter(Boolean)
      .map(Number);
  } catch {
    return [];
  }
}

/** Every descendant of `root` (for the fallback without a cgroup), from /proc/PID/task/TID/children. */
function descendants(root: number): number[] {
  const out: number[] = [];
  const queue = [root];
  while (queue.length && out.length < 10_000) {
    const pid = queue.shift()!;
    out.push(pid);
    try {
      for (const task of readdirSync(`/proc/${pid}/task`)) {
        const kids = readFileSync(`/proc/${pid}/task/${task}/children`, 'utf8').trim();
        if (kids) queue.push(...kids.split(/\s+/).map(Number));
      }
    } catch {
      continue;
    }
  }
  return out;
}

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/** End processes one by one, by pid: TERM, then KILL for those still there after a bounded wait. */
async function endProcesses(list: () => number[]): Promise<number> {
  const first = list();
  if (first.length === 0) return 0;
  for (const pid of first) {
    try {
      process.kill(pid, 'SIGTERM');
    } catch {
      continue;
    }
  }
  for (let i = 0; i < 50 && list().length > 0; i++) await sleep(100);
  for (const pid of list()) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      continue;
    }
  }
  for (let i = 0; i < 50 && list().length > 0; i++) await sleep(100);
  return first.length;
}

/** Run a command and measure it; see Measurement. */
export async function measure(o: MeasureOptions): Promise<Measurement> {
  const sampleMs = o.sampleMs ?? 200;
  const cg = o.cgroupRoot ? join(o.cgroupRoot, o.label) : null;
  if (cg) mkdirSync(cg);
  const timeFile = `${o.stdoutFile}.time`;
  // The shell joins the cgroup before it becomes GNU time, so every process of the tool starts inside it.
  const enter = cg ? 'echo $$ > "$1/cgroup.procs" || exit 125; ' : '';
  const script = `${enter}tf=$2; shift 2; exec /usr/bin/time -f '%e %U %S %M' -o "$tf" -- "$@"`;
  const out = openSync(o.stdoutFile, 'w');
  const err = openSync(o.stderrFile, 'w');
  const started = process.hrtime.bigint();
  let child;
  try {
    child = spawn('/bin/sh', ['-c', script, 'sh', cg ?? '-', timeFile, ...o.command], { cwd: o.cwd, env: o.env, stdio: ['ignore', out, err] });
  } finally {
    closeSync(out);
    closeSync(err);
  }
  const rootPid = child.pid!;
  const treePids = () => (cg ? readPids(join(cg, 'cgroup.procs')) : descendants(rootPid));

  let peakKb = 0;
  let peakProcs = 0;
  let running = true;
  const sampler = (async () => {
    while (running) {
      const pids = treePids();
      peakProcs = Math.max(peakProcs, pids.length);
      peakKb = Math.max(
        peakKb,
        pids.reduce((sum, pid) => sum + processPssKb(pid), 0),
      );
      await sleep(sampleMs);
    }
  })();

  let timedOut = false;
  const exitCode = await new Promise<number | null>((resolve) => {
    const timer = setTimeout(() => {
      timedOut = true;
      void endProcesses(treePids);
    }, o.timeoutMs);
    child.on('error', () => {
      clearTimeout(timer);
      resolve(null);
    });
    child.on('exit', (code) => {
      clearTimeout(timer);
      resolve(code);
    });
  });
  const wallS = Number(process.hrtime.bigint() - started) / 1e9;
  running = false;
  await sampler;

  const leftovers = cg ? await endProcesses(() => readPids(join(cg, 'cgroup.procs'))) : 0;
  const time = existsSync(timeFile) ? parseGnuTime(readFileSync(timeFile, 'utf8')) : null;
  let cpu = { userS: time?.userS ?? 0, sysS: time?.sysS ?? 0 };
  if (cg) {
    cpu = parseCpuStat(readFileSync(join(cg, 'cpu.stat'), 'utf8'));
    const stuck = readPids(join(cg, 'cgroup.procs'));
    if (stuck.length) throw new Error(`processes ${stuck.join(', ')} of ${o.command.join(' ')} survived SIGKILL; cgroup ${cg} is left in place`);
    rmdirSync(cg);
  }
  return {
    command: o.command,
    exitCode: timedOut ? null : exitCode,
    wallS,
    userS: cpu.userS,
    sysS: cpu.sysS,
    cpuSource: cg ? 'cgroup' : 'gnu-time',
    maxRssMb: (time?.maxRssKb ?? 0) / 1024,
    peakTreePssMb: peakKb / 1024,
    peakProcesses: peakProcs,
    leftovers,
    stdoutFile: o.stdoutFile,
    stderrFile: o.stderrFile,
  };
}

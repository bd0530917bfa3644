/**
 * CPU spent on the lab hosts, and on the whole machine, read from the controller: a host's init and its sshd listener accumulate the CPU
 * of every child they reap (the kernel's cutime and cstime), so the difference across a run is the CPU of that
 * run's SSH sessions (sshd, the shell and every command it ran) plus the daemons the host reaped meanwhile. Daemons
 * still running at the end (a freshly started Postfix) are not in it. Lab hosts share this machine's CPUs with
 * the controller, which is why this matters.
 */
import { readdirSync, readFileSync } from 'node:fs';
import type { LabHost } from '../test/lab/lab.js';

/** Clock ticks per second of /proc/PID/stat times (USER_HZ, 100 on Linux). */
const TICKS = 100;

/** user, system, children's user, children's system, in seconds, of one process. */
function times(pid: number): number[] | null {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // The command name is in parentheses and may hold spaces: fields are counted after its closing one.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return [11, 12, 13, 14].map((i) => Number(fields[i]) / TICKS);
  } catch {
    return null;
  }
}

function children(pid: number): number[] {
  try {
    return readdirSync(`/proc/${pid}/task`).flatMap((t) =>
      readFileSync(`/proc/${pid}/task/${t}/children`, 'utf8')
        .trim()
        .split(/\s+/)
        .filter(Boolean)
        .map(Number),
    );
  } catch {
    return [];
  }
}

function comm(pid: number): string {
  try {
    return readFileSync(`/proc/${pid}/comm`, 'utf8').trim();
  } catch {
    return '';
  }
}

/** The CPU a host's init and sshd listener have accounted so far (their own and their reaped children's), seconds. */
export function hostCpu(host: LabHost): number {
  let total = 0;
  for (const pid of [host.pid, ...children(host.pid).filter((p) => comm(p) === 'sshd')]) {
    const t = times(pid);
    if (t) total += t.reduce((a, b) => a + b, 0);
  }
  return total;
}

/** hostCpu of every host, to subtract from a later snapshot. */
export function snapshot(hosts: LabHost[]): Map<string, number> {
  return new Map(hosts.map((h) => [h.name, hostCpu(h)]));
}

/** CPU seconds spent on all hosts since `before`. */
export function cpuSince(hosts: LabHost[], before: Map<string, number>): number {
  return hosts.reduce((sum, h) => sum + Math.max(0, hostCpu(h) - (before.get(h.name) ?? 0)), 0);
}

/** Busy and total CPU time of the whole machine so far, in seconds (from /proc/stat; idle and iowait are not busy). */
export function machineCpu(): { busy: number; total: number } {
  const fields = readFileSync('/proc/stat', 'utf8').split('\n')[0]!.trim().split(/\s+/).slice(1).map(Number);
  const total = fields.reduce((a, b) => a + b, 0) / TICKS;
  const idle = ((fields[3] ?? 0) + (fields[4] ?? 0)) / TICKS;
  return { busy: total - idle, total };
}

/** How busy the machine was (0 to 1 of all its cores) over the next `ms`: other people's work shows here. */
export async function machineBusy(ms: number): Promise<number> {
  const a = machineCpu();
  await new Promise((resolve) => setTimeout(resolve, ms));
  const b = machineCpu();
  return b.total > a.total ? (b.busy - a.busy) / (b.total - a.total) : 0;
}

/** Exit codes: a bitmask, so a wrapper script can tell what happened from the number alone. */
import type { HostCounters } from '../report/events.js';

export const ExitCode = {
  ok: 0,
  /** bad input or usage */
  input: 1,
  /** at least one host failed */
  failed: 2,
  /** at least one host was unreachable */
  unreachable: 4,
  /** check mode found changes to make */
  changesPending: 8,
  /** the operator interrupted the run (Ctrl-C) */
  interrupted: 16,
} as const;

export function exitCodeOf(hosts: Record<string, HostCounters>, check: boolean, interrupted: boolean): number {
  let code = 0;
  for (const c of Object.values(hosts)) {
    if (c.failed > 0) code |= ExitCode.failed;
    if (c.unreachable > 0) code |= ExitCode.unreachable;
    if (check && c.changed > 0) code |= ExitCode.changesPending;
  }
  if (interrupted) code |= ExitCode.interrupted;
  return code;
}

/** Totals across hosts. */
export function totals(hosts: Record<string, HostCounters>): HostCounters {
  const t: HostCounters = { ok: 0, changed: 0, failed: 0, skipped: 0, unreachable: 0, ignored: 0, execs: 0, steps: 0 };
  for (const c of Object.values(hosts)) for (const k of Object.keys(t) as (keyof HostCounters)[]) t[k] += c[k];
  return t;
}

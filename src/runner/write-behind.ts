/**
 * Write-behind: the remote part of a task whose plan was made on the controller from what the run had read, and
 * whose apply is a pure remote script (a validated, atomic file write; a chmod/chown/mkdir limited to named paths),
 * need not run at once. Its script is queued and the run goes on; the queue is flushed as ONE step, each script in
 * order and stopping at the first that fails, before anything that needs the host: the next remote step carries
 * the queue in front of its own script (which runs only when every queued script succeeded), or the queue is
 * flushed on its own (`settle`) before a task that must not start before the writes are known to be done.
 *
 * Results are exact: whatever a task reports while the queue holds writes (its events, counters, notifications) is
 * held until the flush confirms them. When queued script k fails, task k is reported failed with its own error, as
 * if it had run alone; the tasks after it are never reported, their notifications and counts are dropped, and
 * nothing after k was run on the host.
 */
import { randomBytes } from 'node:crypto';
import type { BecomeSpec, ExecResult } from '../connection/connection.js';
import type { HostCounters, RunEvent as Event } from '../report/events.js';
import type { Play, Task } from '../playbook/types.js';
import type { HostStop } from './task-events.js';

/** What a held task looked like before it ran: restored when a queued script of it (or before it) fails. */
export interface Checkpoint {
  counters: HostCounters;
  notified: string[];
  stopped: HostStop;
  stopReason: string;
}

/** One queued script. */
export interface QueuedStep {
  /** the task it belongs to, for messages */
  task: string;
  script: string;
  /** it writes the play's pending-handler record too (see pendingAhead) */
  record?: boolean;
  become: BecomeSpec | undefined;
  /** the state before the task that queued it */
  checkpoint: Checkpoint;
  /** held events of the task up to the moment it queued the script (its start and warnings stay when it fails) */
  heldAt: number;
  /** the script ran and exited `code`: what the task reports as its failure, or null when it succeeded */
  failure(r: ExecResult): Error | null;
  /** the script succeeded: record what it did (cache, written files) */
  confirm(r: ExecResult): void;
  /** report the task as failed with `e` (counts, stop, event), as if it had run alone */
  fail(e: unknown): void;
}

/** A queued script of an earlier task failed while this one ran: this task is dropped (never reported). */
export class QueuedTaskFailed extends Error {
  constructor(readonly failedTask: string) {
    super(`an earlier task ("${failedTask}") failed when its queued changes were applied`);
    this.name = 'QueuedTaskFailed';
  }
}

/** The result of a flush: how far it went. */
export interface FlushOutcome {
  /** results of the scripts that ran, in order (the last one failed when `failedAt` is set) */
  results: ExecResult[];
  /** index of the queued script that failed, or null when all succeeded */
  failedAt: number | null;
  /** the carried script's result, when all succeeded and one was carried */
  carried: ExecResult | null;
}

/**
 * The script of one flush step: each queued script in a subshell, its exit status and a marker after its stdout
 * and stderr, stopping after the first that fails; then, when all succeeded, a marker and `carried`. The marker
 * holds a random word chosen after every content was fixed, so nothing a script prints can forge it.
 */
export function flushScript(scripts: string[], carried: string | null, nonce: string): string {
  const mark = `@@PV-WB-${nonce}`;
  const lines: string[] = [];
  scripts.forEach((s, i) => {
    lines.push(
      `(\n${s}\n)`,
      'pv_wbrc=$?',
      `printf '\\n${mark} ${i} %s\\n' "$pv_wbrc"`,
      `printf '\\n${mark} ${i}\\n' >&2`,
      `[ "$pv_wbrc" -eq 0 ] || exit "$pv_wbrc"`,
    );
  });
  lines.push(`printf '${mark} go\\n'`, `printf '${mark} go\\n' >&2`);
  if (carried !== null) lines.push(`(\n${carried}\n)`);
  return lines.join('\n');
}

/** Cut what a flush step printed into each script's result and the carried script's. */
export function parseFlush(count: number, r: ExecResult, nonce: string): FlushOutcome {
  const mark = Buffer.from(`@@PV-WB-${nonce}`);
  const results: ExecResult[] = [];
  let out = r.stdout;
  let err = r.stderr;
  for (let i = 0; i < count; i++) {
    const o = cut(out, Buffer.from(`\n${mark} ${i} `));
    const e = cut(err, Buffer.from(`\n${mark} ${i}\n`));
    if (!o || !e) {
      // Cut short (the step was killed, the session died): script i's outcome is unknown.
      results.push({ stdout: out, stderr: err, code: null });
      return { results, failedAt: i, carried: null };
    }
    const nl = o.rest.indexOf(10);
    const code = Number(o.rest.subarray(0, nl < 0 ? o.rest.length : nl).toString());
    results.push({ stdout: o.before, stderr: e.before, code });
    out = nl < 0 ? Buffer.alloc(0) : o.rest.subarray(nl + 1);
    err = e.rest;
    if (code !== 0) return { results, failedAt: i, carried: null };
  }
  const go = Buffer.from(`${mark} go\n`);
  if (!out.subarray(0, go.length).equals(go) || !err.subarray(0, go.length).equals(go)) {
    return { results, failedAt: count > 0 ? count - 1 : null, carried: null };
  }
  return { results, failedAt: null, carried: { stdout: out.subarray(go.length), stderr: err.subarray(go.length), code: r.code } };
}

function cut(b: Buffer, sep: Buffer): { before: Buffer; rest: Buffer } | null {
  const at = b.indexOf(sep);
  if (at < 0) return null;
  return { before: b.subarray(0, at), rest: b.subarray(at + sep.length) };
}

export const newNonce = (): string => randomBytes(8).toString('hex');

/** A host's queue of scripts and the events held with it. */
export class WriteBehind {
  readonly steps: QueuedStep[] = [];
  /** events emitted while the queue was not empty, in order */
  held: Event[] = [];
  /** the task that is running, when a flush it carried found an earlier task's failure */
  aborted: string | null = null;
  /** the running task, when it may queue its apply: its state before it began and how it reports a failure */
  task: { name: string; checkpoint: Checkpoint; fail(e: unknown): void } | null = null;
  /** the name of the task that is running, as shown (a step that carries the queue is its step) */
  running: string | null = null;

  constructor(private readonly emit: (e: Event) => void) {}

  get pending(): boolean {
    return this.steps.length > 0;
  }

  /** The become spec every queued script runs with (they share one step). */
  get become(): BecomeSpec | undefined {
    return this.steps[0]?.become;
  }

  /** An event of the host: held while scripts are queued, else out at once; dropped from an aborted task. */
  event(e: Event): void {
    if (this.aborted) return;
    if (this.pending) this.held.push(e);
    else this.emit(e);
  }

  push(step: QueuedStep): void {
    this.steps.push(step);
  }

  /**
   * The run was interrupted (Ctrl-C) while scripts were queued and not yet sent: none of them is sent. The host is
   * put back as it was before the first queued script's task (counters, notifications), the events held since are
   * dropped (those tasks did not complete), and their names are returned.
   */
  drop(restore: (c: Checkpoint) => void): string[] {
    const steps = this.steps.splice(0);
    const held = this.held;
    this.held = [];
    const first = steps[0];
    if (!first) return [];
    restore(first.checkpoint);
    held.slice(0, first.heldAt).forEach((e) => this.emit(e));
    return [...new Set(steps.map((s) => s.task))];
  }

  /**
   * What a flush came back with: confirm each script that ran, in order; on a failure, put the host back as it
   * was before the failed script's task (counters, notifications, held events up to its start), report that
   * task failed, and drop every later one. Returns the failed task's name, or null.
   */
  settle(outcome: FlushOutcome | { error: unknown }, restore: (c: Checkpoint) => void): string | null {
    const steps = this.steps.splice(0);
    const held = this.held;
    this.held = [];
    if ('error' in outcome) {
      // The step itself failed (connection lost, timeout): which scripts ran is unknown; the first one's task
      // takes the error, and none after it is reported (each script writes all or nothing).
      const first = steps[0]!;
      restore(first.checkpoint);
      held.slice(0, first.heldAt).forEach((e) => this.emit(e));
      first.fail(outcome.error);
      return first.task;
    }
    const { results, failedAt } = outcome;
    for (let i = 0; i < results.length && i !== failedAt; i++) steps[i]!.confirm(results[i]!);
    if (failedAt === null) {
      held.forEach((e) => this.emit(e));
      return null;
    }
    const bad = steps[failedAt]!;
    restore(bad.checkpoint);
    held.slice(0, bad.heldAt).forEach((e) => this.emit(e));
    const r = results[failedAt]!;
    bad.fail(bad.failure(r) ?? new Error(`the queued changes of "${bad.task}" did not complete (exit ${r.code ?? 'unknown'})`));
    return bad.task;
  }
}

/** Controller-only modules whose only effects are the host's variables, its result and its stop. */
const HOLDABLE = new Set(['assert', 'debug', 'set_fact', 'fail']);

/** A lookup (run on the controller while a template renders: `pipe` runs a command, `password` writes a file). */
const LOOKUP = /\b(lookup|query|q)\s*\(/;

/** What a play's own text allows (see writeBehindAllowed): the same for every host, so worked out once per play. */
const playAllows = new WeakMap<Play, boolean>();

function textAllows(values: unknown[]): boolean {
  try {
    const text = JSON.stringify(values, (k, v: unknown) => (k === 'pos' ? undefined : v));
    // A task delegated to another inventory host plans on that host's cache and writes there: neither may run
    // ahead of, or behind, that host's own queued writes, so a play that delegates queues nothing.
    return !LOOKUP.test(text) && !/"module":"include_vars"/.test(text) && !/"delegateTo":/.test(text);
  } catch {
    return false;
  }
}

/**
 * Whether write-behind may be used in `play` on a host with these variables: not when a template anywhere may
 * call a lookup (its effects on the controller would come before writes that are not yet done), nor when
 * include_vars may bring variables whose templates are not known before the run.
 */
export function writeBehindAllowed(play: Play, ...vars: Record<string, unknown>[]): boolean {
  let ok = playAllows.get(play);
  if (ok === undefined) {
    ok = textAllows([play.vars, play.roleDefaults, play.roleVars, play.preTasks, play.tasks, play.postTasks, play.handlers]);
    playAllows.set(play, ok);
  }
  return ok && textAllows(vars);
}

/**
 * How a task meets the queue. `settle`: the queue is flushed on its own before the task starts (it is delegated,
 * run once for a batch, in a block whose rescue may catch it, or a controller module with effects of its own such
 * as smtp_probe). Otherwise the task starts at once: its results are held while scripts are queued and its first
 * remote step carries the queue; `queue`: its apply may be queued too.
 */
export function writeBehindMode(task: Task, mod: { name: string; controllerOnly?: boolean }, o: { handler: boolean; rescuable: boolean; allowed: boolean }): 'settle' | 'carry' | 'queue' {
  if (!o.allowed || o.rescuable || task.local || task.runOnce || task.delegateTo !== undefined) return 'settle';
  if (mod.controllerOnly) return HOLDABLE.has(mod.name) ? 'carry' : 'settle';
  // A result decided by the apply alone, once: no loop, retries, conditions on the result or ignored failure.
  const plain = task.loop === undefined && task.until === undefined && !task.ignoreErrors && task.failedWhen === undefined && task.changedWhen === undefined;
  return !o.handler && plain ? 'queue' : 'carry';
}

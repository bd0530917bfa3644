/**
 * One host's part of a run, as a small coordinator: its connection and the one way anything runs there (exec),
 * its facts, and the parts that do the rest, each in a file of its own:
 *   host-start.ts   facts and the host lock (the first exec), prefetch, preflight
 *   read-cache.ts   what was read from the host, refills, check mode's pretend writes
 *   host-vars.ts    variables and their precedence
 *   become.ts, tags.ts
 *   task-loops.ts   arguments, loops, includes, until
 *   task-run.ts     one task: plan → [check: stop] → apply → register
 *   task-context.ts what a module sees of the host (reads, commands, writes)
 *   handlers.ts     notified handlers and their record on the host
 *   task-events.ts  counters, stops and the task_result event
 *   write-behind.ts pure remote writes queued and flushed as one step before anything that needs the host
 * A host that fails stops its own tasks; the others are not affected here (play.ts decides about the rollout).
 */
import type { BecomeSpec, Connection, ExecResult } from '../connection/connection.js';
import { CommandError, UnreachableError } from '../errors.js';
import { busyLocked } from '../facts/gather.js';
import type { Facts } from '../facts/types.js';
import type { FileChange, FileState, TaskContext } from '../modules/module.js';
import { renderString } from '../playbook/template.js';
import type { Play, ResolvedInclude, Task } from '../playbook/types.js';
import { emptyCounters, type EventSink, type HostCounters } from '../report/events.js';
import { becomeFor } from './become.js';
import { clearPending, flushHandlers, HandlerState, loadPending, pendingHandlers, pendingPath, savePending } from './handlers.js';
import { gatherFacts, prefetch, preflight, Renders } from './host-start.js';
import { HostVars, type VarScope } from './host-vars.js';
import { ReadCache } from './read-cache.js';
import { taskContext } from './task-context.js';
import { emitTaskResult, type HostStop, HostStatus, type TaskOutcome } from './task-events.js';
import { includeRuns, resolveInclude } from './task-loops.js';
import { runTask } from './task-run.js';
import { type Checkpoint, flushScript, newNonce, parseFlush, QueuedTaskFailed, WriteBehind, writeBehindAllowed } from './write-behind.js';

/** The name a task dropped by an interrupt is aborted under (see dropQueue). */
const INTERRUPTED = 'interrupted';

/** Run-wide settings a host needs. */
export interface HostSettings {
  check: boolean;
  diff: boolean;
  /** `-b`: become for every task */
  become: boolean;
  becomeUser?: string;
  becomePassword?: string;
  tags: string[];
  skipTags: string[];
  extraVars: Record<string, unknown>;
  /** wait this long for another run's lock on the host (0: do not lock) */
  lockTimeoutS: number;
  /** who holds the lock, as recorded on the host ("provision run by user@controller pid N") */
  lockHolder: string;
  playbookDir: string;
  playbookFile: string;
  emit: EventSink;
  /**
   * The run's HostRun of an inventory host, for `delegate_to` (made on first use when the host is in no play);
   * throws when the name is not an inventory host
   */
  hostFor?: (name: string) => HostRun;
  /** the operator interrupted the run (Ctrl-C): writes still queued are not sent (see write-behind.ts) */
  interrupted?: () => boolean;
}

export class HostRun {
  readonly status = new HostStatus(emptyCounters());
  facts: Facts | null = null;
  /** the login user is root (known once facts were gathered without become) */
  loginIsRoot: boolean | null = null;
  readonly variables: HostVars;
  readonly cache: ReadCache;
  readonly handlers = new HandlerState();
  /** task arguments rendered for the first exec's guessed facts (see host-start.ts) */
  readonly renders = new Renders();
  /** the first version of every file this run changed, for rollback */
  readonly original: Map<string, FileChange>;
  /** where tasks delegated to localhost run (made on first use) */
  private local: HostRun | null = null;
  private connecting: Promise<void> | null = null;
  private gathering: Promise<void> | null = null;
  /** the host's failure is another host's (see failAlong) */
  private uncountedFailure = false;
  /** ends the held facts exec, releasing the host lock */
  private releaseLock: (() => void) | null = null;
  private closing: Promise<void> | null = null;
  private readonly started = Date.now();
  /** queued remote writes and the events held with them (see write-behind.ts) */
  readonly wb: WriteBehind;
  /** the host's settings; `emit` goes through the write-behind queue's hold */
  readonly settings: HostSettings;
  /** the host as it was right after a carried flush failed, restored when the task that carried it ends */
  private afterFailure: Checkpoint | null = null;
  private readonly allowed = new WeakMap<Play, boolean>();
  /** how many flushes found a queued task's script failed (that task was reported failed then) */
  queuedFailures = 0;

  constructor(
    readonly name: string,
    /** inventory variables of the host (groups merged, host vars on top) */
    readonly inventoryVars: Record<string, unknown>,
    readonly conn: Connection,
    settings: HostSettings,
    /** a delegate's: the cache and first file versions of the host it runs on (see delegate.ts) */
    shared?: { cache: ReadCache; original: Map<string, FileChange> },
  ) {
    this.wb = new WriteBehind(settings.emit);
    this.settings = { ...settings, emit: (e) => this.wb.event(e) };
    this.variables = new HostVars(inventoryVars, settings);
    this.cache = shared?.cache ?? new ReadCache(name, (script, become) => this.exec(script, become));
    this.original = shared?.original ?? new Map();
  }

  get counters(): HostCounters {
    return this.status.counters;
  }

  get stopped(): HostStop {
    return this.status.stopped;
  }

  get stopReason(): string {
    return this.status.stopReason;
  }

  /**
   * Ansible's magic variables of the play and batch this host is in (hostvars, play_hosts, ansible_play_batch,
   * omit, …; see playVars), set by the runner before each batch.
   */
  get magic(): Record<string, unknown> {
    return this.variables.magic;
  }

  set magic(m: Record<string, unknown>) {
    this.variables.magic = m;
  }

  get durationMs(): number {
    return Date.now() - this.started;
  }

  get failedOrUnreachable(): boolean {
    return this.stopped === 'failed' || this.stopped === 'unreachable';
  }

  /** Variables visible to templates (see host-vars.ts). */
  vars(play: Play, task?: Task, extra: Record<string, unknown> = {}): Record<string, unknown> {
    return this.variables.vars(play, task, extra, this.facts);
  }

  /** Run `body` with the variables of an include (its `vars:` and loop item) visible to its tasks. */
  withScope<T>(scope: VarScope[], body: () => Promise<T>): Promise<T> {
    return this.variables.withScope(scope, body);
  }

  /** The variables each run of an include's tasks sees, or null when it does not run (see task-loops.ts). */
  includeRuns(play: Play, task: Task, handler = false): VarScope[][] | null {
    return includeRuns(this, play, task, handler);
  }

  /** What one run of an include brings (a templated name resolved for this host), or null when it failed. */
  resolveInclude(play: Play, task: Task, handler = false): ResolvedInclude | null {
    return resolveInclude(this, play, task, handler);
  }

  /** A failure inside a block with `rescue`: no longer a failure of the host; counted as ignored. */
  rescue(): boolean {
    if (this.stopped !== 'failed') return false;
    this.status.clear();
    // A failure taken from a run_once task that another host ran was never counted here (see failAlong).
    if (this.uncountedFailure) this.uncountedFailure = false;
    else {
      this.counters.failed--;
      this.counters.ignored++;
    }
    return true;
  }

  /**
   * Fail with another host's run_once task, as Ansible fails every host of the batch: the host stops (a block's
   * rescue still runs), later plays skip it and the retry file lists it, but its recap counts nothing, as
   * Ansible's counts the failure on the host that ran the task alone.
   */
  failAlong(reason: string): void {
    if (this.stopped) return;
    this.status.stop('failed', reason);
    this.uncountedFailure = true;
  }

  /** Put aside a failure while a block's `always` runs; returns what to restore after. */
  holdFailure(): { why: HostStop; reason: string; uncounted: boolean } | null {
    if (this.stopped !== 'failed') return null;
    const held = { why: this.stopped, reason: this.stopReason, uncounted: this.uncountedFailure };
    this.status.clear();
    this.uncountedFailure = false;
    return held;
  }

  restoreFailure(held: { why: HostStop; reason: string; uncounted: boolean } | null): void {
    // A failure of the always section itself (counted) stays the host's failure.
    if (!held || this.stopped) return;
    this.status.stop(held.why, held.reason);
    this.uncountedFailure = held.uncounted;
  }

  /** A registered result, for run_once to hand to the batch's other hosts. */
  registeredValue(name: string): unknown {
    return this.variables.registeredValue(name);
  }

  /** Take the result of a run_once task that another host ran. */
  adoptResult(play: Play, task: Task, value: unknown, changed: boolean): void {
    if (task.register && value !== undefined) this.variables.register(task.register, value);
    if (changed) this.handlers.notify(task, this.vars(play, task));
  }

  /** A delegate: the host a task runs for, seen on the host it is delegated to (see delegate.ts). */
  get isDelegate(): boolean {
    return false;
  }

  /** Who the commands of `task` (or of the play) run as. */
  become(play: Play, task?: Task): BecomeSpec | undefined {
    return becomeFor(play, task, this.inventoryVars, this.settings);
  }

  /**
   * Run a script on the host: every step after the first exec goes through here (reads, writes, validations,
   * module commands, pending-handler records). Queued writes go first, in the same step when they can (see
   * write-behind.ts); when one of them fails, its task is reported failed and this throws QueuedTaskFailed.
   */
  async exec(script: string, become: BecomeSpec | undefined, timeoutMs?: number): Promise<ExecResult> {
    if (this.wb.aborted) throw new QueuedTaskFailed(this.wb.aborted);
    if (!this.wb.pending) return this.step(script, become, timeoutMs);
    // A step of another become runs after the queue, apart (one step runs as one user).
    if (JSON.stringify(become ?? null) !== JSON.stringify(this.wb.become ?? null)) {
      await this.flushInTask();
      return this.step(script, become, timeoutMs);
    }
    // A step with a timeout of its own (a firewall guard's arm) carries the queue too: the queued scripts run
    // before it starts (the guard's rollback timer starts after them) and count in its time.
    const r = await this.flush(script, timeoutMs);
    if (r.dropped) this.abortTask(INTERRUPTED);
    if (r.failed !== null) this.abortTask(r.failed);
    return r.carried!;
  }

  /** One step on the host, as asked. */
  private async step(script: string, become: BecomeSpec | undefined, timeoutMs?: number): Promise<ExecResult> {
    // While this run holds the host lock, each exec also holds the busy lock, so that what it started on the host
    // is waited for by the next run even if this connection dies now.
    const r = await this.conn.exec(this.releaseLock ? busyLocked(script) : script, { become, timeoutMs });
    this.counters.execs = this.conn.execs;
    this.counters.steps = this.conn.steps;
    if (become && r.code !== 0 && /sudo: (a password is required|\d+ incorrect password|a terminal is required)/.test(r.stderr.toString())) {
      throw new CommandError(this.name, 'sudo', r.code, '', r.stderr.toString(), `sudo refused: ${r.stderr.toString().trim().split('\n')[0]} (use --ask-become-pass)`);
    }
    return r;
  }

  /** Run the queued scripts (then `carried`, when they all succeed) as one step; the failed task's name, if any. */
  private async flush(carried: string | null, timeoutMs?: number): Promise<{ failed: string | null; carried: ExecResult | null; dropped: boolean }> {
    // After a Ctrl-C nothing queued is sent: a step already on its way finishes with what it carries, but no
    // queued write leaves the controller later (see dropQueue).
    if (this.interrupted()) {
      this.dropQueue();
      return { failed: null, carried: null, dropped: true };
    }
    const scripts = this.wb.steps.map((s) => s.script);
    const nonce = newNonce();
    let failed: string | null;
    let result: ExecResult | null = null;
    try {
      const raw = await this.step(flushScript(scripts, carried, nonce), this.wb.become, timeoutMs);
      const outcome = parseFlush(scripts.length, raw, nonce);
      result = outcome.carried;
      failed = this.wb.settle(outcome, (c) => this.restore(c));
    } catch (e) {
      // The step did not come back: which of its scripts ran on the host is unknown, and the message says so.
      const unknown = e instanceof UnreachableError ? new UnreachableError(e.host, `${e.message}, in the step that carried this task's queued changes: whether they were made on the host is unknown`) : e;
      const carrier = carried !== null ? this.wb.running : null;
      failed = this.wb.settle({ error: unknown }, (c) => this.restore(c));
      // The task whose step it was ends unreported (see abortTask): say that it began and did not complete. A step
      // with a timeout of its own is a firewall guard's arm: a change armed there is undone on the host by its timer.
      if (carrier !== null && carrier !== failed) {
        const guard = timeoutMs !== undefined ? ' (a firewall change it armed there is rolled back on the host when its timer runs out)' : '';
        this.settings.emit({ type: 'warning', host: this.name, msg: `"${carrier}" began in the step that was lost and did not complete${guard}` });
      }
    }
    if (failed !== null) {
      this.cache.forget();
      this.queuedFailures++;
    }
    return { failed, carried: result, dropped: false };
  }

  /** Inside a task: flush the queue on its own; when a queued script failed (or the run was interrupted), this task is dropped. */
  async flushInTask(): Promise<void> {
    const { failed, dropped } = await this.flush(null);
    if (dropped) this.abortTask(INTERRUPTED);
    if (failed !== null) this.abortTask(failed);
  }

  /** The operator interrupted the run (Ctrl-C). */
  interrupted(): boolean {
    return this.settings.interrupted?.() ?? false;
  }

  /**
   * Interrupted with scripts queued: none is sent. Their tasks did not complete: nothing of them is reported or
   * counted (their notifications too are taken back), what was predicted of their writes is forgotten, and the
   * host stops as interrupted. A task that would have carried them is dropped too, before it sent anything.
   */
  private dropQueue(): void {
    const tasks = this.wb.drop((c) => this.restore(c));
    this.cache.forget();
    this.abort('interrupted');
    if (tasks.length) {
      const names = tasks.map((t) => `"${t}"`).join(', ');
      this.settings.emit({ type: 'warning', host: this.name, msg: `interrupted: the changes of ${names} were queued and are not sent; ${tasks.length === 1 ? 'that task did' : 'those tasks did'} not complete` });
    }
  }

  private abortTask(failed: string): never {
    this.afterFailure = this.checkpoint();
    this.wb.aborted = failed;
    throw new QueuedTaskFailed(failed);
  }

  /**
   * Flush the queue on its own, between tasks (before a task that must not start until the writes are done, a
   * block's rescue or always, the end of the host); false when a queued script failed (its task was reported).
   * After a Ctrl-C the queue is dropped instead (see dropQueue) and the host is stopped as interrupted.
   */
  async settle(): Promise<boolean> {
    if (!this.wb.pending) return true;
    const { failed } = await this.flush(null);
    return failed === null;
  }

  /** Whether write-behind may be used in `play` here (see writeBehindAllowed). */
  writeBehindAllowed(play: Play): boolean {
    let ok = this.allowed.get(play);
    if (ok === undefined) this.allowed.set(play, (ok = writeBehindAllowed(play, this.inventoryVars, this.settings.extraVars)));
    return ok;
  }

  /** The host's counters, notifications and stop, to put back if what follows is dropped. */
  checkpoint(): Checkpoint {
    return { counters: { ...this.counters }, notified: [...this.handlers.notified], stopped: this.status.stopped, stopReason: this.status.stopReason };
  }

  restore(c: Checkpoint): void {
    Object.assign(this.counters, { ...c.counters, execs: this.counters.execs, steps: this.counters.steps });
    this.handlers.notified.clear();
    for (const n of c.notified) this.handlers.notified.add(n);
    this.status.clear();
    if (c.stopped) this.status.stop(c.stopped, c.stopReason);
  }

  /** A task that carried a failed flush has ended: nothing it did counts (see write-behind.ts). */
  endAborted(): boolean {
    if (!this.wb.aborted) return false;
    if (this.afterFailure) this.restore(this.afterFailure);
    this.afterFailure = null;
    this.wb.aborted = null;
    return true;
  }

  /**
   * The first exec of a locking run: kept open until the run is done with the host, which holds the host lock (see host-start.ts);
   * `sessionScript` is its variant run as the first step of the host's session.
   */
  async hold(script: string, marker: string, become: BecomeSpec | undefined, sessionScript?: string): Promise<Awaited<ReturnType<Connection['hold']>>> {
    const held = await this.conn.hold(script, marker, { become, ...(sessionScript === undefined ? {} : { sessionScript }) });
    this.counters.execs = this.conn.execs;
    this.counters.steps = this.conn.steps;
    if (held.held) this.releaseLock = held.release;
    return held;
  }

  /** Connect (once per run; a host that others delegate to may be asked by several at once). */
  connect(): Promise<void> {
    this.connecting ??= this.conn.connect();
    return this.connecting;
  }

  /** Facts (and the host lock), once per run, when asked or first needed. */
  async gatherFacts(play: Play): Promise<void> {
    if (this.facts) return;
    this.gathering ??= this.connect().then(() => gatherFacts(this, play));
    await this.gathering;
  }

  /** Fetch in one exec what the play's tasks will read and the cache does not hold. */
  prefetch(play: Play): Promise<void> {
    return prefetch(this, play);
  }

  /** Let modules refuse tasks that can never succeed here, before any task runs; false when the host failed. */
  preflight(play: Play): Promise<boolean> {
    return preflight(this, play);
  }

  /** Make a TaskContext for one task on this host. */
  context(play: Play, task: Task, vars: Record<string, unknown>, check: boolean): TaskContext {
    return taskContext(this, play, task, vars, check);
  }

  /**
   * Run one task (or handler) on this host; records counters and emits the result. `rescuable`: a failure may be
   * rescued by an enclosing block (nothing of such a task is queued).
   */
  runTask(play: Play, task: Task, handler = false, rescuable = false): Promise<TaskOutcome> {
    return runTask(this, play, task, handler, rescuable);
  }

  /** The host's delegate on the controller, made by `make` on first use. */
  delegate(make: () => HostRun): HostRun {
    this.local ??= make();
    return this.local;
  }

  /** Run the handlers notified so far, in the order they are defined. */
  flushHandlers(play: Play): Promise<void> {
    return flushHandlers(this, play);
  }

  /** Handlers that were notified but never ran (the host failed first). */
  pendingHandlers(play: Play): string[] {
    return pendingHandlers(this, play);
  }

  /** Where this play's pending handlers are recorded on the host. */
  pendingPath(play: Play): string {
    return pendingPath(this.settings.playbookFile, play);
  }

  loadPending(play: Play): Promise<void> {
    return loadPending(this, play);
  }

  savePending(play: Play): Promise<void> {
    return savePending(this, play);
  }

  clearPending(play: Play): Promise<void> {
    return clearPending(this, play);
  }

  /** A failure before any task (connecting, facts): unreachable when the host cannot be reached, else failed. */
  markUnreachableOrFailed(e: unknown): void {
    const unreachable = e instanceof UnreachableError;
    const msg = e instanceof Error ? e.message : String(e);
    if (unreachable) this.counters.unreachable++;
    else this.counters.failed++;
    this.status.stop(unreachable ? 'unreachable' : 'failed', msg);
    emitTaskResult(this.settings.emit, this.name, {
      task: unreachable ? 'connect' : 'gather facts',
      module: 'setup',
      handler: false,
      status: unreachable ? 'unreachable' : 'failed',
      msg,
      check: this.settings.check,
      duration_ms: 0,
    });
  }

  endHost(reason: string): void {
    this.status.stop('end_host', reason);
  }

  abort(reason: string): void {
    this.status.stop('aborted', reason);
  }

  /** Clear a stop that only applies to one play (end_host), so the host takes part in the next play. */
  nextPlay(): void {
    if (this.stopped === 'end_host') this.status.clear();
  }

  /** Close once: a host released after its last play is closed again when the run ends. */
  close(): Promise<void> {
    this.closing ??= this.closeNow();
    return this.closing;
  }

  private async closeNow(): Promise<void> {
    await this.local?.close();
    this.releaseLock?.();
    this.releaseLock = null;
    await this.conn.close().catch(() => undefined);
  }

  /**
   * The run is done with this host (run.ts decides): close its connection, which ends its session and releases
   * the host lock, and drop what was read there and the first versions of the files it changed. Facts, registered
   * variables and counters stay: later plays read them through hostvars, and the recap prints the counters.
   */
  async release(): Promise<void> {
    await this.close();
    this.cache.forget();
    this.original.clear();
  }

  /** Used by tests and by rollback code: the cached state of a file. */
  cached(path: string): FileState | undefined {
    return this.cache.file(path);
  }

  renderValue(value: unknown, play: Play): unknown {
    return renderString(String(value), this.vars(play));
  }
}

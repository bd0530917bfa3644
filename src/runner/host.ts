/**
 * One host's part of a run: its connection, facts, file cache, variables, notified handlers and counters, and
 * the task loop (template → plan → [check: stop] → apply → register). A host that fails stops its own tasks;
 * the others are not affected here (play.ts decides about the rollout).
 */
import { createHash } from 'node:crypto';
import path from 'node:path';
import type { BecomeSpec, Connection, ExecResult } from '../connection/connection.js';
import { CommandError, formatPos, InputError, UnreachableError } from '../errors.js';
import { busyLocked, factsScript, HELD_MARKER, LOCK_BUSY, lockedFactsScript, STATE_DIR, STATE_DIR_REFUSED, stateDirScript } from '../facts/gather.js';
import { quote } from '../connection/shell-quote.js';
import type { Facts } from '../facts/types.js';
import { ansibleFactVars, OMIT } from '../playbook/magic-vars.js';
import { findModule } from '../modules/index.js';
import { type FileChange, type FileState, type Module, ModuleError, type Outcome, type Plan, type Reads, type TaskContext } from '../modules/module.js';
import { knownNameVersions, namesKeptFor, rememberNames } from '../modules/postfix-names.js';
import { evaluateCondition, isTemplated, mergeVars, renderDeep, renderString, TemplateError, toBool, UndefinedVariableError } from '../playbook/template.js';
import { allTasks, type Play, type Task } from '../playbook/types.js';
import { LocalConnection } from '../connection/local.js';
import { loopItems } from './loops.js';
import { checkArgs } from '../playbook/validate.js';
import { fileDiff } from '../report/diff.js';
import { displaySafe } from '../report/display-safe.js';
import { emptyCounters, type EventSink, type FileDiff, type HostCounters, type TaskStatus } from '../report/events.js';
import { factsAgree, firstExecTail, guessFacts, parseFirstExec, unionOfReads, watchedFacts } from './first-exec.js';
import { absentState, parseReadOutput, parseWriteOutput, readScript, type ReadRequest, type ReadResult, sha256, validateScript, WriteStatus, writeScript } from './host-files.js';

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
}

/** Why a host stopped running tasks. */
export type HostStop = 'failed' | 'unreachable' | 'end_host' | 'aborted' | null;

/** Result of one task on this host (what play.ts needs to decide about the rollout). */
export interface TaskOutcome {
  status: TaskStatus;
  ignored: boolean;
}

interface CacheEntry {
  state: FileState;
}

/** Where pending handlers are recorded on hosts (in root's private state directory), one small JSON file per playbook and play. */
export const PENDING_DIR = `${STATE_DIR}/pending`;

const fileErrorStatus = new Map<number, string>([
  [WriteStatus.invalid, 'the new content was rejected by validation'],
  [WriteStatus.conflict, 'the file changed on the host while the task ran'],
]);

export class HostRun {
  readonly counters: HostCounters = emptyCounters();
  facts: Facts | null = null;
  /**
   * Ansible's magic variables of the play and batch this host is in (hostvars, play_hosts, ansible_play_batch,
   * omit, …; see playVars), set by the runner before each batch. A runner of roles adds `role_path` here.
   */
  magic: Record<string, unknown> = {};
  stopped: HostStop = null;
  stopReason = '';
  /** handler names and listen topics notified and not yet run */
  readonly notified = new Set<string>();
  /** variables from register and set_fact (above play vars, below extra vars) */
  private registered: Record<string, unknown> = {};
  /** variables from include_vars (below registered ones; templates in them render when used) */
  private included: Record<string, unknown> = {};
  /** variables of the includes being run: their `vars:` and loop items, innermost last */
  private scopes: { vars: Record<string, unknown>; lazy: boolean }[] = [];
  /** where tasks delegated to localhost run (made on first use) */
  private delegate: HostRun | null = null;
  private readonly files = new Map<string, CacheEntry>();
  private readonly commands = new Map<string, ExecResult>();
  /**
   * What each task will read, as known when the play was prefetched, to refetch in one exec after the cache
   * empties. Asked again at that time: a module may need less by then (Postfix's parameter names, once known).
   */
  private readonly planned = new Map<Task, (() => Reads)[]>();
  /** the first version of every file this run changed, for rollback */
  private readonly original = new Map<string, FileChange>();
  private connected = false;
  /** plays whose pending-handler record was found on the host this run */
  private readonly pendingLoaded = new Set<Play>();
  /** plays whose pending-handler record this run wrote together with a task's files */
  private readonly pendingWritten = new Set<Play>();
  /** the login user is root (known once facts were gathered without become) */
  private loginIsRoot: boolean | null = null;
  /** task arguments rendered for the first exec's guessed facts, reused by the prefetch (see argsFor) */
  private readonly renders = new Map<Task, { facts: Facts; used: ReadonlySet<string>; args: Record<string, unknown>[] }[]>();
  /** ends the held facts exec, releasing the host lock */
  private releaseLock: (() => void) | null = null;
  private readonly started = Date.now();

  constructor(
    readonly name: string,
    /** inventory variables of the host (groups merged, host vars on top) */
    readonly inventoryVars: Record<string, unknown>,
    readonly conn: Connection,
    readonly settings: HostSettings,
  ) {}

  get durationMs(): number {
    return Date.now() - this.started;
  }

  get failedOrUnreachable(): boolean {
    return this.stopped === 'failed' || this.stopped === 'unreachable';
  }

  /**
   * Variables visible to templates, by Ansible's precedence: role defaults < inventory < play < role vars < role
   * parameters < block and task vars < include vars and loop items < include_vars < registered < extra.
   */
  vars(play: Play, task?: Task, extra: Record<string, unknown> = {}): Record<string, unknown> {
    const role = task?.role;
    return mergeVars([
      { vars: play.roleDefaults, lazy: true },
      { vars: role?.defaults ?? {}, lazy: true },
      { vars: this.inventoryVars, lazy: true },
      { vars: play.vars, lazy: true },
      { vars: play.roleVars, lazy: true },
      { vars: role?.vars ?? {}, lazy: true },
      { vars: role?.params ?? {}, lazy: true },
      { vars: task?.vars ?? {}, lazy: true },
      ...this.scopes,
      { vars: this.included, lazy: true },
      { vars: this.registered, lazy: false },
      { vars: this.settings.extraVars, lazy: true },
      {
        vars: {
          ...this.magic,
          ...(this.facts ? { facts: this.facts, ...ansibleFactVars(this.facts) } : {}),
          ansible_check_mode: this.settings.check,
          playbook_dir: this.settings.playbookDir,
          ...(role ? { role_path: role.dir, role_name: role.name } : {}),
          ...extra,
        },
        lazy: false,
      },
    ]);
  }

  /** Run `body` with the variables of an include (its `vars:` and loop item) visible to its tasks. */
  async withScope<T>(scope: { vars: Record<string, unknown>; lazy: boolean }[], body: () => Promise<T>): Promise<T> {
    this.scopes.push(...scope);
    try {
      return await body();
    } finally {
      this.scopes.splice(this.scopes.length - scope.length, scope.length);
    }
  }

  /** Items of a task's loop (its value templated with `vars`). */
  loopOf(task: Task, vars: Record<string, unknown>): unknown[] {
    const dirs = [
      ...(task.role ? [path.join(task.role.dir, 'files'), task.role.dir] : []),
      task.dir,
      path.join(this.settings.playbookDir, 'files'),
      this.settings.playbookDir,
    ];
    return loopItems(task.loopKind, renderDeep(task.loop, vars), dirs);
  }

  /** What loop_control adds for item `i`: the loop variable and the index variable. */
  private itemVars(task: Task, item: unknown, i: number): Record<string, unknown> {
    return { [task.loopVar]: item, ...(task.indexVar ? { [task.indexVar]: i } : {}) };
  }

  /**
   * The variables each run of an include's tasks sees (one per loop item), or null when its `when` is false.
   * The include's result is shown (skipped, or how many times it runs).
   */
  includeRuns(play: Play, task: Task): { vars: Record<string, unknown>; lazy: boolean }[][] | null {
    const vars = this.vars(play, task);
    const emit = (status: TaskStatus, msg: string) =>
      this.settings.emit({ type: 'task_result', host: this.name, task: task.name, module: task.module, handler: false, status, msg, check: this.settings.check, duration_ms: 0, at: formatPos(task.pos) });
    try {
      if (task.when !== undefined && !evaluateCondition(task.when, vars)) {
        this.counters.skipped++;
        emit('skipped', 'condition false');
        return null;
      }
      const params = { vars: task.include?.params ?? {}, lazy: true };
      if (task.loop === undefined) return [[params]];
      return this.loopOf(task, vars).map((item, i) => [params, { vars: this.itemVars(task, item, i), lazy: false }]);
    } catch (e) {
      this.recordFailure(play, task, errorMessage(e, task), (st, m) => emit(st, m));
      return null;
    }
  }

  /** A failure inside a block with `rescue`: no longer a failure of the host; counted as ignored. */
  rescue(): boolean {
    if (this.stopped !== 'failed') return false;
    this.stopped = null;
    this.stopReason = '';
    this.counters.failed--;
    this.counters.ignored++;
    return true;
  }

  /** Put aside a failure while a block's `always` runs; returns what to restore after. */
  holdFailure(): { why: HostStop; reason: string } | null {
    if (this.stopped !== 'failed') return null;
    const held = { why: this.stopped, reason: this.stopReason };
    this.stopped = null;
    this.stopReason = '';
    return held;
  }

  restoreFailure(held: { why: HostStop; reason: string } | null): void {
    if (held && !this.stopped) {
      this.stopped = held.why;
      this.stopReason = held.reason;
    }
  }

  /** A registered result, for run_once to hand to the batch's other hosts. */
  registeredValue(name: string): unknown {
    return this.registered[name];
  }

  /** Take the result of a run_once task that another host ran. */
  adoptResult(play: Play, task: Task, value: unknown, changed: boolean): void {
    if (task.register && value !== undefined) this.registered[task.register] = value;
    if (changed) task.notify.forEach((n) => this.notified.add(renderNotify(n, this.vars(play, task))));
  }

  private become(play: Play, task?: Task): BecomeSpec | undefined {
    const on = task?.become ?? (play.become || this.settings.become || ansibleBool(this.inventoryVars.ansible_become));
    if (!on) return undefined;
    const user = task?.becomeUser ?? play.becomeUser ?? (this.inventoryVars.ansible_become_user as string | undefined) ?? this.settings.becomeUser ?? 'root';
    return { user, password: this.settings.becomePassword };
  }

  private async exec(script: string, become: BecomeSpec | undefined, timeoutMs?: number): Promise<ExecResult> {
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

  /** Connect (once per run) and gather facts (once per run, when asked or first needed). */
  async connect(): Promise<void> {
    if (this.connected) return;
    await this.conn.connect();
    this.connected = true;
  }

  /**
   * Facts, once per run. In a normal run the same exec takes the host's run lock and keeps it until the run ends,
   * so two runs never interleave their changes; check mode changes nothing and takes no lock. The same exec
   * brings back what the play will read on a host like this one (see first-exec.ts), and Postfix's parameter
   * names when the controller does not know the host's version yet.
   */
  async gatherFacts(play: Play): Promise<void> {
    if (this.facts) return;
    await this.connect();
    const become = this.become(play);
    const known = knownNameVersions(this.name);
    const req = this.guessedReads(play, known);
    const tail = firstExecTail(known, req);
    let stdout: string;
    if (this.settings.check || this.settings.lockTimeoutS <= 0) {
      const r = await this.exec(factsScript(tail), become);
      if (r.code !== 0) throw new CommandError(this.name, 'gathering facts', r.code, r.stdout.toString(), r.stderr.toString());
      stdout = r.stdout.toString();
    } else {
      const held = await this.conn.hold(lockedFactsScript(this.settings.lockTimeoutS, quote(this.settings.lockHolder), tail), HELD_MARKER, { become });
      this.counters.execs = this.conn.execs;
      this.counters.steps = this.conn.steps;
      if (!held.held) {
        const err = held.stderr.toString().trim();
        // The lock file's text was written on the host: shown only made display-safe.
        if (held.code === LOCK_BUSY) throw new CommandError(this.name, 'taking the host lock', held.code, '', err, displaySafe(err));
        if (held.code === STATE_DIR_REFUSED) throw new CommandError(this.name, 'taking the host lock', held.code, '', err, displaySafe(err));
        throw new CommandError(this.name, 'gathering facts', held.code, held.stdout.toString(), err);
      }
      this.releaseLock = held.release;
      stdout = held.stdout.toString();
    }
    const first = parseFirstExec(stdout, req);
    this.facts = first.facts;
    if (!become) this.loginIsRoot = this.facts.uid === 0;
    if (first.names) rememberNames(this.name, first.names.version, first.names.names);
    if (first.reads) this.cacheReads(first.reads);
  }

  /** What the play would read on hosts like this one, before its facts are known (see first-exec.ts). */
  private guessedReads(play: Play, knownVersions: string[]): ReadRequest {
    this.renders.clear();
    const reads: Reads[] = [{ files: [this.pendingPath(play)] }];
    for (const facts of guessFacts(this.name, knownVersions)) {
      for (const { read } of this.taskReads(play, facts)) {
        try {
          reads.push(read());
        } catch {
          continue;
        }
      }
    }
    return unionOfReads(reads);
  }

  /**
   * Each read the play's tasks will make on a host with `facts`, as far as their arguments can be rendered now
   * (tasks whose arguments depend on registered results read on demand). `read` may throw.
   */
  private *taskReads(play: Play, facts: Facts): Generator<{ task: Task; read: () => Reads }> {
    for (const task of allTasks(play)) {
      const mod = findModule(task.module);
      if (!mod?.reads || mod.controllerOnly) continue;
      for (const args of this.argsFor(play, task, mod, facts)) yield { task, read: () => mod.reads!(args as never, facts) };
    }
  }

  /**
   * A task's arguments as staticArgs renders them for a host with `facts`; rendered once for all the facts (the
   * guesses, then the host's own) that agree on every fact the rendering looked at.
   */
  private argsFor(play: Play, task: Task, mod: Module, facts: Facts): Record<string, unknown>[] {
    const done = this.renders.get(task) ?? [];
    const same = done.find((r) => factsAgree(r.facts, facts, r.used));
    if (same) return same.args;
    const watched = watchedFacts(facts);
    const args = this.staticArgs(play, task, mod, watched.facts);
    this.renders.set(task, [...done, { facts, used: watched.used, args }]);
    return args;
  }

  /**
   * Fetch, in one exec, every file and read-only command output the play's tasks will ask for that the cache does
   * not hold yet (usually nothing: the facts exec brought it).
   */
  async prefetch(play: Play): Promise<void> {
    const req: ReadRequest = { files: [], stats: [], commands: [] };
    this.addMissing(req, { files: [this.pendingPath(play)] });
    for (const { task, read } of this.taskReads(play, this.facts!)) {
      let reads;
      try {
        reads = read();
      } catch {
        continue;
      }
      this.planned.set(task, [...(this.planned.get(task) ?? []), read]);
      this.addMissing(req, reads);
    }
    // Renderings are only valid before any task ran (registered variables change them).
    this.renders.clear();
    req.stats = req.stats.filter((p) => !req.files.includes(p));
    if (req.files.length + req.stats.length + req.commands.length === 0) return;
    await this.read(req, this.become(play));
  }

  /**
   * Before any task of the play runs: let modules refuse tasks that can never succeed on this host (unknown
   * Postfix parameters), so the host fails before anything is written. Only tasks that will certainly run and
   * whose arguments are known now are checked. Returns false when the host failed.
   */
  async preflight(play: Play): Promise<boolean> {
    if (!this.facts) return true;
    for (const task of certainTasks([...play.preTasks, ...play.tasks, ...play.postTasks])) {
      if (task.local) continue;
      const mod = findModule(task.module);
      if (!mod?.preflight || !this.tagged(play, task)) continue;
      const vars = this.vars(play, task);
      let when = true;
      try {
        when = task.when === undefined || evaluateCondition(task.when, vars);
      } catch {
        continue;
      }
      if (!when) continue;
      for (const raw of this.staticArgs(play, task, mod)) {
        const checked = checkArgs(mod, raw);
        if (checked.errors) continue;
        try {
          await mod.preflight(this.context(play, task, vars, true), checked.value as never);
        } catch (e) {
          if (!(e instanceof ModuleError)) throw e;
          this.counters.failed++;
          this.stop('failed', e.message);
          this.settings.emit({
            type: 'task_result',
            host: this.name,
            task: task.name,
            module: task.module,
            handler: false,
            status: 'failed',
            msg: `${e.message} (found before any task ran; nothing was changed)`,
            check: this.settings.check,
            duration_ms: 0,
            at: formatPos(task.pos),
          });
          return false;
        }
      }
    }
    return true;
  }

  /**
   * Arguments of a task rendered with what is known before it runs (with `facts` when given, guessed ones before
   * the host's are known); none if they depend on later results.
   */
  private staticArgs(play: Play, task: Task, mod: Module, facts?: Facts): Record<string, unknown>[] {
    try {
      const base = this.vars(play, task, facts ? { facts } : {});
      if (task.loop === undefined) return [this.renderArgs(task, mod, base)];
      return this.loopOf(task, base).map((item, i) => this.renderArgs(task, mod, { ...base, ...this.itemVars(task, item, i) }));
    } catch {
      return [];
    }
  }

  private async read(req: ReadRequest, become: BecomeSpec | undefined): Promise<void> {
    const r = await this.exec(readScript(req), become);
    if (r.code !== 0) throw new CommandError(this.name, 'reading files', r.code, '', r.stderr.toString());
    this.cacheReads(parseReadOutput(req, r.stdout.toString()));
  }

  private cacheReads(res: ReadResult): void {
    for (const [p, st] of res.files) {
      const old = this.files.get(p);
      // A stat-only answer must not replace content we already hold.
      if (old && old.state.content && !st.content && st.exists) continue;
      this.files.set(p, { state: st });
    }
    for (const [k, v] of res.commands) this.commands.set(k, v);
  }

  /** The cache answers a read of `p` (with its content when `content`). */
  private holds(p: string, content: boolean): boolean {
    const hit = this.files.get(p)?.state;
    return hit !== undefined && (!content || hit.content !== null || !hit.exists || hit.kind !== 'file');
  }

  /** Add to `req` what `reads` asks for that the cache does not answer and `req` does not ask for yet. */
  private addMissing(req: ReadRequest, reads: Reads): void {
    reads.files?.forEach((p) => {
      if (!this.holds(p, true) && !req.files.includes(p)) req.files.push(p);
    });
    reads.stats?.forEach((p) => {
      if (!this.holds(p, false) && !req.stats.includes(p)) req.stats.push(p);
    });
    reads.commands?.forEach((c) => {
      if (namesKeptFor(this.name, c.key)) return;
      if (!this.commands.has(c.key) && !req.commands.some((x) => x.key === c.key)) req.commands.push(c);
    });
  }

  /**
   * A read the cache cannot answer, fetched together with whatever this task and the ones after it were known to
   * read (see prefetch) and the cache no longer holds: a command that ran on the host empties the cache, and the
   * tasks after it then cost one exec between them, not one per file.
   */
  private async refill(play: Play, task: Task, want: ReadRequest, become: BecomeSpec | undefined): Promise<void> {
    const req: ReadRequest = { files: [...want.files], stats: [...want.stats], commands: [...want.commands] };
    const order = allTasks(play);
    const at = order.indexOf(task);
    for (const t of at < 0 ? [] : order.slice(at)) {
      for (const again of this.planned.get(t) ?? []) {
        let r: Reads;
        try {
          r = again();
        } catch {
          continue;
        }
        this.addMissing(req, r);
      }
    }
    // The pending-handler record too, so that a later write that notifies handlers can carry it (see pendingAhead).
    if (!this.settings.check && play.handlers.length > 0) this.addMissing(req, { files: [this.pendingPath(play)] });
    // A path asked for with its content needs no separate stat (a stat's answer would replace the content).
    req.stats = req.stats.filter((p) => !req.files.includes(p));
    const more = req.files.length + req.stats.length + req.commands.length > want.files.length + want.stats.length + want.commands.length;
    try {
      await this.read(req, become);
    } catch (e) {
      // A later task's file may be unreadable (that task will say so): this task still gets what it asked for.
      if (!more) throw e;
      await this.read(want, become);
    }
  }

  private renderArgs(task: Task, mod: Module, vars: Record<string, unknown>): Record<string, unknown> {
    const raw = new Set(mod.raw ?? []);
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(task.args)) {
      const value = raw.has(k) ? v : renderDeep(v, vars);
      // An argument that renders to `omit` is left out, as Ansible leaves it out.
      if (value !== OMIT) out[k] = value;
    }
    return out;
  }

  /** Make a TaskContext for one task on this host. */
  private context(play: Play, task: Task, vars: Record<string, unknown>, check: boolean): TaskContext {
    const become = this.become(play, task);
    const env = environmentScript({ ...play.environment, ...task.environment }, vars);
    const readOne = async (p: string, content: boolean): Promise<FileState> => {
      if (this.holds(p, content)) return this.files.get(p)!.state;
      await this.refill(play, task, { files: content ? [p] : [], stats: content ? [] : [p], commands: [] }, become);
      return this.files.get(p)?.state ?? absentState(p);
    };
    return {
      host: this.name,
      facts: this.facts!,
      vars,
      check,
      playbookDir: this.settings.playbookDir,
      ...(task.role ? { roleDir: task.role.dir } : {}),
      taskDir: task.dir,
      readFile: (p) => readOne(p, true),
      statFile: (p) => readOne(p, false),
      readCommand: async (key, script) => {
        const hit = this.commands.get(key);
        if (hit) return hit;
        await this.refill(play, task, { files: [], stats: [], commands: [{ key, script }] }, become);
        return this.commands.get(key)!;
      },
      run: async (script, opts) => {
        const r = await this.exec(env + script, become, opts?.timeoutMs);
        // Anything may have changed on the host: forget what was read.
        this.files.clear();
        this.commands.clear();
        return r;
      },
      validate: async (files) => {
        // Outside check mode the write exec runs the same validations on its temporary files before any rename,
        // so a separate exec here would only add a round trip and the validation's cost once more per change.
        const todo = check ? files.filter((f) => f.validate?.length) : [];
        if (!todo.length) return;
        const r = await this.exec(validateScript(todo), become);
        if (r.code !== 0) throw new ModuleError(firstLines(r.stderr.toString()) || `validation failed (exit ${r.code})`);
      },
      writeFiles: (files) => this.writeFiles(files, become, this.pendingAhead(play, task, vars, become)),
      probeNewConnection: (ms) => this.conn.probeNew(ms),
      // A module's warning can quote the task's arguments: a no_log task's say only that there was one.
      warn: (msg) => this.settings.emit({ type: 'warning', host: this.name, msg: task.noLog ? `a warning of task "${task.name}" hidden (no_log)` : msg }),
      changedFiles: () => this.original,
    };
  }

  private async writeFiles(files: FileChange[], become: BecomeSpec | undefined, ahead: { play: Play; change: FileChange } | null = null): Promise<void> {
    if (!files.length) return;
    // The record goes first, in the same exec: whenever the files are new, the handlers they need are on record.
    const all = ahead ? [ahead.change, ...files] : files;
    const script = ahead ? inPendingDir(writeScript(all)) : writeScript(all);
    const r = await this.exec(script, become);
    if (r.code !== 0) {
      const detail = firstLines(r.stderr.toString());
      throw new ModuleError(detail || fileErrorStatus.get(r.code ?? -1) || `writing ${files.map((f) => f.path).join(', ')} failed (exit ${r.code})`);
    }
    if (ahead) this.pendingWritten.add(ahead.play);
    for (const f of files) if (!this.original.has(f.path)) this.original.set(f.path, f);
    for (const st of parseWriteOutput(all, r.stdout.toString())) this.files.set(st.path, { state: st });
  }

  /**
   * The pending-handler record to write with the files of a task that notifies handlers, so that a run that dies
   * after the write (connection lost, controller killed) leaves the handlers on record for the next run, which
   * would otherwise find the files up to date and never run them. Only as root (the record lives under
   * /var/lib), only when the record's current state is known, and not when it already names these handlers.
   */
  private pendingAhead(play: Play, task: Task, vars: Record<string, unknown>, become: BecomeSpec | undefined): { play: Play; change: FileChange } | null {
    if (this.settings.check || task.notify.length === 0) return null;
    if (become ? become.user !== 'root' : this.loginIsRoot !== true) return null;
    const topics = new Set([...this.notified, ...task.notify.map((n) => renderNotify(n, vars))]);
    const names = notifiedHandlers(play, topics).map((h) => h.name);
    const p = this.pendingPath(play);
    const current = this.files.get(p)?.state;
    if (names.length === 0 || !current) return null;
    const recorded = current.content ? (recordedHandlers(current.content) ?? []) : [];
    if (recorded.length && names.every((n) => recorded.includes(n))) return null;
    const change: FileChange = { path: p, before: current.content, after: this.pendingRecord(play, names), beforeSha: current.sha, mode: 0o600 };
    return { play, change };
  }

  private pendingRecord(play: Play, names: string[]): Buffer {
    return Buffer.from(`${JSON.stringify({ playbook: path.basename(this.settings.playbookFile), play: play.name, handlers: names, recorded: new Date().toISOString() }, null, 2)}\n`);
  }

  /** Check mode: later tasks see the content earlier tasks would have written. */
  private pretendWritten(files: FileChange[]): void {
    for (const f of files) {
      const old = this.files.get(f.path)?.state;
      this.files.set(f.path, {
        state: {
          path: f.path,
          exists: true,
          kind: 'file',
          content: f.after,
          sha: sha256(f.after),
          mode: f.mode ?? old?.mode ?? 0o644,
          owner: f.owner ?? old?.owner ?? this.facts?.user ?? null,
          group: f.group ?? old?.group ?? null,
          uid: old?.uid ?? null,
          gid: old?.gid ?? null,
        },
      });
    }
  }

  private tagged(play: Play, task: Task): boolean {
    const tags = new Set([...play.tags, ...task.tags]);
    const { tags: only, skipTags } = this.settings;
    if (skipTags.some((t) => tags.has(t) || (t === 'all'))) return tags.has('always') && !skipTags.includes('always');
    if (only.length === 0 || only.includes('all')) return !tags.has('never') || only.some((t) => tags.has(t));
    if (tags.has('always')) return true;
    if (only.includes('tagged') && tags.size > 0) return true;
    if (only.includes('untagged') && tags.size === 0) return true;
    return only.some((t) => tags.has(t));
  }

  /** Run one task (or handler) on this host; records counters and emits the result. */
  async runTask(play: Play, task: Task, handler = false): Promise<TaskOutcome> {
    const t0 = Date.now();
    const mod = findModule(task.module)!;
    // A name with a template (`Alias for {{ entry.user }}` in an included file) is shown rendered, as Ansible does.
    const shownName = task.named && isTemplated(task.name) ? renderName(task.name, this.vars(play, task)) : task.name;
    const emitResult = (status: TaskStatus, msg: string, extra: { diffs?: FileDiff[]; item?: string; ignored?: boolean; check?: boolean } = {}) => {
      this.settings.emit({
        type: 'task_result',
        host: this.name,
        task: shownName,
        module: task.module,
        handler,
        status,
        // Every status: a skipped command's message names the command, arguments and all.
        msg: task.noLog ? 'output hidden (no_log)' : msg,
        ...(extra.diffs?.length && !task.noLog ? { diffs: extra.diffs } : {}),
        ...(extra.item !== undefined ? { item: task.noLog ? '(hidden)' : extra.item } : {}),
        ...(extra.ignored ? { ignored: true } : {}),
        check: extra.check ?? this.settings.check,
        duration_ms: Date.now() - t0,
        at: formatPos(task.pos),
      });
    };
    if (!handler && !this.tagged(play, task)) return { status: 'skipped', ignored: false };
    if (task.local && !mod.controllerOnly) return this.runDelegated(play, task, handler);
    this.settings.emit({ type: 'task_start', host: this.name, task: shownName, handler });

    const check = task.checkMode ?? this.settings.check;
    let items: unknown[] | undefined;
    try {
      if (!mod.controllerOnly) await this.gatherFacts(play);
      if (task.loop !== undefined) items = this.loopOf(task, this.vars(play, task));
    } catch (e) {
      return this.failTask(play, task, e, emitResult);
    }

    const results: Record<string, unknown>[] = [];
    let anyChanged = false;
    let anyFailed = false;
    let allSkipped = true;
    const diffs: FileDiff[] = [];
    const msgs: string[] = [];
    for (const [i, item] of (items ?? [undefined]).entries()) {
      if (items && i > 0 && task.loopPause) await sleep(task.loopPause * 1000);
      const vars = this.vars(play, task, items ? this.itemVars(task, item, i) : {});
      let label: string | undefined;
      if (items) {
        try {
          label = task.loopLabel !== undefined ? String(renderString(task.loopLabel, vars)) : typeof item === 'string' ? item : JSON.stringify(item);
        } catch (e) {
          return this.failTask(play, task, e, emitResult);
        }
      }
      let r: ItemResult;
      try {
        r = await this.runRetried(play, task, mod, vars, check);
      } catch (e) {
        if (e instanceof UnreachableError) return this.failTask(play, task, e, emitResult);
        const msg = errorMessage(e, task);
        r = { status: 'failed', msg, data: { failed: true, msg, ...(e instanceof ModuleError ? e.data : {}) }, diffs: [] };
      }
      if (task.register && items) results.push({ ...r.data, item, [task.loopVar]: item, ...(task.indexVar ? { [task.indexVar]: i } : {}) });
      if (r.status !== 'skipped') allSkipped = false;
      if (r.status === 'changed') anyChanged = true;
      if (r.status === 'failed') anyFailed = true;
      diffs.push(...r.diffs);
      if (items) emitResult(r.status, r.msg, { diffs: r.diffs, item: label, check: r.check });
      else msgs.push(r.msg);
      if (!items) {
        if (task.register) this.registered[task.register] = r.data;
        if (r.status === 'failed') return this.recordFailure(play, task, r.msg, emitResult, r.diffs, r.check);
        this.count(r.status);
        if (r.status === 'changed') task.notify.forEach((n) => this.notified.add(renderNotify(n, vars)));
        emitResult(r.status, r.msg, { diffs: r.diffs, check: r.check });
        return { status: r.status, ignored: false };
      }
      if (r.status === 'failed' && !task.ignoreErrors) break;
    }
    // A loop: the task's status is the worst of its items, as Ansible reports it.
    if (task.register) this.registered[task.register] = { results, changed: anyChanged, failed: anyFailed, skipped: allSkipped, msg: anyFailed ? 'one or more items failed' : 'all items completed' };
    if (anyFailed) {
      if (task.ignoreErrors) {
        this.counters.ignored++;
        return { status: 'failed', ignored: true };
      }
      this.counters.failed++;
      this.stop('failed', `${task.name}: one or more items failed`);
      return { status: 'failed', ignored: false };
    }
    const status: TaskStatus = anyChanged ? 'changed' : allSkipped ? 'skipped' : 'ok';
    this.count(status);
    if (anyChanged) task.notify.forEach((n) => this.notified.add(renderNotify(n, this.vars(play, task))));
    return { status, ignored: false };
  }

  private count(status: TaskStatus): void {
    if (status === 'ok') this.counters.ok++;
    else if (status === 'changed') this.counters.changed++;
    else if (status === 'skipped') this.counters.skipped++;
  }

  private stop(why: HostStop, reason: string): void {
    if (!this.stopped) {
      this.stopped = why;
      this.stopReason = reason;
    }
  }

  private recordFailure(
    _play: Play,
    task: Task,
    msg: string,
    emitResult: (s: TaskStatus, m: string, x?: { diffs?: FileDiff[]; ignored?: boolean; check?: boolean }) => void,
    diffs: FileDiff[] = [],
    check?: boolean,
  ): TaskOutcome {
    if (task.ignoreErrors) {
      this.counters.ignored++;
      emitResult('failed', msg, { diffs, ignored: true, check });
      return { status: 'failed', ignored: true };
    }
    this.counters.failed++;
    this.stop('failed', msg);
    emitResult('failed', msg, { diffs, check });
    return { status: 'failed', ignored: false };
  }

  private failTask(
    play: Play,
    task: Task,
    e: unknown,
    emitResult: (s: TaskStatus, m: string, x?: { diffs?: FileDiff[]; ignored?: boolean }) => void,
  ): TaskOutcome {
    if (e instanceof UnreachableError) {
      this.counters.unreachable++;
      this.stop('unreachable', e.message);
      emitResult('unreachable', e.message);
      return { status: 'unreachable', ignored: false };
    }
    return this.recordFailure(play, task, errorMessage(e, task), emitResult);
  }

  /**
   * One loop item with `until`: run again, `delay` seconds apart, until the condition holds on the result, at most
   * `retries` more times (Ansible's defaults: 3 and 5). Without `until`, one pass.
   */
  private async runRetried(play: Play, task: Task, mod: Module, vars: Record<string, unknown>, check: boolean): Promise<ItemResult> {
    if (task.until === undefined) return this.runItem(play, task, mod, vars, check);
    const retries = task.retries === undefined ? 3 : Number(renderDeep(task.retries, vars));
    const delay = task.delay === undefined ? 5 : Number(renderDeep(task.delay, vars));
    if (!Number.isInteger(retries) || retries < 0 || retries > 1000) throw new ModuleError(`retries must be an integer from 0 to 1000, got ${String(task.retries)}`);
    if (!Number.isFinite(delay) || delay < 0 || delay > 3600) throw new ModuleError(`delay must be 0 to 3600 seconds, got ${String(task.delay)}`);
    for (let attempt = 1; ; attempt++) {
      let r: ItemResult;
      try {
        r = await this.runItem(play, task, mod, vars, check);
      } catch (e) {
        if (e instanceof UnreachableError) throw e;
        const msg = errorMessage(e, task);
        r = { status: 'failed', msg, data: { failed: true, msg, ...(e instanceof ModuleError ? e.data : {}) }, diffs: [] };
      }
      if (r.status === 'skipped') return r;
      r.data.attempts = attempt;
      const v = { ...vars, ...(task.register ? { [task.register]: r.data } : {}) };
      if (evaluateCondition(task.until, v)) return r;
      if (attempt > retries) {
        const msg = `until did not hold after ${attempt} attempts${r.status === 'failed' ? `: ${r.msg}` : ''}`;
        return { ...r, status: 'failed', msg, data: { ...r.data, failed: true, msg } };
      }
      this.settings.emit({ type: 'warning', host: this.name, msg: `${task.name}: until does not hold yet, retrying (${attempt} of ${retries + 1})` });
      await sleep(delay * 1000);
    }
  }

  /**
   * A task delegated to localhost: run by a HostRun on the controller that shares this host's variables and
   * registered results; its counts, failure and notifications are this host's.
   */
  private async runDelegated(play: Play, task: Task, handler: boolean): Promise<TaskOutcome> {
    if (!this.delegate) {
      const d = new HostRun(this.name, this.inventoryVars, new LocalConnection('localhost'), { ...this.settings, lockTimeoutS: 0 });
      d.registered = this.registered;
      d.included = this.included;
      d.scopes = this.scopes;
      this.delegate = d;
    }
    const d = this.delegate;
    const before = { ...d.counters };
    let out: TaskOutcome;
    try {
      await d.gatherFacts(play);
      out = await d.runTask(play, { ...task, local: false }, handler);
    } catch (e) {
      d.markUnreachableOrFailed(e);
      out = { status: 'failed', ignored: false };
    }
    for (const k of ['ok', 'changed', 'failed', 'skipped', 'ignored'] as const) this.counters[k] += d.counters[k] - before[k];
    for (const n of d.notified) this.notified.add(n);
    d.notified.clear();
    if (d.stopped) {
      this.stop(d.stopped === 'unreachable' ? 'failed' : d.stopped, `on localhost: ${d.stopReason}`);
      d.stopped = null;
      d.stopReason = '';
    }
    return out;
  }

  /** One pass of a task (one loop item): when → render → plan → (apply) → changed_when/failed_when. */
  private async runItem(play: Play, task: Task, mod: Module, vars: Record<string, unknown>, check: boolean): Promise<ItemResult> {
    if (task.when !== undefined && !evaluateCondition(task.when, vars)) {
      return { status: 'skipped', msg: 'condition false', data: { changed: false, skipped: true, skip_reason: 'Conditional result was False' }, diffs: [] };
    }
    const checked = checkArgs(mod, this.renderArgs(task, mod, vars));
    if (checked.errors) throw new ModuleError(`after templating: ${checked.errors.map((e) => e.message).join('; ')}`);
    const args = checked.value;
    const bad = mod.check?.(args as never);
    if (bad) throw new ModuleError(bad);
    const ctx = this.context(play, task, vars, check);
    const plan: Plan = await mod.plan(ctx, args as never);
    if (!plan.changed && plan.vars) Object.assign(this.registered, plan.vars);
    if (!plan.changed && plan.includedVars) Object.assign(this.included, plan.includedVars);
    const showDiff = (this.settings.diff || check) && task.diff !== false;
    const diffs = plan.changed && showDiff ? plan.files.map(fileDiff).filter((d) => d.diff !== '') : [];

    let outcome: Outcome;
    if (!plan.changed) {
      outcome = { changed: false, msg: plan.msg, data: plan.data };
    } else if (check) {
      if (plan.unpredictable) {
        return { status: 'skipped', msg: `check mode: ${plan.unpredictable}`, data: { changed: false, skipped: true, skip_reason: plan.unpredictable }, diffs: [], check };
      }
      this.pretendWritten(plan.files);
      outcome = { changed: true, msg: plan.msg, data: plan.data };
    } else {
      outcome = mod.apply ? await mod.apply(ctx, plan, args as never) : await this.defaultApply(ctx, plan);
      if (outcome.vars) Object.assign(this.registered, outcome.vars);
    }

    const data: Record<string, unknown> = { ...(outcome.data ?? {}), changed: outcome.changed, failed: outcome.failed === true, msg: outcome.msg };
    let changed = outcome.changed;
    let failed = outcome.failed === true;
    if (task.changedWhen !== undefined || task.failedWhen !== undefined) {
      const v = { ...vars, ...data, ...(task.register ? { [task.register]: data } : {}), result: data };
      if (task.changedWhen !== undefined) changed = evaluateCondition(task.changedWhen, v);
      if (task.failedWhen !== undefined) failed = evaluateCondition(task.failedWhen, v);
      data.changed = changed;
      data.failed = failed;
    }
    const status: TaskStatus = failed ? 'failed' : changed ? 'changed' : 'ok';
    return { status, msg: outcome.msg, data, diffs, check };
  }

  private async defaultApply(ctx: TaskContext, plan: Extract<Plan, { changed: true }>): Promise<Outcome> {
    await ctx.writeFiles(plan.files);
    for (const c of plan.commands) {
      const r = await ctx.run(c.script);
      if (r.code !== 0) {
        return { changed: true, failed: true, msg: CommandError.describe(c.description, r.code, r.stderr.toString(), r.stdout.toString()) };
      }
    }
    return { changed: true, msg: plan.msg };
  }

  /** Run the handlers notified so far, in the order they are defined. */
  async flushHandlers(play: Play): Promise<void> {
    if (this.stopped || this.notified.size === 0) return;
    const due = notifiedHandlers(play, this.notified);
    this.notified.clear();
    for (const h of due) {
      if (this.stopped) return;
      await this.runTask(play, h, true);
    }
  }

  /** Handlers that were notified but never ran (the host failed first). */
  pendingHandlers(play: Play): string[] {
    return notifiedHandlers(play, this.notified).map((h) => h.name);
  }

  /** Where this play's pending handlers are recorded on the host. */
  pendingPath(play: Play): string {
    // The playbook's absolute path: two playbooks that share a base name (and play names) keep records of their own.
    const key = createHash('sha256').update(`${path.resolve(this.settings.playbookFile)}\0${play.name}`).digest('hex').slice(0, 16);
    return `${PENDING_DIR}/${key}.json`;
  }

  /** Handlers an earlier run notified on this host but could not run: notify them again now. */
  async loadPending(play: Play): Promise<void> {
    if (this.stopped) return;
    const st = await this.pendingState(play);
    if (!st.exists || !st.content) return;
    const names = recordedHandlers(st.content);
    if (!names) this.settings.emit({ type: 'warning', host: this.name, msg: `ignoring unreadable pending-handler record ${st.path}` });
    this.pendingLoaded.add(play);
    const known = (names ?? []).filter((n) => play.handlers.some((h) => h.name === n));
    if (!known.length) return;
    for (const n of known) this.notified.add(n);
    this.settings.emit({ type: 'warning', host: this.name, msg: `handlers notified by an earlier run that failed before running them will run now: ${known.join(', ')}` });
  }

  /** The play's pending-handler record as the cache holds it, or as read from the host when it holds nothing. */
  private async pendingState(play: Play): Promise<FileState> {
    const p = this.pendingPath(play);
    const hit = this.files.get(p)?.state;
    if (hit) return hit;
    await this.read({ files: [p], stats: [], commands: [] }, this.become(play));
    return this.files.get(p)?.state ?? absentState(p);
  }

  /** Record handlers still notified (the host failed before they ran) so the next run runs them. */
  async savePending(play: Play): Promise<void> {
    const names = this.pendingHandlers(play);
    if (this.settings.check || names.length === 0) return;
    const p = this.pendingPath(play);
    try {
      // A task's command empties the cache of what was read: read the record again rather than assume it absent.
      const current = await this.pendingState(play);
      const change: FileChange = { path: p, before: current.content, after: this.pendingRecord(play, names), beforeSha: current.sha, mode: 0o600 };
      const r = await this.exec(inPendingDir(writeScript([change])), this.become(play));
      if (r.code !== 0) throw new Error(firstLines(r.stderr.toString()));
      this.settings.emit({ type: 'warning', host: this.name, msg: `handlers not run because the host failed, recorded for the next run: ${names.join(', ')}` });
    } catch (e) {
      this.settings.emit({ type: 'warning', host: this.name, msg: `could not record pending handlers (${names.join(', ')}): ${(e as Error).message}` });
    }
  }

  /** The pending handlers (of an earlier run, or written ahead by this one) have now run: forget them on the host. */
  async clearPending(play: Play): Promise<void> {
    if (this.settings.check || (!this.pendingLoaded.has(play) && !this.pendingWritten.has(play))) return;
    this.pendingLoaded.delete(play);
    this.pendingWritten.delete(play);
    const p = this.pendingPath(play);
    const r = await this.exec(`rm -f ${quote(p)}`, this.become(play)).catch(() => null);
    if (r?.code === 0) this.files.set(p, { state: absentState(p) });
  }

  /** A failure before any task (connecting, facts): unreachable when the host cannot be reached, else failed. */
  markUnreachableOrFailed(e: unknown): void {
    const unreachable = e instanceof UnreachableError;
    const msg = e instanceof Error ? e.message : String(e);
    if (unreachable) this.counters.unreachable++;
    else this.counters.failed++;
    this.stop(unreachable ? 'unreachable' : 'failed', msg);
    this.settings.emit({
      type: 'task_result',
      host: this.name,
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
    this.stop('end_host', reason);
  }

  abort(reason: string): void {
    this.stop('aborted', reason);
  }

  /** Clear a stop that only applies to one play (end_host), so the host takes part in the next play. */
  nextPlay(): void {
    if (this.stopped === 'end_host') {
      this.stopped = null;
      this.stopReason = '';
    }
  }

  async close(): Promise<void> {
    await this.delegate?.close();
    this.releaseLock?.();
    this.releaseLock = null;
    await this.conn.close().catch(() => undefined);
  }

  /** Used by tests and by rollback code: the cached state of a file. */
  cached(path: string): FileState | undefined {
    return this.files.get(path)?.state;
  }

  renderValue(value: unknown, play: Play): unknown {
    return renderString(String(value), this.vars(play));
  }
}

interface ItemResult {
  status: TaskStatus;
  msg: string;
  data: Record<string, unknown>;
  diffs: FileDiff[];
  check?: boolean;
}

/** The module tasks of a list that run unless their own `when` says no: not rescue tasks, not included ones. */
function certainTasks(tasks: Task[]): Task[] {
  return tasks.flatMap((t) => (t.block ? certainTasks([...t.block.block, ...t.block.always]) : t.include ? [] : [t]));
}

/** Ansible's reading of a boolean variable: INI inventories hand over `ansible_become=yes` as a string. */
function ansibleBool(v: unknown): boolean {
  return typeof v === 'string' ? toBool(v) : v === true || v === 1;
}

function renderName(name: string, vars: Record<string, unknown>): string {
  try {
    return String(renderString(name, vars));
  } catch {
    return name;
  }
}

function renderNotify(n: string, vars: Record<string, unknown>): string {
  try {
    return String(renderString(n, vars));
  } catch {
    return n;
  }
}

/** Handler names in a pending-handler record (null when it is not JSON). */
function recordedHandlers(content: Buffer): string[] | null {
  try {
    const parsed = JSON.parse(content.toString()) as { handlers?: unknown };
    return Array.isArray(parsed.handlers) ? parsed.handlers.filter((n): n is string => typeof n === 'string') : [];
  } catch {
    return null;
  }
}

/** The play's handlers that `topics` (handler names and listen topics) notify, in the order they are defined. */
function notifiedHandlers(play: Play, topics: ReadonlySet<string>): Task[] {
  return play.handlers.filter((h) => topics.has(h.name) || h.listen.some((l) => topics.has(l)));
}

/** `script` (which writes a pending-handler record) after checking root's state directory and making the records' directory in it. */
function inPendingDir(script: string): string {
  return `${stateDirScript(quote(STATE_DIR))}\n(umask 077; mkdir -p -- ${quote(PENDING_DIR)}) || exit 70\n${script}`;
}

/** `export` lines for a task's `environment:` (templated), put before the commands it runs. */
function environmentScript(env: Record<string, unknown>, vars: Record<string, unknown>): string {
  const keys = Object.keys(env);
  if (!keys.length) return '';
  const rendered = renderDeep(env, vars) as Record<string, unknown>;
  return keys
    .map((k) => {
      if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(k)) throw new ModuleError(`environment: "${k}" is not a valid variable name`);
      const v = rendered[k];
      if (v !== null && typeof v === 'object') throw new ModuleError(`environment: the value of ${k} must be a string`);
      return `export ${k}=${quote(v === null || v === undefined ? '' : String(v))}\n`;
    })
    .join('');
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

function firstLines(s: string): string {
  return s.trim().split('\n').slice(0, 6).join(' | ');
}

/** One line for the user; templating errors name the task's position. */
export function errorMessage(e: unknown, task: Task): string {
  if (e instanceof UndefinedVariableError) return `${formatPos(task.pos)}: ${e.message}`;
  if (e instanceof TemplateError) return `${formatPos(task.pos)}: template error: ${e.message}`;
  if (e instanceof InputError || e instanceof ModuleError || e instanceof CommandError) return e.message;
  if (e instanceof Error) return `${e.name === 'Error' ? '' : `${e.name}: `}${e.message}`;
  return String(e);
}

/**
 * What a module sees of its host while one task runs (TaskContext): reads answered by the cache, commands and
 * writes run through the host's one exec, validation, warnings.
 */
import { randomBytes } from 'node:crypto';
import type { BecomeSpec, ExecResult } from '../connection/connection.js';
import { quote } from '../connection/shell-quote.js';
import { CommandError } from '../errors.js';
import { type FileChange, type FileState, type Module, ModuleError, type Plan, type TaskContext } from '../modules/module.js';
import { renderDeep } from '../playbook/template.js';
import { allTasks, type Play, type Task } from '../playbook/types.js';
import { inPendingDir, type PendingAhead, pendingAhead, pendingRider, recordRiddenOff } from './handlers.js';
import { absentState, fileState, parseReadOutput, parseWriteOutput, type ReadRequest, readScript, validateScript, WriteStatus, writeScript } from './host-files.js';
import type { HostRun } from './host.js';
import { firstLines } from './task-error.js';
import { emptyRequest } from './read-cache.js';
import type { QueuedStep } from './write-behind.js';
import { parseTouched, touchedScript } from './touched.js';

const fileErrorStatus = new Map<number, string>([
  [WriteStatus.invalid, 'the new content was rejected by validation'],
  [WriteStatus.conflict, 'the file changed on the host while the task ran'],
]);

/** Make a TaskContext for one task on this host. */
export function taskContext(h: HostRun, play: Play, task: Task, vars: Record<string, unknown>, check: boolean): TaskContext {
  const become = h.become(play, task);
  const env = environmentScript({ ...play.environment, ...task.environment }, vars);
  /**
   * The tasks from this one on (`after`: those after it), and what a read brings along with theirs (see
   * ReadCache.refill).
   */
  const readsAhead = (after = false) => {
    const order = allTasks(play);
    const at = order.indexOf(task);
    // The pending-handler record too, so that a later write that notifies handlers can carry it (see pendingAhead).
    const also = !h.settings.check && play.handlers.length > 0 ? { files: [h.pendingPath(play)] } : {};
    return { order: at < 0 ? [] : order.slice(after ? at + 1 : at), also };
  };
  const refill = (want: ReadRequest) => {
    const { order, also } = readsAhead();
    return h.cache.refill(want, order, also, become);
  };
  const readOne = async (p: string, content: boolean): Promise<FileState> => {
    if (h.cache.holds(p, content)) return h.cache.file(p)!;
    await refill({ files: content ? [p] : [], stats: content ? [] : [p], commands: [] });
    return h.cache.file(p) ?? absentState(p);
  };
  /**
   * Run `full`, after which anything may have changed on the host: what was read is forgotten, and with `thenRead`
   * what the tasks after this one read is read at the end of the same step (this task's own reads are done; it
   * reads again, in a step of its own, only if it needs more), kept only when `thenRead` accepts the result.
   */
  const runThenRead = async (full: string, opts: { timeoutMs?: number; thenRead?: (r: ExecResult) => boolean }): Promise<ExecResult> => {
    h.cache.forget();
    const { order, also } = readsAhead(true);
    const req = opts.thenRead ? h.cache.ahead(emptyRequest(), order, also) : emptyRequest();
    const then = req.files.length + req.stats.length + req.commands.length > 0 ? thenReadScript(full, readScript(req)) : null;
    const raw = await h.exec(then ? then.script : full, become, opts.timeoutMs);
    h.cache.forget();
    if (!then) return raw;
    const { result, read } = then.parse(raw);
    if (read !== null && opts.thenRead?.(result)) h.cache.keep(parseReadOutput(req, read));
    return result;
  };
  return {
    host: h.name,
    facts: h.facts!,
    vars,
    check,
    playbookDir: h.settings.playbookDir,
    ...(task.role ? { roleDir: task.role.dir } : {}),
    taskDir: task.dir,
    readFile: (p) => readOne(p, true),
    statFile: (p) => readOne(p, false),
    readCommand: async (key, script, dependsOn) => {
      if (dependsOn) h.cache.dependsOn(key, dependsOn);
      const hit = h.cache.command(key);
      if (hit) return hit;
      await refill({ files: [], stats: [], commands: [{ key, script }] });
      return h.cache.command(key)!;
    },
    run: async (script, opts) => {
      const rider = opts?.last && !opts.touches?.length ? pendingRider(h, play, task, become) : null;
      if (rider && opts) {
        // The pending-handler record's removal rides on this handler's last step, run only if the step succeeds;
        // what the tasks after it read (`thenRead`) is read after that.
        const r = await runThenRead(`(\n${env}${script}\n)\npv_rc=$?\nif [ $pv_rc -eq 0 ]; then ${rider.script}; fi\nexit $pv_rc`, opts);
        const mark = Buffer.from(`\n${rider.mark}\n`);
        const out = r.stdout;
        if (r.code !== 0 || out.length < mark.length || !out.subarray(out.length - mark.length).equals(mark)) return r;
        recordRiddenOff(h, play);
        return { ...r, stdout: out.subarray(0, out.length - mark.length) };
      }
      if (opts?.thenRead) return runThenRead(env + script, opts);
      if (!opts?.touches?.length) {
        const r = await h.exec(env + script, become, opts?.timeoutMs);
        // Anything may have changed on the host: forget what was read.
        h.cache.forget();
        return r;
      }
      // Only the named paths may have changed: forget what was read of them (see touched.ts).
      const touched = touchedScript(env + script, opts.touches, h.cache.paths());
      let raw;
      try {
        raw = await h.exec(touched.script, become, opts.timeoutMs);
      } catch (e) {
        h.cache.forget();
        throw e;
      }
      const { result, report } = parseTouched(raw, touched.checked);
      h.cache.forgetTouched(opts.touches, report);
      return result;
    },
    validate: async (files) => {
      // Outside check mode the write exec runs the same validations on its temporary files before any rename,
      // so a separate exec here would only add a round trip and the validation's cost once more per change.
      const todo = check ? files.filter((f) => f.validate?.length) : [];
      if (!todo.length) return;
      const r = await h.exec(validateScript(todo), become);
      if (r.code !== 0) throw new ModuleError(firstLines(r.stderr.toString()) || `validation failed (exit ${r.code})`);
    },
    writeFiles: async (files, opts) => {
      if (opts?.behind && files.length && (await queueWrite(h, play, task, vars, files))) return;
      await writeFiles(h, files, become, pendingAhead(h, play, task, vars, become));
    },
    probeNewConnection: (ms) => h.conn.probeNew(ms),
    // A module's warning can quote the task's arguments: a no_log task's say only that there was one.
    warn: (msg) => h.settings.emit({ type: 'warning', host: h.name, msg: task.noLog ? `a warning of task "${task.name}" hidden (no_log)` : msg }),
    changedFiles: () => h.original,
  };
}

/**
 * `script`, then in the same step (whatever its exit status) `read`, a read script, with its output after a marker
 * line and its exit status after another: each holds a random word chosen once both scripts were fixed, so nothing
 * the script prints can forge them. `parse` gives back the script's own result, as if it had run alone, and the
 * read's output (null when the read failed or did not finish).
 */
export function thenReadScript(script: string, read: string): { script: string; parse(r: ExecResult): { result: ExecResult; read: string | null } } {
  const mark = `@@PV-THEN-READ-${randomBytes(8).toString('hex')}`;
  return {
    script: `(\n${script}\n)\npv_rc=$?\nprintf '\\n%s\\n' ${mark}\n(\n${read}\n) 2>/dev/null\nprintf '\\n%s %s\\n' ${mark} "$?"\nexit $pv_rc`,
    parse: (r) => {
      const out = r.stdout;
      const head = Buffer.from(`\n${mark}\n`);
      const at = out.indexOf(head);
      if (at < 0) return { result: r, read: null };
      const result = { ...r, stdout: out.subarray(0, at) };
      const rest = out.subarray(at + head.length);
      const tail = rest.lastIndexOf(Buffer.from(`\n${mark} `));
      if (tail < 0 || rest.subarray(tail + mark.length + 2).toString().trim() !== '0') return { result, read: null };
      return { result, read: rest.subarray(0, tail).toString() };
    },
  };
}

/**
 * Write a task's files in one exec (validated on the host before any rename), with the pending-handler record
 * `ahead` first when there is one: whenever the files are new, the handlers they need are on record.
 */
async function writeFiles(h: HostRun, files: FileChange[], become: BecomeSpec | undefined, ahead: PendingAhead | null): Promise<void> {
  if (!files.length) return;
  const w = writeStep(h, files, ahead);
  const r = await h.exec(w.script, become);
  const failure = w.failure(r);
  if (failure) throw failure;
  if (ahead) h.handlers.pendingWritten.add(ahead.play);
  w.confirm(r);
}

/** The script that writes `files` (and the pending-handler record `ahead`), how its failure reads, what it changed. */
function writeStep(h: HostRun, files: FileChange[], ahead: PendingAhead | null) {
  const all = ahead ? [ahead.change, ...files] : files;
  return {
    all,
    script: ahead ? inPendingDir(writeScript(all)) : writeScript(all),
    failure: (r: { code: number | null; stderr: Buffer }): ModuleError | null => {
      if (r.code === 0) return null;
      const detail = firstLines(r.stderr.toString());
      return new ModuleError(detail || fileErrorStatus.get(r.code ?? -1) || `writing ${files.map((f) => f.path).join(', ')} failed (exit ${r.code})`);
    },
    confirm: (r: { stdout: Buffer }) => {
      for (const f of files) if (!h.original.has(f.path)) h.original.set(f.path, f);
      for (const st of parseWriteOutput(all, r.stdout.toString())) h.cache.set(st);
    },
  };
}

/**
 * Queue the apply of `plan` instead of running it (see write-behind.ts), when it is exactly the default apply's
 * files-only write, or one command limited to named paths (file's chmod, chown, mkdir, touch); false otherwise.
 * What later tasks read of the host is what the write will leave: the new content, with metadata only when it is
 * known exactly (an existing file keeps its mode and owner); anything else is read again, after the flush.
 */
export async function queueApply(h: HostRun, play: Play, task: Task, vars: Record<string, unknown>, mod: Module, plan: Extract<Plan, { changed: true }>): Promise<boolean> {
  const current = h.wb.task;
  // After a Ctrl-C nothing more is queued: the task in flight writes at once (or is dropped, see HostRun.dropQueue).
  if (!current || h.interrupted() || (mod.apply && !mod.defaultLikeApply?.(plan))) return false;
  const { files, commands } = plan;
  const command = !files.length && commands.length === 1 && commands[0]!.touches?.length ? commands[0]! : null;
  if (!command && !(files.length && !commands.length)) return false;
  const queued = await queueEntry(h, play, task, current);
  if (command) {
    const env = environmentScript({ ...play.environment, ...task.environment }, vars);
    const touched = touchedScript(env + command.script, command.touches!, h.cache.paths());
    // Forget what the command may change, as the host's report after it will say (links cannot appear through
    // it); when what was read does not tell which paths are links, forget everything: read again after it.
    const report = h.cache.predictTouched(command.touches!);
    if (report) h.cache.forgetTouched(command.touches!, report);
    else h.cache.forget();
    h.wb.push({
      ...queued,
      script: touched.script,
      failure: (r) => {
        if (r.code === 0) return null;
        const { result } = parseTouched(r, touched.checked);
        return new ModuleError(CommandError.describe(command.description, result.code, result.stderr.toString(), result.stdout.toString()));
      },
      confirm: (r) => h.cache.forgetTouched(command.touches!, parseTouched(r, touched.checked).report),
    });
    return true;
  }
  pushWrite(h, play, task, vars, files, queued);
  return true;
}

/**
 * Queue the write of `files` for the running task, which goes on: its next step carries the write (see
 * TaskContext.writeFiles' `behind`). False when the task cannot queue (it was not started as one that may, or a
 * Ctrl-C came): the write is then made at once.
 */
async function queueWrite(h: HostRun, play: Play, task: Task, vars: Record<string, unknown>, files: FileChange[]): Promise<boolean> {
  const current = h.wb.task;
  if (!current || h.interrupted()) return false;
  pushWrite(h, play, task, vars, files, await queueEntry(h, play, task, current));
  return true;
}

type QueueEntry = Pick<QueuedStep, 'task' | 'become' | 'checkpoint' | 'heldAt' | 'fail'>;

/** What a script the running task queues is entered with; queued scripts of another become are sent first. */
async function queueEntry(h: HostRun, play: Play, task: Task, current: NonNullable<HostRun['wb']['task']>): Promise<QueueEntry> {
  const become = h.become(play, task);
  // One step runs as one user: writes of another become go after the queue.
  if (h.wb.pending && JSON.stringify(become ?? null) !== JSON.stringify(h.wb.become ?? null)) await h.flushInTask();
  return { task: current.name, become, checkpoint: current.checkpoint, heldAt: h.wb.held.length, fail: current.fail };
}

/** Queue a write step of `files` (with the pending-handler record ahead of them, when one is due) and predict what it leaves. */
function pushWrite(
  h: HostRun,
  play: Play,
  task: Task,
  vars: Record<string, unknown>,
  files: FileChange[],
  queued: QueueEntry,
): void {
  const ahead = pendingAhead(h, play, task, vars, queued.become);
  const w = writeStep(h, files, ahead);
  for (const f of w.all) {
    const next = predicted(h.cache.file(f.path), f, f === ahead?.change);
    if (next) h.cache.set(next);
    else h.cache.drop(f.path);
  }
  if (ahead) h.handlers.pendingWritten.add(ahead.play);
  h.wb.push({ ...queued, script: w.script, record: ahead !== null, failure: w.failure, confirm: w.confirm });
}

/**
 * The state the write script leaves `f` in, when it is known exactly: the content always; the mode and owner of
 * an existing regular file it replaces (copied with --reference), or the asked mode. Not known: the owner of a new
 * file, an owner or group given by name, set-id bits (a chown may clear them). The pending-handler record
 * (`record`) is only ever read for its content.
 */
function predicted(old: FileState | undefined, f: FileChange, record: boolean): FileState | null {
  if (record) return fileState(f.path, 'file', f.after, { mode: f.mode ?? 0o600, owner: null, group: null, uid: null, gid: null });
  if (!old?.exists || old.kind !== 'file' || f.owner !== undefined || f.group !== undefined) return null;
  if (old.mode === null || old.uid === null || old.gid === null || old.owner === null || old.group === null) return null;
  const mode = f.mode ?? old.mode;
  if ((mode | old.mode) & ~0o777) return null;
  return fileState(f.path, 'file', f.after, { mode, owner: old.owner, group: old.group, uid: old.uid, gid: old.gid });
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

/**
 * Handlers: what tasks notified, running them in the order they are defined, and the record on the host of
 * handlers notified but not run (the host failed first), so that the next run runs them.
 */
import { createHash, randomBytes } from 'node:crypto';
import path from 'node:path';
import type { BecomeSpec } from '../connection/connection.js';
import { quote } from '../connection/shell-quote.js';
import { STATE_DIR, stateDirScript } from '../facts/gather.js';
import type { FileChange, FileState } from '../modules/module.js';
import { evaluateCondition, renderString } from '../playbook/template.js';
import type { Play, Task } from '../playbook/types.js';
import { absentState, writeScript } from './host-files.js';
import type { HostRun } from './host.js';
import { firstLines } from './task-error.js';

/** Where pending handlers are recorded on hosts (in root's private state directory), one small JSON file per playbook and play. */
export const PENDING_DIR = `${STATE_DIR}/pending`;

/** The handlers of one host: notified and not yet run, and the plays whose record on the host this run touched. */
export class HandlerState {
  /** handler names and listen topics notified and not yet run */
  readonly notified = new Set<string>();
  /** plays whose pending-handler record was found on the host this run */
  readonly pendingLoaded = new Set<Play>();
  /** plays whose pending-handler record this run wrote together with a task's files */
  readonly pendingWritten = new Set<Play>();
  /** the last handler of a flush, whose last step may remove the record (see pendingRider) */
  rider: { play: Play; task: Task } | null = null;

  /** A task that changed something notifies its handlers (names templated with the task's variables). */
  notify(task: Task, vars: Record<string, unknown>): void {
    task.notify.forEach((n) => this.notified.add(renderNotify(n, vars)));
  }
}

/**
 * Run the handlers notified so far, in the order they are defined; the last one's last step may also remove the
 * play's pending-handler record (see pendingRider).
 */
export async function flushHandlers(h: HostRun, play: Play): Promise<void> {
  const notified = h.handlers.notified;
  if (h.stopped || notified.size === 0) return;
  const due = notifiedHandlers(play, notified);
  notified.clear();
  const last = lastToRun(h, play, due);
  for (const [i, handler] of due.entries()) {
    if (h.stopped) return;
    // The pending-handler record guards a write until these handlers have run after it, and the last handler's
    // step removes it (see pendingRider): so queued writes are sent before that handler starts whenever a record is
    // queued or on the host, and no step carries both a write the record guards and the record's removal. A run
    // that dies in a step where an earlier handler carried the writes (the step goes on on the host) leaves the
    // record for the next run, which runs the handlers again; riding with the removal, the writes and every
    // handler would be done unseen, with nothing left on record.
    if (i === last && guardsQueue(h, play)) {
      await h.settle();
      // A queued write failed (its task's notifications were taken back), or a Ctrl-C dropped the queue.
      if (h.stopped) return;
    }
    h.handlers.rider = i === last && canRide(handler) ? { play, task: handler } : null;
    try {
      if (handler.include) await runIncludeHandler(h, play, handler);
      else await h.runTask(play, handler, true);
    } finally {
      h.handlers.rider = null;
    }
  }
}

/** A handler that is an include_tasks / include_role: notified by its name, it runs every task it includes, in order. */
async function runIncludeHandler(h: HostRun, play: Play, handler: Task): Promise<void> {
  for (const scope of h.includeRuns(play, handler, true) ?? []) {
    if (h.stopped) return;
    await h.withScope(scope, async () => {
      const inc = h.resolveInclude(play, handler, true);
      for (const t of inc?.tasks ?? []) {
        if (h.stopped) return;
        if (t.include) await runIncludeHandler(h, play, t);
        else await h.runTask(play, t, true);
      }
    });
  }
}

/**
 * The index of the last of `due` that will run: trailing handlers whose `when` is false now are left out when no
 * handler can change a variable before them (none registers a result or sets facts, none loops), so that the
 * record's removal rides on the last handler that runs (see pendingRider).
 */
function lastToRun(h: HostRun, play: Play, due: Task[]): number {
  let last = due.length - 1;
  if (due.some((t) => t.register || t.loop !== undefined || t.module === 'set_fact' || t.module === 'include_vars')) return last;
  while (last > 0) {
    const t = due[last]!;
    if (t.when === undefined) break;
    let runs: boolean;
    try {
      runs = evaluateCondition(t.when, h.vars(play, t));
    } catch {
      break;
    }
    if (runs) break;
    last--;
  }
  return last;
}

/** Queued writes that the play's pending-handler record guards: the record is queued with them or is on the host. */
function guardsQueue(h: HostRun, play: Play): boolean {
  const { pendingLoaded, pendingWritten } = h.handlers;
  return h.wb.pending && (h.wb.steps.some((s) => s.record) || pendingLoaded.has(play) || pendingWritten.has(play));
}

/**
 * A handler whose success is decided by its module alone, on this host, once: no loop, retries, conditions on its
 * result, delegation or notifications of its own.
 */
function canRide(t: Task): boolean {
  return !t.include && t.loop === undefined && t.until === undefined && t.failedWhen === undefined && t.changedWhen === undefined && !t.local && !t.runOnce && t.notify.length === 0;
}

/**
 * The removal of the play's pending-handler record, to append to the last step of `task` when that is the last
 * handler of a flush: run on the host only if the step exited 0, which for such a step means that the handler,
 * and so every handler of the flush, succeeded. Once every notified handler has run nothing is pending, whether
 * tasks follow or not: a later write that notifies handlers again carries a new record (see pendingAhead), which
 * `recordRiddenOff` makes possible by telling the read cache the record is gone.
 */
export function pendingRider(h: HostRun, play: Play, task: Task, become: BecomeSpec | undefined): { script: string; mark: string } | null {
  const r = h.handlers.rider;
  if (!r || r.play !== play || r.task !== task || h.settings.check) return null;
  if (!h.handlers.pendingLoaded.has(play) && !h.handlers.pendingWritten.has(play)) return null;
  if (JSON.stringify(become ?? null) !== JSON.stringify(h.become(play) ?? null)) return null;
  // The line the step prints once the record is removed (unguessable, so the command's own output cannot fake it).
  const mark = `@@PV-RECORD-REMOVED-${randomBytes(8).toString('hex')}`;
  return { script: `rm -f ${quote(h.pendingPath(play))} && printf '\\n%s\\n' ${mark}`, mark };
}

/** A handler's last step removed the play's record (see pendingRider): nothing of it is left to remove. */
export function recordRiddenOff(h: HostRun, play: Play): void {
  h.handlers.pendingLoaded.delete(play);
  h.handlers.pendingWritten.delete(play);
  h.cache.set(absentState(h.pendingPath(play)));
}

/** Handlers that were notified but never ran (the host failed first). */
export function pendingHandlers(h: HostRun, play: Play): string[] {
  return notifiedHandlers(play, h.handlers.notified).map((t) => t.name);
}

/** Where this play's pending handlers are recorded on the host. */
export function pendingPath(playbookFile: string, play: Play): string {
  // The playbook's absolute path: two playbooks that share a base name (and play names) keep records of their own.
  const key = createHash('sha256').update(`${path.resolve(playbookFile)}\0${play.name}`).digest('hex').slice(0, 16);
  return `${PENDING_DIR}/${key}.json`;
}

/** Handlers an earlier run notified on this host but could not run: notify them again now. */
export async function loadPending(h: HostRun, play: Play): Promise<void> {
  if (h.stopped) return;
  const st = await pendingState(h, play);
  if (!st.exists || !st.content) return;
  const names = recordedHandlers(st.content);
  if (!names) h.settings.emit({ type: 'warning', host: h.name, msg: `ignoring unreadable pending-handler record ${st.path}` });
  h.handlers.pendingLoaded.add(play);
  const known = (names ?? []).filter((n) => play.handlers.some((t) => t.name === n));
  if (!known.length) return;
  for (const n of known) h.handlers.notified.add(n);
  h.settings.emit({ type: 'warning', host: h.name, msg: `handlers notified by an earlier run that failed before running them will run now: ${known.join(', ')}` });
}

/** The play's pending-handler record as the cache holds it, or as read from the host when it holds nothing. */
async function pendingState(h: HostRun, play: Play): Promise<FileState> {
  const p = h.pendingPath(play);
  const hit = h.cache.file(p);
  if (hit) return hit;
  await h.cache.read({ files: [p], stats: [], commands: [] }, h.become(play));
  return h.cache.file(p) ?? absentState(p);
}

/** Record handlers still notified (the host failed before they ran) so the next run runs them. */
export async function savePending(h: HostRun, play: Play): Promise<void> {
  const names = pendingHandlers(h, play);
  if (h.settings.check || names.length === 0) return;
  const p = h.pendingPath(play);
  try {
    // A task's command empties the cache of what was read: read the record again rather than assume it absent.
    const current = await pendingState(h, play);
    const change: FileChange = { path: p, before: current.content, after: pendingRecord(h.settings.playbookFile, play, names), beforeSha: current.sha, mode: 0o600 };
    const r = await h.exec(inPendingDir(writeScript([change])), h.become(play));
    if (r.code !== 0) throw new Error(firstLines(r.stderr.toString()));
    h.settings.emit({ type: 'warning', host: h.name, msg: `handlers not run because the host failed, recorded for the next run: ${names.join(', ')}` });
  } catch (e) {
    h.settings.emit({ type: 'warning', host: h.name, msg: `could not record pending handlers (${names.join(', ')}): ${(e as Error).message}` });
  }
}

/** The pending handlers (of an earlier run, or written ahead by this one) have now run: forget them on the host. */
export async function clearPending(h: HostRun, play: Play): Promise<void> {
  const { pendingLoaded, pendingWritten } = h.handlers;
  if (h.settings.check || (!pendingLoaded.has(play) && !pendingWritten.has(play))) return;
  pendingLoaded.delete(play);
  pendingWritten.delete(play);
  const p = h.pendingPath(play);
  const r = await h.exec(`rm -f ${quote(p)}`, h.become(play)).catch(() => null);
  if (r?.code === 0) h.cache.set(absentState(p));
}

/** The record to write with a task's files (see pendingAhead). */
export interface PendingAhead {
  play: Play;
  change: FileChange;
}

/**
 * The pending-handler record to write with the files of a task that notifies handlers, so that a run that dies
 * after the write (connection lost, controller killed) leaves the handlers on record for the next run, which
 * would otherwise find the files up to date and never run them. Only as root (the record lives under
 * /var/lib), only when the record's current state is known, and not when it already names these handlers.
 */
export function pendingAhead(h: HostRun, play: Play, task: Task, vars: Record<string, unknown>, become: BecomeSpec | undefined): PendingAhead | null {
  // A delegated task writes on another host, where this host's record does not belong.
  if (h.settings.check || task.notify.length === 0 || h.isDelegate) return null;
  if (become ? become.user !== 'root' : h.loginIsRoot !== true) return null;
  const topics = new Set([...h.handlers.notified, ...task.notify.map((n) => renderNotify(n, vars))]);
  const names = notifiedHandlers(play, topics).map((t) => t.name);
  const p = h.pendingPath(play);
  const current = h.cache.file(p);
  if (names.length === 0 || !current) return null;
  const recorded = current.content ? (recordedHandlers(current.content) ?? []) : [];
  if (recorded.length && names.every((n) => recorded.includes(n))) return null;
  const change: FileChange = { path: p, before: current.content, after: pendingRecord(h.settings.playbookFile, play, names), beforeSha: current.sha, mode: 0o600 };
  return { play, change };
}

function pendingRecord(playbookFile: string, play: Play, names: string[]): Buffer {
  return Buffer.from(`${JSON.stringify({ playbook: path.basename(playbookFile), play: play.name, handlers: names, recorded: new Date().toISOString() }, null, 2)}\n`);
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
  return play.handlers.filter((t) => topics.has(t.name) || t.listen.some((l) => topics.has(l)));
}

/** `script` (which writes a pending-handler record) after checking root's state directory and making the records' directory in it. */
export function inPendingDir(script: string): string {
  return `${stateDirScript(quote(STATE_DIR))}\n(umask 077; mkdir -p -- ${quote(PENDING_DIR)}) || exit 70\n${script}`;
}

/**
 * One task on one host (Ansible's task executor): tags, delegation to the controller, facts when first needed,
 * the loop, and for each item when → render → plan → [check: stop] → apply → changed_when/failed_when; then
 * counters, registered results, notifications and the reported result.
 */
import { CommandError, formatPos, UnreachableError } from '../errors.js';
import { LocalConnection } from '../connection/local.js';
import { findModule } from '../modules/index.js';
import { type Module, ModuleError, type Outcome, type Plan, type TaskContext } from '../modules/module.js';
import { evaluateCondition, isTemplated, renderString } from '../playbook/template.js';
import type { Play, Task } from '../playbook/types.js';
import { checkArgs, isLocalName } from '../playbook/validate.js';
import { fileDiff } from '../report/diff.js';
import type { FileDiff, TaskStatus } from '../report/events.js';
import { delegateTarget, runDelegatedTo } from './delegate.js';
import { HostRun } from './host.js';
import { tagged } from './tags.js';
import { queueApply } from './task-context.js';
import { emitTaskResult, type ReportResult, type TaskOutcome } from './task-events.js';
import { failedItem, type ItemResult, itemVars, loopOf, renderArgs, retried, sleep } from './task-loops.js';
import { QueuedTaskFailed, writeBehindMode } from './write-behind.js';

/**
 * Run one task (or handler) on this host; records counters and emits the result. With writes queued (see
 * write-behind.ts): a task that must not start before they are done flushes them first; any other starts at once
 * and, when a queued write of an earlier task fails meanwhile, is dropped (never reported).
 */
export async function runTask(h: HostRun, play: Play, task: Task, handler: boolean, rescuable = false): Promise<TaskOutcome> {
  const mod = findModule(task.module)!;
  if (!handler && !tagged(play, task, h.settings)) return { status: 'skipped', ignored: false };
  const mode = writeBehindMode(task, mod, { handler, rescuable, allowed: h.writeBehindAllowed(play) });
  if (mode === 'settle') {
    if (!(await h.settle())) return { status: 'failed', ignored: false };
    // A Ctrl-C during that flush: this task does not start (a handler goes on as handlers do after a Ctrl-C).
    if (!handler && h.interrupted()) {
      h.abort('interrupted');
      return { status: 'skipped', ignored: false };
    }
  }
  let out: TaskOutcome;
  try {
    out = await runTaskNow(h, play, task, handler, mod, mode === 'queue');
  } catch (e) {
    if (!(e instanceof QueuedTaskFailed)) throw e;
    out = { status: 'failed', ignored: false };
  } finally {
    h.wb.task = null;
    h.wb.running = null;
  }
  // Dropped: an earlier task's queued write failed, or a Ctrl-C came before the queue it had to send was sent.
  if (h.endAborted()) return { status: h.stopped === 'aborted' ? 'skipped' : 'failed', ignored: false };
  return out;
}

async function runTaskNow(h: HostRun, play: Play, task: Task, handler: boolean, mod: Module, queue: boolean): Promise<TaskOutcome> {
  const t0 = Date.now();
  // A name with a template (`Alias for {{ entry.user }}` in an included file) is shown rendered, as Ansible does.
  const shownName = task.named && isTemplated(task.name) ? renderName(task.name, h.vars(play, task)) : task.name;
  const report: ReportResult = (status, msg, extra = {}) =>
    emitTaskResult(h.settings.emit, h.name, {
      task: shownName,
      module: task.module,
      handler,
      status,
      // Every status: a skipped command's message names the command, arguments and all.
      msg: task.noLog ? 'output hidden (no_log)' : msg,
      ...(extra.diffs?.length && !task.noLog ? { diffs: extra.diffs } : {}),
      ...(extra.item !== undefined ? { item: task.noLog ? '(hidden)' : extra.item } : {}),
      ...(extra.ignored ? { ignored: true } : {}),
      check: extra.check ?? h.settings.check,
      duration_ms: Date.now() - t0,
      at: formatPos(task.pos),
    });
  if (task.local && !mod.controllerOnly) return runDelegated(h, play, task, handler);
  if (task.delegateTo !== undefined && !mod.controllerOnly) {
    let to: string | null;
    try {
      to = delegateTarget(h, play, task);
    } catch (e) {
      return h.status.failTask(task, e, report);
    }
    // A template may name the controller too.
    if (to !== null) return isLocalName(to) ? runDelegated(h, play, { ...task, delegateTo: undefined, local: true }, handler) : runDelegatedTo(h, play, task, handler, to, report);
  }
  h.wb.task = queue ? { name: shownName, checkpoint: h.checkpoint(), fail: (e) => h.status.failTask(task, e, report) } : null;
  h.wb.running = shownName;
  h.settings.emit({ type: 'task_start', host: h.name, task: shownName, handler });

  const check = task.checkMode ?? h.settings.check;
  let items: unknown[] | undefined;
  try {
    if (!mod.controllerOnly) await h.gatherFacts(play);
    if (task.loop !== undefined) items = loopOf(task, h.vars(play, task), h.settings.playbookDir);
  } catch (e) {
    return h.status.failTask(task, e, report);
  }

  const results: Record<string, unknown>[] = [];
  let anyChanged = false;
  let anyFailed = false;
  let allSkipped = true;
  for (const [i, item] of (items ?? [undefined]).entries()) {
    if (items && i > 0 && task.loopPause) await sleep(task.loopPause * 1000);
    const vars = h.vars(play, task, items ? itemVars(task, item, i) : {});
    let label: string | undefined;
    if (items) {
      try {
        label = task.loopLabel !== undefined ? String(renderString(task.loopLabel, vars)) : typeof item === 'string' ? item : JSON.stringify(item);
      } catch (e) {
        return h.status.failTask(task, e, report);
      }
    }
    let r: ItemResult;
    try {
      r = await retried(h, task, vars, () => runItem(h, play, task, mod, vars, check, queue));
    } catch (e) {
      if (e instanceof UnreachableError) return h.status.failTask(task, e, report);
      r = failedItem(e, task);
    }
    if (task.register && items) results.push({ ...r.data, item, [task.loopVar]: item, ...(task.indexVar ? { [task.indexVar]: i } : {}) });
    if (r.status !== 'skipped') allSkipped = false;
    if (r.status === 'changed') anyChanged = true;
    if (r.status === 'failed') anyFailed = true;
    if (items) {
      report(r.status, r.msg, { diffs: r.diffs, item: label, check: r.check });
    } else {
      if (task.register) h.variables.register(task.register, r.data);
      if (r.status === 'failed') return h.status.recordFailure(task, r.msg, report, r.diffs, r.check);
      h.status.count(r.status);
      if (r.status === 'changed') h.handlers.notify(task, vars);
      report(r.status, r.msg, { diffs: r.diffs, check: r.check });
      return { status: r.status, ignored: false };
    }
    if (r.status === 'failed' && !task.ignoreErrors) break;
  }
  // A loop: the task's status is the worst of its items, as Ansible reports it.
  if (task.register) {
    h.variables.register(task.register, { results, changed: anyChanged, failed: anyFailed, skipped: allSkipped, msg: anyFailed ? 'one or more items failed' : 'all items completed' });
  }
  if (anyFailed) {
    if (task.ignoreErrors) {
      h.counters.ignored++;
      return { status: 'failed', ignored: true };
    }
    h.counters.failed++;
    h.status.stop('failed', `${task.name}: one or more items failed`);
    return { status: 'failed', ignored: false };
  }
  const status: TaskStatus = anyChanged ? 'changed' : allSkipped ? 'skipped' : 'ok';
  h.status.count(status);
  if (anyChanged) h.handlers.notify(task, h.vars(play, task));
  return { status, ignored: false };
}

/**
 * A task delegated to localhost: run by a HostRun on the controller that shares this host's variables and
 * registered results; its counts, failure and notifications are this host's.
 */
async function runDelegated(h: HostRun, play: Play, task: Task, handler: boolean): Promise<TaskOutcome> {
  const d = h.delegate(() => {
    const local = new HostRun(h.name, h.inventoryVars, new LocalConnection('localhost'), { ...h.settings, lockTimeoutS: 0 });
    local.variables.shareWith(h.variables);
    return local;
  });
  const before = { ...d.counters };
  let out: TaskOutcome;
  try {
    await d.gatherFacts(play);
    out = await d.runTask(play, { ...task, local: false }, handler);
  } catch (e) {
    d.markUnreachableOrFailed(e);
    out = { status: 'failed', ignored: false };
  }
  for (const k of ['ok', 'changed', 'failed', 'skipped', 'ignored'] as const) h.counters[k] += d.counters[k] - before[k];
  for (const n of d.handlers.notified) h.handlers.notified.add(n);
  d.handlers.notified.clear();
  if (d.stopped) {
    h.status.stop(d.stopped === 'unreachable' ? 'failed' : d.stopped, `on localhost: ${d.stopReason}`);
    d.status.clear();
  }
  return out;
}

/** One pass of a task (one loop item): when → render → plan → (apply) → changed_when/failed_when. */
async function runItem(h: HostRun, play: Play, task: Task, mod: Module, vars: Record<string, unknown>, check: boolean, queue: boolean): Promise<ItemResult> {
  if (task.when !== undefined && !evaluateCondition(task.when, vars)) {
    return { status: 'skipped', msg: 'condition false', data: { changed: false, skipped: true, skip_reason: 'Conditional result was False' }, diffs: [] };
  }
  const checked = checkArgs(mod, renderArgs(task, mod, vars));
  if (checked.errors) throw new ModuleError(`after templating: ${checked.errors.map((e) => e.message).join('; ')}`);
  const args = checked.value;
  const bad = mod.check?.(args as never);
  if (bad) throw new ModuleError(bad);
  const ctx = h.context(play, task, vars, check);
  const plan: Plan = await mod.plan(ctx, args as never);
  if (!plan.changed && plan.vars) h.variables.setRegistered(plan.vars);
  if (!plan.changed && plan.includedVars) h.variables.setIncluded(plan.includedVars);
  const showDiff = (h.settings.diff || check) && task.diff !== false;
  const diffs: FileDiff[] = plan.changed && showDiff ? plan.files.map(fileDiff).filter((d) => d.diff !== '') : [];

  let outcome: Outcome;
  if (!plan.changed) {
    outcome = { changed: false, msg: plan.msg, data: plan.data };
  } else if (check) {
    if (plan.unpredictable) {
      return { status: 'skipped', msg: `check mode: ${plan.unpredictable}`, data: { changed: false, skipped: true, skip_reason: plan.unpredictable }, diffs: [], check };
    }
    h.cache.pretendWritten(plan.files, h.facts?.user ?? null);
    outcome = { changed: true, msg: plan.msg, data: plan.data };
  } else if (queue && (await queueApply(h, play, task, vars, mod, plan))) {
    // Written later, with the next step (see write-behind.ts); on success the outcome is the default apply's.
    outcome = { changed: true, msg: plan.msg };
  } else {
    outcome = mod.apply ? await mod.apply(ctx, plan, args as never) : await defaultApply(ctx, plan);
    if (outcome.vars) h.variables.setRegistered(outcome.vars);
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

/** A module without apply of its own: write the plan's files, then run its commands in order. */
async function defaultApply(ctx: TaskContext, plan: Extract<Plan, { changed: true }>): Promise<Outcome> {
  await ctx.writeFiles(plan.files);
  for (const [i, c] of plan.commands.entries()) {
    const r = await ctx.run(c.script, c.touches ? { touches: c.touches } : { last: i === plan.commands.length - 1 });
    if (r.code !== 0) {
      return { changed: true, failed: true, msg: CommandError.describe(c.description, r.code, r.stderr.toString(), r.stdout.toString()) };
    }
  }
  return { changed: true, msg: plan.msg };
}

function renderName(name: string, vars: Record<string, unknown>): string {
  try {
    return String(renderString(name, vars));
  } catch {
    return name;
  }
}

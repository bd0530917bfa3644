/**
 * What a task runs over: its arguments rendered, its loop's items and the variables each item adds, the runs of
 * an include, and `until` retries.
 */
import path from 'node:path';
import { formatPos, UnreachableError } from '../errors.js';
import type { Facts } from '../facts/types.js';
import { type Module, ModuleError } from '../modules/module.js';
import { OMIT } from '../playbook/magic-vars.js';
import { searchPathOf } from '../playbook/lookups.js';
import { evaluateCondition, renderDeep, renderDeepKeepingFloats, renderString, UndefinedVariableError } from '../playbook/template.js';
import { unboxDeep } from '../playbook/template/python.js';
import type { Play, ResolvedInclude, Task } from '../playbook/types.js';
import type { FileDiff, TaskStatus } from '../report/events.js';
import type { HostRun } from './host.js';
import type { VarScope } from './host-vars.js';
import { loopItems } from './loops.js';
import { errorMessage } from './task-error.js';
import { emitTaskResult } from './task-events.js';

/** Items of a task's loop (its value templated with `vars`). */
export function loopOf(task: Task, vars: Record<string, unknown>, playbookDir: string): unknown[] {
  const dirs = [...(task.role ? [path.join(task.role.dir, 'files'), task.role.dir] : []), task.dir, path.join(playbookDir, 'files'), playbookDir];
  if (task.loopKind === 'first_found') {
    // As Ansible: a name whose template reads an undefined variable is passed over, and the folder searched is the
    // module's own (templates/ for template, vars/ for include_vars, files/ otherwise).
    const subdir = ['template', 'var', 'file'].find((s) => task.module.includes(s)) ?? 'file';
    return loopItems('first_found', lenient(task.loop, vars), dirs, { playbookDir, searchPath: searchPathOf(task, playbookDir), subdir: `${subdir}s` });
  }
  return loopItems(task.loopKind, renderDeep(task.loop, vars), dirs);
}

const DROPPED = Symbol('dropped');

/** `value` templated with `vars`, leaving out every string that reads an undefined variable. */
function lenient(value: unknown, vars: Record<string, unknown>): unknown {
  const walk = (v: unknown): unknown => {
    if (typeof v === 'string') {
      try {
        return renderDeep(v, vars);
      } catch (e) {
        if (e instanceof UndefinedVariableError) return DROPPED;
        throw e;
      }
    }
    if (Array.isArray(v)) return v.map(walk).filter((x) => x !== DROPPED);
    if (v && typeof v === 'object') return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, walk(x)]).filter(([, x]) => x !== DROPPED));
    return v;
  };
  const out = walk(value);
  return out === DROPPED ? [] : out;
}

/** What loop_control adds for item `i`: the loop variable and the index variable. */
export function itemVars(task: Task, item: unknown, i: number): Record<string, unknown> {
  return { [task.loopVar]: item, ...(task.indexVar ? { [task.indexVar]: i } : {}) };
}

/** A task's arguments rendered with `vars`; raw arguments of the module are left as written. */
export function renderArgs(task: Task, mod: Module, vars: Record<string, unknown>): Record<string, unknown> {
  const raw = new Set(mod.raw ?? []);
  // Whole floats stay boxed: set_fact's values become variables again (`{{ 6 / 2 }}` prints 3.0 later), debug
  // shows 3.0, and checkArgs hands other modules "3.0" where they take text.
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(task.args)) {
    const value = raw.has(k) ? v : renderDeepKeepingFloats(v, vars);
    // An argument that renders to `omit` is left out, as Ansible leaves it out.
    if (value !== OMIT) out[k] = value;
  }
  return out;
}

/**
 * Arguments of a task rendered with what is known before it runs (with `facts` when given, guessed ones before
 * the host's are known); none if they depend on later results.
 */
export function staticArgs(h: HostRun, play: Play, task: Task, mod: Module, facts?: Facts): Record<string, unknown>[] {
  try {
    const base = h.vars(play, task, facts ? { facts } : {});
    // For the reads before the run: numbers as numbers, as before (the task's own pass checks its arguments).
    const plain = (args: Record<string, unknown>) => unboxDeep(args) as Record<string, unknown>;
    if (task.loop === undefined) return [plain(renderArgs(task, mod, base))];
    return loopOf(task, base, h.settings.playbookDir).map((item, i) => plain(renderArgs(task, mod, { ...base, ...itemVars(task, item, i) })));
  } catch {
    return [];
  }
}

/**
 * The variables each run of an include's tasks sees (one per loop item), or null when its `when` is false.
 * The include's result is shown (skipped, or how many times it runs).
 */
export function includeRuns(h: HostRun, play: Play, task: Task, handler = false): VarScope[][] | null {
  const vars = h.vars(play, task);
  const report = includeReport(h, task, handler);
  try {
    if (task.when !== undefined && !evaluateCondition(task.when, vars)) {
      h.counters.skipped++;
      report('skipped', 'condition false');
      return null;
    }
    const params = { vars: task.include?.params ?? {}, lazy: true };
    if (task.loop === undefined) return [[params]];
    return loopOf(task, vars, h.settings.playbookDir).map((item, i) => [params, { vars: itemVars(task, item, i), lazy: false }]);
  } catch (e) {
    h.status.recordFailure(task, errorMessage(e, task), (st, m) => report(st, m));
    return null;
  }
}

function includeReport(h: HostRun, task: Task, handler: boolean): (status: TaskStatus, msg: string) => void {
  return (status, msg) =>
    emitTaskResult(h.settings.emit, h.name, { task: task.name, module: task.module, handler, status, msg, check: h.settings.check, duration_ms: 0, at: formatPos(task.pos) });
}

/**
 * What one run of an include brings, inside its scope (its vars and loop item visible): a templated name is
 * rendered with this host's variables and looked up now. Null, with the host failed (or the failure ignored),
 * when it names nothing or something that cannot be loaded: the message names the rendered name and the
 * include's place.
 */
export function resolveInclude(h: HostRun, play: Play, task: Task, handler = false): ResolvedInclude | null {
  const inc = task.include!;
  if (!inc.dynamic) return { tasks: inc.tasks, handlers: [], ...(inc.publish ? { publish: inc.publish } : {}) };
  const d = inc.dynamic;
  let rendered: string;
  let r: ResolvedInclude | string;
  try {
    const v = renderString(d.name, h.vars(play, task));
    rendered = String(v);
    r = typeof v === 'string' && v ? d.resolve(rendered) : `the name renders to ${JSON.stringify(v)}`;
  } catch (e) {
    h.status.recordFailure(task, errorMessage(e, task), includeReport(h, task, handler));
    return null;
  }
  if (typeof r === 'string') {
    h.status.recordFailure(task, `${formatPos(task.pos)}: ${d.what} "${rendered}" (from "${d.name}"): ${r}`, includeReport(h, task, handler));
    return null;
  }
  // An included role's handlers can be notified once it is included, as Ansible adds them to the play.
  for (const hd of r.handlers) if (!play.handlers.includes(hd)) play.handlers.push(hd);
  return r;
}

/** One pass of a task over one loop item, as reported. */
export interface ItemResult {
  status: TaskStatus;
  msg: string;
  data: Record<string, unknown>;
  diffs: FileDiff[];
  check?: boolean;
}

/** An error of one pass as its result. */
export function failedItem(e: unknown, task: Task): ItemResult {
  const msg = errorMessage(e, task);
  return { status: 'failed', msg, data: { failed: true, msg, ...(e instanceof ModuleError ? e.data : {}) }, diffs: [] };
}

/**
 * One loop item with `until`: run again, `delay` seconds apart, until the condition holds on the result, at most
 * `retries` more times (Ansible's defaults: 3 and 5). Without `until`, one pass.
 */
export async function retried(h: HostRun, task: Task, vars: Record<string, unknown>, pass: () => Promise<ItemResult>): Promise<ItemResult> {
  if (task.until === undefined) return pass();
  const retries = task.retries === undefined ? 3 : Number(renderDeep(task.retries, vars));
  const delay = task.delay === undefined ? 5 : Number(renderDeep(task.delay, vars));
  if (!Number.isInteger(retries) || retries < 0 || retries > 1000) throw new ModuleError(`retries must be an integer from 0 to 1000, got ${String(task.retries)}`);
  if (!Number.isFinite(delay) || delay < 0 || delay > 3600) throw new ModuleError(`delay must be 0 to 3600 seconds, got ${String(task.delay)}`);
  for (let attempt = 1; ; attempt++) {
    let r: ItemResult;
    try {
      r = await pass();
    } catch (e) {
      if (e instanceof UnreachableError) throw e;
      r = failedItem(e, task);
    }
    if (r.status === 'skipped') return r;
    r.data.attempts = attempt;
    const v = { ...vars, ...(task.register ? { [task.register]: r.data } : {}) };
    if (evaluateCondition(task.until, v)) return r;
    if (attempt > retries) {
      const msg = `until did not hold after ${attempt} attempts${r.status === 'failed' ? `: ${r.msg}` : ''}`;
      return { ...r, status: 'failed', msg, data: { ...r.data, failed: true, msg } };
    }
    h.settings.emit({ type: 'warning', host: h.name, msg: `${task.name}: until does not hold yet, retrying (${attempt} of ${retries + 1})` });
    await sleep(delay * 1000);
  }
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/**
 * One play: hosts in batches (serial), each batch's hosts in parallel up to `forks`, each host running its tasks
 * in order and its handlers at the end of each section. Between batches the rollout stops when
 * max_fail_percentage is exceeded, when any_errors_fatal saw a failure, when a canary batch failed, or when every
 * host of a batch failed.
 */
import { playVars } from '../playbook/magic-vars.js';
import { flatTasks, type Play, type Task } from '../playbook/types.js';
import type { BatchEndEvent, EventSink } from '../report/events.js';
import type { HostRun } from './host.js';

/** Batch sizes from `serial` (numbers, "N%", a list whose last element repeats), Ansible's rounding. */
export function batchSizes(serial: (number | string)[], total: number): number[] {
  if (total === 0) return [];
  if (serial.length === 0) return [total];
  const sizes: number[] = [];
  let left = total;
  let i = 0;
  while (left > 0 && sizes.length < 100_000) {
    const spec = serial[Math.min(i, serial.length - 1)]!;
    let n: number;
    if (typeof spec === 'string' && spec.endsWith('%')) {
      n = Math.max(1, Math.floor((parseFloat(spec) * total) / 100));
    } else {
      n = Math.max(1, Number(spec));
    }
    n = Math.min(n, left);
    sizes.push(n);
    left -= n;
    i++;
  }
  return sizes;
}

export function splitBatches<T>(items: T[], serial: (number | string)[], canary = 0): T[][] {
  const batches: T[][] = [];
  let rest = items;
  if (canary > 0 && items.length > 0) {
    batches.push(items.slice(0, canary));
    rest = items.slice(canary);
  }
  let at = 0;
  for (const n of batchSizes(serial, rest.length)) {
    batches.push(rest.slice(at, at + n));
    at += n;
  }
  return batches;
}

export function orderHosts(hosts: string[], order: Play['order'], random: () => number = Math.random): string[] {
  switch (order) {
    case 'sorted':
      return [...hosts].sort();
    case 'reverse_sorted':
      return [...hosts].sort().reverse();
    case 'shuffle': {
      const a = [...hosts];
      for (let i = a.length - 1; i > 0; i--) {
        const j = Math.floor(random() * (i + 1));
        [a[i], a[j]] = [a[j]!, a[i]!];
      }
      return a;
    }
    default:
      return hosts;
  }
}

/** Run `fn` over items with at most `limit` at once. */
export async function pool<T>(items: T[], limit: number, fn: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  const workers = Array.from({ length: Math.max(1, Math.min(limit, items.length)) }, async () => {
    while (next < items.length) {
      const item = items[next++]!;
      await fn(item);
    }
  });
  await Promise.all(workers);
}

export interface PlayOptions {
  forks: number;
  canary: number;
  emit: EventSink;
  /** set when the operator pressed Ctrl-C */
  interrupted: () => boolean;
  /** `hostvars` of the run (see makeHostvars) */
  hostvars?: Record<string, unknown>;
  /** `groups` in Ansible's order (see ansibleGroups) */
  groups?: Record<string, string[]>;
  /** true for `provision check` (`ansible_check_mode`) */
  check?: boolean;
  playbookDir?: string;
  /** called once a host is done with the play (finished, stopped, or never connected) */
  hostDone?: (h: HostRun) => Promise<void>;
}

export interface PlayResult {
  batches: Omit<BatchEndEvent, 'type'>[];
  /** hosts of this play that never started */
  notRun: string[];
  /** why the rollout stopped, when it did */
  stopped?: string;
  /** end_play was called, or the rollout stopped: later plays must not run */
  endRun: boolean;
}

/** What the host that ran a run_once task hands to the others of its batch. */
interface Shared {
  /** the task failed on that host (and was not ignored) */
  failed: boolean;
  /** variables to give every host: the registered result, set_fact's variables */
  vars: [string, unknown][];
}

/** The registered result and set_fact variables a run_once task left on the host that ran it. */
function sharedVars(h: HostRun, task: Task): [string, unknown][] {
  const names = task.register ? [task.register] : [];
  if (task.module === 'set_fact') names.push(...Object.keys(task.args).filter((k) => k !== 'cacheable'));
  return names.map((n): [string, unknown] => [n, h.registeredValue(n)]).filter(([, v]) => v !== undefined);
}

/** Who runs one pass of a run_once task, and the result the others take. */
interface Ruling {
  runner: HostRun;
  result: Promise<Shared | null>;
  settle(r: Shared | null): void;
}

/** How a host met one pass of a run_once task: it reached it, or it went past it (see RunOnce.pass). */
type Meeting = 'reached' | 'passed';

/**
 * run_once as Ansible does it: the task runs on the first host of the batch (in batch order, among hosts still
 * running) that reaches it, and the others take its result. Hosts run freely here, so a host that reaches the task
 * waits until every host before it in the batch has either reached it too, gone past it, or finished with the
 * batch; hosts wait only on hosts before them, and the pool starts hosts in batch order, so nothing waits for ever.
 * A task reached again (an include with a loop) is a new pass, matched by how many times each host has met it.
 *
 * A host goes past a task when it never reaches it: the task is in an include it skips, in the rest of a block it
 * failed in (it goes to rescue), or in a rescue it does not need. Ansible's lockstep still gives such a host the
 * task's registered result and set_fact variables; here it takes them when the host that ran the task comes before
 * it in the batch (its result is then known without waiting on a later host).
 */
export class RunOnce {
  private readonly meetings = new Map<Task, Map<HostRun, Meeting[]>>();
  private readonly rulings = new Map<Task, Map<number, Ruling>>();
  private readonly finished = new Set<HostRun>();
  private wake: (() => void)[] = [];

  constructor(private readonly batch: HostRun[]) {}

  /** Record that `h` reached `task`; returns which pass of the task this is for `h`. */
  arrive(h: HostRun, task: Task): number {
    return this.meet(h, task, 'reached');
  }

  /** Record that `h` went past `task` without reaching it; returns which pass of the task this is for `h`. */
  pass(h: HostRun, task: Task): number {
    return this.meet(h, task, 'passed');
  }

  /** `h` is done with the batch (finished its tasks, stopped, or never connected). */
  finish(h: HostRun): void {
    this.finished.add(h);
    this.notify();
  }

  /**
   * Wait until it is known which host runs this pass of the task: `h` itself when no host before it reached it
   * (null instead when `h` went past it), else that host.
   */
  async runner(h: HostRun, task: Task, turn: number): Promise<Ruling | null> {
    for (;;) {
      let undecided = false;
      for (const e of this.batch) {
        if (e === h) break;
        const met = this.meetings.get(task)?.get(e)?.[turn];
        if (met === 'reached') return this.ruling(task, turn, e);
        if (met === undefined && !this.finished.has(e)) {
          undecided = true;
          break;
        }
      }
      if (!undecided) return this.meetings.get(task)?.get(h)?.[turn] === 'passed' ? null : this.ruling(task, turn, h);
      await new Promise<void>((r) => this.wake.push(r));
    }
  }

  private meet(h: HostRun, task: Task, how: Meeting): number {
    const byHost = this.meetings.get(task) ?? new Map<HostRun, Meeting[]>();
    this.meetings.set(task, byHost);
    const met = byHost.get(h) ?? [];
    byHost.set(h, met);
    met.push(how);
    this.notify();
    return met.length - 1;
  }

  private ruling(task: Task, turn: number, candidate: HostRun): Ruling {
    const byTurn = this.rulings.get(task) ?? new Map<number, Ruling>();
    this.rulings.set(task, byTurn);
    let r = byTurn.get(turn);
    if (!r) {
      let settle!: (v: Shared | null) => void;
      const result = new Promise<Shared | null>((res) => (settle = res));
      r = { runner: candidate, result, settle };
      byTurn.set(turn, r);
    }
    return r;
  }

  private notify(): void {
    const w = this.wake;
    this.wake = [];
    for (const r of w) r();
  }
}

/** The run_once tasks among `tasks`, in blocks (every section) and includes too, in order. */
export function runOnceTasks(tasks: Task[]): Task[] {
  return flatTasks(tasks).filter((t) => t.runOnce);
}

/** Run a play over its hosts (already selected and ordered). */
export async function runPlay(play: Play, hosts: HostRun[], opts: PlayOptions): Promise<PlayResult> {
  const batches = splitBatches(hosts, play.serial, opts.canary);
  opts.emit({ type: 'play_start', play: play.name, hosts: hosts.map((h) => h.name), batches: batches.map((b) => b.map((h) => h.name)) });
  const result: PlayResult = { batches: [], notRun: [], endRun: false };
  let endPlay = false;

  for (let b = 0; b < batches.length; b++) {
    const batch = batches[b]!;
    if (result.stopped || endPlay || opts.interrupted()) {
      result.notRun.push(...batch.map((h) => h.name));
      continue;
    }
    const t0 = Date.now();
    opts.emit({ type: 'batch_start', play: play.name, batch: b + 1, batches: batches.length, hosts: batch.map((h) => h.name) });
    let fatal: string | null = null;
    const before = new Map(batch.map((h) => [h.name, h.counters.changed]));
    const magic = playVars({
      playHosts: hosts.filter((h) => !h.failedOrUnreachable).map((h) => h.name),
      allHosts: hosts.map((h) => h.name),
      batch: batch.map((h) => h.name),
      check: opts.check ?? false,
      playbookDir: opts.playbookDir ?? '',
      hostvars: opts.hostvars ?? {},
      groups: opts.groups,
    });
    for (const h of batch) h.magic = magic;

    const shouldStop = (h: HostRun) => {
      if (opts.interrupted()) h.abort('interrupted');
      if (fatal && !h.stopped) h.abort(fatal);
      if (endPlay && !h.stopped) h.endHost('end_play');
      return h.stopped !== null;
    };

    // Queued writes (see write-behind.ts) flushed on their own; a failure there is a failure of a task before this
    // point, outside any block that could rescue it.
    // Handlers may send the queue (see flushHandlers): a queued task that fails there is a task's failure too.
    const handlersOf = async (h: HostRun) => {
      const before = h.queuedFailures;
      await h.flushHandlers(play);
      if (h.queuedFailures > before && play.anyErrorsFatal) fatal = `any_errors_fatal: ${h.name} failed`;
    };
    const settled = async (h: HostRun): Promise<boolean> => {
      if (await h.settle()) return true;
      if (play.anyErrorsFatal) fatal = `any_errors_fatal: ${h.name} failed`;
      return false;
    };

    const once = new RunOnce(batch);
    /** Take the result of this pass of a run_once task that another host ran (`h` reached the task or went past it). */
    const adopt = async (h: HostRun, task: Task, ruling: Ruling) => {
      const shared = await ruling.result;
      if (!shared) return;
      if (shared.failed) {
        // Ansible 2.14 fails every host of the batch when a run_once task fails on the host that ran it.
        const reason = `run_once task "${task.name}" failed on ${ruling.runner.name}`;
        if (!h.stopped) opts.emit({ type: 'warning', host: h.name, msg: `${reason}: this host fails with it, as every host of the batch does in Ansible` });
        h.failAlong(reason);
        return;
      }
      // Registered result and set_fact variables go to every host; notifications stay with the host that ran
      // it, as Ansible keeps them.
      for (const [name, value] of shared.vars) h.adoptResult(play, { ...task, register: name }, value, false);
    };
    /** `h` does not reach these tasks (a skipped include, the rest of a failed block, an unneeded rescue). */
    const goPast = async (h: HostRun, tasks: Task[]) => {
      for (const task of runOnceTasks(tasks)) {
        const ruling = await once.runner(h, task, once.pass(h, task));
        if (ruling) await adopt(h, task, ruling);
      }
    };
    const runOne = async (h: HostRun, task: Task, rescuable: boolean) => {
      // The flush may have taken a Ctrl-C: check again before the task starts.
      if (task.runOnce && (!(await settled(h)) || shouldStop(h))) return;
      if (task.runOnce) {
        const ruling = (await once.runner(h, task, once.arrive(h, task)))!;
        if (ruling.runner !== h) {
          await adopt(h, task, ruling);
          return;
        }
        try {
          const out = await h.runTask(play, task, false, rescuable);
          const failed = out.status === 'failed' && !out.ignored;
          ruling.settle({ failed, vars: failed ? [] : sharedVars(h, task) });
          if (failed && !rescuable && play.anyErrorsFatal) fatal = `any_errors_fatal: ${h.name} failed`;
        } catch (e) {
          ruling.settle(null);
          throw e;
        }
        return;
      }
      const out = await h.runTask(play, task, false, rescuable);
      if (((out.status === 'failed' && !out.ignored) || out.status === 'unreachable') && (!rescuable || out.status === 'unreachable')) {
        if (play.anyErrorsFatal) fatal = `any_errors_fatal: ${h.name} failed`;
      }
    };
    // A list of tasks, blocks and includes; `rescuable`: a failure here may yet be rescued by an enclosing block.
    const runTasks = async (h: HostRun, tasks: Task[], rescuable = false): Promise<void> => {
      for (const [i, task] of tasks.entries()) {
        if (shouldStop(h)) {
          // A failure an enclosing rescue may catch: the host goes on there, past the rest of these tasks.
          if (rescuable && h.stopped === 'failed' && !fatal) await goPast(h, tasks.slice(i));
          return;
        }
        if (task.block) {
          const { block, rescue, always } = task.block;
          // A failure queued before the block is not the block's to rescue, and `always` runs once the block's
          // own writes are known to be done.
          if ((rescue.length || always.length) && (!(await settled(h)) || shouldStop(h))) return;
          await runTasks(h, block, rescuable || rescue.length > 0);
          if (rescue.length && h.stopped === 'failed' && !fatal && h.rescue()) await runTasks(h, rescue, rescuable);
          else if (!h.stopped) await goPast(h, rescue);
          if (always.length && h.stopped !== 'unreachable' && !opts.interrupted()) {
            await settled(h);
            const held = h.holdFailure();
            await runTasks(h, always, rescuable);
            await settled(h);
            h.restoreFailure(held);
          }
          if (h.stopped === 'failed' && !rescuable && play.anyErrorsFatal) fatal = `any_errors_fatal: ${h.name} failed`;
          continue;
        }
        if (task.include) {
          // include_role with public: true changes what every host of the play sees.
          if (task.include.publish && (!(await settled(h)) || shouldStop(h))) return;
          const runs = h.includeRuns(play, task);
          if (!runs?.length && !h.stopped) await goPast(h, task.include.tasks);
          for (const scope of runs ?? []) {
            if (shouldStop(h)) break;
            await h.withScope(scope, async () => {
              // A templated name is resolved for this host and loop item.
              const inc = h.resolveInclude(play, task);
              if (!inc) {
                if (h.stopped === 'failed' && !rescuable && play.anyErrorsFatal) fatal = `any_errors_fatal: ${h.name} failed`;
                return;
              }
              if (inc.publish) {
                // include_role with public: true — from now on the play (every host, as Ansible's play keeps the
                // role) sees the role's defaults and vars.
                Object.assign(play.roleDefaults, inc.publish.defaults);
                Object.assign(play.roleVars, inc.publish.vars);
              }
              await runTasks(h, inc.tasks, rescuable);
            });
          }
          continue;
        }
        if (task.module === 'meta') {
          const action = String(task.args.action);
          if (action === 'flush_handlers') await handlersOf(h);
          else if (action === 'end_host') h.endHost('end_host');
          else if (action === 'end_play') endPlay = true;
          continue;
        }
        await runOne(h, task, rescuable);
      }
    };

    // Handlers run at the end of each section that has tasks, and at the end of the play: an empty pre_tasks
    // section is no flush point, so handlers an earlier run left pending join this run's notifications of the
    // same handlers instead of running once before the tasks and once after.
    const runSection = async (h: HostRun, tasks: Task[], last = false) => {
      await runTasks(h, tasks);
      if ((tasks.length > 0 || last) && !shouldStop(h)) await handlersOf(h);
    };

    const hostRun = async (h: HostRun) => {
      if (shouldStop(h)) return;
      try {
        // `connection: local`: every task of the play runs on the controller, so the host itself is never
        // contacted (as in Ansible, where such a play opens no SSH connection).
        if (!play.local) {
          // Connected whether or not facts are gathered: the prefetch and the pending-handler record are read from the host.
          await h.connect();
          if (play.gatherFacts) await h.gatherFacts(play);
          await h.prefetch(play).catch(() => undefined);
        }
        if (!(await h.preflight(play))) {
          if (play.anyErrorsFatal) fatal = `any_errors_fatal: ${h.name} failed`;
          return;
        }
        if (!play.local) await h.loadPending(play);
      } catch (e) {
        h.markUnreachableOrFailed(e);
        if (play.anyErrorsFatal) fatal = `any_errors_fatal: ${h.name} failed`;
        return;
      }
      await runSection(h, play.preTasks);
      await runSection(h, play.tasks);
      await runSection(h, play.postTasks, true);
      if (h.stopped !== 'unreachable') await settled(h);
      // Handlers notified on a host that then failed must not be forgotten: record them on the host for the
      // next run; once they have run, forget them there.
      if (h.stopped === 'failed' || h.stopped === 'aborted') await h.savePending(play);
      else if (!h.stopped) await h.clearPending(play);
    };
    // A host that is done with the batch can no longer be the one to run a run_once task.
    await pool(batch, opts.forks, async (h) => {
      await hostRun(h).finally(() => once.finish(h));
      await opts.hostDone?.(h);
    });

    const failed = batch.filter((h) => h.stopped === 'failed').map((h) => h.name);
    const unreachable = batch.filter((h) => h.stopped === 'unreachable').map((h) => h.name);
    const summary = {
      play: play.name,
      batch: b + 1,
      hosts: batch.map((h) => h.name),
      changed: batch.filter((h) => h.counters.changed > (before.get(h.name) ?? 0)).map((h) => h.name),
      failed,
      unreachable,
      duration_ms: Date.now() - t0,
    };
    opts.emit({ type: 'batch_end', ...summary });
    result.batches.push(summary);

    const bad = failed.length + unreachable.length;
    const pct = (bad / batch.length) * 100;
    if (opts.interrupted()) result.stopped = 'interrupted';
    else if (fatal) result.stopped = fatal;
    else if (opts.canary > 0 && b === 0 && bad > 0) result.stopped = `canary batch failed on ${[...failed, ...unreachable].join(', ')}`;
    else if (play.maxFailPercentage !== undefined && pct > play.maxFailPercentage) {
      result.stopped = `${bad} of ${batch.length} hosts failed in batch ${b + 1} (${pct.toFixed(0)}% > max_fail_percentage ${play.maxFailPercentage}%)`;
    } else if (bad === batch.length && b < batches.length - 1) result.stopped = `every host of batch ${b + 1} failed`;
  }
  result.endRun = result.stopped !== undefined;
  return result;
}

/**
 * `delegate_to` an inventory host, as Ansible does it: the module runs on the target, over the target's own
 * connection (its remote session, its host lock, its become settings), with the variables of the host the task
 * runs for; the result, its registered variables, facts (delegate_facts false) and notifications are that host's.
 *
 * The target's part of the run is its own HostRun (a host of this play, of another play, or made for the
 * delegation), so a host that is both worked on and delegated to has one connection, one session, one lock and
 * one cache of what was read there. Within a run no lock is waited for twice. Two runs that delegate to each
 * other's hosts each wait for the other's lock at most --lock-timeout; the delegated task then fails naming the
 * holder.
 */
import type { BecomeSpec, ExecResult } from '../connection/connection.js';
import { InputError } from '../errors.js';
import { renderString } from '../playbook/template.js';
import type { Play, Task } from '../playbook/types.js';
import { becomeFor } from './become.js';
import { HostRun } from './host.js';
import type { ReportResult, TaskOutcome } from './task-events.js';

/** A task's delegate_to rendered for host `h`: null when that is `h` itself, where the task then runs as usual. */
export function delegateTarget(h: HostRun, play: Play, task: Task): string | null {
  const name = String(renderString(task.delegateTo!, h.vars(play, task))).trim();
  return name === h.name ? null : name;
}

/** The host a task runs for, seen on the host it is delegated to. */
interface DelegateRun extends HostRun {
  readonly origin: HostRun;
  readonly target: HostRun;
}

let delegateClass: (new (origin: HostRun, target: HostRun) => DelegateRun) | null = null;

/**
 * Made on first use: host.ts reaches this file through task-run.ts, so HostRun is not defined yet while this file
 * loads.
 */
function makeDelegate(origin: HostRun, target: HostRun): DelegateRun {
  delegateClass ??= class extends HostRun {
    constructor(
      readonly origin: HostRun,
      readonly target: HostRun,
    ) {
      super(origin.name, origin.inventoryVars, target.conn, origin.settings, { cache: target.cache, original: target.original });
      this.variables.shareWith(origin.variables);
    }

    override get isDelegate(): boolean {
      return true;
    }

    /** Templates see the facts of the host the task runs for; the module sees the target's (its paths, its init). */
    override vars(play: Play, task?: Task, extra: Record<string, unknown> = {}): Record<string, unknown> {
      this.variables.magic = this.origin.magic;
      return this.variables.vars(play, task, extra, this.origin.facts);
    }

    /** Become settings (ansible_become_*) are connection settings: the target's. */
    override become(play: Play, task?: Task): BecomeSpec | undefined {
      return becomeFor(play, task, this.target.inventoryVars, this.settings);
    }

    override exec(script: string, become: BecomeSpec | undefined, timeoutMs?: number): Promise<ExecResult> {
      return this.target.exec(script, become, timeoutMs);
    }

    override async connect(): Promise<void> {
      await this.target.connect();
    }

    override async gatherFacts(play: Play): Promise<void> {
      await this.target.gatherFacts(play);
      this.facts = this.target.facts;
      this.loginIsRoot = this.target.loginIsRoot;
    }

    override async close(): Promise<void> {
      // The target's HostRun closes its own connection at the end of the run.
    }
  };
  return new delegateClass(origin, target);
}

/**
 * Run `task` for `h` on the inventory host `to`; counts, failure and notifications are `h`'s. The target not
 * reachable: the task is unreachable for `h`, as Ansible reports it.
 */
export async function runDelegatedTo(h: HostRun, play: Play, task: Task, handler: boolean, to: string, report: ReportResult): Promise<TaskOutcome> {
  let d: DelegateRun;
  try {
    if (!h.settings.hostFor) throw new InputError(`delegate_to "${to}": no inventory to find it in`);
    d = makeDelegate(h, h.settings.hostFor(to));
    await d.gatherFacts(play);
  } catch (e) {
    if (e instanceof Error) e.message = `on ${to}: ${e.message}`;
    return h.status.failTask(task, e, report);
  }
  const out = await d.runTask(play, { ...task, delegateTo: undefined }, handler);
  for (const k of ['ok', 'changed', 'failed', 'skipped', 'ignored', 'unreachable'] as const) h.counters[k] += d.counters[k];
  for (const n of d.handlers.notified) h.handlers.notified.add(n);
  if (d.stopped) h.status.stop(d.stopped, `on ${to}: ${d.stopReason}`);
  return out;
}

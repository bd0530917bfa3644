/**
 * A host's results as the operator sees them: the one place a `task_result` event is made, and the counters and
 * the stop that go with a failure.
 */
import { UnreachableError } from '../errors.js';
import type { Task } from '../playbook/types.js';
import type { EventSink, FileDiff, HostCounters, TaskResultEvent, TaskStatus } from '../report/events.js';
import { errorMessage } from './task-error.js';

/** Why a host stopped running tasks. */
export type HostStop = 'failed' | 'unreachable' | 'end_host' | 'aborted' | null;

/** Result of one task on this host (what play.ts needs to decide about the rollout). */
export interface TaskOutcome {
  status: TaskStatus;
  ignored: boolean;
}

/** What a task result says, besides the host. */
export type TaskResult = Omit<TaskResultEvent, 'type' | 'host'>;

/** Emit a task result: its fields always in the same order, whoever reports it. */
export function emitTaskResult(emit: EventSink, host: string, r: TaskResult): void {
  emit({
    type: 'task_result',
    host,
    task: r.task,
    module: r.module,
    handler: r.handler,
    status: r.status,
    msg: r.msg,
    ...(r.diffs !== undefined ? { diffs: r.diffs } : {}),
    ...(r.item !== undefined ? { item: r.item } : {}),
    ...(r.ignored ? { ignored: true } : {}),
    check: r.check,
    duration_ms: r.duration_ms,
    ...(r.at !== undefined ? { at: r.at } : {}),
  });
}

/** What the reporting of one task's results needs to know beyond the status. */
export interface ResultExtras {
  diffs?: FileDiff[];
  item?: string;
  ignored?: boolean;
  check?: boolean;
}

/** How one task reports a result (its name, module, position, no_log and duration already bound). */
export type ReportResult = (status: TaskStatus, msg: string, extra?: ResultExtras) => void;

/** A host's counters and why it stopped. */
export class HostStatus {
  readonly counters: HostCounters;
  stopped: HostStop = null;
  stopReason = '';

  constructor(counters: HostCounters) {
    this.counters = counters;
  }

  count(status: TaskStatus): void {
    if (status === 'ok') this.counters.ok++;
    else if (status === 'changed') this.counters.changed++;
    else if (status === 'skipped') this.counters.skipped++;
  }

  /** Stop the host's tasks; the first reason stays. */
  stop(why: HostStop, reason: string): void {
    if (!this.stopped) {
      this.stopped = why;
      this.stopReason = reason;
    }
  }

  /** Undo a stop (it only applied to something that is over). */
  clear(): void {
    this.stopped = null;
    this.stopReason = '';
  }

  /** A task failed with `msg`: ignored (ignore_errors) or the host stops. */
  recordFailure(task: Task, msg: string, report: ReportResult, diffs: FileDiff[] = [], check?: boolean): TaskOutcome {
    if (task.ignoreErrors) {
      this.counters.ignored++;
      report('failed', msg, { diffs, ignored: true, check });
      return { status: 'failed', ignored: true };
    }
    this.counters.failed++;
    this.stop('failed', msg);
    report('failed', msg, { diffs, check });
    return { status: 'failed', ignored: false };
  }

  /** A task that could not run: the host was unreachable, or the task failed. */
  failTask(task: Task, e: unknown, report: ReportResult): TaskOutcome {
    if (e instanceof UnreachableError) {
      this.counters.unreachable++;
      this.stop('unreachable', e.message);
      report('unreachable', e.message);
      return { status: 'unreachable', ignored: false };
    }
    return this.recordFailure(task, errorMessage(e, task), report);
  }
}

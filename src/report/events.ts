/**
 * What the runner tells the world. The runner only emits these; reporters (listr2, plain, JSON) decide what to
 * show. Every event is plain data, so `--json` prints them as they are.
 */

/** How a task ended on a host. */
export type TaskStatus =
  /** the state already held (or the task only read something) */
  | 'ok'
  /** the task changed the host (in check mode: would change it) */
  | 'changed'
  /** the task failed; the host stops (unless ignore_errors) */
  | 'failed'
  /** the task did not run: `when` was false, tags excluded it, or check mode cannot predict it */
  | 'skipped'
  /** the host could not be reached or the connection was lost */
  | 'unreachable';

/** One file's change as shown to the user. */
export interface FileDiff {
  path: string;
  /** unified diff, `--- before` / `+++ after` */
  diff: string;
  /** true when the file does not exist yet */
  created: boolean;
}

/** Per-host totals in the recap. */
export interface HostCounters {
  ok: number;
  changed: number;
  failed: number;
  skipped: number;
  unreachable: number;
  /** failures ignored with ignore_errors */
  ignored: number;
  /** channels opened to the host: remote sessions (one per become spec), held scripts, probes */
  execs: number;
  /** remote operations run on the host (each exec and held script once), most of them steps of its session */
  steps: number;
}

export interface RunStartEvent {
  type: 'run_start';
  /** version of this event format */
  version: 1;
  playbook: string;
  check: boolean;
  diff: boolean;
}

export interface PlayStartEvent {
  type: 'play_start';
  play: string;
  hosts: string[];
  /** hosts per batch, in order */
  batches: string[][];
}

export interface BatchStartEvent {
  type: 'batch_start';
  play: string;
  /** 1-based */
  batch: number;
  batches: number;
  hosts: string[];
}

export interface BatchEndEvent {
  type: 'batch_end';
  play: string;
  batch: number;
  hosts: string[];
  changed: string[];
  failed: string[];
  unreachable: string[];
  duration_ms: number;
}

export interface TaskStartEvent {
  type: 'task_start';
  host: string;
  task: string;
  handler: boolean;
}

export interface TaskResultEvent {
  type: 'task_result';
  host: string;
  task: string;
  module: string;
  handler: boolean;
  status: TaskStatus;
  /** what happened or holds, in words ("main.cf already sets smtpd_tls_loglevel = 1") */
  msg: string;
  /** file changes (shown with --diff and in check mode) */
  diffs?: FileDiff[];
  /** loop item label, when the task loops */
  item?: string;
  /** set when a failure was ignored */
  ignored?: boolean;
  /** the task ran in check mode (nothing was changed) */
  check: boolean;
  duration_ms: number;
  /** task's source position "file:line:col" */
  at?: string;
}

/** Something the operator should know that is not a task result (drift, deprecated settings, a retry). */
export interface WarningEvent {
  type: 'warning';
  host?: string;
  msg: string;
}

export interface HostDoneEvent {
  type: 'host_done';
  host: string;
  counters: HostCounters;
  duration_ms: number;
}

export interface RecapEvent {
  type: 'recap';
  hosts: Record<string, HostCounters>;
  exit_code: number;
  duration_ms: number;
  /** per batch summaries of the run, in order */
  batches: Omit<BatchEndEvent, 'type'>[];
  /** hosts never started because the rollout stopped (max_fail_percentage, any_errors_fatal, canary, Ctrl-C) */
  not_run: string[];
  /** why the rollout stopped early, if it did */
  stopped?: string;
  retry_file?: string;
}

export type RunEvent =
  | RunStartEvent
  | PlayStartEvent
  | BatchStartEvent
  | BatchEndEvent
  | TaskStartEvent
  | TaskResultEvent
  | WarningEvent
  | HostDoneEvent
  | RecapEvent;

export type EventSink = (event: RunEvent) => void;

export function emptyCounters(): HostCounters {
  return { ok: 0, changed: 0, failed: 0, skipped: 0, unreachable: 0, ignored: 0, execs: 0, steps: 0 };
}

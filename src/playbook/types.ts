/** A playbook after loading and validation: plain data with source positions for messages. */
import type { SourcePos } from '../errors.js';

export interface Task {
  /** `name:` or, when absent, "<module>" */
  name: string;
  /** whether the name was given */
  named: boolean;
  /** canonical module name (`ansible.builtin.copy` → `copy`) */
  module: string;
  /** module arguments as written (templated per host at run time) */
  args: Record<string, unknown>;
  when?: unknown;
  notify: string[];
  tags: string[];
  register?: string;
  loop?: unknown;
  loopVar: string;
  changedWhen?: unknown;
  failedWhen?: unknown;
  ignoreErrors: boolean;
  noLog: boolean;
  /** `check_mode: false` runs the task for real in check mode; `true` plans only in a normal run */
  checkMode?: boolean;
  /** `diff: false` hides this task's diff */
  diff?: boolean;
  become?: boolean;
  becomeUser?: string;
  vars: Record<string, unknown>;
  /** handlers only: topics this handler also answers to */
  listen: string[];
  /** where the task starts in the playbook */
  pos: SourcePos;
  /** positions of keys inside the task (`args.dport`, `when`, …) for run-time messages */
  positions: Map<string, SourcePos>;
}

export type PlaySection = 'pre_tasks' | 'tasks' | 'post_tasks';

export interface Play {
  name: string;
  hosts: string;
  vars: Record<string, unknown>;
  varsFiles: string[];
  /** batch sizes as written: numbers or "25%" strings; the last one repeats */
  serial: (number | string)[];
  maxFailPercentage?: number;
  anyErrorsFatal: boolean;
  gatherFacts: boolean;
  become: boolean;
  becomeUser?: string;
  order: 'inventory' | 'sorted' | 'reverse_sorted' | 'shuffle';
  tags: string[];
  preTasks: Task[];
  tasks: Task[];
  postTasks: Task[];
  handlers: Task[];
  pos: SourcePos;
}

/** Every task of a play, handlers included, in the order the sections are written. */
export function allTasks(play: Play): Task[] {
  return [...play.preTasks, ...play.tasks, ...play.postTasks, ...play.handlers];
}

export interface Playbook {
  /** path as given */
  file: string;
  /** directory of the playbook (relative paths in it are relative to this) */
  dir: string;
  plays: Play[];
}

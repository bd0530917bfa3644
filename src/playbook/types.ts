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
  /** how `loop` is turned into items: `loop` as is, or an Ansible `with_<lookup>` */
  loopKind: LoopKind;
  /** `loop_control.index_var`: the item's index, from 0 */
  indexVar?: string;
  /** `loop_control.label`: what the output shows for an item (templated) */
  loopLabel?: string;
  /** `loop_control.pause`: seconds between items */
  loopPause?: number;
  /** `until`: retry the task until this holds (`retries` times, `delay` seconds apart) */
  until?: unknown;
  retries?: unknown;
  delay?: unknown;
  /** `delegate_to: localhost` (or `connection: local`): run this task on the controller */
  local: boolean;
  /**
   * `delegate_to` an inventory host (a name or a template, rendered with the task's variables): the module runs
   * there, over that host's connection, with this host's variables; results and notifications stay this host's
   */
  delegateTo?: string;
  /** `run_once`: only the first host of the batch runs it; the others get its result */
  runOnce: boolean;
  /** `environment:` for commands the task runs (templated) */
  environment: Record<string, unknown>;
  /** the role the task comes from (its defaults, vars and files) */
  role?: RoleRef;
  /** directory a relative include or fileglob of this task resolves in */
  dir: string;
  /** `block:` with `rescue:` and `always:` (children already carry what the block passes down) */
  block?: { block: Task[]; rescue: Task[]; always: Task[] };
  /** names enclosing includes define for this task (their loop variable, index and parameters) */
  scopeNames: string[];
  /** `include_tasks` / `include_role`: tasks loaded before the run, run per loop item when `when` holds */
  include?: {
    tasks: Task[];
    params: Record<string, unknown>;
    /** include_role with `public: true`: defaults and vars the play gets once the include has run */
    publish?: { defaults: Record<string, unknown>; vars: Record<string, unknown> };
    /** a templated file or role name, rendered per host (and loop item) at run time; `tasks` holds every candidate's */
    dynamic?: DynamicInclude;
  };
  /** where the task starts in the playbook */
  pos: SourcePos;
  /** positions of keys inside the task (`args.dport`, `when`, …) for run-time messages */
  positions: Map<string, SourcePos>;
}

/** An include_tasks / include_role whose name is a template (see playbook/includes.ts). */
export interface DynamicInclude {
  what: 'include_tasks' | 'include_role';
  /** the name as written */
  name: string;
  /** files or role directories loaded and checked before the run */
  checked: string[];
  /** what a host's rendered name includes, or why it cannot be included (not found, or a problem in it) */
  resolve(rendered: string): ResolvedInclude | string;
}

/** The tasks a rendered include name brings. */
export interface ResolvedInclude {
  tasks: Task[];
  /** handlers of an included role (the play's handlers gain them once it is included) */
  handlers: Task[];
  /** include_role with `public: true`: defaults and vars the play gets once it has run */
  publish?: { defaults: Record<string, unknown>; vars: Record<string, unknown> };
}

/** `loop`, or the `with_<lookup>` an Ansible task used (each turns its value into items its own way). */
export type LoopKind = 'loop' | 'items' | 'list' | 'dict' | 'fileglob' | 'together' | 'sequence' | 'subelements' | 'nested' | 'first_found';

/** A role as one of its tasks sees it. */
export interface RoleRef {
  name: string;
  /** the role's directory */
  dir: string;
  /** defaults/main.yml (lowest precedence) */
  defaults: Record<string, unknown>;
  /** vars/main.yml (above play vars) */
  vars: Record<string, unknown>;
  /** parameters given where the role is used (`roles: - role: x` with vars or other keys) */
  params: Record<string, unknown>;
  /** directories of the roles this one is a meta dependency of, nearest first (searched after its own) */
  dependents?: string[];
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
  /** defaults of every role of the play, merged in the order they are used (visible to the whole play) */
  roleDefaults: Record<string, unknown>;
  /** vars of every role of the play, merged in the order they are used */
  roleVars: Record<string, unknown>;
  /** `connection: local`: every task runs on the controller */
  local: boolean;
  /** `environment:` for every task's commands */
  environment: Record<string, unknown>;
  pos: SourcePos;
}

/** Every task of a play, handlers included, in the order the sections are written; blocks and includes opened. */
export function allTasks(play: Play): Task[] {
  return flatTasks([...play.preTasks, ...play.tasks, ...play.postTasks, ...play.handlers]);
}

/** The module tasks of a list, with the contents of blocks and includes in their place. */
export function flatTasks(tasks: Task[]): Task[] {
  const out: Task[] = [];
  for (const t of tasks) {
    if (t.block) out.push(...flatTasks([...t.block.block, ...t.block.rescue, ...t.block.always]));
    else if (t.include) out.push(...flatTasks(t.include.tasks));
    else out.push(t);
  }
  return out;
}

export interface Playbook {
  /** path as given */
  file: string;
  /** directory of the playbook (relative paths in it are relative to this) */
  dir: string;
  plays: Play[];
  /** what validate tells about the playbook besides problems (includes resolved per host at run time) */
  notes: string[];
}

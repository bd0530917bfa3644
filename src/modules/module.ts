/**
 * The module contract: a module turns arguments plus what it read from the host into a plan (reading only), and
 * applying the plan is a separate step. Check mode stops after `plan`, so one code path decides "changed".
 */
import type { Facts } from '../facts/types.js';
import type { ExecResult } from '../connection/connection.js';
import type { FromSchema, JSONSchema as TypedSchema } from 'json-schema-to-ts';

/** A JSON Schema object (draft 2020-12 subset that ajv understands). */
export type JSONSchema = Record<string, unknown>;

/**
 * A module's argument type, derived from its argument schema (written once, `as const`), so that the schema the
 * playbook is checked with and the type the module's code sees cannot drift apart. Argument schemas leave
 * `type: "object"` implicit (a module key always holds a mapping); the type adds it.
 */
export type ArgsOf<S extends TypedSchema> = FromSchema<S & { readonly type: 'object' }, { keepDefaultedPropertiesOptional: true }>;

/** What is known about a file on the host (cached per host for the run). */
export interface FileState {
  path: string;
  /** false when the path does not exist */
  exists: boolean;
  /** regular file / directory / other (symlinks are followed) */
  kind: 'file' | 'directory' | 'other' | null;
  /** content for regular files that were read with content; null when absent or only stat'ed */
  content: Buffer | null;
  /** sha256 hex of content, null when absent */
  sha: string | null;
  /** permission bits (e.g. 0o644), null when absent */
  mode: number | null;
  owner: string | null;
  group: string | null;
  uid: number | null;
  gid: number | null;
}

/** How to check a candidate file on the host before it replaces the real one. */
export interface Validation {
  /**
   * Shell fragment run on the host. `$CANDIDATE` is the path of a temporary file holding the new content (in the
   * same directory as the target), `$TARGET` the real path. Non-zero exit fails the change.
   */
  script: string;
  /** Also fail when stderr matches this extended regular expression (e.g. "warning:" for postconf). */
  failOnStderr?: string;
  /** Shown in messages: "postconf -n", "iptables-restore --test", the task's validate command. */
  description: string;
}

/** One file a plan writes. */
export interface FileChange {
  path: string;
  /** content before (null when the file does not exist yet) */
  before: Buffer | null;
  after: Buffer;
  /** sha256 of `before` when planned; apply refuses to write if the file changed since */
  beforeSha: string | null;
  /** permission bits for the file; default: keep the old file's, or 0644 for a new one */
  mode?: number;
  /** owner / group names; default: keep the old file's, or the remote user's for a new one */
  owner?: string;
  group?: string;
  /** checks the candidate on the host (in check mode too) */
  validate?: Validation[];
  /** keep a timestamped copy of the old file beside it */
  backup?: boolean;
}

/** A command a plan runs after its files are written. */
export interface RemoteCommand {
  /** shell fragment (arguments already quoted with shell-quote) */
  script: string;
  /** how it is shown: "restart postfix" */
  description: string;
  /**
   * The only paths this command can change (with what lies below them): the runner then forgets only what it
   * read of them, not everything. Leave it out for a command whose effect is not limited to named paths.
   */
  touches?: string[];
}

/** Data a task exposes to `register`, `changed_when`, `failed_when`. */
export type TaskData = Record<string, unknown>;

export type Plan =
  /** the state already holds; `msg` says which, in the present tense: "smtps/inet is enabled" */
  | { changed: false; msg: string; data?: TaskData; vars?: Record<string, unknown>; includedVars?: Record<string, unknown> }
  /** something must change; `msg` says what: "enable smtps/inet" */
  | {
      changed: true;
      msg: string;
      files: FileChange[];
      commands: RemoteCommand[];
      data?: TaskData;
      /** check mode cannot tell what running this would do: the task is reported skipped with this reason */
      unpredictable?: string;
    };

/** What happened when a plan was applied. */
export interface Outcome {
  changed: boolean;
  msg: string;
  /** a failure that is not an exception (a command that exited non-zero) */
  failed?: boolean;
  data?: TaskData;
  /** variables the task defines for the rest of the play on this host (set_fact) */
  vars?: Record<string, unknown>;
}

/** Everything a module may use while planning or applying. */
export interface TaskContext {
  /** inventory name */
  host: string;
  facts: Facts;
  /** all variables visible to the task (templated already) */
  vars: Record<string, unknown>;
  /** check mode: plan only */
  check: boolean;
  /** directory of the playbook file (for relative `src:` paths) */
  playbookDir: string;
  /** directory of the role the task comes from (its files/, templates/ and vars/ are searched first) */
  roleDir?: string;
  /** directory of the file the task is written in */
  taskDir?: string;
  /** read files on the host through the per-host cache (one exec for many files; prefetched when possible) */
  readFile(path: string): Promise<FileState>;
  /** stat files without reading content */
  statFile(path: string): Promise<FileState>;
  /**
   * Output of a read-only command (e.g. `postconf -d`), cached per host for the run under `key`.
   * Prefetchable like files.
   */
  readCommand(key: string, script: string, dependsOn?: string[]): Promise<ExecResult>;
  /**
   * run a script on the host (counts as an exec); become as the task asks. `touches`: the only paths it can
   * change (see RemoteCommand.touches); without it, everything read of the host is forgotten. `last`: this is the
   * task's last step and the task succeeds if and only if it exits 0 (the module decides nothing afterwards), so
   * the runner may put on the same step what must happen only once the task has succeeded. `thenRead`: after the
   * script, in the same step, read what the rest of the play will read (as the next read would after a command
   * that may have changed anything); kept only when `thenRead` accepts the script's own result, so that a script
   * that ended in a state the module will act on again (a rollback) leaves nothing read before it settled.
   */
  run(script: string, opts?: { timeoutMs?: number; touches?: string[]; last?: boolean; thenRead?: (r: ExecResult) => boolean }): Promise<ExecResult>;
  /** run validations of the given files on candidates in temporary files on the host (check mode and plan) */
  validate(files: FileChange[]): Promise<void>;
  /**
   * write files atomically (temp file in the same directory, mode/owner kept, fsync, rename, hash re-checked).
   * `behind`: the write may be queued (see write-behind.ts) and go in the task's next step, in front of it: that
   * step then runs only if the write succeeded, and a failed write fails the task with its own error.
   */
  writeFiles(files: FileChange[], opts?: { behind?: boolean }): Promise<void>;
  /** a new, separate connection to the host works right now */
  probeNewConnection(timeoutMs: number): Promise<void>;
  /** record something the recap should mention for this host (e.g. drift between file and live rules) */
  warn(message: string): void;
  /** files this run has changed on this host so far, with their original content (for rollback) */
  changedFiles(): ReadonlyMap<string, FileChange>;
}

/** What a module may prefetch: paths and read-only commands that plan will ask for. */
export interface Reads {
  files?: string[];
  stats?: string[];
  commands?: ReadCommand[];
}

/** A read-only command whose output plan uses, cached per host under `key`. */
export interface ReadCommand {
  key: string;
  script: string;
  /**
   * The host paths its output depends on, besides the kernel's state and running daemons' (`[]`: none): a
   * command limited to named paths (RemoteCommand.touches) then keeps the output unless it touched one of them.
   * Left out, the output is forgotten after any command.
   */
  dependsOn?: string[];
}

export interface Module<Args = Record<string, unknown>> {
  /** the playbook key, e.g. "master_cf" */
  name: string;
  /** one line for `provision modules` and the schema's description */
  description: string;
  /** JSON Schema of the arguments; merged into the playbook schema and checked before any connection */
  schema: JSONSchema;
  /** the argument a free-form string fills (`command: echo hi` → { cmd: "echo hi" }) */
  freeForm?: string;
  /** Ansible's other names for arguments (`dest` → `path`), renamed when the playbook is loaded */
  aliases?: Record<string, string>;
  /** runs on the controller only (no host access needed): assert, debug, smtp_probe */
  controllerOnly?: boolean;
  /** arguments that are expressions evaluated by the module itself, so the runner must not render them (assert's `that`) */
  raw?: string[];
  /** what plan will read, known from arguments alone; the runner fetches it in one exec for the whole play */
  reads?(args: Args, facts: Facts): Reads;
  /** checks that need the arguments only (after templating), e.g. relations schema cannot express */
  check?(args: Args): string | null;
  /**
   * Checks of a task that can be made from the host's current files before any task of the play runs (the
   * runner calls it right after the prefetch, for every task whose arguments are known then): a task that can
   * never succeed (unknown Postfix parameters) fails its host before anything is written. Reads only.
   */
  preflight?(ctx: TaskContext, args: Args): Promise<void>;
  plan(ctx: TaskContext, args: Args): Promise<Plan>;
  /**
   * True when `apply` does exactly what the default apply does for this plan (write its files, run its commands,
   * report `{ changed: true, msg: plan.msg }`), so the runner may queue it as the default one (write-behind).
   */
  defaultLikeApply?(plan: Extract<Plan, { changed: true }>): boolean;
  /** default: write the plan's files, then run its commands in order */
  apply?(ctx: TaskContext, plan: Extract<Plan, { changed: true }>, args: Args): Promise<Outcome>;
}

/** A module failure with a message for the user (not a bug): the task fails with `message`. */
export class ModuleError extends Error {
  override name = 'ModuleError';
  constructor(
    message: string,
    readonly data?: TaskData,
  ) {
    super(message);
  }
}

/**
 * Roles and task files, loaded with the playbook so that every task they bring is checked before any host is
 * touched. A role is found in roles/ beside the playbook, then in --roles-path, ANSIBLE_ROLES_PATH, roles_path of an
 * ansible.cfg beside the playbook, Ansible's default paths, and last the playbook's own directory. Its
 * meta/main.yml dependencies come first, and each role runs once per play (unless it allows duplicates or is given
 * other parameters), as in Ansible.
 */
import { existsSync, readFileSync, statSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { InputError } from '../errors.js';
import { importNameError, renderAtLoad } from './includes.js';
import { positionOf, readYamlFile, type Located } from './load.js';
import { isTemplated } from './template.js';
import type { RoleRef, Task } from './types.js';
import { inheritFrom, type Inherited, parseTaskList, Problems } from './validate.js';

/** What one play's loading shares between its files. */
export interface PlayLoad {
  playbookDir: string;
  /** the play's vars and the run's --extra-vars: what an import's templated name may use */
  vars: Record<string, unknown>;
  extraVars: Record<string, unknown>;
  /** what validate tells besides problems (see Playbook.notes) */
  notes: string[];
  /** directories roles are looked up in, in order */
  rolesPath: string[];
  /** handlers of the play's roles, in the order the roles are used */
  handlers: Task[];
  roleDefaults: Record<string, unknown>;
  roleVars: Record<string, unknown>;
  /** roles already used in the play (directory and parameters) */
  seenRoles: Set<string>;
}

/** Where a task list is being read. */
export interface LoadCtx {
  /** problems of the file being read (errors shared by the whole playbook) */
  p: Problems;
  /** directory relative includes resolve in */
  dir: string;
  role?: RoleRef;
  handler: boolean;
  inherit: Inherited;
  play: PlayLoad;
  depth: number;
  /** names enclosing includes define */
  scopeNames: string[];
  /** tasks of a file an include handler brings (they run with it, not notified one by one) */
  includedHandler?: boolean;
  /** directories of the roles whose meta dependency is being loaded, nearest first */
  dependents?: string[];
}

/** Keywords of a `roles:` entry; every other key is a parameter of the role. */
const ROLE_KEYWORDS = new Set(['role', 'name', 'vars', 'tags', 'when', 'become', 'become_user', 'ignore_errors', 'no_log', 'environment', 'delegate_to', 'connection', 'run_once', 'check_mode', 'diff']);

/** Ansible's default roles_path after what the user configured. */
function defaultRolesPath(): string[] {
  return [path.join(os.homedir(), '.ansible', 'roles'), '/usr/share/ansible/roles', '/etc/ansible/roles'];
}

/** roles_path in the [defaults] section of an ansible.cfg (INI), relative paths resolved beside the file. */
export function rolesPathFromCfg(file: string): string[] {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch {
    return [];
  }
  let section = '';
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (!line || line.startsWith('#') || line.startsWith(';')) continue;
    const sec = /^\[(.+)\]$/.exec(line);
    if (sec) {
      section = sec[1]!.trim();
      continue;
    }
    const kv = /^roles_path\s*[=:]\s*(.*)$/.exec(line);
    if (section === 'defaults' && kv) return splitPath(kv[1]!.replace(/\s+[#;].*$/, ''), path.dirname(file));
  }
  return [];
}

function splitPath(v: string, base: string): string[] {
  return v
    .split(':')
    .map((s) => s.trim())
    .filter(Boolean)
    .map((s) => path.resolve(base, s.replace(/^~(?=$|\/)/, os.homedir())));
}

/** Every directory a role name is looked up in, in order. */
export function rolesPathFor(playbookDir: string, cli: string[], env: NodeJS.ProcessEnv = process.env): string[] {
  return [
    path.join(playbookDir, 'roles'),
    ...cli.flatMap((c) => splitPath(c, process.cwd())),
    ...(env.ANSIBLE_ROLES_PATH ? splitPath(env.ANSIBLE_ROLES_PATH, process.cwd()) : []),
    ...rolesPathFromCfg(path.join(playbookDir, 'ansible.cfg')),
    ...defaultRolesPath(),
    playbookDir,
  ];
}

function isDir(p: string): boolean {
  try {
    return statSync(p).isDirectory();
  } catch {
    return false;
  }
}

/** The directory of role `name`, or null. A name with a slash is a path (relative to the playbook). */
export function findRole(name: string, rolesPath: string[], playbookDir: string): string | null {
  if (name.includes('/')) {
    const p = path.resolve(playbookDir, name);
    return isDir(p) ? p : null;
  }
  for (const dir of rolesPath) {
    const p = path.join(dir, name);
    if (isDir(p)) return p;
  }
  return null;
}

/** `dir/sub/main.yml`, `.yaml` or without extension, as Ansible looks for them; null when there is none. */
export function roleFile(dir: string, sub: string, base = 'main'): string | null {
  const names = /\.ya?ml$/.test(base) ? [base] : [`${base}.yml`, `${base}.yaml`, base];
  for (const n of names) {
    const p = path.join(dir, sub, n);
    try {
      if (statSync(p).isFile()) return p;
    } catch {
      continue;
    }
  }
  return null;
}

/** A mapping file of a role; `floats` for variables (defaults, vars), which keep a whole float a float. */
function readMapping(file: string, ctx: LoadCtx, what: string, floats = false): Record<string, unknown> {
  const loc = readYamlFile(file, what, { floats });
  if (loc.value === null) return {};
  if (typeof loc.value !== 'object' || Array.isArray(loc.value)) {
    ctx.p.addAt(`${what} must be a mapping of variables`, positionOf(loc, ''));
    return {};
  }
  return loc.value as Record<string, unknown>;
}

function readChecked(file: string, ctx: LoadCtx, what: string): Located | null {
  try {
    return readYamlFile(file, what);
  } catch (e) {
    if (e instanceof InputError) {
      ctx.p.errors.push(e);
      return null;
    }
    throw e;
  }
}

/**
 * The tasks of a task file named by import_tasks / include_tasks: inside a role relative to its tasks/, else to
 * the including file's directory, then the playbook's.
 */
export function loadIncludedTasks(name: string, ptr: string, ctx: LoadCtx): Task[] | null {
  const bases = path.isAbsolute(name) ? [''] : [ctx.dir, ...(ctx.role ? [path.join(ctx.role.dir, 'tasks')] : []), ctx.play.playbookDir];
  const file = bases.map((b) => path.resolve(b, name)).find((f) => existsSync(f) && statSync(f).isFile());
  if (!file) {
    ctx.p.add(`task file ${name} not found (looked in ${[...new Set(bases)].join(', ')})`, ptr);
    return null;
  }
  return tasksOfFile(file, ctx, ctx.role);
}

export function tasksOfFile(file: string, ctx: LoadCtx, role: RoleRef | undefined, handler = ctx.handler): Task[] | null {
  const loc = readChecked(file, ctx, handler ? 'handlers file' : 'task file');
  if (!loc) return null;
  if (loc.value === null) return [];
  if (!Array.isArray(loc.value)) {
    ctx.p.errors.push(new InputError(`${handler ? 'a handlers' : 'a task'} file is a list of ${handler ? 'handlers' : 'tasks'}`, positionOf(loc, '')));
    return null;
  }
  const inner: LoadCtx = { ...ctx, p: new Problems(loc, ctx.p.errors), dir: path.dirname(file), role, handler };
  return parseTaskList(loc.value, '', inner);
}

export interface RoleOptions {
  tasksFrom?: string;
  varsFrom?: string;
  defaultsFrom?: string;
  handlersFrom?: string;
  /** include_role and import_role run a role again when asked; `roles:` only with allow_duplicates */
  allowDuplicates?: boolean;
  /**
   * Where the role's (and its dependencies') defaults and vars go instead of the play: an include_role's, which
   * Ansible keeps to the role's own tasks (public: false) or gives the play once the include has run (public: true).
   */
  sink?: RoleVars;
}

/** Defaults and vars of roles, merged in the order the roles are used. */
export interface RoleVars {
  defaults: Record<string, unknown>;
  vars: Record<string, unknown>;
}

/**
 * The tasks of one role as used in a play (`roles:` entry, import_role or include_role), its dependencies' first;
 * its handlers, defaults and vars join the play. Null when it cannot be loaded (the problem is recorded).
 */
export function loadRoleEntry(entry: unknown, ptr: string, ctx: LoadCtx, opts: RoleOptions = {}): Task[] | null {
  const e = typeof entry === 'string' ? { role: entry } : entry;
  if (!e || typeof e !== 'object' || Array.isArray(e)) {
    ctx.p.add('a role is a name or a mapping with "role:"', ptr);
    return null;
  }
  const r = e as Record<string, unknown>;
  const given = r.role ?? r.name;
  if (typeof given !== 'string' || !given) {
    ctx.p.add('a role entry needs "role:" with the role\'s name', ptr);
    return null;
  }
  let name = given;
  if (isTemplated(name)) {
    // A role of `roles:` or import_role is chosen while the playbook loads, as Ansible chooses it.
    const rendered = renderAtLoad(name, ctx);
    if ('error' in rendered) {
      ctx.p.add(importNameError('role', name, rendered.error), ptr);
      return null;
    }
    name = rendered.value;
  }
  if (ctx.depth > 20) {
    ctx.p.add(`role ${name}: dependencies nested more than 20 deep (a cycle?)`, ptr);
    return null;
  }
  const dir = findRole(name, ctx.play.rolesPath, ctx.play.playbookDir);
  if (!dir) {
    ctx.p.add(`role "${name}" not found (looked in ${ctx.play.rolesPath.join(', ')})`, ptr);
    return null;
  }
  const params: Record<string, unknown> = { ...((r.vars && typeof r.vars === 'object' ? r.vars : {}) as Record<string, unknown>) };
  for (const [k, v] of Object.entries(r)) if (!ROLE_KEYWORDS.has(k)) params[k] = v;

  const metaFile = roleFile(dir, 'meta');
  const meta = metaFile ? readMapping(metaFile, ctx, `meta file of role ${name}`) : {};
  const key = `${dir}\0${JSON.stringify(params)}\0${opts.tasksFrom ?? ''}`;
  const duplicatesAllowed = opts.allowDuplicates === true || meta.allow_duplicates === true;
  if (ctx.play.seenRoles.has(key) && !duplicatesAllowed) return [];
  ctx.play.seenRoles.add(key);

  const inherit = inheritFrom(ctx.inherit, r);
  const defaultsFile = roleFile(dir, 'defaults', opts.defaultsFrom);
  const varsFile = roleFile(dir, 'vars', opts.varsFrom);
  const role: RoleRef = {
    name: path.basename(dir),
    dir,
    defaults: defaultsFile ? readMapping(defaultsFile, ctx, `defaults of role ${name}`, true) : {},
    vars: varsFile ? readMapping(varsFile, ctx, `vars of role ${name}`, true) : {},
    params,
    ...(ctx.dependents?.length ? { dependents: ctx.dependents } : {}),
  };
  if (opts.defaultsFrom && !defaultsFile) ctx.p.add(`role ${name} has no defaults file ${opts.defaultsFrom}`, ptr);
  if (opts.varsFrom && !varsFile) ctx.p.add(`role ${name} has no vars file ${opts.varsFrom}`, ptr);
  // roles: and import_role: the play sees the role's defaults and vars from its start, as Ansible exposes them when
  // it parses the playbook. An include_role's stay with it (see RoleOptions.sink).
  if (!opts.sink) {
    Object.assign(ctx.play.roleDefaults, role.defaults);
    Object.assign(ctx.play.roleVars, role.vars);
  }
  const depVars: RoleVars | undefined = opts.sink ? { defaults: {}, vars: {} } : undefined;

  // Dependencies run first, with what encloses this role (its when and tags too, as Ansible passes them down).
  const out: Task[] = [];
  const deps = meta.dependencies;
  if (deps !== undefined && deps !== null && !Array.isArray(deps)) ctx.p.add(`role ${name}: meta dependencies must be a list`, ptr);
  if (Array.isArray(deps)) {
    deps.forEach((d, i) => {
      const depCtx: LoadCtx = { ...ctx, inherit, depth: ctx.depth + 1, role: undefined, dependents: [dir, ...(ctx.dependents ?? [])] };
      const tasks = loadRoleEntry(d, ptr, depCtx, depVars ? { sink: depVars } : {});
      if (tasks === null) ctx.p.add(`role ${name}: dependency ${i + 1} could not be loaded`, ptr);
      out.push(...(tasks ?? []));
    });
  }
  if (opts.sink && depVars) {
    // A private role's tasks still see its dependencies' defaults and vars below its own, as Ansible's role does.
    role.defaults = { ...depVars.defaults, ...role.defaults };
    role.vars = { ...depVars.vars, ...role.vars };
    Object.assign(opts.sink.defaults, role.defaults);
    Object.assign(opts.sink.vars, role.vars);
  }
  const roleCtx: LoadCtx = { ...ctx, inherit, role, dir: path.join(dir, 'tasks'), depth: ctx.depth + 1, dependents: undefined };
  const tasksFile = roleFile(dir, 'tasks', opts.tasksFrom);
  if (opts.tasksFrom && !tasksFile) ctx.p.add(`role ${name} has no tasks file ${opts.tasksFrom}`, ptr);
  if (tasksFile) out.push(...(tasksOfFile(tasksFile, roleCtx, role, false) ?? []));
  const handlersFile = roleFile(dir, 'handlers', opts.handlersFrom);
  if (handlersFile) {
    const hctx: LoadCtx = { ...roleCtx, inherit: { ...inherit, when: [] }, dir: path.join(dir, 'handlers') };
    ctx.play.handlers.push(...(tasksOfFile(handlersFile, hctx, role, true) ?? []));
  }
  return out;
}

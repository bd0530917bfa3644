/**
 * Include and import names with templates. An import is resolved while the playbook loads, so its name may use
 * only what is known then: play vars, the enclosing role's variables and --extra-vars (Ansible refuses facts and
 * inventory variables there too). An include_tasks / include_role name is rendered per host (and loop item) at
 * run time; before the run, every file or role the name could match is loaded and checked, and the name is
 * rendered from play variables where it can be, so that a file it names for certain is known to exist.
 */
import { existsSync, readdirSync, statSync } from 'node:fs';
import path from 'node:path';
import type { InputError } from '../errors.js';
import { findRole, type LoadCtx, loadRoleEntry, type RoleVars, tasksOfFile } from './roles.js';
import { mergeVars, renderString, TemplateError, UndefinedVariableError } from './template.js';
import type { DynamicInclude, ResolvedInclude, Task } from './types.js';
import { Problems } from './validate.js';

/**
 * Variables known while the playbook loads, by Ansible's precedence (what a static import's name may use).
 * `defaults`: with role defaults, which an import may use but which an inventory variable could override on a host.
 */
export function loadTimeVars(ctx: LoadCtx, own: Record<string, unknown> = {}, defaults = true): Record<string, unknown> {
  const role = ctx.role;
  return mergeVars([
    { vars: defaults ? ctx.play.roleDefaults : {}, lazy: true },
    { vars: defaults ? (role?.defaults ?? {}) : {}, lazy: true },
    { vars: ctx.play.vars, lazy: true },
    { vars: ctx.play.roleVars, lazy: true },
    { vars: role?.vars ?? {}, lazy: true },
    { vars: role?.params ?? {}, lazy: true },
    { vars: ctx.inherit.vars, lazy: true },
    { vars: own, lazy: true },
    { vars: ctx.play.extraVars, lazy: true },
    { vars: { playbook_dir: ctx.play.playbookDir, ...(role ? { role_path: role.dir, role_name: role.name } : {}) }, lazy: false },
  ]);
}

/** A name rendered with what is known at load time, or why it cannot be (a variable only a host has). */
export function renderAtLoad(name: string, ctx: LoadCtx, own: Record<string, unknown> = {}, defaults = true): { value: string } | { error: string } {
  try {
    const v = renderString(name, loadTimeVars(ctx, own, defaults));
    if (typeof v !== 'string' || !v) return { error: `it renders to ${JSON.stringify(v)}, not a name` };
    return { value: v };
  } catch (e) {
    if (e instanceof UndefinedVariableError || e instanceof TemplateError) return { error: e.message };
    throw e;
  }
}

/** The message of a static import whose name cannot be rendered before the run. */
export function importNameError(what: string, name: string, why: string): string {
  return (
    `${what} "${name}": ${why}. An import is resolved before the run, so its name may use play vars, the role's ` +
    `variables and --extra-vars, not facts or inventory variables: use ${what === 'import_tasks' ? 'include_tasks' : 'include_role'} to choose per host`
  );
}

/**
 * A templated name as a pattern over names in one directory: each template matches any run of characters but
 * a slash. Null when the name has no fixed text besides a .yml/.yaml ending (it could be any file), or when a
 * template is in a directory part.
 */
export function namePattern(name: string): { dir: string; re: RegExp } | null {
  const parts = name.split(/(\{\{[\s\S]*?\}\}|\{%[\s\S]*?%\})/);
  const literal = parts.filter((_, i) => i % 2 === 0).join('');
  if (!literal.replace(/\.ya?ml$/, '').replace(/\//g, '').trim()) return null;
  const slash = name.lastIndexOf('/');
  if (slash >= 0 && /\{\{|\{%/.test(name.slice(0, slash))) return null;
  const base = slash >= 0 ? name.slice(slash + 1) : name;
  const re = base
    .split(/(\{\{[\s\S]*?\}\}|\{%[\s\S]*?%\})/)
    .map((p, i) => (i % 2 === 1 ? '[^/]*' : p.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')))
    .join('');
  return { dir: slash >= 0 ? name.slice(0, slash) : '', re: new RegExp(`^${re}$`) };
}

/** Entries of `dir` whose name matches, files or directories; none when `dir` cannot be read. */
function matching(dir: string, re: RegExp, want: 'file' | 'dir'): string[] {
  let names: string[];
  try {
    names = readdirSync(dir).sort();
  } catch {
    return [];
  }
  return names
    .filter((n) => re.test(n))
    .map((n) => path.join(dir, n))
    .filter((p) => {
      try {
        const st = statSync(p);
        return want === 'file' ? st.isFile() : st.isDirectory();
      } catch {
        return false;
      }
    });
}

/** Where include_tasks / import_tasks look for a relative file: the including file's directory, the role's tasks/, the playbook's. */
export function taskFileBases(ctx: LoadCtx): string[] {
  return [...new Set([ctx.dir, ...(ctx.role ? [path.join(ctx.role.dir, 'tasks')] : []), ctx.play.playbookDir])];
}

/** The first of `bases` that holds `name` as a file. */
export function findTaskFile(name: string, bases: string[]): string | null {
  if (path.isAbsolute(name)) return existsSync(name) && statSync(name).isFile() ? name : null;
  return bases.map((b) => path.resolve(b, name)).find((f) => existsSync(f) && statSync(f).isFile()) ?? null;
}

/** One line for the errors found loading a file at run time (the first few, with their positions). */
function errorsLine(errors: InputError[]): string {
  const shown = errors.slice(0, 3).map((e) => e.message);
  return `${shown.join('; ')}${errors.length > 3 ? ` (and ${errors.length - 3} more)` : ''}`;
}

/**
 * An include_tasks / include_role whose name is a template: every file or role it could name is loaded now
 * (problems in them are the playbook's), and `resolve` finds the one a host's rendered name names at run time,
 * loading it then if it was not among them. `checked`: the files or roles loaded now.
 */
export function dynamicInclude(
  what: 'include_tasks' | 'include_role',
  name: string,
  argPtr: string,
  ctx: LoadCtx,
  own: Record<string, unknown>,
  role: { options: Parameters<typeof loadRoleEntry>[3]; publish: boolean } | null,
): { include: DynamicInclude; tasks: Task[]; checked: string[] } {
  const cache = new Map<string, ResolvedInclude>();
  const load = (target: string, p: Problems): ResolvedInclude | null => {
    const lctx: LoadCtx = { ...ctx, p };
    if (what === 'include_tasks') {
      const tasks = tasksOfFile(target, lctx, ctx.role);
      return tasks ? { tasks, handlers: [] } : null;
    }
    const sink: RoleVars = { defaults: {}, vars: {} };
    const before = ctx.play.handlers.length;
    const tasks = loadRoleEntry({ role: target }, argPtr, lctx, { ...role!.options, sink });
    if (!tasks) return null;
    return { tasks, handlers: ctx.play.handlers.slice(before), ...(role!.publish ? { publish: sink } : {}) };
  };
  const bases = taskFileBases(ctx);
  const locate = (rendered: string): { target: string } | { missing: string } => {
    if (what === 'include_tasks') {
      const f = findTaskFile(rendered, bases);
      return f ? { target: f } : { missing: `task file ${rendered} not found (looked in ${bases.join(', ')})` };
    }
    const d = findRole(rendered, ctx.play.rolesPath, ctx.play.playbookDir);
    return d ? { target: d } : { missing: `role "${rendered}" not found (looked in ${ctx.play.rolesPath.join(', ')})` };
  };

  // Before the run: the files (or roles) the name could match, each loaded and checked with the playbook.
  const checked: string[] = [];
  const pattern = namePattern(name);
  if (pattern) {
    const dirs = what === 'include_tasks' ? bases.map((b) => path.resolve(b, pattern.dir)) : ctx.play.rolesPath;
    const seen = new Set<string>();
    for (const dir of dirs) {
      for (const found of matching(dir, pattern.re, what === 'include_tasks' ? 'file' : 'dir')) {
        const key = what === 'include_tasks' ? found : path.basename(found);
        if (seen.has(key)) continue;
        seen.add(key);
        // A role directory earlier on the roles path hides one of the same name later, as findRole does.
        const target = what === 'include_tasks' ? found : findRole(key, ctx.play.rolesPath, ctx.play.playbookDir);
        if (!target || cache.has(target)) continue;
        const r = load(what === 'include_tasks' ? target : key, ctx.p);
        if (r) cache.set(target, r);
        checked.push(target);
      }
    }
  }
  // A name that play variables already decide must name something that exists (role defaults do not decide: an
  // inventory variable may override them on a host).
  const atLoad = renderAtLoad(name, ctx, own, false);
  if ('value' in atLoad) {
    const where = locate(atLoad.value);
    if ('missing' in where) ctx.p.add(`${what} "${name}" renders to "${atLoad.value}" from play variables: ${where.missing}`, argPtr);
    else if (!cache.has(where.target)) {
      const r = load(what === 'include_tasks' ? where.target : atLoad.value, ctx.p);
      if (r) cache.set(where.target, r);
      checked.push(where.target);
    }
  }

  const include: DynamicInclude = {
    what,
    name,
    checked,
    resolve(rendered) {
      const where = locate(rendered);
      if ('missing' in where) return where.missing;
      const hit = cache.get(where.target);
      if (hit) return hit;
      // Not among the files checked before the run (the name rendered to something no pattern foresaw): load and
      // check it now; a problem in it fails the host that needed it.
      const errors: InputError[] = [];
      const r = load(what === 'include_tasks' ? where.target : rendered, new Problems(ctx.p.loc, errors));
      if (!r || errors.length) return errors.length ? errorsLine(errors) : `${where.target} could not be loaded`;
      cache.set(where.target, r);
      return r;
    },
  };
  return { include, tasks: [...cache.values()].flatMap((r) => r.tasks), checked };
}

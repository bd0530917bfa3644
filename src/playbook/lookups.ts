/**
 * Lookups as Ansible runs them: on the controller, while a template renders. `env`, `file`, `template`, `pipe`,
 * `password` and `first_found`; any other name is refused. Relative paths of `file` and `template` are looked up
 * in the playbook directory's files/ (templates/ for `template`) and then in the playbook directory, as Ansible
 * does for a playbook without roles; `first_found` searches the task's whole search path (see searchFile).
 */
import { execFileSync } from 'node:child_process';
import { randomInt } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import type { Task } from './types.js';

/** A lookup that cannot run (message already says which and why). */
export class LookupError extends Error {
  override name = 'LookupError';
}

export interface LookupContext {
  playbookDir: string;
  /** Ansible's ansible_search_path of the task: its role directories, its file's directory, the playbook's */
  searchPath?: string[];
  /** render a template file's text with the current variables */
  render(text: string): string;
}

export const LOOKUP_NAMES: readonly string[] = ['env', 'file', 'template', 'pipe', 'password', 'first_found'];

function find(ctx: LookupContext, term: string, folder: 'files' | 'templates'): string {
  const candidates = path.isAbsolute(term) ? [term] : [path.join(ctx.playbookDir, folder, term), path.join(ctx.playbookDir, term)];
  const found = candidates.find((c) => {
    try {
      return statSync(c).isFile();
    } catch {
      return false;
    }
  });
  if (!found) throw new LookupError(`could not find "${term}" (looked in ${candidates.join(', ')})`);
  return found;
}

const PASSWORD_CHARS: Record<string, string> = {
  ascii_letters: 'abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ',
  ascii_lowercase: 'abcdefghijklmnopqrstuvwxyz',
  ascii_uppercase: 'ABCDEFGHIJKLMNOPQRSTUVWXYZ',
  digits: '0123456789',
  hexdigits: '0123456789abcdefABCDEF',
  octdigits: '01234567',
  punctuation: '!"#$%&\'()*+,-./:;<=>?@[\\]^_`{|}~',
};

/**
 * `lookup('password', 'path length=N chars=…')`: the password stored in the controller file, or a new random one
 * written there (mode 0600) the first time; `/dev/null` gives a new one every time and stores nothing.
 */
function password(ctx: LookupContext, term: string, kw: Record<string, unknown>): string {
  const [file, ...params] = term.trim().split(/\s+/);
  const opts: Record<string, string> = {};
  for (const p of params) {
    const eq = p.indexOf('=');
    if (eq < 0) throw new LookupError(`password: expected key=value, got "${p}"`);
    opts[p.slice(0, eq)] = p.slice(eq + 1);
  }
  for (const [k, v] of Object.entries(kw)) opts[k] = String(v);
  for (const k of Object.keys(opts)) {
    if (!['length', 'chars'].includes(k)) throw new LookupError(`password: the "${k}" option is not supported (length and chars are)`);
  }
  const length = Number(opts.length ?? 20);
  if (!Number.isInteger(length) || length < 1) throw new LookupError(`password: length must be a positive integer, got "${opts.length}"`);
  const sets = (opts.chars ?? 'ascii_letters,digits,.,:-_').split(',');
  const alphabet = [...new Set(sets.map((c) => PASSWORD_CHARS[c] ?? c).join(''))].join('');
  const make = () => Array.from({ length }, () => alphabet[randomInt(alphabet.length)]).join('');
  if (!file) throw new LookupError('password: a file name is required');
  if (file === '/dev/null') return make();
  const where = path.isAbsolute(file) ? file : path.join(ctx.playbookDir, file);
  if (existsSync(where)) {
    const text = readFileSync(where, 'utf8').replace(/\n$/, '');
    // A file written with a salt keeps it after the password: "secret salt=…".
    return text.split(' salt=')[0]!;
  }
  const value = make();
  mkdirSync(path.dirname(where), { recursive: true, mode: 0o700 });
  writeFileSync(where, `${value}\n`, { mode: 0o600 });
  return value;
}

function one(ctx: LookupContext, name: string, term: string, kw: Record<string, unknown>): unknown {
  switch (name) {
    case 'env':
      return process.env[term] ?? (kw.default !== undefined ? kw.default : '');
    case 'file': {
      const text = readFileSync(find(ctx, term, 'files'), 'utf8');
      return kw.rstrip === false ? text : text.trimEnd();
    }
    case 'template':
      return ctx.render(readFileSync(find(ctx, term, 'templates'), 'utf8'));
    case 'pipe':
      try {
        return execFileSync('/bin/sh', ['-c', term], { cwd: ctx.playbookDir, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], timeout: 60_000 }).trimEnd();
      } catch (e) {
        const err = e as { status?: number; stderr?: string };
        throw new LookupError(`pipe: "${term}" exited with ${err.status ?? 'an error'}${err.stderr ? `: ${String(err.stderr).trim().split('\n')[0]}` : ''}`);
      }
    case 'password':
      return password(ctx, term, kw);
    default:
      throw new LookupError(`lookup plugin "${name}" is not supported (supported: ${LOOKUP_NAMES.join(', ')})`);
  }
}

/**
 * Ansible's ansible_search_path for a task: its role's directory (then, for a meta dependency, the directories of
 * the roles that depend on it, nearest first), the directory of the file the task is written in, then the
 * playbook's directory.
 */
export function searchPathOf(task: Pick<Task, 'role' | 'dir'>, playbookDir: string): string[] {
  return [...new Set([...(task.role ? [task.role.dir, ...(task.role.dependents ?? [])] : []), task.dir, playbookDir])];
}

function isFile(p: string): boolean {
  try {
    return statSync(p).isFile();
  } catch {
    return false;
  }
}

/** A directory that looks like a role, or a role's tasks/ (Ansible's test before it adds a role's own sub-folders). */
function roleLike(dir: string): boolean {
  const mains = (d: string) => ['main.yml', 'main.yaml', 'main'].some((m) => existsSync(path.join(d, m)));
  return mains(dir) || mains(path.join(dir, 'tasks')) || mains(path.join(dir, 'meta')) || mains(path.join(path.dirname(dir), 'tasks'));
}

/**
 * Every place a relative `file` is looked for, in Ansible's order (its path_dwim_relative_stack, as Ansible 2.14
 * prints it at -vvvvv): for each directory of the search path, `dir/subdir/file` then `dir/file` (a directory
 * inside a role's tasks/ tries the role's `subdir/` and that tasks/ folder instead), and last the playbook
 * directory the same way. `subdir` is left out when the name already starts with it.
 */
export function searchCandidates(searchPath: string[], playbookDir: string, subdir: string, file: string): string[] {
  if (path.isAbsolute(file)) return [file];
  const withSub = file.split('/')[0] !== subdir;
  const out: string[] = [];
  for (const dir of searchPath) {
    const parent = path.dirname(dir);
    if (roleLike(dir) && parent.endsWith('/tasks')) out.push(path.join(path.dirname(parent), subdir, file), path.join(parent, file));
    else out.push(...(withSub ? [path.join(dir, subdir, file)] : []), path.join(dir, file));
  }
  out.push(...(withSub ? [path.join(playbookDir, subdir, file)] : []), path.join(playbookDir, file));
  return [...new Set(out)];
}

/** The first of searchCandidates that is a file, or null. */
export function searchFile(searchPath: string[], playbookDir: string, subdir: string, file: string): string | null {
  return searchCandidates(searchPath, playbookDir, subdir, file).find(isFile) ?? null;
}

function splitOn(v: unknown, seps: RegExp): string[] {
  const list = Array.isArray(v) ? v : v === undefined || v === null ? [] : [v];
  return list.flatMap((x) => String(x).split(seps)).map((x) => x.trim()).filter(Boolean);
}

/**
 * The names first_found tries, in order, from its terms as Ansible 2.14 reads them: a string is a name (used as
 * it is); a mapping gives `files` (split on , and ;) joined under each of its `paths` (split on , : and ;), or the
 * files alone; a list is read term by term. The `skip` of the last mapping (or of the keywords) wins.
 */
export function firstFoundNames(terms: unknown[], kw: Record<string, unknown>): { names: string[]; skip: boolean } {
  let names: string[] = [];
  let skip = kw.skip === true;
  const walk = (list: unknown[]) => {
    for (const term of list) {
      if (Array.isArray(term)) {
        walk(term);
        continue;
      }
      if (term && typeof term === 'object') {
        const o = term as Record<string, unknown>;
        for (const k of Object.keys(o)) if (!['files', 'paths', 'skip'].includes(k)) throw new LookupError(`first_found: unknown option "${k}" (files, paths and skip are)`);
        const files = splitOn(o.files, /[,;]/);
        const paths = splitOn(o.paths, /[,:;]/);
        skip = o.skip === true || o.skip === 'yes' || o.skip === 'true';
        // As in Ansible, a mapping's files replace the names gathered so far, unless it gives paths.
        if (paths.length) for (const p of paths) for (const f of files) names.push(path.join(p, f));
        else if (files.length) names = files;
        continue;
      }
      if (typeof term !== 'string') throw new LookupError(`first_found: a term is a name, a list or a mapping, got ${JSON.stringify(term)}`);
      // A name with keywords files=/paths= joins them the same way; without them it is used as it is.
      const files = splitOn(kw.files, /[,;]/);
      const paths = splitOn(kw.paths, /[,:;]/);
      if (paths.length) for (const p of paths) for (const f of files) names.push(path.join(p, f));
      else if (files.length) names = files;
      else names.push(term);
    }
  };
  walk(terms);
  return { names, skip };
}

/**
 * first_found: the first name found on the task's search path (`subdir`: files/ for a lookup in a template; the
 * module's folder for with_first_found), as an absolute path; none found is an error unless `skip` (then no
 * value).
 */
export function firstFound(ctx: LookupContext, terms: unknown[], kw: Record<string, unknown>, subdir = 'files'): string[] {
  for (const k of Object.keys(kw)) if (!['files', 'paths', 'skip', 'errors'].includes(k)) throw new LookupError(`first_found: unknown option "${k}" (files, paths, skip and errors are)`);
  const { names, skip } = firstFoundNames(terms, kw);
  for (const name of names) {
    const found = searchFile(ctx.searchPath ?? [], ctx.playbookDir, subdir, name);
    if (found) return [found];
  }
  if (skip) return [];
  throw new LookupError(`no file was found (tried ${names.map((n) => `"${n}"`).join(', ') || 'no names'} in ${subdir}/ and beside the tasks of ${[...(ctx.searchPath ?? []), ctx.playbookDir].filter((d, i, a) => a.indexOf(d) === i).join(', ')})`);
}

/**
 * `lookup(name, terms…)` gives its values joined with commas (one value stays as it is); `query`/`q`, or
 * `wantlist=True`, give a list.
 */
export function runLookup(ctx: LookupContext, name: string, terms: unknown[], kw: Record<string, unknown>, list: boolean): unknown {
  if (!LOOKUP_NAMES.includes(name)) throw new LookupError(`lookup plugin "${name}" is not supported (supported: ${LOOKUP_NAMES.join(', ')})`);
  const { wantlist, ...rest } = kw;
  if (name === 'first_found') {
    const { errors, ...opts } = rest;
    let found: string[];
    try {
      found = firstFound(ctx, terms, opts);
    } catch (e) {
      // errors='ignore' (or 'warn'): Ansible gives no value instead of failing.
      if (e instanceof LookupError && (errors === 'ignore' || errors === 'warn')) return list || wantlist === true ? [] : '';
      throw e;
    }
    if (list || wantlist === true || found.length === 0) return found;
    return found[0];
  }
  const values = terms.flatMap((t) => (Array.isArray(t) ? t : [t])).map((t) => one(ctx, name, String(t), rest));
  if (list || wantlist === true) return values;
  return values.length === 1 ? values[0] : values.map(String).join(',');
}

/**
 * Lookups as Ansible runs them: on the controller, while a template renders. `env`, `file`, `template`, `pipe`
 * and `password`; any other name is refused. Relative paths are looked up in the playbook directory's files/
 * (templates/ for `template`) and then in the playbook directory, as Ansible does for a playbook without roles.
 */
import { execFileSync } from 'node:child_process';
import { randomInt } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';

/** A lookup that cannot run (message already says which and why). */
export class LookupError extends Error {
  override name = 'LookupError';
}

export interface LookupContext {
  playbookDir: string;
  /** render a template file's text with the current variables */
  render(text: string): string;
}

export const LOOKUP_NAMES: readonly string[] = ['env', 'file', 'template', 'pipe', 'password'];

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
 * `lookup(name, terms…)` gives its values joined with commas (one value stays as it is); `query`/`q`, or
 * `wantlist=True`, give a list.
 */
export function runLookup(ctx: LookupContext, name: string, terms: unknown[], kw: Record<string, unknown>, list: boolean): unknown {
  if (!LOOKUP_NAMES.includes(name)) throw new LookupError(`lookup plugin "${name}" is not supported (supported: ${LOOKUP_NAMES.join(', ')})`);
  const { wantlist, ...rest } = kw;
  const values = terms.flatMap((t) => (Array.isArray(t) ? t : [t])).map((t) => one(ctx, name, String(t), rest));
  if (list || wantlist === true) return values;
  return values.length === 1 ? values[0] : values.map(String).join(',');
}

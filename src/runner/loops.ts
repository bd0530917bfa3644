/**
 * A task's loop as items, after its value was templated: `loop:` as is, or what Ansible's `with_<lookup>` makes
 * of its terms (with_items flattens one level, with_dict makes {key, value} pairs, …).
 */
import { readdirSync, statSync } from 'node:fs';
import path from 'node:path';
import { ModuleError } from '../modules/module.js';
import { parseKv } from '../playbook/kv.js';
import { firstFound, LookupError } from '../playbook/lookups.js';
import type { LoopKind } from '../playbook/types.js';

function terms(v: unknown): unknown[] {
  return Array.isArray(v) ? v : [v];
}

function isMapping(v: unknown): v is Record<string, unknown> {
  return !!v && typeof v === 'object' && !Array.isArray(v);
}

/** Where with_first_found looks: the task's search path and the folder its module reads from. */
export interface FirstFoundPlace {
  playbookDir: string;
  searchPath: string[];
  subdir: string;
}

/**
 * Items of a loop. `dirs`: where with_fileglob looks for relative patterns (the role's files/, the playbook's);
 * `place`: where with_first_found looks.
 */
export function loopItems(kind: LoopKind, value: unknown, dirs: string[], place?: FirstFoundPlace): unknown[] {
  switch (kind) {
    case 'loop':
      if (!Array.isArray(value)) throw new ModuleError(`loop must be a list, got ${value === null ? 'null' : typeof value}`);
      return value;
    case 'list':
      return terms(value);
    case 'items':
      // One level only: [[a, b], c] gives a, b, c; [[[a]]] gives [a].
      return terms(value).flatMap((t) => (Array.isArray(t) ? t : [t]));
    case 'dict': {
      const d = Array.isArray(value) && value.length === 1 ? value[0] : value;
      if (!isMapping(d)) throw new ModuleError('with_dict expects a mapping');
      return Object.entries(d).map(([key, v]) => ({ key, value: v }));
    }
    case 'together': {
      const lists = terms(value).map((l) => (Array.isArray(l) ? l : [l]));
      if (lists.length === 0) throw new ModuleError('with_together needs at least one list');
      const n = Math.max(...lists.map((l) => l.length));
      return Array.from({ length: n }, (_, i) => lists.map((l) => (i < l.length ? l[i] : null)));
    }
    case 'nested': {
      const lists = terms(value).map((l) => (Array.isArray(l) ? l : [l]));
      return lists.reduce<unknown[][]>((acc, l) => acc.flatMap((a) => l.map((x) => [...a, x])), [[]]);
    }
    case 'subelements':
      return subelements(value);
    case 'sequence':
      return terms(value).flatMap((t) => sequence(String(t)));
    case 'fileglob':
      return terms(value).flatMap((t) => fileglob(String(t), dirs));
    case 'first_found':
      if (!place) throw new ModuleError('with_first_found needs the task\'s search path');
      try {
        return firstFound({ ...place, render: (t) => t }, terms(value), {}, place.subdir);
      } catch (e) {
        if (e instanceof LookupError) throw new ModuleError(`with_first_found: ${e.message}`);
        throw e;
      }
  }
}

function subelements(value: unknown): unknown[] {
  const t = terms(value);
  if (t.length < 2 || t.length > 3 || typeof t[1] !== 'string') throw new ModuleError("with_subelements expects [list, 'key'] (and optionally {skip_missing: true})");
  const skipMissing = isMapping(t[2]) && t[2].skip_missing === true;
  const list = Array.isArray(t[0]) ? t[0] : isMapping(t[0]) ? Object.values(t[0]) : null;
  if (!list) throw new ModuleError('with_subelements: the first term must be a list or a mapping');
  const keys = t[1].split('.');
  const out: unknown[] = [];
  for (const el of list) {
    if (!isMapping(el)) throw new ModuleError('with_subelements: each element must be a mapping');
    let sub: unknown = el;
    let missing = false;
    for (const k of keys) {
      if (isMapping(sub) && k in sub) sub = sub[k];
      else {
        missing = true;
        break;
      }
    }
    if (missing) {
      if (skipMissing) continue;
      throw new ModuleError(`with_subelements: an element has no "${t[1]}" (set skip_missing: true to skip it)`);
    }
    if (!Array.isArray(sub)) throw new ModuleError(`with_subelements: "${t[1]}" of an element is not a list`);
    for (const s of sub) out.push([el, s]);
  }
  return out;
}

/** Python's `%` formatting of one integer, for with_sequence's format= (%d %i %x %X %o %s, width and flags). */
function formatOne(fmt: string, n: number): string {
  let used = false;
  const out = fmt.replace(/%([-0 +#]*)(\d*)([dixXos%])/g, (m, flags: string, width: string, conv: string) => {
    if (conv === '%') return '%';
    used = true;
    let s = conv === 'x' ? n.toString(16) : conv === 'X' ? n.toString(16).toUpperCase() : conv === 'o' ? n.toString(8) : String(n);
    const w = Number(width || 0);
    if (s.length < w) s = flags.includes('-') ? s.padEnd(w) : flags.includes('0') && conv !== 's' ? (s.startsWith('-') ? `-${s.slice(1).padStart(w - 1, '0')}` : s.padStart(w, '0')) : s.padStart(w);
    return s;
  });
  if (!used) throw new ModuleError(`with_sequence: format "${fmt}" has no %d-style placeholder`);
  return out;
}

function int(v: string, what: string): number {
  const n = /^-?0x[0-9a-f]+$/i.test(v) ? parseInt(v, 16) : /^-?0o?[0-7]+$/.test(v) && v !== '0' ? parseInt(v.replace(/^(-?)0o?/, '$1'), 8) : Number(v);
  if (!Number.isInteger(n)) throw new ModuleError(`with_sequence: ${what} "${v}" is not an integer`);
  return n;
}

/** Ansible's sequence lookup: `start=1 end=10 stride=2 format=x%02d`, `count=N`, or the short `1-10/2:x%d`. */
export function sequence(spec: string): string[] {
  let start = 1;
  let end: number | undefined;
  let count: number | undefined;
  let stride = 1;
  let format = '%d';
  const short = /^\s*(-?[0-9a-fx]+)?(?:-(-?[0-9a-fx]+))?(?:\/(-?[0-9a-fx]+))?(?::(.+))?\s*$/i.exec(spec);
  if (!spec.includes('=') && short && (short[1] || short[2])) {
    if (short[2] === undefined) end = int(short[1]!, 'end');
    else {
      start = int(short[1]!, 'start');
      end = int(short[2], 'end');
    }
    if (short[3]) stride = int(short[3], 'stride');
    if (short[4]) format = short[4];
  } else {
    const { options, free } = parseKv(spec, false);
    if (free) throw new ModuleError(`with_sequence: cannot read "${free}" (use start=, end=, count=, stride=, format=)`);
    for (const [k, v] of Object.entries(options)) {
      if (k === 'start') start = int(v, 'start');
      else if (k === 'end') end = int(v, 'end');
      else if (k === 'count') count = int(v, 'count');
      else if (k === 'stride') stride = int(v, 'stride');
      else if (k === 'format') format = v;
      else throw new ModuleError(`with_sequence: unknown option "${k}"`);
    }
  }
  if (count !== undefined && end !== undefined) throw new ModuleError('with_sequence: give count or end, not both');
  if (count !== undefined) {
    if (count === 0) return [];
    end = start + (count - 1) * stride;
  }
  if (end === undefined) throw new ModuleError('with_sequence: give end or count');
  if (stride === 0) throw new ModuleError('with_sequence: stride must not be 0');
  if ((stride > 0 && end < start) || (stride < 0 && end > start)) throw new ModuleError('with_sequence: to count backwards make stride negative');
  const out: string[] = [];
  for (let i = start; stride > 0 ? i <= end : i >= end; i += stride) {
    if (out.length >= 100000) throw new ModuleError('with_sequence: more than 100000 items');
    out.push(formatOne(format, i));
  }
  return out;
}

function globRegex(pattern: string): RegExp {
  let re = '';
  for (let i = 0; i < pattern.length; i++) {
    const c = pattern[i]!;
    if (c === '*') re += '[^/]*';
    else if (c === '?') re += '[^/]';
    else if (c === '[') {
      const close = pattern.indexOf(']', i + 1);
      if (close < 0) re += '\\[';
      else {
        const body = pattern.slice(i + 1, close);
        re += `[${body.startsWith('!') ? `^${body.slice(1)}` : body}]`;
        i = close;
      }
    } else re += c.replace(/[.+^${}()|\\]/g, '\\$&');
  }
  return new RegExp(`^${re}$`);
}

/** Files (not directories) on the controller matching a glob in its last path part, as absolute paths, sorted. */
export function fileglob(pattern: string, dirs: string[]): string[] {
  const candidates = path.isAbsolute(pattern) ? [pattern] : dirs.map((d) => path.join(d, pattern));
  for (const c of candidates) {
    const dir = path.dirname(c);
    let names: string[];
    try {
      names = readdirSync(dir);
    } catch {
      continue;
    }
    const re = globRegex(path.basename(c));
    const found = names
      .filter((n) => re.test(n) && !(n.startsWith('.') && !path.basename(c).startsWith('.')))
      .map((n) => path.join(dir, n))
      .filter((p) => {
        try {
          return statSync(p).isFile();
        } catch {
          return false;
        }
      })
      .sort();
    if (found.length) return found;
  }
  return [];
}

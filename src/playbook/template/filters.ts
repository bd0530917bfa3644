/**
 * The filters and tests templates may use: Jinja2's own and Ansible's, as Ansible 2.14 renders them. This table is
 * the allow-list: a name not here is refused (by `provision validate`, with a did-you-mean), and the tables have
 * no prototype, so no name reaches JavaScript's machinery (`{{ x | constructor }}` is an unknown filter).
 */
import { createHash, randomBytes, randomInt } from 'node:crypto';
import { parse as parseYaml } from 'yaml';
import { pyyamlTags } from '../../util/pyyaml.js';
import { compareVersions } from '../../util/version.js';
import { sha512Crypt } from '../sha-crypt.js';
import { pyJson, pyYaml } from './dump.js';
import { expandReplacement, pyRegex, reFlags } from './regex.js';
import { isFloat, isMapping, percentFormat, pyEquals, PyError, PyFloat, pyFloat, pyRound, pySplit, repr, splitKwargs, str, truthy, unbox } from './python.js';

type Fn = (...args: never[]) => unknown;

/** What filters need from the template engine: missing values, plain copies, and other filters and tests. */
export interface FilterHost {
  isUndefined(v: unknown): boolean;
  /** throws the undefined-variable error for a missing value */
  fail(v: unknown): never;
  plain(v: unknown): unknown;
  filter(name: string): Fn;
  test(name: string): Fn;
}

function list(v: unknown): unknown[] {
  if (Array.isArray(v)) return v;
  if (typeof v === 'string') return [...v];
  if (isMapping(v)) return Object.keys(v);
  if (v === null || v === undefined) return [];
  throw new PyError(`${repr(v)} is not a list`);
}

function attrPath(item: unknown, attribute: unknown): unknown {
  let v = item;
  for (const k of String(attribute).split('.')) {
    if (Array.isArray(v) && /^-?\d+$/.test(k)) v = v.at(Number(k));
    else v = isMapping(v) && Object.prototype.hasOwnProperty.call(v, k) ? v[k] : undefined;
  }
  return v;
}

/** Python's ordering for sort/min/max: numbers and strings (each among their kind), lists element-wise. */
export function compare(a: unknown, b: unknown): number {
  // A whole float compares by its number (2 == 2.0 in Python); the item itself, box and all, is what is kept.
  if (a instanceof PyFloat || b instanceof PyFloat) return compare(unbox(a), unbox(b));
  if (typeof a === 'number' && typeof b === 'number') return a - b;
  if (typeof a === 'boolean' || typeof b === 'boolean') return compare(Number(a), Number(b));
  if (typeof a === 'string' && typeof b === 'string') return a < b ? -1 : a > b ? 1 : 0;
  if (Array.isArray(a) && Array.isArray(b)) {
    for (let i = 0; i < Math.min(a.length, b.length); i++) {
      const c = compare(a[i], b[i]);
      if (c) return c;
    }
    return a.length - b.length;
  }
  throw new PyError(`cannot compare ${repr(a)} with ${repr(b)}`);
}

function toInt(v: unknown, dflt = 0, base = 10): number {
  if (typeof v === 'number') return Math.trunc(v);
  if (typeof v === 'boolean') return v ? 1 : 0;
  const s = String(v).trim().replace(/_/g, '');
  if (base === 10 && /^[-+]?\d+$/.test(s)) return parseInt(s, 10);
  if (base === 10 && /^[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?$/.test(s)) return Math.trunc(Number(s));
  if (base !== 10) {
    const prefix = base === 16 ? /^0x/i : base === 8 ? /^0o/i : base === 2 ? /^0b/i : null;
    const t = prefix ? s.replace(prefix, '') : s;
    const n = parseInt(t, base);
    if (!Number.isNaN(n) && /^[-+]?[0-9a-z]+$/i.test(t)) return n;
  }
  return dflt;
}

function toFloat(v: unknown, dflt = 0): number {
  if (v instanceof PyFloat) return v.value;
  if (typeof v === 'number') return v;
  if (typeof v === 'boolean') return v ? 1 : 0;
  const t = String(v).trim();
  // Python's float() reads inf, infinity and nan in any case, signed; JavaScript's Number() only "Infinity".
  const special = /^([-+]?)(inf|infinity|nan)$/i.exec(t);
  if (special) return special[2]!.toLowerCase() === 'nan' ? NaN : special[1] === '-' ? -Infinity : Infinity;
  const n = Number(t);
  return t === '' || Number.isNaN(n) || /^[-+]?Infinity$/.test(t) ? dflt : n;
}

/** Ansible's `bool`: yes, on, 1, true, y, t (any case) are true. */
export function toBool(v: unknown): boolean {
  if (typeof v === 'string') return ['yes', 'on', '1', 'true', 'y', 't'].includes(v.trim().toLowerCase());
  if (typeof v === 'number') return v === 1;
  return v === true;
}


function combine(dicts: unknown[], recursive: boolean): Record<string, unknown> {
  const merge = (a: Record<string, unknown>, b: Record<string, unknown>): Record<string, unknown> => {
    const out: Record<string, unknown> = { ...a };
    for (const [k, v] of Object.entries(b)) out[k] = recursive && isMapping(out[k]) && isMapping(v) ? merge(out[k] as Record<string, unknown>, v) : v;
    return out;
  };
  return dicts.reduce<Record<string, unknown>>((acc, d) => {
    if (!isMapping(d)) throw new PyError(`combine needs dictionaries, got ${repr(d)}`);
    return merge(acc, d);
  }, {});
}

function flatten(v: unknown[], levels: number | null, skipNulls: boolean): unknown[] {
  const out: unknown[] = [];
  for (const x of v) {
    if (skipNulls && (x === null || x === 'None')) continue;
    if (Array.isArray(x) && (levels === null || levels > 0)) out.push(...flatten(x, levels === null ? null : levels - 1, skipNulls));
    else out.push(x);
  }
  return out;
}

function unique(v: unknown[]): unknown[] {
  const out: unknown[] = [];
  for (const x of v) if (!out.some((y) => pyEquals(x, y))) out.push(x);
  return out;
}

/** Filter and test tables for one engine. */
export function makeTables(h: FilterHost): { filters: Record<string, Fn>; tests: Record<string, Fn> } {
  const plain = (v: unknown) => h.plain(v);
  const applyTest = (name: unknown, v: unknown, args: unknown[]) => truthy(h.test(String(name))(v as never, ...(args as never[])));
  const selectBy = (keep: boolean, attr: boolean) => (seq: unknown, ...raw: unknown[]) => {
    const { args } = splitKwargs(raw);
    const items = list(seq);
    if (attr) {
      const [a, test, ...rest] = args;
      return items.filter((x) => (test === undefined ? truthy(attrPath(x, a)) : applyTest(test, attrPath(x, a), rest)) === keep);
    }
    const [test, ...rest] = args;
    return items.filter((x) => (test === undefined ? truthy(x) : applyTest(test, x, rest)) === keep);
  };
  const version = (a: unknown, b: unknown, op: unknown = 'eq', ...raw: unknown[]) => {
    const { kwargs } = splitKwargs(raw);
    const ops: Record<string, (c: number) => boolean> = {
      lt: (c) => c < 0, '<': (c) => c < 0, le: (c) => c <= 0, '<=': (c) => c <= 0, gt: (c) => c > 0, '>': (c) => c > 0,
      ge: (c) => c >= 0, '>=': (c) => c >= 0, eq: (c) => c === 0, '==': (c) => c === 0, '=': (c) => c === 0, ne: (c) => c !== 0, '!=': (c) => c !== 0, '<>': (c) => c !== 0,
    };
    const f = ops[String(op)];
    if (!f) throw new PyError(`version test: unknown operator ${repr(op)}`);
    if (truthy(kwargs.strict) && ![a, b].every((x) => /^\d+\.\d+(\.\d+)?([ab]\d+)?$/.test(String(x)))) throw new PyError(`version test: ${repr(String(a))} is not a strict version`);
    return f(compareVersions(String(a), String(b)));
  };
  const regexTest = (whole: 'match' | 'search' | 'full') => (v: unknown, re: unknown, ...raw: unknown[]) => {
    const { args, kwargs } = splitKwargs(raw);
    const flags = `${truthy(args[0] ?? kwargs.ignorecase) ? 'i' : ''}${truthy(args[1] ?? kwargs.multiline) ? 'm' : ''}`;
    const r = pyRegex(re, flags);
    const m = r.exec(String(v));
    if (!m) return false;
    if (whole === 'match') return m.index === 0 || pyRegex(`^(?:${r.source})`, flags).test(String(v));
    return true;
  };
  const result = (key: string) => (v: unknown) => {
    if (!isMapping(v)) throw new PyError(`the "${key}" test needs a registered task result`);
    return v;
  };

  const filters: Record<string, Fn> = Object.assign(Object.create(null) as Record<string, Fn>, {
    default: (v: unknown, d: unknown = '', boolean = false) => (h.isUndefined(v) || (truthy(boolean) && !truthy(v)) ? d : v),
    mandatory: (v: unknown, msg?: unknown) => {
      if (h.isUndefined(v)) {
        if (msg !== undefined) throw new PyError(str(msg));
        h.fail(v);
      }
      return v;
    },
    bool: (v: unknown) => toBool(v),
    int: (v: unknown, ...raw: unknown[]) => {
      const { args, kwargs } = splitKwargs(raw);
      return toInt(v, Number(args[0] ?? kwargs.default ?? 0), Number(args[1] ?? kwargs.base ?? 10));
    },
    float: (v: unknown, d: unknown = 0) => pyFloat(toFloat(v, Number(d))),
    string: (v: unknown) => str(plain(v)),
    list: (v: unknown) => [...list(v)],
    abs: (v: unknown) => (isFloat(v) ? pyFloat(Math.abs(Number(v))) : Math.abs(Number(v))),
    // Python's round() keeps an int an int; Jinja2's floor and ceil divide, so they give a float.
    round: (v: unknown, precision: unknown = 0, method: unknown = 'common') => {
      if (method === 'common') return isFloat(v) ? pyFloat(pyRound(Number(v), Number(precision), true)) : pyRound(Number(v), Number(precision), false);
      if (method !== 'floor' && method !== 'ceil') throw new PyError('round: method must be common, ceil or floor');
      const p = 10 ** Number(precision);
      const n = Number(v) * p;
      return pyFloat((method === 'floor' ? Math.floor(n) : Math.ceil(n)) / p);
    },
    upper: (v: unknown) => str(v).toUpperCase(),
    lower: (v: unknown) => str(v).toLowerCase(),
    capitalize: (v: unknown) => str(v).charAt(0).toUpperCase() + str(v).slice(1).toLowerCase(),
    title: (v: unknown) => str(v).toLowerCase().replace(/(^|[^A-Za-z0-9'])([a-z])/g, (_m, a: string, b: string) => a + b.toUpperCase()),
    trim: (v: unknown, chars?: unknown) => {
      const s = str(v);
      const set = chars === undefined ? ' \t\n\r\x0b\x0c' : String(chars);
      let a = 0;
      let b = s.length;
      while (a < b && set.includes(s[a]!)) a++;
      while (b > a && set.includes(s[b - 1]!)) b--;
      return s.slice(a, b);
    },
    replace: (v: unknown, a: unknown, b: unknown, count?: unknown) => {
      const parts = str(v).split(str(a));
      if (count === undefined) return parts.join(str(b));
      const n = Number(count);
      return parts.slice(0, n + 1).join(str(b)) + (parts.length > n + 1 ? str(a) + parts.slice(n + 1).join(str(a)) : '');
    },
    length: (v: unknown) => list(v).length,
    count: (v: unknown) => list(v).length,
    first: (v: unknown) => list(v)[0],
    last: (v: unknown) => list(v).at(-1),
    join: (v: unknown, sep: unknown = '', ...raw: unknown[]) => {
      const { kwargs } = splitKwargs(raw);
      const items = kwargs.attribute !== undefined ? list(v).map((x) => attrPath(x, kwargs.attribute)) : list(v);
      return items.map((x) => str(plain(x))).join(str(sep));
    },
    reverse: (v: unknown) => (typeof v === 'string' ? [...v].reverse().join('') : [...list(v)].reverse()),
    sort: (v: unknown, ...raw: unknown[]) => {
      const { args, kwargs } = splitKwargs(raw);
      const reverse = truthy(args[0] ?? kwargs.reverse);
      const caseSensitive = truthy(args[1] ?? kwargs.case_sensitive);
      const attribute = args[2] ?? kwargs.attribute;
      const key = (x: unknown) => {
        const k = attribute === undefined ? x : attrPath(x, attribute);
        return typeof k === 'string' && !caseSensitive ? k.toLowerCase() : k;
      };
      const out = [...list(v)].sort((a, b) => compare(key(a), key(b)));
      return reverse ? out.reverse() : out;
    },
    min: (v: unknown) => list(v).reduce((a, b) => (compare(b, a) < 0 ? b : a)),
    max: (v: unknown) => list(v).reduce((a, b) => (compare(b, a) > 0 ? b : a)),
    sum: (v: unknown, ...raw: unknown[]) => {
      const { args, kwargs } = splitKwargs(raw);
      const attribute = args[0] ?? kwargs.attribute;
      const start = args[1] ?? kwargs.start ?? 0;
      const items = list(v).map((x) => (attribute === undefined ? x : attrPath(x, attribute)));
      const total = items.reduce<number>((a, x) => a + Number(x), Number(start));
      return isFloat(start) || items.some(isFloat) ? pyFloat(total) : total;
    },
    unique: (v: unknown) => unique(list(v)),
    union: (a: unknown, b: unknown) => unique([...list(a), ...list(b)]),
    intersect: (a: unknown, b: unknown) => unique(list(a).filter((x) => list(b).some((y) => pyEquals(x, y)))),
    difference: (a: unknown, b: unknown) => unique(list(a).filter((x) => !list(b).some((y) => pyEquals(x, y)))),
    symmetric_difference: (a: unknown, b: unknown) => {
      const la = list(a);
      const lb = list(b);
      return unique([...la, ...lb].filter((x) => !(la.some((y) => pyEquals(x, y)) && lb.some((y) => pyEquals(x, y)))));
    },
    flatten: (v: unknown, ...raw: unknown[]) => {
      const { args, kwargs } = splitKwargs(raw);
      const levels = args[0] ?? kwargs.levels;
      return flatten(list(v), levels === undefined || levels === null ? null : Number(levels), truthy(args[1] ?? kwargs.skip_nulls ?? true));
    },
    zip: (v: unknown, ...others: unknown[]) => {
      const lists = [list(v), ...others.map(list)];
      const n = Math.min(...lists.map((l) => l.length));
      return Array.from({ length: n }, (_x, i) => lists.map((l) => l[i]));
    },
    zip_longest: (v: unknown, ...raw: unknown[]) => {
      const { args, kwargs } = splitKwargs(raw);
      const lists = [list(v), ...args.map(list)];
      const n = Math.max(...lists.map((l) => l.length));
      return Array.from({ length: n }, (_x, i) => lists.map((l) => (i < l.length ? l[i] : (kwargs.fillvalue ?? null))));
    },
    product: (v: unknown, ...others: unknown[]) => [list(v), ...others.map(list)].reduce<unknown[][]>((acc, l) => acc.flatMap((p) => l.map((x) => [...p, x])), [[]]),
    batch: (v: unknown, n: unknown, fill?: unknown) => {
      const out: unknown[][] = [];
      const items = list(v);
      for (let i = 0; i < items.length; i += Number(n)) out.push(items.slice(i, i + Number(n)));
      const lastBatch = out.at(-1);
      if (fill !== undefined && lastBatch) while (lastBatch.length < Number(n)) lastBatch.push(fill);
      return out;
    },
    slice: (v: unknown, n: unknown) => {
      const items = list(v);
      const size = Math.floor(items.length / Number(n));
      const extra = items.length % Number(n);
      const out: unknown[][] = [];
      let at = 0;
      for (let i = 0; i < Number(n); i++) {
        const len = size + (i < extra ? 1 : 0);
        out.push(items.slice(at, at + len));
        at += len;
      }
      return out;
    },
    groupby: (v: unknown, attribute: unknown) => {
      const groups: [unknown, unknown[]][] = [];
      for (const x of list(v)) {
        const k = attrPath(x, attribute);
        const g = groups.find(([gk]) => pyEquals(gk, k));
        if (g) g[1].push(x);
        else groups.push([k, [x]]);
      }
      return groups.sort((a, b) => compare(a[0], b[0]));
    },
    map: (seq: unknown, ...raw: unknown[]) => {
      const { args, kwargs } = splitKwargs(raw);
      const items = list(seq);
      if (kwargs.attribute !== undefined) {
        return items.map((x) => {
          const v = attrPath(x, kwargs.attribute);
          if (v === undefined) {
            if ('default' in kwargs) return kwargs.default;
            throw new PyError(`an item has no attribute "${String(kwargs.attribute)}"`);
          }
          return v;
        });
      }
      const [name, ...rest] = args;
      const f = h.filter(String(name));
      return items.map((x) => f(x as never, ...(rest as never[]), ...(Object.keys(kwargs).length ? [{ ...kwargs, __keywords: true } as never] : [])));
    },
    select: selectBy(true, false),
    reject: selectBy(false, false),
    selectattr: selectBy(true, true),
    rejectattr: selectBy(false, true),
    dictsort: (v: unknown, caseSensitive?: unknown, by: unknown = 'key', reverse?: unknown) => {
      if (!isMapping(v)) throw new PyError('dictsort needs a dictionary');
      const i = by === 'value' ? 1 : 0;
      const key = (x: unknown) => (typeof x === 'string' && !truthy(caseSensitive) ? x.toLowerCase() : x);
      const out = Object.entries(v).sort((a, b) => compare(key(a[i]), key(b[i])));
      return truthy(reverse) ? out.reverse() : out;
    },
    dict2items: (v: unknown, ...raw: unknown[]) => {
      const { kwargs } = splitKwargs(raw);
      if (!isMapping(v)) throw new PyError('dict2items needs a dictionary');
      return Object.entries(v).map(([k, x]) => ({ [String(kwargs.key_name ?? 'key')]: k, [String(kwargs.value_name ?? 'value')]: x }));
    },
    items2dict: (v: unknown, ...raw: unknown[]) => {
      const { kwargs } = splitKwargs(raw);
      const kn = String(kwargs.key_name ?? 'key');
      const vn = String(kwargs.value_name ?? 'value');
      return Object.fromEntries(list(v).map((x) => [str(attrPath(x, kn)), attrPath(x, vn)]));
    },
    combine: (v: unknown, ...raw: unknown[]) => {
      const { args, kwargs } = splitKwargs(raw);
      const dicts = [...(Array.isArray(v) ? v : [v]), ...args.flatMap((a) => (Array.isArray(a) ? a : [a]))].map(plain);
      return combine(dicts, truthy(kwargs.recursive));
    },
    subelements: (v: unknown, attribute: unknown) => list(v).flatMap((x) => {
      const sub = attrPath(x, attribute);
      if (!Array.isArray(sub)) throw new PyError(`subelements: "${String(attribute)}" is not a list in every item`);
      return sub.map((s) => [x, s]);
    }),
    extract: (key: unknown, container: unknown, morekeys?: unknown) => {
      let v = (container as Record<string, unknown>)[String(key)];
      for (const k of morekeys === undefined ? [] : Array.isArray(morekeys) ? morekeys : [morekeys]) v = (v as Record<string, unknown>)[String(k)];
      if (h.isUndefined(v)) h.fail(v);
      return v;
    },
    attr: (v: unknown, name: unknown) => {
      // Jinja's attr() reads an object attribute, never a dictionary key; plain data has none.
      throw new PyError(`${isMapping(v) ? 'dict object' : repr(v)} has no attribute '${String(name)}'`);
    },
    ternary: (v: unknown, a: unknown, b: unknown, none?: unknown) => (v === null && none !== undefined ? none : truthy(v) ? a : b),
    format: (fmt: unknown, ...args: unknown[]) => percentFormat(str(fmt), args),
    center: (v: unknown, w: unknown = 80) => {
      const s = str(v);
      const total = Math.max(0, Number(w) - s.length);
      const left = Math.floor(total / 2) + (total % 2 && Number(w) % 2 ? 1 : 0);
      return ' '.repeat(left) + s + ' '.repeat(total - left);
    },
    indent: (v: unknown, ...raw: unknown[]) => {
      const { args, kwargs } = splitKwargs(raw);
      const width = args[0] ?? kwargs.width ?? 4;
      const pad = typeof width === 'string' ? width : ' '.repeat(Number(width));
      const lines = str(v).split('\n');
      const first = truthy(args[1] ?? kwargs.first);
      const blank = truthy(args[2] ?? kwargs.blank);
      return lines.map((l, i) => ((i === 0 && !first) || (!blank && l === '') ? l : pad + l)).join('\n');
    },
    wordcount: (v: unknown) => (str(v).match(/\w+/g) ?? []).length,
    truncate: (v: unknown, length: unknown = 255, killwords: unknown = false, end: unknown = '...', leeway: unknown = 5) => {
      const s = str(v);
      const n = Number(length);
      if (s.length <= n + Number(leeway)) return s;
      if (truthy(killwords)) return s.slice(0, n - str(end).length) + str(end);
      const cut = s.slice(0, n - str(end).length);
      return cut.replace(/\s*\S*$/, '') + str(end);
    },
    quote: (v: unknown) => {
      const s = str(v);
      return s === '' ? "''" : /^[\w@%+=:,./-]+$/.test(s) ? s : `'${s.replace(/'/g, `'"'"'`)}'`;
    },
    comment: (v: unknown, style: unknown = 'plain') => {
      const prefix = style === 'plain' ? '#' : style === 'erlang' ? '%' : style === 'cblock' ? ' *' : '//';
      const body = str(v).split('\n').map((l) => `${prefix} ${l}`.trimEnd());
      if (style === 'c' || style === 'cblock') return style === 'cblock' ? ['/*', ...body, ' */'].join('\n') : ['//', ...body, '//'].join('\n');
      return [prefix, ...body, prefix].join('\n');
    },
    basename: (v: unknown) => str(v).slice(str(v).lastIndexOf('/') + 1),
    dirname: (v: unknown) => {
      const s = str(v);
      const i = s.lastIndexOf('/');
      if (i < 0) return '';
      const head = s.slice(0, i + 1);
      return /^\/+$/.test(head) ? head : head.replace(/\/+$/, '');
    },
    splitext: (v: unknown) => {
      const s = str(v);
      const base = s.slice(s.lastIndexOf('/') + 1);
      const dot = base.lastIndexOf('.');
      if (dot <= 0 || /^\.+$/.test(base.slice(0, dot + 1))) return [s, ''];
      const at = s.length - base.length + dot;
      return [s.slice(0, at), s.slice(at)];
    },
    expanduser: (v: unknown) => str(v),
    b64encode: (v: unknown) => Buffer.from(str(v), 'utf8').toString('base64'),
    b64decode: (v: unknown) => Buffer.from(str(v), 'base64').toString('utf8'),
    hash: (v: unknown, algo: unknown = 'sha1') => {
      const a = String(algo);
      if (!['md5', 'sha1', 'sha224', 'sha256', 'sha384', 'sha512'].includes(a)) throw new PyError(`hash: unsupported algorithm ${repr(a)}`);
      return createHash(a).update(str(v), 'utf8').digest('hex');
    },
    checksum: (v: unknown) => createHash('sha1').update(str(v), 'utf8').digest('hex'),
    md5: (v: unknown) => createHash('md5').update(str(v), 'utf8').digest('hex'),
    sha1: (v: unknown) => createHash('sha1').update(str(v), 'utf8').digest('hex'),
    split: (v: unknown, sep?: unknown, max?: unknown) => pySplit(str(v), sep, max === undefined ? -1 : Number(max)),
    regex_escape: (v: unknown) => str(v).replace(/[^A-Za-z0-9_]/g, (c) => `\\${c}`),
    regex_replace: (v: unknown, re: unknown = '', rep: unknown = '', ...raw: unknown[]) => {
      const { args, kwargs } = splitKwargs(raw);
      const r = pyRegex(re, `g${truthy(args[0] ?? kwargs.ignorecase) ? 'i' : ''}${truthy(args[1] ?? kwargs.multiline) ? 'm' : ''}`);
      const count = Number(args[2] ?? kwargs.count ?? 0);
      let n = 0;
      return str(v).replace(r, (...m: unknown[]) => {
        if (count && n++ >= count) return String(m[0]);
        const groups = typeof m.at(-1) === 'object' ? (m.at(-1) as Record<string, string>) : undefined;
        const end = groups ? -3 : -2;
        const match = Object.assign(m.slice(0, end).map((x) => (x === undefined ? '' : String(x))), { groups, index: 0, input: '' }) as unknown as RegExpExecArray;
        return expandReplacement(str(rep), match);
      });
    },
    regex_search: (v: unknown, re: unknown, ...raw: unknown[]) => {
      const { args, kwargs } = splitKwargs(raw);
      const m = pyRegex(re, reFlags(kwargs)).exec(str(v));
      if (!m) return null;
      if (!args.length) return m[0];
      return args.map((a) => {
        const g = /^\\(\d+)$/.exec(String(a));
        const named = /^\\g<(\w+)>$/.exec(String(a));
        if (g) return m[Number(g[1])] ?? null;
        if (named) return m.groups?.[named[1]!] ?? null;
        throw new PyError(`regex_search: unknown group reference ${repr(a)}`);
      });
    },
    regex_findall: (v: unknown, re: unknown, ...raw: unknown[]) => {
      const { kwargs } = splitKwargs(raw);
      const r = pyRegex(re, `g${reFlags(kwargs)}`);
      return [...str(v).matchAll(r)].map((m) => (m.length === 1 ? m[0] : m.length === 2 ? (m[1] ?? '') : m.slice(1).map((x) => x ?? '')));
    },
    to_json: (v: unknown, ...raw: unknown[]) => {
      const { kwargs } = splitKwargs(raw);
      return pyJson(plain(v), kwargs.indent === undefined ? undefined : Number(kwargs.indent), truthy(kwargs.sort_keys));
    },
    to_nice_json: (v: unknown, ...raw: unknown[]) => {
      const { args, kwargs } = splitKwargs(raw);
      return pyJson(plain(v), Number(args[0] ?? kwargs.indent ?? 4), true);
    },
    from_json: (v: unknown) => {
      try {
        return JSON.parse(str(v)) as unknown;
      } catch {
        throw new PyError(`from_json: not JSON: ${repr(str(v).slice(0, 60))}`);
      }
    },
    to_yaml: (v: unknown, ...raw: unknown[]) => {
      const { kwargs } = splitKwargs(raw);
      return pyYaml(plain(v), Number(kwargs.indent ?? 2), true);
    },
    to_nice_yaml: (v: unknown, ...raw: unknown[]) => {
      const { args, kwargs } = splitKwargs(raw);
      return pyYaml(plain(v), Number(args[0] ?? kwargs.indent ?? 4), false);
    },
    type_debug: (v: unknown) => {
      const p = plain(v);
      return Array.isArray(p) ? 'list' : p === null ? 'NoneType' : isMapping(p) ? 'dict' : typeof p === 'number' ? (Number.isInteger(p) ? 'int' : 'float') : typeof p === 'boolean' ? 'bool' : 'str';
    },
    from_yaml: (v: unknown) => {
      try {
        return parseYaml(str(v), { version: '1.1', customTags: pyyamlTags }) as unknown;
      } catch {
        throw new PyError(`from_yaml: not YAML: ${repr(str(v).slice(0, 60))}`);
      }
    },
    password_hash: (v: unknown, scheme: unknown = 'sha512', salt?: unknown, ...raw: unknown[]) => {
      const { args, kwargs } = splitKwargs(raw);
      if (String(scheme) !== 'sha512') throw new PyError(`password_hash: only the "sha512" scheme is supported, not ${repr(scheme)}`);
      const chars = './0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz';
      const s = salt === undefined || salt === null ? [...randomBytes(16)].map((b) => chars[b & 63]).join('') : str(salt);
      const rounds = args[0] ?? kwargs.rounds;
      return sha512Crypt(str(v), s, rounds === undefined || rounds === null ? undefined : Number(rounds));
    },
    random: (v: unknown, ...raw: unknown[]) => {
      const { kwargs } = splitKwargs(raw);
      if (kwargs.seed !== undefined) throw new PyError('random with a seed is not supported: Python\'s generator cannot be reproduced');
      if (typeof v === 'number') return randomInt(Math.max(1, Math.trunc(v)));
      const items = list(v);
      if (!items.length) throw new PyError('random: the list is empty');
      return items[randomInt(items.length)];
    },
  });

  const tests: Record<string, Fn> = Object.assign(Object.create(null) as Record<string, Fn>, {
    defined: (v: unknown) => !h.isUndefined(v),
    undefined: (v: unknown) => h.isUndefined(v),
    none: (v: unknown) => v === null,
    true: (v: unknown) => v === true,
    false: (v: unknown) => v === false,
    boolean: (v: unknown) => typeof v === 'boolean',
    string: (v: unknown) => typeof v === 'string',
    number: (v: unknown) => typeof v === 'number' || v instanceof PyFloat,
    integer: (v: unknown) => typeof v === 'number' && !isFloat(v),
    float: (v: unknown) => isFloat(v),
    mapping: (v: unknown) => isMapping(v),
    iterable: (v: unknown) => typeof v === 'string' || Array.isArray(v) || isMapping(v),
    sequence: (v: unknown) => typeof v === 'string' || Array.isArray(v) || isMapping(v),
    callable: (v: unknown) => typeof v === 'function',
    lower: (v: unknown) => typeof v === 'string' && v === v.toLowerCase(),
    upper: (v: unknown) => typeof v === 'string' && v === v.toUpperCase(),
    odd: (v: unknown) => Number(v) % 2 !== 0,
    even: (v: unknown) => Number(v) % 2 === 0,
    divisibleby: (v: unknown, n: unknown) => Number(v) % Number(n) === 0,
    eq: (a: unknown, b: unknown) => pyEquals(a, b),
    equalto: (a: unknown, b: unknown) => pyEquals(a, b),
    '==': (a: unknown, b: unknown) => pyEquals(a, b),
    ne: (a: unknown, b: unknown) => !pyEquals(a, b),
    '!=': (a: unknown, b: unknown) => !pyEquals(a, b),
    lt: (a: unknown, b: unknown) => compare(a, b) < 0,
    lessthan: (a: unknown, b: unknown) => compare(a, b) < 0,
    '<': (a: unknown, b: unknown) => compare(a, b) < 0,
    le: (a: unknown, b: unknown) => compare(a, b) <= 0,
    '<=': (a: unknown, b: unknown) => compare(a, b) <= 0,
    gt: (a: unknown, b: unknown) => compare(a, b) > 0,
    greaterthan: (a: unknown, b: unknown) => compare(a, b) > 0,
    '>': (a: unknown, b: unknown) => compare(a, b) > 0,
    ge: (a: unknown, b: unknown) => compare(a, b) >= 0,
    '>=': (a: unknown, b: unknown) => compare(a, b) >= 0,
    in: (v: unknown, seq: unknown) => (typeof seq === 'string' ? seq.includes(str(v)) : list(seq).some((x) => pyEquals(x, v))),
    contains: (seq: unknown, v: unknown) => (typeof seq === 'string' ? seq.includes(str(v)) : list(seq).some((x) => pyEquals(x, v))),
    sameas: (a: unknown, b: unknown) => a === b,
    match: regexTest('match'),
    search: regexTest('search'),
    regex: (v: unknown, re: unknown, ...raw: unknown[]) => {
      const { kwargs } = splitKwargs(raw);
      return (kwargs.match_type === 'match' ? regexTest('match') : regexTest('search'))(v, re, ...raw);
    },
    version: (a: unknown, b: unknown, op?: unknown, ...raw: unknown[]) => version(a, b, op, ...raw),
    version_compare: (a: unknown, b: unknown, op?: unknown, ...raw: unknown[]) => version(a, b, op, ...raw),
    subset: (a: unknown, b: unknown) => list(a).every((x) => list(b).some((y) => pyEquals(x, y))),
    superset: (a: unknown, b: unknown) => list(b).every((x) => list(a).some((y) => pyEquals(x, y))),
    abs: (v: unknown) => str(v).startsWith('/'),
    failed: (v: unknown) => truthy(result('failed')(v).failed),
    failure: (v: unknown) => truthy(result('failure')(v).failed),
    succeeded: (v: unknown) => !truthy(result('succeeded')(v).failed),
    success: (v: unknown) => !truthy(result('success')(v).failed),
    successful: (v: unknown) => !truthy(result('successful')(v).failed),
    changed: (v: unknown) => truthy(result('changed')(v).changed),
    change: (v: unknown) => truthy(result('change')(v).changed),
    skipped: (v: unknown) => truthy(result('skipped')(v).skipped),
    skip: (v: unknown) => truthy(result('skip')(v).skipped),
  });
  return { filters, tests };
}

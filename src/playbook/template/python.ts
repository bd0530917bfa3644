/**
 * Python's view of template values: how Jinja2 under Ansible prints them (`True`, `None`, `['a', 1]`), which
 * values are true, how `%` formats, and the str/list/dict methods playbooks call (`x.split()`, `d.items()`).
 * Values here are plain JavaScript values: strings, numbers, booleans, null, arrays and plain objects.
 */

/** A template error with a message for the operator (never a JavaScript one). */
export class PyError extends Error {
  override name = 'TemplateError';
}

export function isMapping(v: unknown): v is Record<string, unknown> {
  return v !== null && typeof v === 'object' && !Array.isArray(v) && !Buffer.isBuffer(v) && !(v instanceof PyFloat);
}

/**
 * A Python float whose value is whole (`1.0`, `3 / 1`, `'2' | float`). JavaScript has one number type, so a whole
 * float would print as an int ("1"); boxed, it prints as Python prints it ("1.0"). A float that is not whole needs
 * no box: a JavaScript number with a fraction is a float to Python too. Arithmetic on a box gives its number
 * (valueOf), so `<` and `>` work as they do on numbers.
 */
export class PyFloat {
  constructor(readonly value: number) {}

  valueOf(): number {
    return this.value;
  }

  toString(): string {
    return floatRepr(this.value);
  }

  /**
   * JSON output (inventory listings, events) holds the number: JSON.stringify calls this with the key alone. The
   * YAML reader calls it too while building a document's values, with its context as the second argument; the
   * box is kept there, since that is where a variable file's whole float is made.
   */
  toJSON(_key?: unknown, yamlContext?: unknown): unknown {
    return yamlContext === undefined ? this.value : this;
  }
}

/** A float result: boxed when whole (or -0.0), so it keeps printing as a float. */
export function pyFloat(n: number): number | PyFloat {
  return Number.isInteger(n) ? new PyFloat(n) : n;
}

/** Whether Python would hold this value as a float. */
export function isFloat(v: unknown): boolean {
  return v instanceof PyFloat || (typeof v === 'number' && !Number.isInteger(v));
}

/** The number behind a boxed float; any other value as it is. */
export function unbox(v: unknown): unknown {
  return v instanceof PyFloat ? v.value : v;
}

/** A value with every boxed float inside it back to a number (for code, not templates). */
export function unboxDeep(v: unknown): unknown {
  if (v instanceof PyFloat) return v.value;
  if (Array.isArray(v)) return v.map(unboxDeep);
  if (isMapping(v)) return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, unboxDeep(x)]));
  return v;
}

/**
 * Python's repr() of a float: the shortest digits that read back the same (as JavaScript's), written fixed when
 * the decimal exponent is from -4 to 15 and in exponent form (`1e+16`, `1.5e-05`) otherwise; `inf`, `nan`, `-0.0`.
 */
export function floatRepr(n: number): string {
  if (Number.isNaN(n)) return 'nan';
  if (!Number.isFinite(n)) return n > 0 ? 'inf' : '-inf';
  if (n === 0) return Object.is(n, -0) ? '-0.0' : '0.0';
  const [mant, e] = n.toExponential().split('e') as [string, string];
  const exp = Number(e);
  const sign = mant.startsWith('-') ? '-' : '';
  const digits = mant.replace(/^-/, '').replace('.', '');
  if (exp < -4 || exp >= 16) {
    const m = digits.length > 1 ? `${digits[0]}.${digits.slice(1)}` : digits;
    return `${sign}${m}e${exp < 0 ? '-' : '+'}${String(Math.abs(exp)).padStart(2, '0')}`;
  }
  if (exp < 0) return `${sign}0.${'0'.repeat(-exp - 1)}${digits}`;
  const int = digits.slice(0, exp + 1).padEnd(exp + 1, '0');
  const frac = digits.slice(exp + 1);
  return `${sign}${int}.${frac || '0'}`;
}

/** Python's truth value. */
export function truthy(v: unknown): boolean {
  if (v instanceof PyFloat) return v.value !== 0;
  if (Array.isArray(v)) return v.length > 0;
  if (isMapping(v)) return Object.keys(v).length > 0;
  return Boolean(v);
}

function reprString(s: string): string {
  const q = s.includes("'") && !s.includes('"') ? '"' : "'";
  const body = s.replace(/\\/g, '\\\\').replace(/\n/g, '\\n').replace(/\r/g, '\\r').replace(/\t/g, '\\t');
  return q + (q === "'" ? body.replace(/'/g, "\\'") : body) + q;
}

/** Marks a list made from a tuple literal `(a, b)`: it prints as Python prints a tuple. */
const TUPLE = Symbol('tuple');

/** The list, marked as a tuple. */
export function markTuple<T extends unknown[]>(items: T): T {
  return Object.defineProperty(items, TUPLE, { value: true });
}

export function isTuple(v: unknown): boolean {
  return Array.isArray(v) && (v as unknown as Record<symbol, boolean>)[TUPLE] === true;
}

/** Python's repr(), as Jinja prints a value nested in a list or dict. */
export function repr(v: unknown): string {
  if (typeof v === 'string') return reprString(v);
  if (isTuple(v)) return `(${(v as unknown[]).map(repr).join(', ')}${(v as unknown[]).length === 1 ? ',' : ''})`;
  if (Array.isArray(v)) return `[${v.map(repr).join(', ')}]`;
  if (isMapping(v)) return `{${Object.entries(v).map(([k, x]) => `${reprString(k)}: ${repr(x)}`).join(', ')}}`;
  return str(v);
}

/** Python's str(), as Jinja prints a value in `{{ }}`. */
export function str(v: unknown): string {
  if (v === null || v === undefined) return 'None';
  if (v === true) return 'True';
  if (v === false) return 'False';
  if (typeof v === 'number') return Number.isInteger(v) ? String(v) : floatRepr(v);
  if (v instanceof PyFloat) return floatRepr(v.value);
  if (typeof v === 'string') return v;
  if (Array.isArray(v) || isMapping(v)) return repr(v);
  return String(v);
}

function num(v: unknown, what: string): number {
  if (typeof v === 'number') return v;
  if (v instanceof PyFloat) return v.value;
  if (typeof v === 'boolean') return v ? 1 : 0;
  throw new PyError(`${what} needs a number, got ${repr(v)}`);
}

/** Python's `fmt % args` for the conversions playbooks use: s r d i f F e g x o c and %%, with flags and widths. */
export function percentFormat(fmt: string, args: unknown): string {
  const list = Array.isArray(args) ? args : [args];
  const named = isMapping(args) ? args : null;
  let i = 0;
  const out = fmt.replace(/%(?:\(([^)]*)\))?([-+ 0#]*)(\d+|\*)?(?:\.(\d+))?([sdirfFeEgGxXoc%])/g, (_m, key: string | undefined, flags: string, width: string | undefined, prec: string | undefined, conv: string) => {
    if (conv === '%') return '%';
    const arg = key !== undefined && named ? named[key] : list[i++];
    if (arg === undefined && key === undefined) throw new PyError('not enough arguments for format string');
    let s: string;
    const p = prec === undefined ? undefined : Number(prec);
    switch (conv) {
      case 's':
        s = str(arg);
        if (p !== undefined) s = s.slice(0, p);
        break;
      case 'r':
        s = repr(arg);
        break;
      case 'd':
      case 'i':
        s = String(Math.trunc(num(arg, '%d')));
        break;
      case 'f':
      case 'F':
        s = num(arg, '%f').toFixed(p ?? 6);
        break;
      case 'e':
      case 'E':
        s = num(arg, '%e').toExponential(p ?? 6).replace(/e([+-])(\d)$/, 'e$10$2');
        if (conv === 'E') s = s.toUpperCase();
        break;
      case 'g':
      case 'G':
        s = String(Number(num(arg, '%g').toPrecision(p ?? 6)));
        break;
      case 'x':
      case 'X':
        s = Math.trunc(num(arg, '%x')).toString(16);
        if (conv === 'X') s = s.toUpperCase();
        break;
      case 'o':
        s = Math.trunc(num(arg, '%o')).toString(8);
        break;
      default:
        s = typeof arg === 'number' ? String.fromCharCode(arg) : str(arg);
    }
    if (flags.includes('+') && /^[dif]$/i.test(conv) && !s.startsWith('-')) s = `+${s}`;
    const w = width === undefined ? 0 : Number(width);
    if (s.length < w) {
      if (flags.includes('-')) s = s.padEnd(w);
      else if (flags.includes('0') && conv !== 's') s = s.startsWith('-') ? `-${s.slice(1).padStart(w - 1, '0')}` : s.padStart(w, '0');
      else s = s.padStart(w);
    }
    return s;
  });
  if (!named && i < list.length && !(list.length === 1 && Array.isArray(args) === false && i === 1)) {
    if (i < list.length) throw new PyError('not all arguments converted during string formatting');
  }
  return out;
}

/** Python's `'{} {name}'.format(...)` with positional, numbered and named fields (no format specs but width-free). */
export function braceFormat(fmt: string, args: unknown[], kwargs: Record<string, unknown>): string {
  let auto = 0;
  return fmt.replace(/\{\{|\}\}|\{([^{}:!]*)(?:![rs])?(?::([^{}]*))?\}/g, (m, field: string | undefined, spec: string | undefined) => {
    if (m === '{{') return '{';
    if (m === '}}') return '}';
    const f = field ?? '';
    const [head, ...attrs] = f.split('.');
    let v: unknown = head === '' ? args[auto++] : /^\d+$/.test(head!) ? args[Number(head)] : kwargs[head!];
    for (const a of attrs) v = isMapping(v) ? v[a] : undefined;
    if (v === undefined) throw new PyError(`format field "${f}" has no value`);
    if (spec) return percentFormat(`%${spec.replace(/^([<>^])?/, (x) => (x === '<' ? '-' : ''))}`.replace(/%(-?)(\d*)(\.\d+)?$/, (_x, l, w, p) => `%${l}${w}${p ?? ''}s`), [v]);
    return str(v);
  });
}

const WS = ' \t\n\r\x0b\x0c';

function stripChars(s: string, chars: unknown, left: boolean, right: boolean): string {
  const set = chars === undefined || chars === null ? WS : String(chars);
  let a = 0;
  let b = s.length;
  if (left) while (a < b && set.includes(s[a]!)) a++;
  if (right) while (b > a && set.includes(s[b - 1]!)) b--;
  return s.slice(a, b);
}

/** Python's str.split: on runs of whitespace without a separator, at most `max` splits. */
export function pySplit(s: string, sep?: unknown, max = -1, fromRight = false): string[] {
  if (sep === undefined || sep === null) {
    const words = s.split(/[ \t\n\r\x0b\x0c]+/).filter((w) => w !== '');
    if (max < 0 || words.length <= max + 1) return words;
    if (fromRight) {
      const trimmed = s.replace(/[ \t\n\r\x0b\x0c]+$/, '');
      const tail = words.slice(words.length - max);
      const cut = trimmed.length - tail.join(' ').length;
      return [trimmed.slice(0, cut).replace(/[ \t\n\r\x0b\x0c]+$/, ''), ...tail];
    }
    const head = words.slice(0, max);
    let rest = s.replace(/^[ \t\n\r\x0b\x0c]+/, '');
    for (const w of head) rest = rest.slice(w.length).replace(/^[ \t\n\r\x0b\x0c]+/, '');
    return [...head, rest];
  }
  const d = String(sep);
  if (d === '') throw new PyError('empty separator');
  const parts = s.split(d);
  if (max < 0 || parts.length <= max + 1) return parts;
  return fromRight ? [parts.slice(0, parts.length - max).join(d), ...parts.slice(parts.length - max)] : [...parts.slice(0, max), parts.slice(max).join(d)];
}

type Method = (self: never, ...args: never[]) => unknown;

/** Keyword arguments arrive as a trailing object marked by nunjucks. */
export function splitKwargs(args: unknown[]): { args: unknown[]; kwargs: Record<string, unknown> } {
  const last = args.at(-1);
  // Own property only: a variable's value reaches filters wrapped, and the wrapper answers any name it is asked.
  if (last && typeof last === 'object' && Object.prototype.hasOwnProperty.call(last, '__keywords')) {
    const { __keywords: _, ...kwargs } = last as Record<string, unknown>;
    return { args: args.slice(0, -1), kwargs };
  }
  return { args, kwargs: {} };
}

const STR_METHODS: Record<string, Method> = {
  upper: (s: string) => s.toUpperCase(),
  lower: (s: string) => s.toLowerCase(),
  capitalize: (s: string) => s.charAt(0).toUpperCase() + s.slice(1).toLowerCase(),
  title: (s: string) => s.toLowerCase().replace(/(^|[^A-Za-z])([a-z])/g, (_m, a: string, b: string) => a + b.toUpperCase()),
  swapcase: (s: string) => [...s].map((c) => (c === c.toUpperCase() ? c.toLowerCase() : c.toUpperCase())).join(''),
  strip: (s: string, c?: string) => stripChars(s, c, true, true),
  lstrip: (s: string, c?: string) => stripChars(s, c, true, false),
  rstrip: (s: string, c?: string) => stripChars(s, c, false, true),
  split: (s: string, sep?: string, max?: number) => pySplit(s, sep, max ?? -1),
  rsplit: (s: string, sep?: string, max?: number) => pySplit(s, sep, max ?? -1, true),
  splitlines: (s: string) => s.split(/\r\n|\r|\n/).filter((l, i, all) => i < all.length - 1 || l !== ''),
  startswith: (s: string, p: string | string[]) => (Array.isArray(p) ? p : [p]).some((x) => s.startsWith(String(x))),
  endswith: (s: string, p: string | string[]) => (Array.isArray(p) ? p : [p]).some((x) => s.endsWith(String(x))),
  replace: (s: string, a: string, b: string, count?: number) => {
    if (count === undefined || count < 0) return s.split(String(a)).join(String(b));
    const parts = s.split(String(a));
    return parts.slice(0, count + 1).join(String(b)) + (parts.length > count + 1 ? String(a) + parts.slice(count + 1).join(String(a)) : '');
  },
  find: (s: string, sub: string) => s.indexOf(String(sub)),
  rfind: (s: string, sub: string) => s.lastIndexOf(String(sub)),
  index: (s: string, sub: string) => {
    const i = s.indexOf(String(sub));
    if (i < 0) throw new PyError('substring not found');
    return i;
  },
  count: (s: string, sub: string) => (String(sub) === '' ? s.length + 1 : s.split(String(sub)).length - 1),
  join: (s: string, items: unknown[]) => [...(items as unknown[])].map((x) => {
    if (typeof x !== 'string') throw new PyError(`join() needs strings, got ${repr(x)}`);
    return x;
  }).join(s),
  isdigit: (s: string) => /^[0-9]+$/.test(s),
  isnumeric: (s: string) => /^[0-9]+$/.test(s),
  isalpha: (s: string) => /^[A-Za-z]+$/.test(s),
  isalnum: (s: string) => /^[A-Za-z0-9]+$/.test(s),
  isspace: (s: string) => /^\s+$/.test(s),
  islower: (s: string) => /[a-z]/.test(s) && s === s.toLowerCase(),
  isupper: (s: string) => /[A-Z]/.test(s) && s === s.toUpperCase(),
  zfill: (s: string, w: number) => (s.startsWith('-') || s.startsWith('+') ? s[0] + s.slice(1).padStart(w - 1, '0') : s.padStart(w, '0')),
  center: (s: string, w: number, fill = ' ') => {
    const total = Math.max(0, w - s.length);
    const left = Math.floor(total / 2) + (total % 2 && w % 2 ? 1 : 0);
    return fill.repeat(left) + s + fill.repeat(total - left);
  },
  ljust: (s: string, w: number, fill = ' ') => s.padEnd(w, fill),
  rjust: (s: string, w: number, fill = ' ') => s.padStart(w, fill),
  partition: (s: string, sep: string) => {
    const i = s.indexOf(sep);
    // Python gives a tuple: it prints as one.
    return markTuple(i < 0 ? [s, '', ''] : [s.slice(0, i), sep, s.slice(i + sep.length)]);
  },
  encode: (s: string) => s,
  decode: (s: string) => s,
};

const LIST_METHODS: Record<string, Method> = {
  index: (l: unknown[], x: unknown) => {
    const i = l.findIndex((y) => pyEquals(y, x));
    if (i < 0) throw new PyError(`${repr(x)} is not in list`);
    return i;
  },
  count: (l: unknown[], x: unknown) => l.filter((y) => pyEquals(y, x)).length,
  // Jinja users append to a list inside a loop: `{{ l.append(x) }}` prints None.
  append: (l: unknown[], x: unknown) => {
    l.push(x);
    return '';
  },
  extend: (l: unknown[], x: unknown[]) => {
    l.push(...x);
    return '';
  },
};

const DICT_METHODS: Record<string, Method> = {
  items: (d: Record<string, unknown>) => Object.entries(d),
  keys: (d: Record<string, unknown>) => Object.keys(d),
  values: (d: Record<string, unknown>) => Object.values(d),
  get: (d: Record<string, unknown>, k: string, dflt: unknown = null) => (Object.prototype.hasOwnProperty.call(d, k) ? d[k] : dflt),
  copy: (d: Record<string, unknown>) => ({ ...d }),
  update: (d: Record<string, unknown>, other: Record<string, unknown>) => {
    Object.assign(d, other);
    return '';
  },
};

/** The Python method `name` of `self`, bound, or undefined when Python has none by that name. */
export function pyMethod(self: unknown, name: string): ((...args: unknown[]) => unknown) | undefined {
  const table = typeof self === 'string' ? STR_METHODS : Array.isArray(self) ? LIST_METHODS : isMapping(self) ? DICT_METHODS : null;
  if (!table || !Object.prototype.hasOwnProperty.call(table, name)) return undefined;
  const m = table[name] as (...a: unknown[]) => unknown;
  if (typeof self === 'string' && name === 'format') return undefined;
  return (...args: unknown[]) => m(self, ...args);
}

/** Python's == for template values (1 == 1.0, lists and dicts by value). */
export function pyEquals(a: unknown, b: unknown): boolean {
  if (a instanceof PyFloat || b instanceof PyFloat) return pyEquals(unbox(a), unbox(b));
  if (a === b) return true;
  if (Array.isArray(a) && Array.isArray(b)) return a.length === b.length && a.every((x, i) => pyEquals(x, b[i]));
  if (isMapping(a) && isMapping(b)) {
    const ka = Object.keys(a);
    return ka.length === Object.keys(b).length && ka.every((k) => Object.prototype.hasOwnProperty.call(b, k) && pyEquals(a[k], b[k]));
  }
  if (typeof a === 'boolean' || typeof b === 'boolean') return Number(a) === Number(b) && typeof a !== 'string' && typeof b !== 'string';
  return false;
}

/** Round half to even at the unit (Python's rounding of an exact tie). */
function halfEven(q: number): number {
  const f = Math.floor(q);
  const d = q - f;
  return d > 0.5 ? f + 1 : d < 0.5 ? f : f % 2 === 0 ? f : f + 1;
}

/**
 * Python's round(x, ndigits): an int stays an int (ties to even below the units: round(1250, -2) is 1200); a float
 * is rounded on its exact binary value, a tie to even (round(2.5) is 2.0, round(2.675, 2) is 2.67, as 2.675 is
 * stored a little below).
 */
export function pyRound(v: number, ndigits: number, float: boolean): number {
  if (!Number.isFinite(v) || v === 0) return v;
  if (!float) return ndigits >= 0 ? v : halfEven(v / 10 ** -ndigits) * 10 ** -ndigits;
  if (ndigits < 0) return halfEven(v / 10 ** -ndigits) * 10 ** -ndigits;
  const a = Math.abs(v);
  // Beyond 1e21 every double is a whole number; beyond 100 digits toFixed cannot go (and nothing is left to round).
  if (a >= 1e21 || ndigits > 99) return v;
  // toFixed(100) writes the stored value's exact decimal digits (every double from 2**-48 up has at most 100).
  const [ip, fp] = a.toFixed(100).split('.') as [string, string];
  let q = BigInt(ip + fp.slice(0, ndigits));
  const first = fp[ndigits]!;
  const rest = /[1-9]/.test(fp.slice(ndigits + 1));
  if (first > '5' || (first === '5' && (rest || q % 2n === 1n))) q += 1n;
  const digits = q.toString().padStart(ndigits + 1, '0');
  const r = Number(`${digits.slice(0, digits.length - ndigits)}.${digits.slice(digits.length - ndigits) || '0'}`);
  return v < 0 ? -r : r;
}

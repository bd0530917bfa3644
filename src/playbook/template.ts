/**
 * Jinja-style templates through nunjucks, with Ansible's expectations:
 * - an undefined variable is an error that names it (`x | default(…)` and `x is defined` still work);
 * - a string that is exactly one `{{ expression }}` yields the expression's native value (a list stays a list);
 * - `when:`-style conditions are bare expressions.
 * Templates see only the variables they are given: no globals, no file or environment access.
 */
import nunjucks from 'nunjucks';
import { didYouMean } from '../util/suggest.js';
import { LOOKUP_NAMES, LookupError, runLookup } from './lookups.js';
import { OMIT } from './magic-vars.js';
import { makeTables, toBool } from './template-filters.js';
import { braceFormat, isMapping, percentFormat, pyMethod, repr, splitKwargs, str, truthy } from './template-python.js';

/** A template referred to a name that has no value. */
export class UndefinedVariableError extends Error {
  override name = 'UndefinedVariableError';
  constructor(readonly variable: string) {
    super(`undefined variable "${variable}"`);
  }
}

/** A template that does not parse or fails while rendering (message already says which). */
export class TemplateError extends Error {
  override name = 'TemplateError';
}

/** Tests that never fail on a missing value, so `x is defined` guards `x`. */
const GUARD_TESTS = new Set(['defined', 'undefined', 'none', 'true', 'false', 'boolean']);

const UNDEF = Symbol('undefined');
const TARGET = Symbol('target');
const NAME = Symbol('name');
/** marks the objects namespace() makes: the only ones `{% set ns.x = … %}` may change */
const NAMESPACE = Symbol('namespace');

interface Undef {
  [UNDEF]: string;
}

/** How a template would write `name`'s member `key`: `x.y`, or `x['mail.example.org']` when not a plain name. */
function childName(name: string, key: string): string {
  return /^[A-Za-z_]\w*$/.test(key) ? `${name}.${key}` : `${name}[${repr(key)}]`;
}

/** The stand-in for a missing name: any use as a value (output, comparison, arithmetic) throws with its name. */
function undef(name: string): Undef {
  const base = Object.create(null) as Undef;
  base[UNDEF] = name;
  return new Proxy(base, {
    get(t, key) {
      if (key === UNDEF) return name;
      if (key === Symbol.toPrimitive || key === 'toString' || key === 'valueOf') {
        return () => {
          throw new UndefinedVariableError(name);
        };
      }
      if (typeof key === 'symbol') return undefined;
      return undef(childName(name, key));
    },
    has() {
      throw new UndefinedVariableError(name);
    },
  });
}

export function isUndefined(v: unknown): boolean {
  return v === undefined || (typeof v === 'object' && v !== null && (v as Undef)[UNDEF] !== undefined);
}

/** Wrap plain objects so that a missing key yields a named stand-in instead of `undefined`. */
function guard(value: unknown, name: string): unknown {
  if (value === null || typeof value !== 'object' || Buffer.isBuffer(value)) return value;
  if ((value as Undef)[UNDEF] !== undefined) return value;
  const proto = Object.getPrototypeOf(value);
  if (!Array.isArray(value) && proto !== Object.prototype && proto !== null) return value;
  return new Proxy(value as Record<PropertyKey, unknown>, {
    get(t, key) {
      if (key === TARGET) return t;
      if (key === NAME) return name;
      if (typeof key === 'symbol') return Reflect.get(t, key);
      if (Array.isArray(t)) {
        if (key in t) return guard(Reflect.get(t, key), `${name}[${key}]`);
        return /^\d+$/.test(key) ? undef(`${name}[${key}]`) : undefined;
      }
      if (Object.prototype.hasOwnProperty.call(t, key)) {
        // A read-only, non-configurable property (the inventory's `groups`) must come back as it is.
        const d = Object.getOwnPropertyDescriptor(t, key)!;
        if (!d.configurable && !d.writable) return t[key];
        return guard(t[key], childName(name, key));
      }
      // Methods Jinja users call on dicts (`d.items()`, `d.keys()`) and nunjucks internals stay reachable.
      if (key in Object.prototype) return undefined;
      return undef(childName(name, key));
    },
  });
}

/** The plain value behind guards (for results handed back to modules). */
export function unguard(value: unknown): unknown {
  if (isUndefined(value)) return undefined;
  if (value instanceof LazyValue) return value.resolve();
  if (value === null || typeof value !== 'object') return value;
  const target = (value as Record<PropertyKey, unknown>)[TARGET] as unknown;
  return target ?? value;
}

/**
 * A variable whose value holds templates (`cert: "{{ facts.tls_cert_dir }}/x.crt"`), rendered when a template first
 * uses it, against the same variables — as Ansible does. A variable that needs itself is an error.
 */
export class LazyValue {
  private state: 'idle' | 'busy' | 'done' = 'idle';
  private value: unknown;

  constructor(
    readonly name: string,
    readonly raw: unknown,
    private readonly vars: () => Record<string, unknown>,
  ) {}

  resolve(): unknown {
    if (this.state === 'done') return this.value;
    if (this.state === 'busy') throw new TemplateError(`variable "${this.name}" refers to itself`);
    this.state = 'busy';
    try {
      this.value = renderDeep(this.raw, this.vars());
      this.state = 'done';
      return this.value;
    } finally {
      if (this.state === 'busy') this.state = 'idle';
    }
  }
}

/**
 * What holdsTemplate found for each object it walked. Variable layers are built once and merged again for every
 * task, and a host's inventory variables include `groups` (every host of every group): without this, each merge
 * would walk the whole inventory again, per host, per task.
 */
const templatedObjects = new WeakMap<object, boolean>();

function holdsTemplate(v: unknown): boolean {
  if (typeof v === 'string') return isTemplated(v);
  if (!v || typeof v !== 'object' || Buffer.isBuffer(v) || v instanceof LazyValue) return false;
  let found = templatedObjects.get(v);
  if (found === undefined) {
    found = Array.isArray(v) ? v.some(holdsTemplate) : Object.values(v).some(holdsTemplate);
    templatedObjects.set(v, found);
  }
  return found;
}

/**
 * Merge variable layers, later ones winning. Values in `lazy` layers that hold templates are rendered on first
 * use; `plain` layers (registered results, facts) are taken literally — a command's output that happens to
 * contain "{{" is data, not a template.
 */
export function mergeVars(layers: { vars: Record<string, unknown>; lazy: boolean }[]): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const layer of layers) {
    for (const [k, v] of Object.entries(layer.vars)) {
      out[k] = layer.lazy && holdsTemplate(v) ? new LazyValue(k, v, () => out) : v;
    }
  }
  return out;
}

/** A variable's value for code (not templates): lazy values rendered. */
export function varValue(vars: Record<string, unknown>, name: string): unknown {
  const v = vars[name];
  return v instanceof LazyValue ? v.resolve() : v;
}


/** Ansible's `bool` filter: a string is true when it is one of yes, on, 1, true, y, t (any case). */
export { toBool };

function undefName(v: unknown): string {
  return (v as Undef | undefined)?.[UNDEF] ?? 'value';
}

/**
 * An environment whose filters, tests and globals are exactly our allow-lists, in objects without a prototype:
 * nunjucks' own filters that differ from Jinja2's are gone, and no name reaches JavaScript's machinery.
 */
function makeEnv(opts: { trimBlocks?: boolean } = {}): nunjucks.Environment {
  const env = new nunjucks.Environment([], { autoescape: false, throwOnUndefined: false, trimBlocks: opts.trimBlocks ?? false });
  const e = env as unknown as { filters: Record<string, unknown>; tests: Record<string, unknown>; globals: Record<string, unknown> };
  const tables = makeTables({
    isUndefined,
    fail: (v) => {
      throw new UndefinedVariableError(undefName(v));
    },
    plain: unguardDeep,
    filter: (name) => {
      const f = tables.filters[name];
      if (!f) throw new TemplateError(`unknown filter "${name}"${didYouMean(name, Object.keys(tables.filters))}`);
      return f;
    },
    test: (name) => {
      const t = tables.tests[name];
      if (!t) throw new TemplateError(`unknown test "${name}"${didYouMean(name, Object.keys(tables.tests))}`);
      return t;
    },
  });
  const strict = (name: string, f: (...a: never[]) => unknown, lenient: boolean) => (...args: unknown[]) => {
    if (!lenient && isUndefined(args[0])) throw new UndefinedVariableError(undefName(args[0]));
    for (const a of args.slice(1)) if (isUndefined(a)) throw new UndefinedVariableError(undefName(a));
    try {
      return (f as (...a: unknown[]) => unknown)(...args);
    } catch (err) {
      if (err instanceof UndefinedVariableError || err instanceof TemplateError) throw err;
      throw new TemplateError(`${name}: ${err instanceof Error ? err.message : String(err)}`);
    }
  };
  e.filters = Object.create(null) as Record<string, unknown>;
  for (const [n, f] of Object.entries(tables.filters)) e.filters[n] = strict(n, f, n === 'default' || n === 'd' || n === 'mandatory');
  e.filters.d = e.filters.default;
  tables.tests.__in = tables.tests.in!;
  e.tests = Object.create(null) as Record<string, unknown>;
  for (const [n, t] of Object.entries(tables.tests)) e.tests[n] = strict(n, t, GUARD_TESTS.has(n));
  const globals = e.globals;
  e.globals = Object.create(null) as Record<string, unknown>;
  for (const n of ['range', 'cycler', 'joiner']) e.globals[n] = globals[n];
  Object.assign(e.globals, { True: true, False: false, None: null, true: true, false: false, none: null });
  Object.assign(e.globals, {
    namespace: (kw: Record<string, unknown> = {}) => {
      const { __keywords: _, ...rest } = kw;
      return Object.defineProperty(rest, NAMESPACE, { value: true });
    },
    __member: member,
    __str: (v: unknown) => {
      if (isUndefined(v)) throw new UndefinedVariableError(undefName(v));
      if (v === null || v === undefined) return '';
      return typeof v === 'object' && !Array.isArray(unguard(v)) && Object.getPrototypeOf(unguard(v)) !== Object.prototype && Object.getPrototypeOf(unguard(v)) !== null ? String(v) : str(unguardDeep(v));
    },
    __test: (name: string, ...args: unknown[]) => {
      const t = e.tests[name] as ((...a: unknown[]) => unknown) | undefined;
      if (!t) throw new TemplateError(`unknown test "${name}"${didYouMean(name, Object.keys(e.tests).filter((k) => !k.startsWith('__')))}`);
      return truthy(t(...args));
    },
    __add: (a: unknown, b: unknown) => {
      const [x, y] = [unguard(a), unguard(b)];
      if (Array.isArray(x) && Array.isArray(y)) return [...(a as unknown[]), ...(b as unknown[])];
      if (typeof x === 'string' && typeof y === 'string') return x + y;
      if ((typeof x === 'number' || typeof x === 'boolean') && (typeof y === 'number' || typeof y === 'boolean')) return Number(x) + Number(y);
      if (isUndefined(a) || isUndefined(b)) throw new UndefinedVariableError(undefName(isUndefined(a) ? a : b));
      throw new TemplateError(`cannot add ${repr(unguardDeep(a))} and ${repr(unguardDeep(b))}`);
    },
    __mul: (a: unknown, b: unknown) => {
      const [x, y] = [unguard(a), unguard(b)];
      if (typeof x === 'string' && typeof y === 'number') return x.repeat(Math.max(0, y));
      if (Array.isArray(x) && typeof y === 'number') return Array.from({ length: Math.max(0, y) }, () => x).flat(1);
      if ((typeof x === 'number' || typeof x === 'boolean') && (typeof y === 'number' || typeof y === 'boolean')) return Number(x) * Number(y);
      if (isUndefined(a) || isUndefined(b)) throw new UndefinedVariableError(undefName(isUndefined(a) ? a : b));
      throw new TemplateError(`cannot multiply ${repr(unguardDeep(a))} by ${repr(unguardDeep(b))}`);
    },
    __mod: (a: unknown, b: unknown) => {
      const x = unguard(a);
      if (typeof x === 'string') return percentFormat(x, unguardDeep(b));
      if (isUndefined(a) || isUndefined(b)) throw new UndefinedVariableError(undefName(isUndefined(a) ? a : b));
      const [m, n] = [Number(x), Number(unguard(b))];
      if (n === 0) throw new TemplateError('modulo by zero');
      return ((m % n) + n) % n;
    },
    __method: (obj: unknown, key: unknown, ...args: unknown[]) => {
      const m = member(obj, key);
      if (typeof m !== 'function') {
        const what = isUndefined(obj) ? `"${undefName(obj)}" (undefined)` : Array.isArray(unguard(obj)) ? 'a list' : typeof unguard(obj) === 'string' ? 'a string' : isMapping(unguard(obj)) ? 'a dict' : repr(unguardDeep(obj));
        throw new TemplateError(`${what} has no method "${String(key)}"`);
      }
      return (m as (...a: unknown[]) => unknown)(...args);
    },
    __div: (a: unknown, b: unknown) => divide(a, b, false),
    __floordiv: (a: unknown, b: unknown) => divide(a, b, true),
    __iter: (v: unknown) => {
      if (isUndefined(v)) throw new UndefinedVariableError(undefName(v));
      const x = unguard(v);
      if (typeof x === 'string') return [...x];
      if (Array.isArray(x) || x === null || x === undefined) return v;
      if (typeof x === 'object' && (Object.getPrototypeOf(x) === Object.prototype || Object.getPrototypeOf(x) === null)) return Object.keys(x);
      return v;
    },
    __slice: (...args: unknown[]) => (args.length === 1 ? args[0] : new Slice(args[0] as number | null, args[1] as number | null, (args[2] as number | null) ?? null)),
    __setattr: (ns: unknown, key: unknown, value: unknown) => {
      const target = unguard(ns);
      if (!target || typeof target !== 'object' || !(target as Record<symbol, boolean>)[NAMESPACE]) throw new TemplateError('only a namespace() takes attribute assignment in {% set %}');
      if (typeof key !== 'string' || FORBIDDEN.has(key)) throw new TemplateError(`cannot set ${repr(key)} on a namespace`);
      (target as Record<string, unknown>)[key] = value;
      return '';
    },
    lookup: (name: unknown, ...args: unknown[]) => lookupCall(name, args, false),
    query: (name: unknown, ...args: unknown[]) => lookupCall(name, args, true),
    q: (name: unknown, ...args: unknown[]) => lookupCall(name, args, true),
    __cycle: (i: number, ...values: unknown[]) => {
      if (!values.length) throw new TemplateError('loop.cycle needs at least one value');
      return values[i % values.length];
    },
    __nearby: (items: unknown[], i: number, step: number) => {
      const at = i + step;
      return at >= 0 && at < items.length ? items[at] : undef(step < 0 ? 'loop.previtem' : 'loop.nextitem');
    },
    __forif: () => {
      throw new TemplateError('a loop filter was left untransformed');
    },
    __push: (l: unknown[], v: unknown) => {
      l.push(v);
      return '';
    },
    __list: () => [],
  });
  return env;
}

/** The variables of the renders under way, innermost last (a `template` lookup renders inside a render). */
const rendering: Record<string, unknown>[] = [];

function lookupCall(name: unknown, raw: unknown[], list: boolean): unknown {
  const { args, kwargs } = splitKwargs(raw.map((a) => unguardDeep(a)));
  const vars = rendering.at(-1) ?? {};
  const dir = varValue(vars, 'playbook_dir');
  if (typeof dir !== 'string' || !dir) throw new TemplateError('lookups need the playbook directory');
  try {
    return runLookup({ playbookDir: dir, render: (text) => renderText(text, vars) }, String(name), args, kwargs, list);
  } catch (e) {
    if (e instanceof LookupError) throw new TemplateError(`lookup('${String(name)}'): ${e.message}`);
    throw e;
  }
}

/** Python's `/` and `//`: on numbers only, and never by zero. */
function divide(a: unknown, b: unknown, floor: boolean): number {
  for (const v of [a, b]) if (isUndefined(v)) throw new UndefinedVariableError(undefName(v));
  const [x, y] = [unguard(a), unguard(b)];
  if (typeof x !== 'number' && typeof x !== 'boolean') throw new TemplateError(`cannot divide ${repr(unguardDeep(a))}`);
  if (typeof y !== 'number' && typeof y !== 'boolean') throw new TemplateError(`cannot divide by ${repr(unguardDeep(b))}`);
  if (Number(y) === 0) throw new TemplateError('division by zero');
  const q = Number(x) / Number(y);
  return floor ? Math.floor(q) : q;
}

/** Python's `x[start:stop:step]`. */
class Slice {
  constructor(
    readonly start: number | null,
    readonly stop: number | null,
    readonly step: number | null,
  ) {}

  of<T>(items: T[]): T[] {
    const len = items.length;
    const step = this.step ?? 1;
    if (step === 0) throw new TemplateError('slice step cannot be zero');
    const norm = (v: number | null, dflt: number) => (v === null ? dflt : v < 0 ? Math.max(v + len, step < 0 ? -1 : 0) : Math.min(v, step < 0 ? len - 1 : len));
    const start = norm(this.start, step > 0 ? 0 : len - 1);
    const stop = norm(this.stop, step > 0 ? len : -1);
    const out: T[] = [];
    for (let i = start; step > 0 ? i < stop : i > stop; i += step) out.push(items[i]!);
    return out;
  }
}

/**
 * Attribute and item access (`x.y`, `x['y']`, `x[0]`), as Jinja2 does it on plain data: keys of dictionaries,
 * items of lists (negative indexes from the end) and strings, and the Python methods of str, list and dict.
 */
function member(obj: unknown, key: unknown): unknown {
  if (typeof key === 'string' && FORBIDDEN.has(key)) throw new TemplateError(`access to "${key}" is not allowed in templates`);
  if (isUndefined(obj)) return undef(childName(undefName(obj), String(key)));
  const named = (obj as Record<symbol, string> | null)?.[NAME] ?? 'value';
  if (obj === null || obj === undefined) throw new TemplateError(`None has no attribute ${repr(key)}`);
  const target = unguard(obj);
  if (key instanceof Slice) {
    if (typeof target === 'string') return key.of([...target]).join('');
    if (Array.isArray(target)) return key.of(obj as unknown[]);
    throw new TemplateError(`cannot slice ${repr(unguardDeep(obj))}`);
  }
  if (typeof key === 'number' || (typeof key === 'string' && /^-?\d+$/.test(key) && (Array.isArray(target) || typeof target === 'string'))) {
    if (typeof target === 'string' || Array.isArray(target)) {
      const i = Number(key);
      const at = i < 0 ? target.length + i : i;
      if (at < 0 || at >= target.length) return undef(`${named}[${key}]`);
      return Array.isArray(target) ? (obj as unknown[])[at] : target[at];
    }
  }
  if (typeof key === 'string') {
    if (typeof target === 'string') {
      const m = pyMethod(target, key);
      if (m) return m;
      if (key === 'format') return (...args: unknown[]) => {
        const { args: a, kwargs } = splitKwargs(args);
        return braceFormat(target, a, kwargs);
      };
      return undef(`str.${key}`);
    }
    if (target && typeof target === 'object' && !Buffer.isBuffer(target)) {
      const proto = Object.getPrototypeOf(target);
      const own = Object.prototype.hasOwnProperty.call(target, key);
      if (own) return (obj as Record<string, unknown>)[key];
      if (Array.isArray(target)) {
        const m = pyMethod(target, key);
        return m ?? undef(childName(named, key));
      }
      if (proto === Object.prototype || proto === null || Array.isArray(target)) {
        const m = pyMethod(target, key);
        if (m) return m;
        return (obj as Record<string, unknown>)[key] ?? undef(childName(named, key));
      }
      // Objects of the engine itself (a loop, a cycler, a macro's result) keep their own members.
      const v = (target as Record<string, unknown>)[key];
      return typeof v === 'function' ? (v as (...a: unknown[]) => unknown).bind(target) : v;
    }
  }
  return undef(String(key));
}

function unguardDeep(v: unknown): unknown {
  const u = unguard(v);
  if (Array.isArray(u)) return u.map(unguardDeep);
  if (u && typeof u === 'object' && !Buffer.isBuffer(u)) {
    return Object.fromEntries(Object.entries(u).map(([k, x]) => [k, unguardDeep(x)]));
  }
  return u;
}

/**
 * Attribute names that lead from a value to the JavaScript machinery behind it (`x.constructor.constructor` is
 * `Function`). A template never needs them, so they are refused everywhere.
 */
const FORBIDDEN = new Set(['constructor', '__proto__', 'prototype', '__defineGetter__', '__defineSetter__', '__lookupGetter__', '__lookupSetter__', 'caller', 'callee', 'arguments', 'bind', 'call', 'apply']);

// Ansible templates every string with trim_blocks: a block tag eats the newline after it.
const env = makeEnv({ trimBlocks: true });
const FILTERS = (env as unknown as { filters: Record<string, unknown> }).filters;
const TESTS = (env as unknown as { tests: Record<string, unknown> }).tests;
/** Every filter and test a template may use (for messages and `provision validate`). */
export const FILTER_NAMES: readonly string[] = Object.keys(FILTERS).sort();
export const TEST_NAMES: readonly string[] = Object.keys(TESTS).filter((t) => !t.startsWith('__')).sort();
/** Template files render as Ansible's template module does: a block tag eats the newline after it. */
const fileEnv = makeEnv({ trimBlocks: true });
const compiled = new Map<string, Compiled>();
const SINGLE = /^\{\{\s*((?:(?!\}\}|\{\{|\{%)[\s\S])*?)\s*\}\}$/;

/**
 * The expression of a string that is exactly one `{{ … }}` (brackets and string literals inside may hold `}}`), or
 * null.
 */
function singleExpression(source: string): string | null {
  if (!source.startsWith('{{')) return null;
  const shaped = jinjaSource(source, true);
  const m = SINGLE.exec(shaped);
  if (!m) return null;
  // The same text without the rewrites: strip the delimiters from the original.
  const inner = source.slice(2, source.lastIndexOf('}}')).trim();
  return inner.includes('{{') || inner.includes('{%') ? null : inner;
}

export function isTemplated(s: string): boolean {
  return s.includes('{{') || s.includes('{%');
}

/** Brackets, and block tags such as `{% if %}`, nested deeper than this are refused. */
export const MAX_TEMPLATE_NESTING = 100;
/** Tokens allowed in one `{{ }}` or `{% %}` (a chain of thousands of `+` or filters is not a template). */
export const MAX_TAG_TOKENS = 1000;

const BLOCK_TAGS = new Set(['if', 'ifAsync', 'for', 'asyncEach', 'asyncAll', 'macro', 'call', 'filter', 'block', 'raw', 'verbatim', 'switch']);
const TOKEN = /\s*(?:[A-Za-z_]\w*|\d+(?:\.\d+)?|'(?:[^'\\]|\\.)*'|"(?:[^"\\]|\\.)*"|\S)/y;

/**
 * Why a template is too deep or too long for nunjucks to handle, or null. nunjucks parses and compiles by
 * recursion, one level per bracket, block, operator or filter; a hostile string would exhaust the stack (and a
 * process that overflowed inside a regular expression may crash outright), so the shape is measured first with
 * a scan that does not recurse.
 */
export function templateShapeProblem(source: string): string | null {
  let blocks = 0;
  let i = source.search(/\{[{%#]/);
  while (i >= 0 && i < source.length) {
    const kind = source[i + 1];
    if (kind === '#') {
      const end = source.indexOf('#}', i + 2);
      if (end < 0) return null;
      i = end + 2;
    } else {
      const close = kind === '{' ? '}' : '%';
      let depth = 0;
      let tokens = 0;
      let name: string | null = kind === '%' ? '' : null;
      let assigns = false;
      TOKEN.lastIndex = i + 2;
      for (;;) {
        const at = TOKEN.lastIndex;
        const m = TOKEN.exec(source);
        if (!m) {
          i = source.length;
          break;
        }
        const tok = m[0].trim();
        if (depth === 0 && tok === close && source[TOKEN.lastIndex] === '}') {
          i = TOKEN.lastIndex + 1;
          break;
        }
        if (++tokens > MAX_TAG_TOKENS) return `a template expression longer than ${MAX_TAG_TOKENS} tokens`;
        if (name === '' && tok !== '-') name = tok;
        if (tok === '=' && depth === 0) assigns = true;
        if (tok === '(' || tok === '[' || tok === '{') {
          if (++depth > MAX_TEMPLATE_NESTING) return `brackets nested more than ${MAX_TEMPLATE_NESTING} deep in a template`;
        } else if (tok === ')' || tok === ']' || tok === '}') {
          depth = Math.max(0, depth - 1);
        }
        if (TOKEN.lastIndex === at) {
          i = source.length;
          break;
        }
      }
      if (name?.startsWith('end')) blocks = Math.max(0, blocks - 1);
      else if (name && (BLOCK_TAGS.has(name) || (name === 'set' && !assigns))) {
        if (++blocks > MAX_TEMPLATE_NESTING) return `template blocks nested more than ${MAX_TEMPLATE_NESTING} deep`;
      }
    }
    const next = source.slice(i).search(/\{[{%#]/);
    i = next < 0 ? -1 : i + next;
  }
  return null;
}

/**
 * Source rewrites that make nunjucks' lexer read what Jinja2's reads, without changing any line or column:
 * - backslashes in string literals: Ansible keeps them literally in task arguments (`'\\1'` is a backreference),
 *   and in template files keeps unknown escapes (`'\\d'`), where nunjucks would drop them;
 * - `}}` that closes a dictionary inside an expression (`{{ {'a': {'b': 1}} }}`) is not the end of the tag;
 * - `x is in y` names the `in` test (nunjucks reads `in` as the operator);
 * - a comment tag eats the newline after it, as block tags do under trim_blocks.
 */
/** Words after which `[` opens a list rather than a subscript, and that never are a test's bare argument. */
const KEYWORDS = new Set(['in', 'is', 'not', 'and', 'or', 'if', 'else', 'elif', 'for', 'set', 'with', 'return', 'print']);

export function jinjaSource(source: string, literalBackslashes: boolean): string {
  let out = '';
  let i = 0;
  const n = source.length;
  while (i < n) {
    const open = source.slice(i).search(/\{[{%#]/);
    if (open < 0) {
      out += source.slice(i);
      break;
    }
    out += source.slice(i, i + open);
    i += open;
    const kind = source[i + 1];
    if (kind === '#') {
      const end = source.indexOf('#}', i + 2);
      if (end < 0) {
        out += source.slice(i);
        break;
      }
      let body = source.slice(i, end);
      let after = end + 2;
      // The newline moves inside the comment: it is dropped with it, and line numbers stay as they were.
      if (source[after] === '\n') {
        body += '\n';
        after++;
      }
      out += `${body}#}`;
      i = after;
      continue;
    }
    const close = kind === '{' ? '}}' : '%}';
    const raw = kind === '%' && /^\{%-?\s*raw\s*-?%\}/.test(source.slice(i));
    if (raw) {
      const end = source.slice(i).search(/\{%-?\s*endraw\s*-?%\}/);
      const stop = end < 0 ? n : i + end;
      out += source.slice(i, stop);
      i = stop;
      if (end >= 0) {
        const m = /^\{%-?\s*endraw\s*-?%\}/.exec(source.slice(i))!;
        out += m[0];
        i += m[0].length;
      }
      continue;
    }
    out += source.slice(i, i + 2);
    i += 2;
    // Open brackets: ( [ { and `sub` for a subscript, written `[__slice(…)]` so `x[1:3]` and `x[::-1]` parse.
    const stack: string[] = [];
    let prev = '';
    let prev2 = '';
    /** inside a subscript, nothing written yet since its start or its last colon */
    let sliceGap = false;
    const note = (t: string) => {
      prev2 = prev;
      prev = t;
      sliceGap = false;
    };
    while (i < n) {
      const c = source[i]!;
      if (c === "'" || c === '"') {
        let j = i + 1;
        let lit = c;
        while (j < n && source[j] !== c) {
          if (source[j] === '\\' && j + 1 < n) {
            const e = source[j + 1]!;
            if (literalBackslashes || !'ntr\\\'"'.includes(e)) lit += '\\\\';
            else lit += '\\';
            if (literalBackslashes && e === '\\') lit += '\\\\';
            else lit += e === '\\' ? '\\' : e;
            j += 2;
          } else lit += source[j++];
        }
        out += lit + (j < n ? c : '');
        i = j + 1;
        note('string');
        continue;
      }
      if (stack.length === 0 && source.startsWith(close, i)) break;
      if (stack.length === 0 && c === '-' && source.startsWith(close, i + 1)) break;
      if (c === '[') {
        const subscript = prev === 'string' || prev === ')' || prev === ']' || prev === '}' || (/^[A-Za-z_]/.test(prev) && !KEYWORDS.has(prev));
        out += subscript ? '[__slice(' : '[';
        stack.push(subscript ? 'sub' : '[');
        i++;
        note('[');
        sliceGap = subscript;
        continue;
      }
      if (c === ':' && stack.at(-1) === 'sub') {
        out += sliceGap ? 'none, ' : ', ';
        i++;
        sliceGap = true;
        continue;
      }
      if (c === '(' || c === '{') {
        stack.push(c);
        out += c;
        i++;
        note(c);
        continue;
      }
      if (c === ')' || c === ']' || c === '}') {
        const top = stack.pop();
        out += top === 'sub' ? `${sliceGap ? 'none' : ''})]` : c;
        i++;
        if (c === '}' && stack.length > 0 && source[i] === '}') out += ' ';
        note(c);
        continue;
      }
      const word = /^[A-Za-z_]\w*/.exec(source.slice(i, i + 64));
      if (word) {
        const w = word[0];
        const testName = (prev === 'is' && w !== 'not') || (prev === 'not' && prev2 === 'is');
        out += testName && w === 'in' ? '__in' : w;
        i += w.length;
        note(w);
        // `x is divisibleby 3`, `x is in ports`: a test takes one argument without parentheses.
        const bare = testName ? /^(\s+)([A-Za-z_]\w*(?:\.[A-Za-z_]\w*)*|'[^'\\]*'|"[^"\\]*"|-?\d+(?:\.\d+)?)(?![\w.([])/.exec(source.slice(i, i + 256)) : null;
        if (bare && !KEYWORDS.has(bare[2]!)) {
          out += `${bare[1]}(${bare[2]})`;
          i += bare[0].length;
          note(')');
        }
        continue;
      }
      out += c;
      i++;
      if (!/\s/.test(c)) note(c);
    }
    if (i < n) {
      const end = source[i] === '-' ? close.length + 1 : close.length;
      out += source.slice(i, i + end);
      i += end;
    }
  }
  return out;
}

interface Compiled {
  template: nunjucks.Template;
  /** the top-level names it reads: only these are handed to it */
  names: string[];
}

type NodeClass = new (lineno: number, colno: number, ...args: unknown[]) => AstNode;
const N = (nunjucks as unknown as { nodes: Record<string, NodeClass> }).nodes;
type CompilerClass = new (name: string, throwOnUndefined: boolean) => { compile(node: AstNode): void; getCode(): string };
const Compiler = (nunjucks as unknown as { compiler: { Compiler: CompilerClass } }).compiler.Compiler;

function call(at: AstNode, name: string, args: AstNode[]): AstNode {
  const list = new N.NodeList!(at.lineno, at.colno);
  for (const a of args) (list as unknown as { addChild(n: AstNode): void }).addChild(a);
  return new N.FunCall!(at.lineno, at.colno, new N.Symbol!(at.lineno, at.colno, name), list);
}

let loopFilters = 0;

/**
 * Rewrite the parsed template into Jinja2's meaning where nunjucks' differs: every attribute or item access goes
 * through `member` (Python methods, negative indexes, no JavaScript internals), every printed value through
 * Python's str() (`True`, `None`, `['a']`), and `{% for x in xs if cond %}` filters the items before the loop,
 * so `loop.index` counts the kept ones.
 */
function jinjaTree(node: AstNode): AstNode {
  const fix = (n: unknown): unknown => {
    if (Array.isArray(n)) return n.map(fix);
    if (!n || typeof n !== 'object' || typeof (n as AstNode).typename !== 'string') return n;
    const x = n as AstNode;
    if (x.typename === 'For' && !x.__helpers) {
      x.__helpers = true;
      // loop.cycle(…), loop.previtem and loop.nextitem, which nunjucks' loop lacks, read the loop's own items.
      const items = `__items${++loopFilters}`;
      const uses = loopHelpers(x, items);
      if (uses && (x.arr as AstNode).typename !== 'InlineIf') {
        const setNode = new N.Set!(x.lineno, x.colno, [new N.Symbol!(x.lineno, x.colno, items)], call(x, '__iter', [x.arr as AstNode]));
        x.arr = new N.Symbol!(x.lineno, x.colno, items);
        x.__iterated = true;
        const group = new N.NodeList!(x.lineno, x.colno);
        for (const c of [fix(setNode) as AstNode, fix(x) as AstNode]) (group as unknown as { addChild(n: AstNode): void }).addChild(c);
        return group;
      }
      if (uses) x.__items = items;
    }
    if (x.typename === 'Set') {
      const targets = (x.targets as AstNode[]) ?? [];
      if (targets.length === 1 && targets[0]!.typename === 'LookupVal' && x.value) {
        // `{% set ns.total = … %}` writes an attribute of a namespace().
        const t = targets[0]!;
        const out = new N.Output!(x.lineno, x.colno);
        (out as unknown as { addChild(n: AstNode): void }).addChild(call(x, '__setattr', [fix(t.target) as AstNode, t.val as AstNode, fix(x.value) as AstNode]));
        return out;
      }
      x.value = fix(x.value);
      x.body = fix(x.body);
      return x;
    }
    if (Array.isArray(x.children)) x.children = x.children.map((c) => fix(c) as AstNode);
    for (const f of x.fields ?? []) if (f !== 'children') x[f] = fix(x[f]);
    if (x.typename === 'FunCall' && (x.name as AstNode).typename === 'FunCall' && ((x.name as AstNode).name as AstNode).value === '__member') {
      // `x.name(…)`: a method call, so that a missing method is named in the error.
      const [target, key] = ((x.name as AstNode).args as AstNode).children!;
      return call(x, '__method', [target!, key!, ...((x.args as AstNode).children ?? [])]);
    }
    if (x.typename === 'LookupVal') return call(x, '__member', [x.target as AstNode, x.val as AstNode]);
    if (x.typename === 'Group' && (x.children ?? []).length > 1) {
      // A tuple `(a, b)`: a list to templates (nunjucks would keep only its last item).
      const arr = new N.Array!(x.lineno, x.colno);
      for (const c of x.children!) (arr as unknown as { addChild(n: AstNode): void }).addChild(c);
      return arr;
    }
    if (x.typename === 'Div' || x.typename === 'FloorDiv') {
      return call(x, x.typename === 'Div' ? '__div' : '__floordiv', [x.left as AstNode, x.right as AstNode]);
    }
    if (x.typename === 'Add' || x.typename === 'Mul' || x.typename === 'Mod') {
      // Python's operators: lists concatenate, strings repeat, `%` formats text.
      return call(x, `__${x.typename.toLowerCase()}`, [x.left as AstNode, x.right as AstNode]);
    }
    if (x.typename === 'For' || x.typename === 'AsyncEach' || x.typename === 'AsyncAll') {
      if ((x.arr as AstNode).typename !== 'InlineIf' && !x.__iterated) x.arr = call(x, '__iter', [x.arr as AstNode]);
    }
    if (x.typename === 'Is') {
      // `x is name(args)` calls the test through one function: nunjucks reads `none`/`true` as literals and
      // compiles test arguments its own way.
      const right = x.right as AstNode;
      const named = right.typename === 'FunCall' ? (right.name as AstNode) : right;
      const name = named.typename === 'Symbol' ? String(named.value) : named.value === null ? 'none' : String(named.value);
      const args = right.typename === 'FunCall' ? ((right.args as AstNode).children ?? []) : [];
      return call(x, '__test', [new N.Literal!(x.lineno, x.colno, name), x.left as AstNode, ...args]);
    }
    if (x.typename === 'Output') {
      x.children = (x.children ?? []).map((c) => (c.typename === 'TemplateData' ? c : call(c, '__str', [c])));
      return x;
    }
    if (x.typename === 'For' && (x.arr as AstNode).typename === 'InlineIf') {
      const cond = x.arr as AstNode;
      if (cond.else_) throw new TemplateError('a for loop takes "if" to filter its items, without "else"');
      const kept = typeof x.__items === 'string' ? x.__items : `__kept${++loopFilters}`;
      const sym = () => new N.Symbol!(x.lineno, x.colno, kept);
      const names = (x.name as AstNode).typename === 'Array' ? ((x.name as AstNode).children ?? []) : [x.name as AstNode];
      const item = names.length === 1 ? new N.Symbol!(x.lineno, x.colno, String(names[0]!.value)) : (() => {
        const arr = new N.Array!(x.lineno, x.colno);
        for (const nm of names) (arr as unknown as { addChild(n: AstNode): void }).addChild(new N.Symbol!(x.lineno, x.colno, String(nm.value)));
        return arr;
      })();
      const pushBody = new N.NodeList!(x.lineno, x.colno);
      const out = new N.Output!(x.lineno, x.colno);
      (out as unknown as { addChild(n: AstNode): void }).addChild(call(x, '__push', [sym(), item]));
      (pushBody as unknown as { addChild(n: AstNode): void }).addChild(new N.If!(x.lineno, x.colno, cond.cond, out, null));
      const setNode = new N.Set!(x.lineno, x.colno, [sym()], call(x, '__list', []));
      const collect = new N.For!(x.lineno, x.colno, cond.body, x.name, pushBody, null);
      x.arr = sym();
      const group = new N.NodeList!(x.lineno, x.colno);
      for (const c of [setNode, collect, x]) (group as unknown as { addChild(n: AstNode): void }).addChild(c);
      return group;
    }
    return x;
  };
  return fix(node) as AstNode;
}

/**
 * Point `loop.cycle(…)`, `loop.previtem` and `loop.nextitem` in this loop's body (not in loops nested in it) at
 * helpers; previtem and nextitem read the list held in `items`. Returns whether the body reads either.
 */
function loopHelpers(loop: AstNode, items: string): boolean {
  let readsItems = false;
  const isLoopAttr = (n: AstNode, attr: string) =>
    n.typename === 'LookupVal' && (n.target as AstNode).typename === 'Symbol' && (n.target as AstNode).value === 'loop' && (n.val as AstNode).typename === 'Literal' && (n.val as AstNode).value === attr;
  const index0 = (at: AstNode) => new N.LookupVal!(at.lineno, at.colno, new N.Symbol!(at.lineno, at.colno, 'loop'), new N.Literal!(at.lineno, at.colno, 'index0'));
  const walk = (n: unknown): unknown => {
    if (Array.isArray(n)) return n.map(walk);
    if (!n || typeof n !== 'object' || typeof (n as AstNode).typename !== 'string') return n;
    const x = n as AstNode;
    if (x.typename === 'For' || x.typename === 'AsyncEach' || x.typename === 'AsyncAll' || x.typename === 'Macro') {
      x.arr = walk(x.arr);
      return x;
    }
    if (x.typename === 'FunCall' && isLoopAttr(x.name as AstNode, 'cycle')) {
      return call(x, '__cycle', [index0(x), ...(((x.args as AstNode).children ?? []).map((c) => walk(c) as AstNode))]);
    }
    for (const [attr, step] of [['previtem', -1], ['nextitem', 1]] as const) {
      if (isLoopAttr(x, attr)) {
        readsItems = true;
        return call(x, '__nearby', [new N.Symbol!(x.lineno, x.colno, items), index0(x), new N.Literal!(x.lineno, x.colno, step)]);
      }
    }
    if (Array.isArray(x.children)) x.children = x.children.map((c) => walk(c) as AstNode);
    for (const f of x.fields ?? []) if (f !== 'children') x[f] = walk(x[f]);
    if (x.typename === 'Set') x.body = walk(x.body);
    return x;
  };
  loop.body = walk(loop.body);
  return readsItems;
}

function compile(source: string, environment = env): Compiled {
  const key = environment === env ? source : `file:${source}`;
  let t = compiled.get(key);
  if (!t) {
    const shape = templateShapeProblem(source);
    if (shape) throw new TemplateError(shape);
    const refs = templateRefs(source);
    try {
      const opts = (environment as unknown as { opts: Record<string, unknown> }).opts;
      const tree = jinjaTree(parser.parse(jinjaSource(source.replace(/\n$/, ''), environment === env), [], opts));
      const c = new Compiler('template', false);
      c.compile(tree);
      // A precompiled template: nunjucks' documented way to hand it code rather than text.
      // A loop body is a scope of its own in Jinja2: `{% set %}` inside it does not change the variable outside.
      // nunjucks emits this line only where a loop starts its frame; an isolated frame keeps the writes in.
      const code = new Function(c.getCode().split('frame = frame.push();').join('frame = frame.push(true);')) as () => Record<string, unknown>;
      const template = new nunjucks.Template({ type: 'code', obj: code() } as unknown as string, environment);
      t = { template, names: refs ? [...new Set([...refs.names.keys(), ...refs.guarded])] : [] };
    } catch (e) {
      if (e instanceof TemplateError) throw e;
      throw new TemplateError(cleanMessage(e));
    }
    if (compiled.size > 5000) compiled.clear();
    compiled.set(key, t);
  }
  return t;
}

function cleanMessage(e: unknown): string {
  const raw = e instanceof Error ? e.message : String(e);
  // The parser can stumble on an unfinished expression with JavaScript's own words: say what is wrong instead.
  const missing = /(filter|test) not found: (\S+)/.exec(raw);
  if (missing) {
    const [, kind, name] = missing;
    return `unknown ${kind} "${name}"${didYouMean(name!, kind === 'filter' ? FILTER_NAMES : TEST_NAMES)}`;
  }
  const called = /Unable to call `([^`]*)`, which is (?:not a function|undefined or falsey)/.exec(raw);
  const msg = called
    ? `"${called[1]}" is not callable`
    : /Cannot read propert|is not a function|undefined is not|is not iterable|Maximum call stack/.test(raw)
      ? 'the template does not parse: an expression or tag is not finished'
      : raw;
  return msg
    .replace(/^\(unknown path\)\s*(\[Line \d+, Column \d+\])?\s*/, '')
    .replace(/^\s*(Template render error|Error|TemplateError|TypeError):\s*/g, '')
    .replace(/^\s*parse\w*:\s*/, '')
    .replace(/\n\s*/g, ' ')
    .trim();
}

function renderRaw(source: string, vars: Record<string, unknown>, environment = env): string {
  const { template, names } = compile(source, environment);
  // The template gets only the names it reads: lazy values are rendered when read, missing ones are stand-ins
  // that fail with their name when used as a value.
  const ctx: Record<string, unknown> = Object.create(null) as Record<string, unknown>;
  const globals = (environment as unknown as { globals: Record<string, unknown> }).globals;
  for (const name of names) {
    if (Object.prototype.hasOwnProperty.call(vars, name)) {
      const v = vars[name];
      ctx[name] = guard(v instanceof LazyValue ? v.resolve() : v, name);
    } else if (!(name in globals)) ctx[name] = undef(name);
  }
  rendering.push(vars);
  try {
    // Jinja2 drops one newline at the very end of the source; Ansible then adds newlines back until the result
    // ends in as many as the source did.
    const out = template.render(ctx);
    const want = /\n*$/.exec(source)![0].length;
    const have = /\n*$/.exec(out)![0].length;
    return want > have ? out + '\n'.repeat(want - have) : out;
  } catch (e) {
    // nunjucks wraps our error into its own; find the undefined name in the message it kept.
    const m = /undefined variable "([^"]+)"/.exec(e instanceof Error ? e.message : '');
    if (m) throw new UndefinedVariableError(m[1]!);
    throw new TemplateError(cleanMessage(e));
  } finally {
    rendering.pop();
  }
}

/** Evaluate one expression and return its value (not a string). */
export function evaluate(expression: string, vars: Record<string, unknown>): unknown {
  let value: unknown;
  let captured = false;
  const capture = (v: unknown) => {
    value = v;
    captured = true;
    return '';
  };
  renderRaw(`{{ __capture((${expression})) }}`, { ...vars, __capture: capture });
  if (!captured) throw new TemplateError(`cannot evaluate ${expression}`);
  if (isUndefined(value)) throw new UndefinedVariableError((value as Undef | undefined)?.[UNDEF] ?? expression);
  return unguardDeep(value);
}

/**
 * Ansible reads a rendered string that looks like a Python list or dict (`[{{ a }}, {{ b }}]`), or is True or
 * False, as that value; anything that does not parse as one stays text.
 */
function literalValue(text: string): unknown {
  if (text === 'True') return true;
  if (text === 'False') return false;
  if (!text.startsWith('[') && !text.startsWith('{')) return text;
  const v = parsePythonLiteral(text);
  return v === NOT_LITERAL ? text : v;
}

const NOT_LITERAL = Symbol('not a literal');

/** Python literals (ast.literal_eval): lists, tuples, dicts, strings, numbers, True, False, None. */
function parsePythonLiteral(text: string): unknown {
  let i = 0;
  const ws = () => {
    while (i < text.length && /\s/.test(text[i]!)) i++;
  };
  const fail = (): never => {
    throw NOT_LITERAL;
  };
  const value = (): unknown => {
    ws();
    const c = text[i];
    if (c === '[' || c === '(') {
      const close = c === '[' ? ']' : ')';
      i++;
      const out: unknown[] = [];
      ws();
      while (text[i] !== close) {
        out.push(value());
        ws();
        if (text[i] === ',') i++;
        else if (text[i] !== close) fail();
        ws();
      }
      i++;
      return out;
    }
    if (c === '{') {
      i++;
      const out: Record<string, unknown> = {};
      ws();
      while (text[i] !== '}') {
        const k = value();
        ws();
        if (text[i++] !== ':') fail();
        if (typeof k !== 'string' && typeof k !== 'number') fail();
        out[String(k)] = value();
        ws();
        if (text[i] === ',') i++;
        else if (text[i] !== '}') fail();
        ws();
      }
      i++;
      return out;
    }
    if (c === "'" || c === '"') {
      let s = '';
      i++;
      while (i < text.length && text[i] !== c) {
        if (text[i] === '\\') {
          const e = text[++i];
          s += e === 'n' ? '\n' : e === 't' ? '\t' : e === 'r' ? '\r' : e === '\\' || e === "'" || e === '"' ? e : `\\${e}`;
          i++;
        } else s += text[i++];
      }
      if (text[i++] !== c) fail();
      return s;
    }
    const m = /^(?:True|False|None|-?\d+(?:\.\d+)?(?:[eE][-+]?\d+)?)/.exec(text.slice(i));
    if (!m) return fail();
    i += m[0].length;
    return m[0] === 'True' ? true : m[0] === 'False' ? false : m[0] === 'None' ? null : Number(m[0]);
  };
  try {
    const v = value();
    ws();
    return i === text.length ? v : NOT_LITERAL;
  } catch (e) {
    if (e === NOT_LITERAL) return NOT_LITERAL;
    throw e;
  }
}

/** Render a string: one `{{ expr }}` gives the native value, anything else gives a string. */
export function renderString(source: string, vars: Record<string, unknown>): unknown {
  if (!isTemplated(source)) return source;
  const single = singleExpression(source);
  if (single !== null) return evaluate(single, vars);
  return literalValue(renderRaw(source, vars));
}

/** Render a whole template file to text. */
export function renderText(source: string, vars: Record<string, unknown>): string {
  return renderRaw(source, vars, fileEnv);
}

/** Render every string inside a value (objects and arrays are copied, keys are not templated). */
export function renderDeep(value: unknown, vars: Record<string, unknown>): unknown {
  if (typeof value === 'string') return renderString(value, vars);
  // A value that renders to `omit` is left out, as Ansible leaves out the argument.
  if (Array.isArray(value)) return value.map((v) => renderDeep(v, vars)).filter((v) => v !== OMIT);
  if (value && typeof value === 'object' && !Buffer.isBuffer(value)) {
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, renderDeep(v, vars)] as const).filter(([, v]) => v !== OMIT));
  }
  return value;
}

/**
 * A condition (`when`, `changed_when`, `failed_when`, `assert that`): a bare expression, or a list of them that
 * must all hold. Plain booleans are accepted as is.
 */
export function evaluateCondition(cond: unknown, vars: Record<string, unknown>): boolean {
  if (Array.isArray(cond)) return cond.every((c) => evaluateCondition(c, vars));
  if (typeof cond === 'boolean') return cond;
  if (cond === null || cond === undefined) return true;
  let expr = String(cond).trim();
  // People write `when: "{{ x }}"` too; Ansible accepts it with a warning, so do we (without the warning).
  const single = singleExpression(expr);
  if (single !== null) expr = single;
  const v = evaluate(expr, vars);
  // A variable holding text ("yes", "false") is read as a boolean, as Ansible does; any other expression is
  // true or false as in Python (a non-empty string literal is true, an empty list is false).
  if (typeof v === 'string' && /^[A-Za-z_]\w*$/.test(expr.trim())) return toBool(v);
  return truthy(v);
}

/** Check that a template parses, without rendering it (for `provision validate`). */
export function checkSyntax(source: string): string | null {
  if (!isTemplated(source)) return null;
  try {
    const single = singleExpression(source);
    compile(single !== null ? `{{ __capture((${single})) }}` : source);
  } catch (e) {
    return e instanceof Error ? e.message : String(e);
  }
  const refs = templateRefs(source);
  return refs?.problems[0]?.message ?? null;
}

/** Same for a bare condition expression. */
export function checkConditionSyntax(cond: string): string | null {
  const single = singleExpression(cond.trim());
  return checkSyntax(`{{ ${single ?? cond} }}`);
}

/** A nunjucks syntax tree node (nunjucks ships no types for its parser). */
interface AstNode {
  typename: string;
  /** 0-based */
  lineno: number;
  colno: number;
  fields: string[];
  children?: AstNode[];
  value?: unknown;
  [field: string]: unknown;
}

type Parser = { parse(src: string, extensions?: unknown[], opts?: Record<string, unknown>): AstNode };
const parser = (nunjucks as unknown as { parser: Parser }).parser;

/** A place in a template's own text, 1-based. */
export interface TemplatePlace {
  line: number;
  col: number;
}

/** What a template reads, found without rendering it. */
export interface TemplateRefs {
  /** top-level names it reads and does not define itself (set, for, macro), with where each is first read */
  names: Map<string, TemplatePlace>;
  /** names it only tests or defaults (`x is defined`, `x | default(…)`): their absence is handled */
  guarded: Set<string>;
  /** what it must not do at all: reach JavaScript internals, or load other templates */
  problems: { message: string; place: TemplatePlace }[];
}

/** Names every template can use without anyone defining them. */
const BUILTIN_NAMES = new Set(['lookup', 'query', 'q', '__cycle', '__nearby', 'range', 'cycler', 'joiner', 'namespace', 'True', 'False', 'None', 'true', 'false', 'none', '__slice']);
/** Tests that never fail on a missing value, so `x is defined` guards `x`. */
/** Filters whose purpose is to handle a missing value. */
const GUARD_FILTERS = new Set(['default', 'd', 'mandatory']);
const LOADING_TAGS: Record<string, string> = { Include: 'include', Import: 'import', FromImport: 'from … import', Extends: 'extends' };

function childrenOf(n: AstNode): AstNode[] {
  const out: AstNode[] = [];
  // Most fields hold a node; a few hold a plain array of nodes (the targets of `set`, the cases of `switch`).
  const add = (v: unknown) => {
    if (Array.isArray(v)) v.forEach(add);
    else if (v && typeof v === 'object' && typeof (v as AstNode).typename === 'string') out.push(v as AstNode);
  };
  if (Array.isArray(n.children)) n.children.forEach(add);
  else for (const f of n.fields ?? []) add(n[f]);
  // A `{% set x %}…{% endset %}` block keeps its body outside the node's declared fields.
  if (n.typename === 'Set') add(n.body);
  return out;
}

/** The variable an expression starts from (`x` in `x.y[0].z`), if it starts from one. */
function rootName(n: AstNode | undefined): string | null {
  let cur = n;
  while (cur) {
    if (cur.typename === 'Symbol') return String(cur.value);
    if (cur.typename === 'LookupVal') cur = cur.target as AstNode;
    else return null;
  }
  return null;
}

/**
 * The names a template (a string with `{{ }}`/`{% %}`, or with `expression` a bare expression such as a `when:`)
 * reads, without rendering it. Returns null when it does not parse (checkSyntax says why).
 */
export function templateRefs(source: string, expression = false): TemplateRefs | null {
  let root: AstNode;
  try {
    const single = expression ? singleExpression(source.trim()) : null;
    const text = expression ? `{{ ${single ?? source} }}` : source;
    if (templateShapeProblem(text)) return null;
    root = parser.parse(jinjaSource(text, true));
  } catch {
    return null;
  }
  const refs: TemplateRefs = { names: new Map(), guarded: new Set(), problems: [] };
  const bound = new Set<string>();
  const skip = new Set<AstNode>();
  const uses: AstNode[] = [];
  const place = (n: AstNode): TemplatePlace => ({ line: (n.lineno ?? 0) + 1, col: (n.colno ?? 0) + 1 });
  const bind = (n: unknown) => {
    if (Array.isArray(n)) return n.forEach(bind);
    const node = n as AstNode | null;
    if (!node) return;
    if (node.typename === 'Symbol') {
      bound.add(String(node.value));
      skip.add(node);
    } else if (node.typename === 'Pair') {
      bind(node.key);
    } else {
      for (const c of childrenOf(node)) if (c.typename === 'Symbol' || c.typename === 'Pair' || c.typename === 'Array' || c.typename === 'KeywordArgs') bind(c);
    }
  };
  // Iterative walk: a template of thousands of nested brackets must not exhaust the stack here.
  const stack: AstNode[] = [root];
  while (stack.length) {
    const n = stack.pop()!;
    if (skip.has(n)) continue;
    switch (n.typename) {
      case 'Symbol':
        uses.push(n);
        break;
      case 'LookupVal': {
        let key = n.val as AstNode;
        // `x['k']` reaches the parser as `x[__slice('k')]` (see jinjaSource).
        if (key.typename === 'FunCall' && (key.name as AstNode).value === '__slice' && (key.args as AstNode).children?.length === 1) key = (key.args as AstNode).children![0]!;
        if (key.typename === 'Literal' && typeof key.value === 'string' && FORBIDDEN.has(key.value)) {
          refs.problems.push({ message: `access to "${key.value}" is not allowed in templates`, place: place(key) });
        }
        break;
      }
      case 'Filter':
      case 'FilterAsync': {
        skip.add(n.name as AstNode);
        const name = String((n.name as AstNode).value);
        const first = (n.args as AstNode | null)?.children?.[0];
        if (!(name in FILTERS)) refs.problems.push({ message: `unknown filter "${name}"${didYouMean(name, FILTER_NAMES)}`, place: place(n.name as AstNode) });
        // Filters and tests named by a filter's argument: map('upper'), select('match', …), selectattr('x', 'gt', 1).
        const named = (i: number) => {
          const a = (n.args as AstNode | null)?.children?.[i];
          return a?.typename === 'Literal' && typeof a.value === 'string' ? { value: a.value, at: a } : null;
        };
        const byArg = name === 'map' ? { f: named(1) } : name === 'select' || name === 'reject' ? { t: named(1) } : name === 'selectattr' || name === 'rejectattr' ? { t: named(2) } : {};
        if (byArg.f && !(byArg.f.value in FILTERS)) refs.problems.push({ message: `unknown filter "${byArg.f.value}"${didYouMean(byArg.f.value, FILTER_NAMES)}`, place: place(byArg.f.at) });
        if (byArg.t && !(byArg.t.value in TESTS)) refs.problems.push({ message: `unknown test "${byArg.t.value}"${didYouMean(byArg.t.value, TEST_NAMES)}`, place: place(byArg.t.at) });
        const guarded = GUARD_FILTERS.has(name) ? rootName(first) : null;
        if (guarded) refs.guarded.add(guarded);
        break;
      }
      case 'Is': {
        const test = n.right as AstNode;
        const testName = test.typename === 'FunCall' ? (test.name as AstNode) : test;
        skip.add(testName);
        const tname = testName.typename === 'Symbol' ? String(testName.value) : testName.value === null ? 'none' : String(testName.value);
        if (!(tname in TESTS)) refs.problems.push({ message: `unknown test "${tname}"${didYouMean(tname, TEST_NAMES)}`, place: place(testName) });
        const guarded = GUARD_TESTS.has(String(testName.value)) ? rootName(n.left as AstNode) : null;
        if (guarded) refs.guarded.add(guarded);
        break;
      }
      case 'FunCall': {
        const fn = n.name as AstNode;
        const first = (n.args as AstNode | null)?.children?.[0];
        if (fn.typename === 'Symbol' && ['lookup', 'query', 'q'].includes(String(fn.value)) && first?.typename === 'Literal' && !LOOKUP_NAMES.includes(String(first.value))) {
          refs.problems.push({ message: `lookup plugin "${String(first.value)}" is not supported${didYouMean(String(first.value), LOOKUP_NAMES)} (supported: ${LOOKUP_NAMES.join(', ')})`, place: place(first) });
        }
        break;
      }
      case 'Pair':
        // Keys of `{a: 1}` and of keyword arguments `f(k=v)` are names of fields, not variables.
        if ((n.key as AstNode).typename === 'Symbol') skip.add(n.key as AstNode);
        break;
      case 'For':
      case 'AsyncEach':
      case 'AsyncAll':
        bind(n.name);
        bound.add('loop');
        break;
      case 'Set':
        bind(n.targets);
        break;
      case 'Macro':
      case 'Caller':
        bind(n.name);
        bind(n.args);
        bound.add('caller');
        break;
      default:
        if (LOADING_TAGS[n.typename]) {
          refs.problems.push({ message: `templates cannot load other templates ({% ${LOADING_TAGS[n.typename]} %})`, place: place(n) });
        }
    }
    const kids = childrenOf(n);
    for (let i = kids.length - 1; i >= 0; i--) stack.push(kids[i]!);
  }
  for (const u of uses) {
    if (skip.has(u)) continue;
    const name = String(u.value);
    if (bound.has(name) || BUILTIN_NAMES.has(name) || refs.names.has(name)) continue;
    refs.names.set(name, place(u));
  }
  return refs;
}

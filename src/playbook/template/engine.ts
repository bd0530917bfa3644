/**
 * The nunjucks environments templates render in, set up through nunjucks' public API: our filters, tests and
 * globals only (Python's operators, attribute access, tests and lookups are globals the rewritten tree calls).
 */
import nunjucks from 'nunjucks';
import { didYouMean } from '../../util/suggest.js';
import { LookupError, runLookup } from '../lookups.js';
import { TemplateError, UndefinedVariableError } from './errors.js';
import { compare, makeTables } from './filters.js';
import { FORBIDDEN } from './guard.js';
import { member, Slice } from './member.js';
import { isFloat, isMapping, markTuple, percentFormat, pyEquals, PyFloat, pyFloat, repr, splitKwargs, str, truthy, unbox } from './python.js';
import { varValue } from './lazy.js';
import { GUARD_TESTS, isUndefined, NAMESPACE, undef, undefName, unguard, unguardDeep } from './undefined.js';

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
  const strict = (name: string, f: (...a: never[]) => unknown, lenient: boolean, floats: boolean) => (...args: unknown[]) => {
    if (!lenient && isUndefined(args[0])) throw new UndefinedVariableError(undefName(args[0]));
    // Most filters and tests take numbers; only those that tell a float from an int see the box.
    if (!floats) for (let i = 0; i < args.length; i++) if (args[i] instanceof PyFloat) args[i] = (args[i] as PyFloat).value;
    for (const a of args.slice(1)) if (isUndefined(a)) throw new UndefinedVariableError(undefName(a));
    try {
      return (f as (...a: unknown[]) => unknown)(...args);
    } catch (err) {
      if (err instanceof UndefinedVariableError || err instanceof TemplateError) throw err;
      throw new TemplateError(`${name}: ${err instanceof Error ? err.message : String(err)}`);
    }
  };
  e.filters = Object.create(null) as Record<string, unknown>;
  for (const [n, f] of Object.entries(tables.filters)) e.filters[n] = strict(n, f, n === 'default' || n === 'd' || n === 'mandatory', FLOAT_FILTERS.has(n));
  e.filters.d = e.filters.default;
  e.tests = Object.create(null) as Record<string, unknown>;
  for (const [n, t] of Object.entries(tables.tests)) e.tests[n] = strict(n, t, GUARD_TESTS.has(n), FLOAT_TESTS.has(n));
  const globals = e.globals;
  e.globals = Object.create(null) as Record<string, unknown>;
  for (const n of ['cycler', 'joiner']) e.globals[n] = globals[n];
  const nunjucksRange = globals.range as (...a: number[]) => number[];
  // Python's range takes integers only: range(0, 3.0) is an error, not [0, 1, 2].
  e.globals.range = (...args: unknown[]) => {
    for (const a of args) {
      if (isUndefined(a)) throw new UndefinedVariableError(undefName(a));
      const x = unguard(a);
      if (!(typeof x === 'number' || typeof x === 'boolean') || isFloat(x)) throw new TemplateError(`range() takes integers, not ${repr(unguardDeep(a))}`);
    }
    if (args.length === 3 && Number(args[2]) === 0) throw new TemplateError('range() step must not be zero');
    return nunjucksRange(...args.map((a) => Number(unguard(a))));
  };
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
      if (!t) throw new TemplateError(`unknown test "${name}"${didYouMean(name, Object.keys(e.tests))}`);
      const given = splitKwargs(args).args.length - 1;
      const [least, most] = TEST_ARGUMENTS[name] ?? [0, 0];
      if (given < least || given > most) {
        const want = least === most ? String(least) : most === Infinity ? `at least ${least}` : `${least} to ${most}`;
        throw new TemplateError(`the test "${name}" takes ${want} argument${want === '1' ? '' : 's'}, got ${given}`);
      }
      return truthy(t(...args));
    },
    __add: (a: unknown, b: unknown) => {
      const [x, y] = [unbox(unguard(a)), unbox(unguard(b))];
      if (Array.isArray(x) && Array.isArray(y)) return [...(a as unknown[]), ...(b as unknown[])];
      if (typeof x === 'string' && typeof y === 'string') return x + y;
      if ((typeof x === 'number' || typeof x === 'boolean') && (typeof y === 'number' || typeof y === 'boolean')) return arith(a, b, Number(x) + Number(y));
      if (isUndefined(a) || isUndefined(b)) throw new UndefinedVariableError(undefName(isUndefined(a) ? a : b));
      throw new TemplateError(`cannot add ${repr(unguardDeep(a))} and ${repr(unguardDeep(b))}`);
    },
    __mul: (a: unknown, b: unknown) => {
      const [x, y] = [unbox(unguard(a)), unbox(unguard(b))];
      if (typeof x === 'string' && typeof y === 'number' && !isFloat(b)) return x.repeat(Math.max(0, y));
      if (Array.isArray(x) && typeof y === 'number' && !isFloat(b)) return Array.from({ length: Math.max(0, y) }, () => x).flat(1);
      if ((typeof x === 'number' || typeof x === 'boolean') && (typeof y === 'number' || typeof y === 'boolean')) return arith(a, b, Number(x) * Number(y));
      if (isUndefined(a) || isUndefined(b)) throw new UndefinedVariableError(undefName(isUndefined(a) ? a : b));
      throw new TemplateError(`cannot multiply ${repr(unguardDeep(a))} by ${repr(unguardDeep(b))}`);
    },
    __mod: (a: unknown, b: unknown) => {
      const x = unguard(a);
      if (typeof x === 'string') return percentFormat(x, unguardDeep(b));
      if (isUndefined(a) || isUndefined(b)) throw new UndefinedVariableError(undefName(isUndefined(a) ? a : b));
      const [m, n] = [Number(x), Number(unguard(b))];
      if (n === 0) throw new TemplateError('modulo by zero');
      return arith(a, b, ((m % n) + n) % n);
    },
    __method: (obj: unknown, key: unknown, ...args: unknown[]) => {
      const m = member(obj, key);
      if (typeof m !== 'function') {
        const what = isUndefined(obj) ? `"${undefName(obj)}" (undefined)` : Array.isArray(unguard(obj)) ? 'a list' : typeof unguard(obj) === 'string' ? 'a string' : isMapping(unguard(obj)) ? 'a dict' : repr(unguardDeep(obj));
        throw new TemplateError(`${what} has no method "${String(key)}"`);
      }
      return (m as (...a: unknown[]) => unknown)(...args);
    },
    __concat: (a: unknown, b: unknown) => {
      for (const v of [a, b]) if (isUndefined(v)) throw new UndefinedVariableError(undefName(v));
      return str(unguardDeep(a)) + str(unguardDeep(b));
    },
    __div: (a: unknown, b: unknown) => divide(a, b, false),
    __sub: (a: unknown, b: unknown) => arith(a, b, number(a, 'subtract') - number(b, 'subtract')),
    __pow: (a: unknown, b: unknown) => {
      const [x, y] = [number(a, 'raise'), number(b, 'raise to')];
      if (x === 0 && y < 0) throw new TemplateError('0.0 cannot be raised to a negative power');
      // int ** negative int is a float in Python.
      return isFloat(a) || isFloat(b) || y < 0 ? pyFloat(x ** y) : exactInt(x ** y);
    },
    __neg: (a: unknown) => arith(a, 0, -number(a, 'negate')),
    __pos: (a: unknown) => arith(a, 0, number(a, 'take the sign of')),
    /** a float literal: `1.0` stays a float */
    __float: (n: number) => pyFloat(n),
    /** a float literal nunjucks cannot lex (`1e5`, `1_000.5`), handed over as text by jinjaSource */
    __pyfloat: (text: string) => pyFloat(Number(text)),
    /** a value compared or tested for truth: the number behind a float's box */
    __num: (v: unknown) => (v instanceof PyFloat ? v.value : v),
    /**
     * An operand of `and`/`or`: nunjucks reads truth as JavaScript does, where a box would always be true and
     * unboxing would print `1.0` as `1`, so a float there is refused rather than rendered differently.
     */
    __logic: (v: unknown) => {
      if (v instanceof PyFloat) throw new TemplateError(`provision does not take a float (${v.toString()}) as an operand of "and" or "or"; compare it instead (x != 0)`);
      return v;
    },
    /** Python's `x in seq`: by value (2 in [2.0], [1] in [[1]]); a key of a dict, a piece of a string. */
    __contains: (v: unknown, seq: unknown) => {
      for (const x of [v, seq]) if (isUndefined(x)) throw new UndefinedVariableError(undefName(x));
      const s = unbox(unguard(seq));
      if (s === null || s === undefined || typeof s === 'number' || typeof s === 'boolean') throw new TemplateError(`cannot look for ${repr(unguardDeep(v))} in ${repr(unguardDeep(seq))}: it is not a list, dict or string`);
      return truthy((e.tests.in as (...a: unknown[]) => unknown)(v, seq));
    },
    /** Python's comparison chain `a op b op c`: each pair by value, as Python orders and equates them. */
    __compare: (first: unknown, ...rest: unknown[]) => {
      let left = first;
      for (let i = 0; i < rest.length; i += 2) {
        const op = rest[i] as string;
        const right = rest[i + 1];
        for (const v of [left, right]) if (isUndefined(v)) throw new UndefinedVariableError(undefName(v));
        const [a, b] = [unguardDeep(left), unguardDeep(right)];
        let ok: boolean;
        if (op === '==' || op === '===') ok = pyEquals(a, b);
        else if (op === '!=' || op === '!==') ok = !pyEquals(a, b);
        else {
          let c: number;
          try {
            c = compare(a, b);
          } catch (err) {
            throw new TemplateError(`cannot use "${op}" on ${repr(a)} and ${repr(b)}: ${err instanceof Error ? err.message : String(err)}`);
          }
          ok = op === '<' ? c < 0 : op === '>' ? c > 0 : op === '<=' ? c <= 0 : c >= 0;
        }
        if (!ok) return false;
        left = right;
      }
      return true;
    },
    __floordiv: (a: unknown, b: unknown) => divide(a, b, true),
    __iter: (v: unknown) => {
      if (isUndefined(v)) throw new UndefinedVariableError(undefName(v));
      const x = unguard(v);
      if (typeof x === 'string') return [...x];
      if (Array.isArray(x) || x === null || x === undefined) return v;
      if (typeof x === 'object' && (Object.getPrototypeOf(x) === Object.prototype || Object.getPrototypeOf(x) === null)) return Object.keys(x);
      return v;
    },
    __tuple: (items: unknown[]) => markTuple(items),
    /** a dict literal with evaluated keys: text keys only, as provision's dicts have */
    __dict: (...kv: unknown[]) => {
      const out: Record<string, unknown> = {};
      for (let i = 0; i < kv.length; i += 2) {
        const key = unguard(kv[i]);
        if (isUndefined(kv[i])) throw new UndefinedVariableError(undefName(kv[i]));
        if (typeof key !== 'string') throw new TemplateError(`a dict key must be text in provision; Jinja2 would keep ${repr(unguardDeep(kv[i]))} as a key of its own type`);
        if (FORBIDDEN.has(key)) throw new TemplateError(`"${key}" cannot be a dict key in templates`);
        Object.defineProperty(out, key, { value: kv[i + 1], enumerable: true, writable: true, configurable: true });
      }
      return out;
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

/** A render under way: its variables, and how to render a template file with them (the `template` lookup). */
export interface Rendering {
  vars: Record<string, unknown>;
  renderText(text: string): string;
}

/** The variables of the renders under way, innermost last (a `template` lookup renders inside a render). */
export const rendering: Rendering[] = [];

function lookupCall(name: unknown, raw: unknown[], list: boolean): unknown {
  const { args, kwargs } = splitKwargs(raw.map((a) => unguardDeep(a)));
  const current = rendering.at(-1);
  const vars = current?.vars ?? {};
  const dir = varValue(vars, 'playbook_dir');
  if (typeof dir !== 'string' || !dir) throw new TemplateError('lookups need the playbook directory');
  try {
    const search = varValue(vars, 'ansible_search_path');
    const searchPath = Array.isArray(search) ? search.map(String) : undefined;
    return runLookup({ playbookDir: dir, ...(searchPath ? { searchPath } : {}), render: (text) => current!.renderText(text) }, String(name), args, kwargs, list);
  } catch (e) {
    if (e instanceof LookupError) throw new TemplateError(`lookup('${String(name)}'): ${e.message}`);
    throw e;
  }
}

/**
 * How many arguments each test takes besides the value ([least, most]; keyword arguments aside): Jinja2 refuses
 * a call with more or fewer, as in `x is eq` or `x is odd(3)`. Tests not listed take none.
 */
const TEST_ARGUMENTS: Record<string, [number, number]> = {
  divisibleby: [1, 1], eq: [1, 1], equalto: [1, 1], '==': [1, 1], ne: [1, 1], '!=': [1, 1], lt: [1, 1], lessthan: [1, 1], '<': [1, 1],
  le: [1, 1], '<=': [1, 1], gt: [1, 1], greaterthan: [1, 1], '>': [1, 1], ge: [1, 1], '>=': [1, 1], in: [1, 1], contains: [1, 1],
  sameas: [1, 1], subset: [1, 1], superset: [1, 1], match: [1, 3], search: [1, 3], regex: [1, 4], version: [1, 4], version_compare: [1, 4],
};

/** Filters that tell a float from an int, and so see a whole float's box (the others get its number). */
const FLOAT_FILTERS = new Set(['float', 'round', 'abs', 'string', 'sum', 'default', 'd', 'mandatory', 'to_json', 'to_nice_json', 'to_yaml', 'to_nice_yaml']);
const FLOAT_TESTS = new Set(['number', 'float', 'integer', 'defined', 'undefined', 'none']);

/** An arithmetic result: a float when either operand is one, as in Python. */
function arith(a: unknown, b: unknown, n: number): number | PyFloat {
  return isFloat(unguard(a)) || isFloat(unguard(b)) ? pyFloat(n) : exactInt(n);
}

/**
 * An integer result: Python's integers have no limit, JavaScript's numbers are exact up to 2**53, so a larger
 * one is refused rather than printed with its last digits wrong.
 */
function exactInt(n: number): number {
  if (!Number.isSafeInteger(n)) throw new TemplateError('an integer result beyond 2**53 - 1, the largest integer provision computes exactly');
  return n;
}

/** An operand of `-`, `**` or unary minus: a number (or a boolean, as Python reads it). */
function number(v: unknown, what: string): number {
  if (isUndefined(v)) throw new UndefinedVariableError(undefName(v));
  const x = unbox(unguard(v));
  if (typeof x === 'number' || typeof x === 'boolean') return Number(x);
  throw new TemplateError(`cannot ${what} ${repr(unguardDeep(v))}`);
}

/** Python's `/` and `//`: on numbers only, and never by zero. `/` always gives a float. */
function divide(a: unknown, b: unknown, floor: boolean): number | PyFloat {
  for (const v of [a, b]) if (isUndefined(v)) throw new UndefinedVariableError(undefName(v));
  const [x, y] = [unbox(unguard(a)), unbox(unguard(b))];
  if (typeof x !== 'number' && typeof x !== 'boolean') throw new TemplateError(`cannot divide ${repr(unguardDeep(a))}`);
  if (typeof y !== 'number' && typeof y !== 'boolean') throw new TemplateError(`cannot divide by ${repr(unguardDeep(b))}`);
  if (Number(y) === 0) throw new TemplateError('division by zero');
  const q = Number(x) / Number(y);
  return floor ? arith(a, b, Math.floor(q)) : pyFloat(q);
}

// Ansible templates every string with trim_blocks: a block tag eats the newline after it.
export const env = makeEnv({ trimBlocks: true });
export const FILTERS = (env as unknown as { filters: Record<string, unknown> }).filters;
export const TESTS = (env as unknown as { tests: Record<string, unknown> }).tests;
/** Every filter and test a template may use (for messages and `provision validate`). */
export const FILTER_NAMES: readonly string[] = Object.keys(FILTERS).sort();
export const TEST_NAMES: readonly string[] = Object.keys(TESTS).filter((t) => !t.startsWith('__')).sort();
/** Template files render as Ansible's template module does: a block tag eats the newline after it. */
export const fileEnv = makeEnv({ trimBlocks: true });

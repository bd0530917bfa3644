/**
 * Jinja-style templates through nunjucks, with Ansible's expectations:
 * - an undefined variable is an error that names it (`x | default(…)` and `x is defined` still work);
 * - a string that is exactly one `{{ expression }}` yields the expression's native value (a list stays a list);
 * - `when:`-style conditions are bare expressions.
 * Templates see only the variables they are given: no globals, no file or environment access.
 */
import nunjucks from 'nunjucks';

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

const UNDEF = Symbol('undefined');
const TARGET = Symbol('target');

interface Undef {
  [UNDEF]: string;
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
      return undef(`${name}.${key}`);
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
      if (typeof key === 'symbol') return Reflect.get(t, key);
      if (Array.isArray(t)) {
        if (key in t) return guard(Reflect.get(t, key), `${name}[${key}]`);
        return /^\d+$/.test(key) ? undef(`${name}[${key}]`) : undefined;
      }
      if (Object.prototype.hasOwnProperty.call(t, key)) return guard(t[key], `${name}.${key}`);
      // Methods Jinja users call on dicts (`d.items()`, `d.keys()`) and nunjucks internals stay reachable.
      if (key in Object.prototype) return undefined;
      return undef(`${name}.${key}`);
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

function scope(vars: Record<string, unknown>): Record<string, unknown> {
  return new Proxy(vars, {
    get(t, key) {
      if (typeof key === 'symbol') return Reflect.get(t, key);
      if (Object.prototype.hasOwnProperty.call(t, key)) return guard(t[key], key);
      return undef(key);
    },
    has(t, key) {
      return Object.prototype.hasOwnProperty.call(t, key);
    },
  });
}

/** Ansible's `bool` filter: a string is true when it is one of yes, on, 1, true, y, t (any case). */
export function toBool(v: unknown): boolean {
  if (typeof v === 'string') return ['yes', 'on', '1', 'true', 'y', 't'].includes(v.trim().toLowerCase());
  return Boolean(v);
}

function makeEnv(opts: { trimBlocks?: boolean } = {}): nunjucks.Environment {
  const env = new nunjucks.Environment([], { autoescape: false, throwOnUndefined: false, trimBlocks: opts.trimBlocks ?? false }) as nunjucks.Environment & {
    addTest(name: string, fn: (...args: never[]) => boolean): void;
  };
  const dflt = (v: unknown, d: unknown = '', boolean = false) => (isUndefined(v) || v === null || (boolean && !v) ? d : v);
  env.addFilter('default', dflt);
  env.addFilter('d', dflt);
  env.addFilter('bool', toBool);
  env.addFilter('mandatory', (v: unknown, msg?: string) => {
    if (isUndefined(v)) throw new TemplateError(msg ?? `mandatory variable "${(v as Undef)[UNDEF]}" is not defined`);
    return v;
  });
  env.addFilter('to_json', (v: unknown) => JSON.stringify(unguardDeep(v)));
  env.addFilter('from_json', (v: string) => JSON.parse(v));
  env.addFilter('basename', (v: string) => String(v).replace(/\/+$/, '').split('/').pop() ?? '');
  env.addFilter('dirname', (v: string) => String(v).replace(/\/[^/]*$/, '') || '/');
  env.addFilter('regex_replace', (v: string, re: string, rep = '') => String(v).replace(new RegExp(re, 'g'), rep.replace(/\\(\d)/g, '$$$1')));
  env.addFilter('regex_search', (v: string, re: string) => String(v).match(new RegExp(re))?.[0] ?? null);
  env.addFilter('ternary', (v: unknown, a: unknown, b: unknown) => (v ? a : b));
  env.addFilter('split', (v: string, sep?: string) => (sep === undefined ? String(v).trim().split(/\s+/) : String(v).split(sep)));
  env.addFilter('quote', (v: string) => `'${String(v).replace(/'/g, `'\\''`)}'`);
  env.addFilter('type_debug', (v: unknown) => (Array.isArray(v) ? 'list' : v === null ? 'NoneType' : typeof v === 'object' ? 'dict' : typeof v === 'number' ? (Number.isInteger(v) ? 'int' : 'float') : typeof v === 'boolean' ? 'bool' : 'str'));
  env.addFilter('map', (seq: unknown, ...args: unknown[]) => {
    const list = Array.isArray(unguard(seq)) ? (seq as unknown[]) : [];
    const kw = args.at(-1) as { __keywords?: boolean; attribute?: string } | undefined;
    if (kw && typeof kw === 'object' && kw.__keywords && kw.attribute !== undefined) {
      const path = String(kw.attribute).split('.');
      return list.map((item) => path.reduce<unknown>((v, k) => (v === null || v === undefined ? v : (v as Record<string, unknown>)[k]), item));
    }
    const [name, ...rest] = args;
    const filter = (env as unknown as { getFilter(n: string): (...a: unknown[]) => unknown }).getFilter(String(name));
    return list.map((item) => filter(item, ...rest));
  });
  env.addFilter('unique', (seq: unknown[]) => [...new Set(seq)]);
  env.addFilter('flatten', (seq: unknown[]) => (seq as unknown[]).flat(Infinity));
  env.addFilter('min', (seq: number[]) => Math.min(...seq));
  env.addFilter('max', (seq: number[]) => Math.max(...seq));
  env.addTest('defined', (v: unknown) => !isUndefined(v));
  env.addTest('undefined', (v: unknown) => isUndefined(v));
  env.addTest('none', (v: unknown) => v === null);
  env.addTest('match', (v: unknown, re: string) => new RegExp(`^(?:${re})`).test(String(v)));
  env.addTest('search', (v: unknown, re: string) => new RegExp(re).test(String(v)));
  env.addTest('true', (v: unknown) => v === true);
  env.addTest('false', (v: unknown) => v === false);
  env.addTest('boolean', (v: unknown) => typeof v === 'boolean');
  env.addGlobal('True', true);
  env.addGlobal('False', false);
  env.addGlobal('None', null);
  return env;
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

type Runtime = { memberLookup(obj: unknown, key: unknown): unknown };
const runtime = (nunjucks as unknown as { runtime: Runtime }).runtime;
const memberLookup = runtime.memberLookup;
runtime.memberLookup = (obj: unknown, key: unknown) => {
  if (typeof key === 'string' && FORBIDDEN.has(key)) throw new TemplateError(`access to "${key}" is not allowed in templates`);
  return memberLookup(obj, key);
};

// nunjucks copies the variables into a plain object before rendering, so a missing top-level name is found
// missing here, where it becomes a named stand-in like any other missing value.
// nunjucks does not export its Context class; a global function is called with the context as `this`, which
// is how we reach its prototype.
type ContextLike = { ctx: Record<string, unknown>; env: { globals: Record<string, unknown> } };
function patchContextLookup(): void {
  let proto: { lookup(this: ContextLike, name: string): unknown } | null = null;
  const probe = new nunjucks.Environment();
  probe.addGlobal('grab', function grab(this: unknown) {
    proto = Object.getPrototypeOf(this) as typeof proto;
    return '';
  });
  probe.renderString('{{ grab() }}', {});
  if (!proto) throw new Error('nunjucks internals changed: cannot find the template context');
  (proto as { lookup(this: ContextLike, name: string): unknown }).lookup = function lookup(this: ContextLike, name: string) {
    if (name in this.ctx) {
      const v = this.ctx[name];
      return v instanceof LazyValue ? guard(v.resolve(), name) : v;
    }
    if (name in this.env.globals) return this.env.globals[name];
    return undef(name);
  };
}
patchContextLookup();

const env = makeEnv();
/** Template files render as Ansible's template module does: a block tag eats the newline after it. */
const fileEnv = makeEnv({ trimBlocks: true });
const compiled = new Map<string, nunjucks.Template>();
const SINGLE = /^\{\{\s*((?:(?!\}\}|\{\{|\{%)[\s\S])*?)\s*\}\}$/;

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

function compile(source: string, environment = env): nunjucks.Template {
  const key = environment === env ? source : `file:${source}`;
  let t = compiled.get(key);
  if (!t) {
    const shape = templateShapeProblem(source);
    if (shape) throw new TemplateError(shape);
    try {
      t = nunjucks.compile(source, environment);
      // Compile now, so a syntax error surfaces here and not at first render.
      (t as unknown as { compile(): void }).compile();
    } catch (e) {
      throw new TemplateError(cleanMessage(e));
    }
    if (compiled.size > 5000) compiled.clear();
    compiled.set(key, t);
  }
  return t;
}

function cleanMessage(e: unknown): string {
  const msg = e instanceof Error ? e.message : String(e);
  return msg
    .replace(/^\(unknown path\)\s*(\[Line \d+, Column \d+\])?\s*/, '')
    .replace(/^\s*(Template render error|Error|TemplateError|TypeError):\s*/g, '')
    .replace(/\n\s*/g, ' ')
    .trim();
}

function renderRaw(source: string, vars: Record<string, unknown>, environment = env): string {
  let undefinedName: string | null = null;
  const ctx = scope(vars);
  try {
    return compile(source, environment).render(ctx);
  } catch (e) {
    // nunjucks wraps our error into its own; find the undefined name in the message it kept.
    const m = /undefined variable "([^"]+)"/.exec(e instanceof Error ? e.message : '');
    undefinedName = m ? m[1]! : null;
    if (undefinedName) throw new UndefinedVariableError(undefinedName);
    throw new TemplateError(cleanMessage(e));
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

/** Render a string: one `{{ expr }}` gives the native value, anything else gives a string. */
export function renderString(source: string, vars: Record<string, unknown>): unknown {
  if (!isTemplated(source)) return source;
  const single = SINGLE.exec(source);
  if (single) return evaluate(single[1]!, vars);
  return renderRaw(source, vars);
}

/** Render a whole template file to text. */
export function renderText(source: string, vars: Record<string, unknown>): string {
  return renderRaw(source, vars, fileEnv);
}

/** Render every string inside a value (objects and arrays are copied, keys are not templated). */
export function renderDeep(value: unknown, vars: Record<string, unknown>): unknown {
  if (typeof value === 'string') return renderString(value, vars);
  if (Array.isArray(value)) return value.map((v) => renderDeep(v, vars));
  if (value && typeof value === 'object' && !Buffer.isBuffer(value)) {
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, renderDeep(v, vars)]));
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
  const single = SINGLE.exec(expr);
  if (single) expr = single[1]!;
  const v = evaluate(expr, vars);
  return typeof v === 'string' ? toBool(v) : Boolean(v);
}

/** Check that a template parses, without rendering it (for `provision validate`). */
export function checkSyntax(source: string): string | null {
  if (!isTemplated(source)) return null;
  try {
    const single = SINGLE.exec(source);
    compile(single ? `{{ __capture((${single[1]})) }}` : source);
  } catch (e) {
    return e instanceof Error ? e.message : String(e);
  }
  const refs = templateRefs(source);
  return refs?.problems[0]?.message ?? null;
}

/** Same for a bare condition expression. */
export function checkConditionSyntax(cond: string): string | null {
  const single = SINGLE.exec(cond.trim());
  return checkSyntax(`{{ ${single ? single[1] : cond} }}`);
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

type Parser = { parse(src: string): AstNode };
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
const BUILTIN_NAMES = new Set(['range', 'cycler', 'joiner', 'True', 'False', 'None']);
/** Tests that never fail on a missing value, so `x is defined` guards `x`. */
const GUARD_TESTS = new Set(['defined', 'undefined', 'none', 'true', 'false', 'boolean']);
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
    const single = expression ? SINGLE.exec(source.trim()) : null;
    const text = expression ? `{{ ${single ? single[1] : source} }}` : source;
    if (templateShapeProblem(text)) return null;
    root = parser.parse(text);
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
        const key = n.val as AstNode;
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
        const guarded = GUARD_FILTERS.has(name) ? rootName(first) : null;
        if (guarded) refs.guarded.add(guarded);
        break;
      }
      case 'Is': {
        const test = n.right as AstNode;
        const testName = test.typename === 'FunCall' ? (test.name as AstNode) : test;
        skip.add(testName);
        const guarded = GUARD_TESTS.has(String(testName.value)) ? rootName(n.left as AstNode) : null;
        if (guarded) refs.guarded.add(guarded);
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

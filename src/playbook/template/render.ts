/**
 * Rendering: compile once (shape check, Jinja2 lexing, tree rewrite), render with only the names a template reads,
 * and Ansible's conventions on top (one `{{ expr }}` keeps its native value, `when:` is a bare expression).
 */
import nunjucks from 'nunjucks';
import { didYouMean } from '../../util/suggest.js';
import { OMIT } from '../magic-vars.js';
import { env, FILTER_NAMES, fileEnv, rendering, TEST_NAMES } from './engine.js';
import { TemplateError, UndefinedVariableError } from './errors.js';
import { toBool } from './filters.js';
import { templateShapeProblem } from './guard.js';
import { LazyValue, setLazyRenderer } from './lazy.js';
import { literalValue } from './literal.js';
import { isTuple, str, truthy } from './python.js';
import { templateRefs } from './refs.js';
import { isTemplated, jinjaSource, singleExpression } from './source.js';
import { type AstNode, jinjaTree, parser } from './tree.js';
import { guard, isUndefined, plainValue, type Undef, UNDEF, undef, unguardDeep } from './undefined.js';

interface Compiled {
  template: nunjucks.Template;
  /** the top-level names it reads: only these are handed to it */
  names: string[];
}

type CompilerClass = new (name: string, throwOnUndefined: boolean) => { compile(node: AstNode): void; getCode(): string };
const Compiler = (nunjucks as unknown as { compiler: { Compiler: CompilerClass } }).compiler.Compiler;

const compiled = new Map<string, Compiled>();

function compile(source: string, environment = env): Compiled {
  const key = environment === env ? source : `file:${source}`;
  let t = compiled.get(key);
  if (!t) {
    const shape = templateShapeProblem(source);
    if (shape) throw new TemplateError(shape);
    const refs = templateRefs(source);
    try {
      const opts = (environment as unknown as { opts: Record<string, unknown> }).opts;
      const text = jinjaSource(source.replace(/\n$/, ''), environment === env);
      const tree = jinjaTree(parser.parse(text, [], opts), text);
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
  rendering.push({ vars, renderText: (text) => renderText(text, vars) });
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
  return plainValue(evaluateKeepingFloats(expression, vars));
}

/**
 * The same, with whole floats still boxed: a lazy variable's value is read by other templates, where `3 / 1`
 * must go on printing `3.0`.
 */
export function evaluateKeepingFloats(expression: string, vars: Record<string, unknown>): unknown {
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
  const out = unguardDeep(value);
  // Ansible reads a rendered list or dict back, but not a tuple: `{{ (1, 2) }}` gives the text "(1, 2)".
  return isTuple(out) ? str(out) : out;
}

/** Render a string: one `{{ expr }}` gives the native value, anything else gives a string. */
export function renderString(source: string, vars: Record<string, unknown>): unknown {
  return renderStringAs(source, vars, false);
}

function renderStringAs(source: string, vars: Record<string, unknown>, keepFloats: boolean): unknown {
  if (!isTemplated(source)) return source;
  const single = singleExpression(source);
  if (single !== null) return keepFloats ? evaluateKeepingFloats(single, vars) : evaluate(single, vars);
  return literalValue(renderRaw(source, vars));
}

/** Render a whole template file to text. */
export function renderText(source: string, vars: Record<string, unknown>): string {
  return renderRaw(source, vars, fileEnv);
}

/** Render every string inside a value (objects and arrays are copied, keys are not templated). */
export function renderDeep(value: unknown, vars: Record<string, unknown>): unknown {
  return renderDeepAs(value, vars, false);
}

/**
 * The same, with whole floats still boxed: for values that become variables again (set_fact), where `{{ 6 / 2 }}`
 * must go on printing `3.0` in later templates, as in Ansible.
 */
export function renderDeepKeepingFloats(value: unknown, vars: Record<string, unknown>): unknown {
  return renderDeepAs(value, vars, true);
}

function renderDeepAs(value: unknown, vars: Record<string, unknown>, keepFloats: boolean): unknown {
  if (typeof value === 'string') return renderStringAs(value, vars, keepFloats);
  // A value that renders to `omit` is left out, as Ansible leaves out the argument.
  if (Array.isArray(value)) return value.map((v) => renderDeepAs(v, vars, keepFloats)).filter((v) => v !== OMIT);
  if (value && typeof value === 'object' && !Buffer.isBuffer(value)) {
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, renderDeepAs(v, vars, keepFloats)] as const).filter(([, v]) => v !== OMIT));
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

setLazyRenderer((raw, vars) => renderDeepAs(raw, vars, true));

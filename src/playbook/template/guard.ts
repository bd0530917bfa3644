/**
 * The guard: what no template may do, checked before nunjucks sees it. No path to JavaScript's machinery, and no
 * shape deep or long enough to exhaust the stack of a recursive parser.
 */

/**
 * Attribute names that lead from a value to the JavaScript machinery behind it (`x.constructor.constructor` is
 * `Function`). A template never needs them, so they are refused everywhere.
 */
export const FORBIDDEN = new Set(['constructor', '__proto__', 'prototype', '__defineGetter__', '__defineSetter__', '__lookupGetter__', '__lookupSetter__', 'caller', 'callee', 'arguments', 'bind', 'call', 'apply']);

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

/** The template's text before nunjucks parses it: is it a template, is it one expression, Jinja2's lexing. */
import { TemplateError } from './errors.js';

/** Whether a string holds a template at all. */
export function isTemplated(s: string): boolean {
  return s.includes('{{') || s.includes('{%');
}

const SINGLE = /^\{\{\s*((?:(?!\}\}|\{\{|\{%)[\s\S])*?)\s*\}\}$/;

/**
 * The expression of a string that is exactly one `{{ … }}` (brackets and string literals inside may hold `}}`), or
 * null.
 */
export function singleExpression(source: string): string | null {
  if (!source.startsWith('{{')) return null;
  const shaped = jinjaSource(source, true);
  const m = SINGLE.exec(shaped);
  if (!m) return null;
  // The same text without the rewrites: strip the delimiters from the original.
  const inner = source.slice(2, source.lastIndexOf('}}')).trim();
  return inner.includes('{{') || inner.includes('{%') ? null : inner;
}

/**
 * Source rewrites that make nunjucks' lexer read what Jinja2's reads, without changing any line or column:
 * - backslashes in string literals: Ansible keeps them literally in task arguments (`'\\1'` is a backreference),
 *   and in template files keeps unknown escapes (`'\\d'`), where nunjucks would drop them;
 * - `}}` that closes a dictionary inside an expression (`{{ {'a': {'b': 1}} }}`) is not the end of the tag;
 * - a test (`x is odd`, `x is not in y`, `x is divisibleby 3`) becomes a filter call (`x | __is('odd')`): Jinja2
 *   applies tests where it applies filters, to the operand just before them (`1 + 2 is odd` is `1 + (2 is odd)`),
 *   and takes one bare argument as it does (a name, string, number, list or dict, with its `.x`, `[i]`, `(…)`);
 * - numbers as Jinja2 lexes them: `1e5`, `1_000`, `0x1F`, `0o17`, `0b101`, and `x.0` is `x[0]`;
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
    /** where a test's bare argument ends: the `)` of its call goes there (innermost last) */
    const closeAt: number[] = [];
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
      while (closeAt.at(-1) === i) {
        closeAt.pop();
        out += ')';
        note(')');
      }
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
      if (c >= '0' && c <= '9') {
        const num = jinjaNumber(source, i);
        if (prev === '.' && POSTFIXED.test(prev2) && !num.float) {
          // `x.0` is `x[0]` in Jinja2; nunjucks wants a name after the dot.
          out = `${out.slice(0, out.lastIndexOf('.'))}[${num.text}]`;
          i = num.end;
          note(']');
          continue;
        }
        out += num.text;
        i = num.end;
        note('number');
        continue;
      }
      const word = /^[A-Za-z_]\w*/.exec(source.slice(i, i + 64));
      if (word && word[0] === 'is' && prev !== '.') {
        const test = jinjaTest(source, i + 2, close);
        out += `| ${test.negated ? '__isnot' : '__is'}('${test.name}'`;
        i = test.end;
        if (test.args === 'call') {
          // `x is version('1.0', '>')`: the call's own brackets close it.
          out += ', ';
          stack.push('(');
          note('(');
        } else if (test.args === 'bare') {
          out += ', ';
          closeAt.push(test.argEnd);
          note('(');
        } else {
          out += ')';
          note(')');
        }
        continue;
      }
      if (word) {
        // nunjucks reads `null` as None; to Jinja2 it is a variable name, undefined in any playbook.
        if (word[0] === 'null' && prev !== '.') throw new TemplateError('"null" is not a Jinja2 constant: Ansible reads it as an undefined variable (None is written none)');
        out += word[0];
        i += word[0].length;
        note(word[0]);
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

/** What a subscript may follow: a name, a closing bracket, a string or a number. */
const POSTFIXED = /^(?:[A-Za-z_]\w*|[)\]}]|string|number)$/;

const FLOAT = /(?:\d+_)*\d+(?:(?:\.(?:\d+_)*\d+)?e[+-]?(?:\d+_)*\d+|\.(?:\d+_)*\d+)/iy;
const INTEGER = /0b(?:_?[01])+|0o(?:_?[0-7])+|0x(?:_?[\da-f])+|[1-9](?:_?\d)*|0(?:_?0)*/iy;

/**
 * The number literal at `at`, lexed as Jinja2 lexes it, and how nunjucks is to read it: an integer in decimal, a
 * float with a point as written, or with an exponent or `_` through `__pyfloat('…')` (nunjucks' lexer stops at
 * the `e`). What Jinja2 does not lex as one number (`01`, `1e`, `2x`) is refused, as Ansible refuses it.
 */
function jinjaNumber(source: string, at: number): { text: string; end: number; float: boolean } {
  // Jinja2 reads no float right after a dot (`x.0.1` is x[0][1]).
  FLOAT.lastIndex = at;
  const f = source[at - 1] === '.' ? null : FLOAT.exec(source);
  INTEGER.lastIndex = at;
  const m = f ?? INTEGER.exec(source)!;
  const written = m[0];
  const end = at + written.length;
  if (/[\w]/.test(source[end] ?? '')) {
    const bad = /^\w+/.exec(source.slice(at, at + 64))![0];
    throw new TemplateError(`"${bad}" is not a number as Jinja2 writes one (Ansible refuses it too)`);
  }
  const plain = written.replace(/_/g, '');
  if (f) {
    const text = /^\d+\.\d+$/.test(plain) ? plain : `__pyfloat('${plain}')`;
    return { text, end, float: true };
  }
  const lower = plain.toLowerCase();
  const value = lower.startsWith('0b') || lower.startsWith('0o') || lower.startsWith('0x') ? BigInt(lower) : BigInt(plain);
  if (value > BigInt(Number.MAX_SAFE_INTEGER)) throw new TemplateError(`${written} is larger than the integers provision computes exactly (up to 2**53 - 1)`);
  return { text: String(value), end, float: false };
}

/** Words Jinja2 would read as a test's bare argument, where no playbook means one: refused. */
const NOT_AN_ARGUMENT = new Set(['is', 'not', 'in', 'if', 'for', 'set', 'with', 'return', 'print']);

/**
 * The test after `is` at `at` (Jinja2's parse_test): `not`, the test's name (dotted names too), and its
 * arguments: a call `(…)`, one bare argument (a name, string, number, list or dict, followed by any `.x`, `[i]`
 * or `(…)`, never a filter or an operator), or none.
 */
function jinjaTest(source: string, at: number, close: string): { name: string; negated: boolean; end: number; args: 'call' | 'bare' | 'none'; argEnd: number } {
  let i = skipSpace(source, at);
  let negated = false;
  const not = /^not(?!\w)/.exec(source.slice(i, i + 4));
  if (not) {
    negated = true;
    i = skipSpace(source, i + 3);
  }
  const name = /^[A-Za-z_]\w*(?:\s*\.\s*[A-Za-z_]\w*)*/.exec(source.slice(i, i + 256));
  if (!name) throw new TemplateError('"is" must be followed by the name of a test (`x is defined`)');
  const testName = name[0].replace(/\s+/g, '');
  const end = i + name[0].length;
  const next = skipSpace(source, end);
  if (source[next] === '(') {
    const inner = skipSpace(source, next + 1);
    if (source[inner] === ')') return { name: testName, negated, end: inner + 1, args: 'none', argEnd: -1 };
    return { name: testName, negated, end: next + 1, args: 'call', argEnd: -1 };
  }
  const argEnd = bareArgumentEnd(source, next, close, testName);
  return argEnd < 0 ? { name: testName, negated, end, args: 'none', argEnd } : { name: testName, negated, end: next, args: 'bare', argEnd };
}

function skipSpace(source: string, at: number): number {
  let i = at;
  while (i < source.length && /\s/.test(source[i]!)) i++;
  return i;
}

/** The end of the bracketed or quoted text that starts at `at` (just after its close), or -1. */
function closing(source: string, at: number): number {
  const pairs: Record<string, string> = { '(': ')', '[': ']', '{': '}' };
  const want: string[] = [];
  let i = at;
  while (i < source.length) {
    const c = source[i]!;
    if (c === "'" || c === '"') {
      let j = i + 1;
      while (j < source.length && source[j] !== c) j += source[j] === '\\' ? 2 : 1;
      if (j >= source.length) return -1;
      i = j + 1;
      if (want.length === 0) return i;
      continue;
    }
    if (pairs[c]) want.push(pairs[c]);
    else if (c === ')' || c === ']' || c === '}') {
      if (want.pop() !== c) return -1;
      if (want.length === 0) return i + 1;
    }
    i++;
  }
  return -1;
}

/** Where a test's bare argument starting at `at` ends, or -1 when the test has none there. */
function bareArgumentEnd(source: string, at: number, close: string, test: string): number {
  const c = source[at] ?? '';
  let end: number;
  if (source.startsWith(close, at) || (c === '-' && source.startsWith(close, at + 1))) return -1;
  const word = /^[A-Za-z_]\w*/.exec(source.slice(at, at + 64));
  if (word) {
    const w = word[0];
    if (w === 'else' || w === 'or' || w === 'and') return -1;
    if (w === 'is') throw new TemplateError(`tests cannot be chained with "is" ("${test} is …"): Jinja2 refuses it`);
    if (NOT_AN_ARGUMENT.has(w)) throw new TemplateError(`Jinja2 reads "${w}" after the test "${test}" as the test's argument, which no template means: put the test's argument in parentheses`);
    end = at + w.length;
  } else if (c === "'" || c === '"' || c === '[' || c === '{') {
    end = closing(source, at);
  } else if (c >= '0' && c <= '9') {
    end = jinjaNumber(source, at).end;
  } else return -1;
  if (end < 0) return -1;
  // Then what Jinja2's parse_postfix takes: `.name`, `.0`, `[…]`, `(…)`.
  for (;;) {
    const j = skipSpace(source, end);
    if (source[j] === '.') {
      const k = skipSpace(source, j + 1);
      const part = /^(?:[A-Za-z_]\w*|\d+)/.exec(source.slice(k, k + 64));
      if (!part) return end;
      end = k + part[0].length;
    } else if (source[j] === '[' || source[j] === '(') {
      const e = closing(source, j);
      if (e < 0) return end;
      end = e;
    } else return end;
  }
}

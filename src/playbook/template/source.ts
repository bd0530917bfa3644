/** The template's text before nunjucks parses it: is it a template, is it one expression, Jinja2's lexing. */

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

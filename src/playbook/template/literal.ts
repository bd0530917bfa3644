/** Python literals in rendered text, read back as values as Ansible reads them. */

/**
 * Ansible reads a rendered string that looks like a Python list or dict (`[{{ a }}, {{ b }}]`), or is True or
 * False, as that value; anything that does not parse as one stays text.
 */
export function literalValue(text: string): unknown {
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

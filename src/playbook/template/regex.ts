/** Python's `re` as the regex filters and tests use it: patterns, replacement strings and keyword flags. */
import { PyError, repr, truthy } from './python.js';

/** Python `re` patterns as JavaScript ones: named groups `(?P<n>…)`, `(?P=n)`, inline flags at the start. */
export function pyRegex(pattern: unknown, flags = ''): RegExp {
  let p = String(pattern);
  let f = flags;
  p = p.replace(/^\(\?([aiLmsux]+)\)/, (_m, fl: string) => {
    for (const c of fl) if ('ims'.includes(c) && !f.includes(c)) f += c;
    return '';
  });
  p = p.replace(/\(\?P<(\w+)>/g, '(?<$1>').replace(/\(\?P=(\w+)\)/g, '\\k<$1>').replace(/\\A/g, '^').replace(/\\Z/g, '$');
  try {
    return new RegExp(p, f.includes('u') ? f : `${f}u`);
  } catch {
    try {
      return new RegExp(p, f);
    } catch {
      throw new PyError(`invalid regular expression ${repr(String(pattern))}`);
    }
  }
}

/** Python's expansion of a replacement string: `\1`, `\g<1>`, `\g<name>`, and escapes; `$` is literal. */
export function expandReplacement(rep: string, m: RegExpExecArray): string {
  return rep.replace(/\\(?:(\d{1,2})|g<(\w+)>|([\\ntr])|(.))/g, (all, n: string | undefined, g: string | undefined, esc: string | undefined, other: string | undefined) => {
    if (n !== undefined) return m[Number(n)] ?? '';
    if (g !== undefined) return (/^\d+$/.test(g) ? m[Number(g)] : m.groups?.[g]) ?? '';
    if (esc !== undefined) return esc === 'n' ? '\n' : esc === 't' ? '\t' : esc === 'r' ? '\r' : '\\';
    return `\\${other}`;
  });
}

export function reFlags(kw: Record<string, unknown>): string {
  return `${truthy(kw.ignorecase) ? 'i' : ''}${truthy(kw.multiline) ? 'm' : ''}`;
}

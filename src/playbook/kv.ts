/**
 * Ansible's free-form `key=value` shorthand (`service: name=postfix state=restarted`). Words are split on
 * whitespace, except inside quotes and Jinja blocks; a word with an unescaped `=` is an argument, any other word is
 * part of the free-form text. For command and shell only the modules' own options (`creates=`, `chdir=`, …) are
 * arguments: `echo a=b` stays the command, as in Ansible.
 */

/** The options Ansible reads out of a command or shell line; every other `k=v` word belongs to the command. */
export const RAW_MODULE_OPTIONS = new Set(['creates', 'removes', 'chdir', 'executable', 'warn', 'stdin', 'stdin_add_newline', 'strip_empty_ends']);

export interface KvResult {
  /** `key=value` words, values unquoted */
  options: Record<string, string>;
  /** the other words, joined by one space as written (null when there are none) */
  free: string | null;
}

/** Split like Ansible's split_args: quotes and `{{ }}`, `{% %}`, `{# #}` keep their spaces. */
export function splitArgs(text: string): string[] {
  const words: string[] = [];
  let cur = '';
  let quote: string | null = null;
  let depth = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text[i]!;
    const two = text.slice(i, i + 2);
    if (!quote && (two === '{{' || two === '{%' || two === '{#')) {
      depth++;
      cur += two;
      i++;
      continue;
    }
    if (!quote && depth > 0 && (two === '}}' || two === '%}' || two === '#}')) {
      depth--;
      cur += two;
      i++;
      continue;
    }
    if (c === '\\' && i + 1 < text.length && quote) {
      cur += c + text[++i]!;
      continue;
    }
    if ((c === '"' || c === "'") && depth === 0) {
      if (quote === c) quote = null;
      else if (!quote) quote = c;
      cur += c;
      continue;
    }
    if (/\s/.test(c) && !quote && depth === 0) {
      if (cur) words.push(cur);
      cur = '';
      continue;
    }
    cur += c;
  }
  if (quote) throw new Error(`unbalanced ${quote} quote in "${text}"`);
  if (depth > 0) throw new Error(`unbalanced Jinja braces in "${text}"`);
  if (cur) words.push(cur);
  return words;
}

/** A value with matching outer quotes loses them, as Ansible's unquote does. */
export function unquote(v: string): string {
  if (v.length >= 2 && (v[0] === '"' || v[0] === "'") && v.at(-1) === v[0]) return v.slice(1, -1);
  return v;
}

/** Index of the first `=` not escaped by a backslash, or -1. */
function equalsAt(word: string): number {
  for (let i = 1; i < word.length; i++) if (word[i] === '=' && word[i - 1] !== '\\') return i;
  return -1;
}

/**
 * Parse a free-form argument string. `raw`: a command-like module whose text is free form, where only
 * RAW_MODULE_OPTIONS are read out of it.
 */
export function parseKv(text: string, raw: boolean): KvResult {
  const options: Record<string, string> = {};
  const free: string[] = [];
  for (const word of splitArgs(text)) {
    const at = equalsAt(word);
    // A word whose only `=` are escaped is free text, with the escapes removed.
    if (at < 0) {
      free.push(word.includes('\\=') && !raw ? word.replace(/\\=/g, '=') : word);
      continue;
    }
    const key = word.slice(0, at);
    if (raw && !RAW_MODULE_OPTIONS.has(key)) {
      free.push(word);
      continue;
    }
    // `a b=c` where the key has characters no argument name has (`--opt=x`, `x.y=1`) is free text too.
    if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(key)) {
      free.push(word);
      continue;
    }
    options[key] = decodeEscapes(unquote(word.slice(at + 1)));
  }
  return { options, free: free.length ? free.join(' ') : null };
}

const ESCAPES: Record<string, string> = { n: '\n', t: '\t', r: '\r', '\\': '\\', '"': '"', "'": "'", a: '\x07', b: '\b', f: '\f', v: '\v', '0': '\0' };

/** Backslash escapes in a shorthand value (`content="a\\nb"` holds a newline), as Ansible decodes them. */
export function decodeEscapes(v: string): string {
  return v.replace(/\\(u[0-9a-fA-F]{4}|U[0-9a-fA-F]{8}|x[0-9a-fA-F]{2}|[ntr\\"'abfv0])/g, (m, e: string) => {
    if (e.length > 1) return String.fromCodePoint(parseInt(e.slice(1), 16));
    return ESCAPES[e] ?? m;
  });
}

const TRUE = new Set(['yes', 'on', '1', 'true', 'y', 't']);
const FALSE = new Set(['no', 'off', '0', 'false', 'n', 'f']);

/** Ansible's boolean reading of a shorthand value (`enabled=yes`); undefined when it is not one. */
export function kvBool(v: string): boolean | undefined {
  const l = v.toLowerCase();
  if (TRUE.has(l)) return true;
  if (FALSE.has(l)) return false;
  return undefined;
}

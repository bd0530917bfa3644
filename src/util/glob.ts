/**
 * Wildcard matching of names (not paths): `*` is any run of characters and `?` any one character, `/` and a
 * leading dot included, anchored at both ends; nothing else is special, so braces, parentheses and dots are
 * literal. With `sets`, `[seq]` and `[!seq]` match one character as Python's fnmatch does (an unclosed `[` is
 * literal); without, brackets are literal too, as in OpenSSH's host patterns. Case is compared as given: callers
 * that want case-insensitive host names lower-case both sides.
 *
 * picomatch was tried for this and does not fit: it matches paths, so its `*` and `?` never match `/`, its `*`
 * refuses `.` and `..` as a whole name and also matches a trailing `/`, and those are not options to turn off.
 */

export interface GlobOptions {
  /** `[seq]` and `[!seq]` character sets (Python's fnmatch); otherwise brackets are literal (OpenSSH) */
  sets: boolean;
}

/** The regular expression a wildcard pattern stands for. */
export function globToRegExp(glob: string, opts: GlobOptions): RegExp {
  let src = '';
  for (let i = 0; i < glob.length; i++) {
    const c = glob[i]!;
    if (c === '*') src += '.*';
    else if (c === '?') src += '.';
    else if (c === '[' && opts.sets) {
      let j = i + 1;
      if (glob[j] === '!') j++;
      if (glob[j] === ']') j++;
      while (j < glob.length && glob[j] !== ']') j++;
      if (j >= glob.length) {
        src += '\\[';
        continue;
      }
      let set = glob.slice(i + 1, j);
      const negate = set.startsWith('!');
      if (negate) set = set.slice(1);
      src += `[${negate ? '^' : ''}${set.replace(/[\\\]^[]/g, (ch) => '\\' + ch)}]`;
      i = j;
    } else src += c.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&');
  }
  return new RegExp(`^(?:${src})$`, 's');
}

/**
 * Patterns compiled so far, by option and pattern. known_hosts is matched line by line for every host, twice per
 * handshake: without this, a run compiles the same regular expression once per line per host. The expressions have
 * no `g` or `y` flag, so `test` keeps no state between calls and one can serve every caller. Bounded, so a process
 * that matches many distinct patterns does not keep them all.
 */
const compiled = new Map<string, RegExp>();
const COMPILED_MAX = 4096;

/** A test for names matching a wildcard pattern (compiled once per distinct pattern). */
export function globMatcher(glob: string, opts: GlobOptions): (name: string) => boolean {
  const key = `${opts.sets ? 's' : 'l'}${glob}`;
  let re = compiled.get(key);
  if (!re) {
    re = globToRegExp(glob, opts);
    if (compiled.size >= COMPILED_MAX) compiled.clear();
    compiled.set(key, re);
  }
  const test = re;
  return (name) => test.test(name);
}

/**
 * Which Host and Match blocks of an ssh_config apply to a host, decided as OpenSSH 9.2 decides it (readconf.c,
 * match.c, ssh.c), over the lines the `ssh-config` package parsed. The package's own matching differs from
 * OpenSSH's (`?` may match nothing, a Host value is split at commas, every comparison has the same letter case),
 * so only its parser is used.
 */
import { isIP } from 'node:net';
import os from 'node:os';
import { LineType, type Directive, type Line, type Section } from 'ssh-config';

/** What a lookup computes: lower-case keyword → value(s), the first value obtained (lists for repeatable keywords). */
export type RawSettings = Record<string, string | string[]>;

/** Keywords whose values add up across blocks instead of the first one winning (as the package gives them). */
const REPEATABLE = new Set(['identityfile', 'certificatefile', 'localforward', 'remoteforward', 'dynamicforward']);

/** The longest sub-pattern match_pattern_list copies; a longer one makes the whole list fail (match.c). */
const SUB_PATTERN_MAX = 1023;

const utf8 = new TextEncoder();

/**
 * OpenSSH's match_pattern: `*` is any run of bytes, `?` exactly one byte, every other byte itself. It works on
 * the bytes of the UTF-8 text, as the C code does, so `?` does not stand for a whole non-ASCII character.
 */
function matchBytes(s: Uint8Array, si: number, p: Uint8Array, pi: number): boolean {
  for (;;) {
    if (pi === p.length) return si === s.length;
    if (p[pi] === 0x2a) {
      while (pi < p.length && p[pi] === 0x2a) pi++;
      if (pi === p.length) return true;
      for (; si < s.length; si++) if (matchBytes(s, si, p, pi)) return true;
      return false;
    }
    if (si === s.length) return false;
    if (p[pi] !== 0x3f && p[pi] !== s[si]) return false;
    si++;
    pi++;
  }
}

/** Whether `text` matches one ssh_config pattern (no negation, no list). */
export function matchPattern(text: string, pattern: string): boolean {
  return matchBytes(utf8.encode(text), 0, utf8.encode(pattern), 0);
}

/** ASCII letters only, as the C library's tolower does for the bytes of UTF-8 text. */
export function asciiLower(s: string): string {
  return s.replace(/[A-Z]+/g, (m) => m.toLowerCase());
}

/**
 * OpenSSH's match_pattern_list: a comma-separated list, `!` negating an entry. 1 when an entry matches and no
 * negated one does, -1 when a negated entry matches, 0 otherwise. With `lower` the patterns are lower-cased first.
 */
export function matchPatternList(text: string, list: string, lower: boolean): 1 | 0 | -1 {
  // Entries end at commas; a comma at the very end starts no further (empty) entry.
  const entries = list.split(',');
  if (list === '' || list.endsWith(',')) entries.pop();
  let positive = false;
  for (const raw of entries) {
    const negated = raw.startsWith('!');
    let sub = negated ? raw.slice(1) : raw;
    if (utf8.encode(sub).length >= SUB_PATTERN_MAX) return 0;
    if (lower) sub = asciiLower(sub);
    if (matchPattern(text, sub)) {
      if (negated) return -1;
      positive = true;
    }
  }
  return positive ? 1 : 0;
}

/** OpenSSH's match_hostname: the name and the patterns compared in lower case (Match host, Match originalhost). */
export function matchHostname(host: string, list: string): boolean {
  return matchPatternList(asciiLower(host), list, true) === 1;
}

/**
 * A `Host` line: each word is one pattern, compared with the name exactly (letter case included; a comma is an
 * ordinary character there), and a matching `!word` rules the block out whatever else matches (readconf.c).
 */
export function hostLineMatches(words: readonly string[], name: string): boolean {
  let active = false;
  for (const word of words) {
    const negated = word.startsWith('!');
    if (!matchPattern(name, negated ? word.slice(1) : word)) continue;
    if (negated) return false;
    active = true;
  }
  return active;
}

/** The words of a directive's value, as the parser split and unquoted them. */
export function wordsOf(value: Directive['value']): string[] {
  return typeof value === 'string' ? [value] : value.map((v) => v.val);
}

/** The state a Match line is evaluated against. */
interface MatchState {
  /** the name for `Match host`: the HostName (with %h) when one is set, else the name asked; in the final pass the final name */
  host: string;
  /** the name as asked */
  originalHost: string;
  /** the remote user so far (the User obtained, else the local user) */
  user: string;
  localUser: string;
  final: boolean;
}

/**
 * A `Match` line's criteria, in order, all of which must hold (readconf.c match_cfg_line). `final` and
 * `canonical` hold only in the final pass. `all` ends the list. Criteria refused when the file is loaded
 * (exec, negated ones, unknown keywords) never get here.
 */
function matchLineMatches(words: readonly string[], s: MatchState): boolean {
  let result = true;
  for (let i = 0; i < words.length; i++) {
    const attribute = words[i]!.toLowerCase();
    if (attribute === 'all') return result;
    if (attribute === 'final' || attribute === 'canonical') {
      if (!s.final) result = false;
      continue;
    }
    const arg = words[++i] ?? '';
    const ok =
      attribute === 'host' ? matchHostname(s.host, arg)
      : attribute === 'originalhost' ? matchHostname(s.originalHost, arg)
      : attribute === 'user' ? matchPatternList(s.user, arg, false) === 1
      : attribute === 'localuser' ? matchPatternList(s.localUser, arg, false) === 1
      : false;
    if (!ok) result = false;
  }
  return result;
}

/** `%h` (the name asked) and `%%` in a HostName, as ssh.c expands it before it matches and connects. */
export function expandHostNameTokens(value: string, host: string): string {
  return value.replace(/%([%h])/g, (_, c: string) => (c === '%' ? '%' : host));
}

/** The name ssh connects to and matches in the final pass: lower case unless it is an address (ssh.c). */
export function connectName(hostName: string | undefined, host: string): string {
  const name = hostName === undefined ? host : expandHostNameTokens(hostName, host);
  return isIP(name) ? name : asciiLower(name);
}

function localUserName(): string {
  try {
    return os.userInfo().username;
  } catch {
    return process.env.USER ?? process.env.USERNAME ?? '';
  }
}

/**
 * The settings `lines` give `host` (the name as asked) and `user` (the remote user when already known), the
 * way ssh reads its configuration: one pass with the name as asked; then, when a `Match final` line exists or
 * CanonicalizeHostName is on, a second pass in which Host lines are matched against the lower-cased HostName
 * (the name ssh connects to; no DNS search is made for canonical names) and `final` and `canonical` hold. In
 * both passes the first value obtained for a keyword wins; the HostName is fixed after the first pass.
 */
export function resolveSettings(lines: readonly Line[], host: string, user: string | undefined): RawSettings {
  const out: RawSettings = {};
  let final = false;
  const set = (d: Directive) => {
    const key = d.param.toLowerCase();
    const value = typeof d.value === 'string' ? d.value : wordsOf(d.value);
    if (REPEATABLE.has(key)) {
      const list = (out[key] ??= []) as string[];
      list.push(...([] as string[]).concat(value));
    } else if (out[key] === undefined && !(final && key === 'hostname')) {
      out[key] = value;
    }
  };
  if (user !== undefined) out.user = user;
  const localUser = localUserName();
  const first = (key: string): string | undefined => {
    const v = out[key];
    return Array.isArray(v) ? v[0] : v;
  };
  let wantFinal = false;
  const pass = (name: string) => {
    for (const line of lines) {
      if (line.type !== LineType.DIRECTIVE) continue;
      let active: boolean;
      if (/^host$/i.test(line.param)) {
        active = hostLineMatches(wordsOf(line.value), name);
      } else if (/^match$/i.test(line.param)) {
        const words = wordsOf(line.value);
        if (words.some((w) => w.toLowerCase() === 'final')) wantFinal = true;
        const hostName = first('hostname');
        active = matchLineMatches(words, {
          host: final ? name : hostName === undefined ? host : expandHostNameTokens(hostName, host),
          originalHost: host,
          user: first('user') ?? localUser,
          localUser,
          final,
        });
      } else {
        set(line);
        continue;
      }
      if (!active) continue;
      for (const d of (line as Section).config) if (d.type === LineType.DIRECTIVE) set(d);
    }
  };
  pass(host);
  const canonicalize = first('canonicalizehostname');
  if (wantFinal || (canonicalize !== undefined && !/^(no|false)$/i.test(canonicalize))) {
    final = true;
    pass(connectName(first('hostname'), host));
  }
  return out;
}

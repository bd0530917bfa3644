/**
 * Host patterns for a play's `hosts:` and `--limit`, evaluated as Ansible does: `all` / `*`, host and group
 * names, globs, `~regex`, `a:b` or `a,b` unions, `&` intersections and `!` exclusions (all unions first, then
 * intersections, then exclusions, whatever their written order), `group[0]` / `group[1:3]` subscripts and
 * `@file` (one pattern per line).
 */
import fs from 'node:fs';
import path from 'node:path';
import { InputError } from '../errors.js';
import { globMatcher } from '../util/glob.js';
import { isIPv6 } from './host-pattern.js';
import type { Inventory } from './types.js';
import { hostsOfGroup, inventoryOrder } from './vars.js';

export interface SelectOptions {
  /** where a relative `@file` is found; default the working directory */
  baseDir?: string;
}

/**
 * Split a pattern into terms: on commas when it has any, else on colons outside `[…]`; an IPv6 address stays
 * whole. Each term keeps its `&` or `!` prefix.
 */
export function splitHostPattern(pattern: string): string[] {
  const parts = pattern.includes(',')
    ? pattern.split(',')
    : isIPv6(pattern.trim())
      ? [pattern]
      : (pattern.match(/(?:[^\s:[\]]|\[[^\]]*\])+/g) ?? []);
  return parts.map((p) => p.trim()).filter((p) => p !== '');
}

interface Term {
  op: 'union' | 'and' | 'not';
  /** the pattern without its & or ! */
  body: string;
  /** the term as written, for messages */
  text: string;
}

/** Terms in evaluation order, with `@file` replaced by the patterns it lists. */
function termsOf(pattern: string, opts: SelectOptions): Term[] {
  if (pattern.trim() === '') throw new InputError('empty host pattern');
  const written: string[] = [];
  for (const text of splitHostPattern(pattern)) {
    if (text.startsWith('@')) written.push(...readLimitFile(text.slice(1), opts));
    else if (/^[&!]@/.test(text)) {
      throw new InputError(`"${text}": a @file of hosts can only be added to a pattern, not intersected or excluded`);
    } else written.push(text);
  }
  const terms = written.map((text): Term => {
    const op = text[0] === '&' ? 'and' : text[0] === '!' ? 'not' : 'union';
    const body = op === 'union' ? text : text.slice(1);
    if (body === '') throw new InputError(`"${text}" in host pattern "${pattern}" names nothing`);
    return { op, body, text };
  });
  const unions = terms.filter((t) => t.op === 'union');
  // Only narrowing terms (e.g. "!db") narrow everything, as in Ansible.
  if (unions.length === 0) unions.push({ op: 'union', body: 'all', text: 'all' });
  return [...unions, ...terms.filter((t) => t.op === 'and'), ...terms.filter((t) => t.op === 'not')];
}

function readLimitFile(file: string, opts: SelectOptions): string[] {
  if (file === '') throw new InputError('"@" must be followed by a file name');
  const full = path.resolve(opts.baseDir ?? process.cwd(), file);
  let text: string;
  try {
    text = fs.readFileSync(full, 'utf8');
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    const why = code === 'ENOENT' ? 'no such file' : code === 'EISDIR' ? 'it is a directory' : (e as Error).message;
    throw new InputError(`cannot read host list file "${file}": ${why}`);
  }
  return text
    .split(/\r\n|\r|\n/)
    .map((l) => l.trim())
    .filter((l) => l !== '' && !l.startsWith('#'));
}

interface Match {
  hosts: string[];
  /** false when the term named no group and no host */
  matched: boolean;
}

const SUBSCRIPT = /^(.+)\[(?:(-?\d+)|(\d+)[:-](\d*))\]$/s;

/** Hosts a single term (without & or !) selects, in inventory order. */
function matchTerm(inv: Inventory, body: string): Match {
  if (inv.hosts.has(body)) return { hosts: [body], matched: true };
  const sub = body[0] === '~' ? null : SUBSCRIPT.exec(body);
  const expr = sub ? sub[1]! : body;
  const found = enumerate(inv, expr);
  if (!sub || found.hosts.length === 0) return found;
  const hosts = found.hosts;
  if (sub[2] !== undefined) {
    const i = Number(sub[2]);
    const host = hosts[i < 0 ? hosts.length + i : i];
    if (host === undefined) {
      throw new InputError(`"${body}": no host at index ${i}, "${expr}" matches ${hosts.length} host(s)`);
    }
    return { hosts: [host], matched: true };
  }
  const start = Number(sub[3]);
  const end = sub[4] === '' ? hosts.length - 1 : Number(sub[4]);
  return { hosts: hosts.slice(start, end + 1), matched: true };
}

function enumerate(inv: Inventory, expr: string): Match {
  if (expr === 'all' || expr === '*') return { hosts: [...inv.hosts.keys()], matched: true };
  const isRegex = expr[0] === '~';
  const wild = isRegex || /[.?*[]/.test(expr);
  const test = isRegex ? regexMatcher(expr.slice(1)) : wild ? globMatcher(expr, { sets: true }) : (name: string) => name === expr;
  // A glob or regex never matches the implicit groups "all" and "ungrouped" (Ansible documents this; "a*" would
  // otherwise select every host through "all"); only their exact names do.
  const groups = [...inv.groups.keys()].filter((g) => (wild ? g !== 'all' && g !== 'ungrouped' && test(g) : test(g)));
  const hosts = groups.flatMap((g) => hostsOfGroup(inv, g));
  if (groups.length === 0 || wild) hosts.push(...[...inv.hosts.keys()].filter(test));
  return { hosts: inventoryOrder(inv, hosts), matched: groups.length > 0 || hosts.length > 0 };
}

function regexMatcher(source: string): (name: string) => boolean {
  let re: RegExp;
  try {
    // Python's re.match: anchored at the start only.
    re = new RegExp(`^(?:${source})`);
  } catch (e) {
    throw new InputError(`invalid regular expression in host pattern "~${source}": ${(e as Error).message}`);
  }
  return (name) => re.test(name);
}

/**
 * The hosts a pattern selects, in inventory order. A term that names nothing selects nothing (see
 * unmatchedPatterns); an empty pattern, a bad regex, an unreadable @file or an out-of-range `[n]` is an InputError.
 */
export function selectHosts(inv: Inventory, pattern: string, opts: SelectOptions = {}): string[] {
  let selected: string[] = [];
  for (const term of termsOf(pattern, opts)) {
    const { hosts } = matchTerm(inv, term.body);
    if (term.op === 'union') selected = selected.concat(hosts);
    else {
      const these = new Set(hosts);
      selected = selected.filter((h) => these.has(h) === (term.op === 'and'));
    }
  }
  return inventoryOrder(inv, selected);
}

/**
 * Terms of the pattern that match no group and no host (without their & or ! prefix), for the CLI to warn
 * "could not match supplied host pattern" as Ansible does.
 */
export function unmatchedPatterns(inv: Inventory, pattern: string, opts: SelectOptions = {}): string[] {
  return termsOf(pattern, opts)
    .filter((t) => t.body !== 'all' && !matchTerm(inv, t.body).matched)
    .map((t) => t.body);
}

/**
 * Host names as inventories write them (shared by the INI and YAML parsers): `name:port`, `[v6]:port`, bare IPv6
 * addresses and ranges like `web[01:20]` or `db-[a:f]`, expanded as Ansible expands them; and the check of
 * variable names.
 */
import { InputError, type SourcePos } from '../errors.js';

/** An expanded host line or YAML host key: the inventory names and the port given with `name:port`. */
export interface HostPattern {
  names: string[];
  port?: number;
}

/** A range like `web[1:999999]` that would expand past this is almost certainly a typo, not a fleet. */
const MAX_RANGE_HOSTS = 100_000;

const VAR_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;

/** Reject names Ansible would accept but no template could ever read: `foo-bar`, `2x`, an empty name. */
export function checkVarName(name: string, pos: SourcePos): void {
  if (!VAR_NAME.test(name)) {
    const why = name === '' ? 'empty variable name' : `${JSON.stringify(name)} is not a valid variable name`;
    throw new InputError(`${why} (letters, digits and _, not starting with a digit)`, pos);
  }
}

/** A full IPv6 address (with `::` shortening and an optional trailing dotted IPv4). */
export function isIPv6(s: string): boolean {
  if (!/^[0-9A-Fa-f:.]+$/.test(s) || !s.includes(':')) return false;
  let body = s;
  let extra = 0;
  const v4 = /(?:^|:)(\d{1,3}(?:\.\d{1,3}){3})$/.exec(s);
  if (v4) {
    if (v4[1]!.split('.').some((o) => Number(o) > 255)) return false;
    body = s.slice(0, s.length - v4[1]!.length) + '0';
    extra = 1;
  }
  if (body.includes('.')) return false;
  const halves = body.split('::');
  if (halves.length > 2) return false;
  const groups = (h: string) => (h === '' ? [] : h.split(':'));
  const parts = halves.flatMap(groups);
  if (!parts.every((p) => /^[0-9A-Fa-f]{1,4}$/.test(p))) return false;
  const count = parts.length + extra;
  return halves.length === 2 ? count <= 7 : count === 8;
}

/**
 * Split `name:port`, `[v6]:port` or a bare IPv6 address, then expand ranges in the name. `pos` is where the
 * pattern starts, for errors.
 */
export function parseHostPattern(pattern: string, pos: SourcePos): HostPattern {
  let name = pattern;
  let portText: string | undefined;
  const bracketed = /^\[([^\]]+)\](?::(\d+))?$/.exec(pattern);
  if (bracketed && isIPv6(bracketed[1]!)) {
    name = bracketed[1]!;
    portText = bracketed[2];
  } else if (!isIPv6(pattern)) {
    const colon = lastColonOutsideBrackets(pattern);
    if (colon >= 0) {
      name = pattern.slice(0, colon);
      portText = pattern.slice(colon + 1);
      if (!/^\d+$/.test(portText)) {
        const why = portText === '' ? 'ends in ":" with no port' : `has port "${portText}", which is not a number`;
        throw new InputError(`host "${pattern}" ${why}`, pos);
      }
    }
  }
  let port: number | undefined;
  if (portText !== undefined) {
    port = Number(portText);
    if (port < 1 || port > 65535) throw new InputError(`host "${pattern}" has port ${portText}, outside 1-65535`, pos);
  }
  if (name === '') throw new InputError(`empty host name in "${pattern}"`, pos);
  if (/[\s\x00-\x1f\x7f]/.test(name)) throw new InputError(`host name ${JSON.stringify(name)} contains a space or a control character`, pos);
  if (name === '---') {
    throw new InputError('a host named "---" means this is a YAML file read as INI: name it .yml or .yaml', pos);
  }
  const names: string[] = [];
  expandRanges(name, names, pos);
  return port === undefined ? { names } : { names, port };
}

function lastColonOutsideBrackets(s: string): number {
  let depth = 0;
  let found = -1;
  for (let i = 0; i < s.length; i++) {
    if (s[i] === '[') depth++;
    else if (s[i] === ']') depth = Math.max(0, depth - 1);
    else if (s[i] === ':' && depth === 0) found = i;
  }
  return found;
}

const LETTERS = 'abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ';

/** Expand `web[01:20]`, `db-[a:f]`, `web[1:10:2]` (and several ranges in one name) like Ansible does. */
function expandRanges(name: string, out: string[], pos: SourcePos): void {
  const open = name.indexOf('[');
  if (open < 0) {
    out.push(name);
    return;
  }
  const close = name.indexOf(']', open);
  if (close < 0) throw new InputError(`host range in "${name}" has "[" with no closing "]"`, pos);
  const head = name.slice(0, open);
  const body = name.slice(open + 1, close);
  const tail = name.slice(close + 1);
  const shown = `[${body}]`;
  const bounds = body.split(':');
  if (bounds.length !== 2 && bounds.length !== 3) {
    throw new InputError(`host range ${shown} must be [begin:end] or [begin:end:step]`, pos);
  }
  const begin = bounds[0] || '0';
  const end = bounds[1]!;
  if (end === '') throw new InputError(`host range ${shown} has no end`, pos);
  const stepText = bounds[2] ?? '1';
  if (!/^\d+$/.test(stepText) || Number(stepText) < 1) {
    throw new InputError(`host range ${shown} has step "${stepText}"; a step is a whole number of at least 1`, pos);
  }
  const step = Number(stepText);

  let items: string[];
  if (LETTERS.includes(begin) && LETTERS.includes(end) && begin.length === 1 && end.length === 1) {
    const from = LETTERS.indexOf(begin);
    const to = LETTERS.indexOf(end);
    if (from > to) throw new InputError(`host range ${shown} counts down: "${begin}" comes after "${end}"`, pos);
    items = [];
    for (let i = from; i <= to; i += step) items.push(LETTERS[i]!);
  } else if (/^\d+$/.test(begin) && /^\d+$/.test(end)) {
    const from = Number(begin);
    const to = Number(end);
    if (from > to) throw new InputError(`host range ${shown} counts down: ${begin} is after ${end}`, pos);
    // A leading zero on the begin asks for zero-padded names, so both ends must have that width.
    const width = begin.length > 1 && begin.startsWith('0') ? begin.length : 0;
    if (width && end.length !== width) {
      throw new InputError(`host range ${shown} pads to ${width} digits, so its end must have ${width} digits too`, pos);
    }
    if ((to - from) / step + 1 + out.length > MAX_RANGE_HOSTS) {
      throw new InputError(`host range ${shown} expands to more than ${MAX_RANGE_HOSTS} hosts`, pos);
    }
    items = [];
    for (let i = from; i <= to; i += step) items.push(String(i).padStart(width, '0'));
  } else {
    throw new InputError(`host range ${shown} needs two numbers or two single letters`, pos);
  }
  for (const item of items) {
    expandRanges(head + item + tail, out, pos);
    if (out.length > MAX_RANGE_HOSTS) {
      throw new InputError(`host ranges in "${name}" expand to more than ${MAX_RANGE_HOSTS} hosts`, pos);
    }
  }
}

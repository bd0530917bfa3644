/**
 * Ansible's INI inventory: `[group]`, `[group:vars]`, `[group:children]`, hosts with inline `k=v` vars, host ranges
 * and `host:port`. Lines are split the way Python's shlex does and values are typed the way `ast.literal_eval`
 * types them, because that is what ansible-core does and operators' files depend on it.
 */
import { InputError, type SourcePos } from '../errors.js';
import { shlexSplit, WordSplitError, type Word } from '../util/words.js';
import { PyFloat } from '../playbook/template/python.js';
import type { InventoryBuilder } from './builder.js';
import { checkVarName, parseHostPattern } from './host-pattern.js';

const SECTION = /^\[([^:\]\s]+)(?::([\p{L}\p{N}_]+))?\]\s*(?:#.*)?$/u;
const GROUP_LINE = /^([^:\]\s]+)\s*(?:#.*)?$/u;

/** Read an INI inventory into the builder, which may already hold groups from earlier sources. */
export function parseIni(text: string, file: string, into: InventoryBuilder): void {
  const lines = text.replace(/^\uFEFF/, '').split(/\r\n|\r|\n/);
  let group = 'ungrouped';
  let kind: 'hosts' | 'vars' | 'children' = 'hosts';
  // Ansible lets [p:children] name a group declared further down, and [g:vars] come before [g]; both must be
  // resolved by the end of the file.
  const pendingChildren = new Map<string, { pos: SourcePos; parents: { parent: string; pos: SourcePos }[] }>();
  const pendingVars = new Map<string, SourcePos>();
  const groupVarsSet = new Map<string, Map<string, SourcePos>>();

  lines.forEach((raw, index) => {
    const line = index + 1;
    const trimmed = raw.trim();
    if (trimmed === '' || trimmed[0] === '#' || trimmed[0] === ';') return;
    const lead = raw.indexOf(trimmed[0]!);
    const at = (offset: number): SourcePos => ({ file, line, col: lead + offset + 1 });

    const section = SECTION.exec(trimmed);
    if (section) {
      const name = section[1]!;
      const type = section[2] ?? 'hosts';
      if (type !== 'hosts' && type !== 'vars' && type !== 'children') {
        throw new InputError(
          `unknown section type ":${type}" in [${name}:${type}]; a section is [${name}], [${name}:vars] or [${name}:children]`,
          at(name.length + 2),
        );
      }
      group = name;
      kind = type;
      if (!into.hasGroup(name)) {
        if (kind === 'vars' && !pendingChildren.has(name)) pendingVars.set(name, at(1));
        into.addGroup(name);
      }
      if (kind !== 'vars') {
        const waiting = pendingChildren.get(name);
        if (waiting) {
          for (const p of waiting.parents) into.addChild(p.parent, name, p.pos);
          pendingChildren.delete(name);
        }
        pendingVars.delete(name);
      }
      return;
    }
    // A bracketed IPv6 address is the one host that starts with "["; anything else is a broken header.
    if (trimmed.startsWith('[') && !(kind === 'hosts' && /^\[[0-9A-Fa-f:.]+\](?::\d+)?(?:\s|$)/.test(trimmed))) {
      throw new InputError(
        `invalid section header "${trimmed}": write [group], [group:vars] or [group:children], with no spaces in the brackets`,
        at(0),
      );
    }

    if (kind === 'hosts') {
      const tokens = splitHostLine(raw, file, line);
      const first = tokens[0]!;
      const pos: SourcePos = { file, line, col: first.col + 1 };
      const { names, port } = parseHostPattern(first.text, pos);
      const vars = new Map<string, unknown>();
      for (const t of tokens.slice(1)) {
        const tpos: SourcePos = { file, line, col: t.col + 1 };
        const eq = t.text.indexOf('=');
        if (eq < 0) throw new InputError(`expected key=value after the host name, got "${t.text}"`, tpos);
        const key = t.text.slice(0, eq);
        checkVarName(key, tpos);
        if (vars.has(key)) throw new InputError(`variable "${key}" is set twice on this host line`, tpos);
        vars.set(key, parseIniValue(t.text.slice(eq + 1)));
      }
      for (const name of names) {
        into.addHost(name, group);
        if (port !== undefined) into.setHostVar(name, 'ansible_port', port);
        for (const [k, v] of vars) into.setHostVar(name, k, v);
      }
    } else if (kind === 'vars') {
      const eq = trimmed.indexOf('=');
      if (eq < 0) throw new InputError(`expected key=value in [${group}:vars], got "${trimmed}"`, at(0));
      const key = trimmed.slice(0, eq).trim();
      const pos = at(0);
      checkVarName(key, pos);
      const seen = groupVarsSet.get(group) ?? new Map<string, SourcePos>();
      groupVarsSet.set(group, seen);
      const earlier = seen.get(key);
      if (earlier) {
        throw new InputError(`variable "${key}" of group "${group}" is already set at line ${earlier.line}`, pos);
      }
      seen.set(key, pos);
      into.setGroupVar(group, key, parseIniValue(trimmed.slice(eq + 1).trim()));
    } else {
      const m = GROUP_LINE.exec(trimmed);
      if (!m) throw new InputError(`expected one group name per line in [${group}:children], got "${trimmed}"`, at(0));
      const child = m[1]!;
      const pos = at(0);
      if (into.hasGroup(child)) {
        into.addChild(group, child, pos);
      } else {
        const waiting = pendingChildren.get(child) ?? { pos, parents: [] };
        waiting.parents.push({ parent: group, pos });
        pendingChildren.set(child, waiting);
      }
    }
  });

  const unresolved = [
    ...[...pendingVars].map(([name, pos]) => ({
      pos,
      message: `[${name}:vars] sets variables for group "${name}", which is never defined (add a [${name}] section)`,
    })),
    ...[...pendingChildren].map(([name, w]) => ({
      pos: w.pos,
      message: `group "${name}" in [${w.parents[0]!.parent}:children] is never defined (add a [${name}] section)`,
    })),
  ].sort((a, b) => a.pos.line - b.pos.line);
  if (unresolved[0]) throw new InputError(unresolved[0].message, unresolved[0].pos);
}

/**
 * Split a host line as Python's `shlex.split(line, comments=True)` does (see util/words.ts); a line that cannot
 * be split is an InputError at the unclosed quote or the lone backslash.
 */
function splitHostLine(line: string, file: string, lineNo: number): Word[] {
  try {
    return shlexSplit(line, { comments: true });
  } catch (e) {
    if (e instanceof WordSplitError) throw new InputError(e.message, { file, line: lineNo, col: e.index + 1 });
    throw e;
  }
}

/**
 * Type an INI value as ansible-core does, with Python's `ast.literal_eval`: `22` and `0x1F` are numbers, `True`,
 * `False` and `None` are true, false and null, `[…]`, `(…)` and `{…}` are lists and dicts, a quoted value is the
 * string inside. Anything that is not a Python literal (`true`, `yes`, `08`, `/etc/x`) stays the string it was.
 */
export function parseIniValue(text: string): unknown {
  try {
    return new LiteralReader(text).document();
  } catch (e) {
    if (e instanceof NotALiteral) return text;
    throw e;
  }
}

class NotALiteral extends Error {}

/** Python's number forms; `float` marks the one Python reads as a float (`2.0`, `1e3`), even when whole. */
const NUMBER_FORMS: { re: RegExp; read: (m: string) => number; float?: boolean }[] = [
  { re: /0[xX](?:_?[0-9a-fA-F])+/y, read: (m) => parseInt(m.slice(2).replace(/_/g, ''), 16) },
  { re: /0[oO](?:_?[0-7])+/y, read: (m) => parseInt(m.slice(2).replace(/_/g, ''), 8) },
  { re: /0[bB](?:_?[01])+/y, read: (m) => parseInt(m.slice(2).replace(/_/g, ''), 2) },
  {
    re: /(?:(?:\d(?:_?\d)*)?\.\d(?:_?\d)*|\d(?:_?\d)*\.)(?:[eE][+-]?\d(?:_?\d)*)?|\d(?:_?\d)*[eE][+-]?\d(?:_?\d)*/y,
    read: (m) => Number(m.replace(/_/g, '')),
    float: true,
  },
  // Python rejects leading zeros on a non-zero decimal, which is why "08" stays a string.
  { re: /[1-9](?:_?\d)*|0+(?:_?0)*/y, read: (m) => Number(m.replace(/_/g, '')) },
];

const SIMPLE_ESCAPES: Record<string, string> = {
  '\\': '\\',
  "'": "'",
  '"': '"',
  a: '\x07',
  b: '\b',
  f: '\f',
  n: '\n',
  r: '\r',
  t: '\t',
  v: '\v',
};

/** A recursive-descent reader for the subset of Python that `ast.literal_eval` accepts. */
class LiteralReader {
  private i = 0;
  constructor(private readonly s: string) {}

  document(): unknown {
    while (this.s[this.i] === ' ' || this.s[this.i] === '\t') this.i++;
    const first = this.value();
    this.skip();
    if (this.i === this.s.length) return first;
    // A bare comma list is a Python tuple: `ports=25,465` is [25, 465].
    if (!this.eat(',')) throw new NotALiteral();
    const rest: unknown[] = [];
    for (;;) {
      this.skip();
      if (this.i === this.s.length) return [first, ...rest];
      rest.push(this.value());
      this.skip();
      if (this.i === this.s.length) return [first, ...rest];
      if (!this.eat(',')) throw new NotALiteral();
    }
  }

  /** Whitespace and a trailing Python comment. */
  private skip(): void {
    while (this.i < this.s.length) {
      const c = this.s[this.i]!;
      if (c === ' ' || c === '\t' || c === '\f') this.i++;
      else if (c === '#') this.i = this.s.length;
      else break;
    }
  }

  private eat(c: string): boolean {
    this.skip();
    if (this.s[this.i] === c) {
      this.i++;
      return true;
    }
    return false;
  }

  private value(): unknown {
    this.skip();
    const c = this.s[this.i];
    if (c === undefined) throw new NotALiteral();
    if (c === '[') {
      this.i++;
      return this.items(']');
    }
    if (c === '(') {
      this.i++;
      if (this.eat(')')) return [];
      const first = this.value();
      if (this.eat(')')) return first;
      if (!this.eat(',')) throw new NotALiteral();
      return [first, ...this.items(')')];
    }
    if (c === '{') {
      this.i++;
      return this.braces();
    }
    if (c === '+' || c === '-') {
      this.i++;
      const n = this.signedOperand();
      if (c === '+') return n;
      return n instanceof PyFloat ? new PyFloat(-n.value) : -n;
    }
    if (this.s.startsWith('...', this.i)) {
      this.i += 3;
      return '...';
    }
    if (this.atString()) return this.strings();
    const num = this.number();
    if (num !== undefined) return num;
    const word = /[A-Za-z_][A-Za-z0-9_]*/y;
    word.lastIndex = this.i;
    const m = word.exec(this.s);
    if (m) {
      this.i += m[0].length;
      if (m[0] === 'True') return true;
      if (m[0] === 'False') return false;
      if (m[0] === 'None') return null;
    }
    throw new NotALiteral();
  }

  /** Comma-separated values up to `close`, a trailing comma allowed. */
  private items(close: string): unknown[] {
    const out: unknown[] = [];
    for (;;) {
      if (this.eat(close)) return out;
      out.push(this.value());
      if (this.eat(close)) return out;
      if (!this.eat(',')) throw new NotALiteral();
    }
  }

  /** `{}` and `{k: v, …}` are dicts, `{a, b}` is a set (a list here, as ansible-core coerces it). */
  private braces(): unknown {
    if (this.eat('}')) return {};
    const first = this.value();
    if (!this.eat(':')) {
      if (this.eat('}')) return [first];
      if (!this.eat(',')) throw new NotALiteral();
      return [first, ...this.items('}')];
    }
    const entries: [string, unknown][] = [[dictKey(first), this.value()]];
    for (;;) {
      if (this.eat('}')) break;
      if (!this.eat(',')) throw new NotALiteral();
      if (this.eat('}')) break;
      const key = dictKey(this.value());
      if (!this.eat(':')) throw new NotALiteral();
      entries.push([key, this.value()]);
    }
    // fromEntries defines own properties, so a "__proto__" key stays data instead of replacing the prototype.
    return Object.fromEntries(entries);
  }

  /** Python allows one sign on a number, possibly parenthesised: `-5`, `- 5`, `-(5)`; not `--5` or `-True`. */
  private signedOperand(): number | PyFloat {
    let parens = 0;
    while (this.eat('(')) parens++;
    this.skip();
    const n = this.number();
    if (n === undefined) throw new NotALiteral();
    while (parens-- > 0) if (!this.eat(')')) throw new NotALiteral();
    return n;
  }

  /** A number; a whole float (`2.0`) boxed, so that templates print it as Ansible does. */
  private number(): number | PyFloat | undefined {
    for (const form of NUMBER_FORMS) {
      form.re.lastIndex = this.i;
      const m = form.re.exec(this.s);
      if (!m) continue;
      const next = this.s[this.i + m[0].length];
      // "1j" (complex), "1x" or "0123" are not plain Python numbers: the whole value then stays a string.
      if (next !== undefined && /[A-Za-z0-9_.]/.test(next)) throw new NotALiteral();
      const value = form.read(m[0]);
      if (Number.isInteger(value) && !Number.isSafeInteger(value) && !/[.eE]/.test(m[0])) throw new NotALiteral();
      this.i += m[0].length;
      return form.float && Number.isInteger(value) ? new PyFloat(value) : value;
    }
    return undefined;
  }

  private atString(): boolean {
    return /(?:[rR][bB]?|[bB][rR]?|[uU])?['"]/y.test(this.s.slice(this.i, this.i + 3));
  }

  /** One or more adjacent string literals, concatenated as Python does. */
  private strings(): string {
    let out = '';
    let kind: 'str' | 'bytes' | undefined;
    while (this.atString()) {
      const prefix = /^[rRuUbB]*/.exec(this.s.slice(this.i))![0].toLowerCase();
      this.i += prefix.length;
      const isBytes = prefix.includes('b');
      if (kind && kind !== (isBytes ? 'bytes' : 'str')) throw new NotALiteral();
      kind = isBytes ? 'bytes' : 'str';
      out += this.stringBody(prefix.includes('r'), isBytes);
      this.skip();
    }
    return out;
  }

  private stringBody(raw: boolean, bytes: boolean): string {
    const q = this.s[this.i]!;
    const triple = this.s.startsWith(q.repeat(3), this.i);
    const delim = triple ? q.repeat(3) : q;
    this.i += delim.length;
    let out = '';
    for (;;) {
      if (this.i >= this.s.length) throw new NotALiteral();
      if (this.s.startsWith(delim, this.i)) {
        this.i += delim.length;
        break;
      }
      const c = this.s[this.i]!;
      if (bytes && c.charCodeAt(0) > 0x7f) throw new NotALiteral();
      if (c !== '\\') {
        out += c;
        this.i++;
        continue;
      }
      const next = this.s[this.i + 1];
      if (next === undefined) throw new NotALiteral();
      if (raw) {
        out += c + next;
        this.i += 2;
        continue;
      }
      this.i += 2;
      if (next in SIMPLE_ESCAPES) {
        out += SIMPLE_ESCAPES[next];
      } else if (/[0-7]/.test(next)) {
        const m = /[0-7]{0,2}/y;
        m.lastIndex = this.i;
        const rest = m.exec(this.s)![0];
        this.i += rest.length;
        out += String.fromCharCode(parseInt(next + rest, 8));
      } else if (next === 'x' || (!bytes && (next === 'u' || next === 'U'))) {
        const len = next === 'x' ? 2 : next === 'u' ? 4 : 8;
        const hex = this.s.slice(this.i, this.i + len);
        if (!new RegExp(`^[0-9a-fA-F]{${len}}$`).test(hex)) throw new NotALiteral();
        const code = parseInt(hex, 16);
        if (code > 0x10ffff) throw new NotALiteral();
        out += String.fromCodePoint(code);
        this.i += len;
      } else if (next === 'N' && !bytes) {
        // Named characters would need Python's Unicode name table; keep the value as written instead.
        throw new NotALiteral();
      } else {
        out += c + next;
      }
    }
    if (bytes) {
      try {
        return new TextDecoder('utf-8', { fatal: true }).decode(Uint8Array.from(out, (ch) => ch.charCodeAt(0)));
      } catch {
        throw new NotALiteral();
      }
    }
    return out;
  }
}

function dictKey(key: unknown): string {
  if (typeof key === 'string') return key;
  if (typeof key === 'number') return String(key);
  if (typeof key === 'boolean') return key ? 'true' : 'false';
  if (key === null) return 'null';
  throw new NotALiteral();
}

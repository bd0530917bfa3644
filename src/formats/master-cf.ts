/**
 * Postfix master.cf: parse and print with a byte-exact round trip, and the primitive edits the master_cf module
 * composes. Lines are read the way Postfix reads them (see main-cf.ts); text is latin1, one character per byte.
 *
 * Besides active entries, commented-out entries are recognised (`#smtps inet n - n - - smtpd` and the
 * `#  -o name=value` lines below it) so that a template can be uncommented in place.
 */
import { type Line, dominantEol, joinLines, lineKind, logicalLines, sharedParser, splitLines } from './main-cf.js';

export const SERVICE_TYPES = ['inet', 'unix', 'unix-dgram', 'fifo', 'pass'] as const;

/** The eight fields of a service line, in order. */
export const FIELD_NAMES = ['service', 'type', 'private', 'unpriv', 'chroot', 'wakeup', 'maxproc', 'command'] as const;
export type FieldName = (typeof FIELD_NAMES)[number];

/** One whitespace-separated word (a `{ … }` group counts as one), located in the file. */
export interface Token {
  text: string;
  /** line index where it starts, and its start column there */
  line: number;
  start: number;
  /** line index where it ends (differs from `line` only for a `{ … }` group spread over lines), and end column */
  endLine: number;
  end: number;
}

/** A `-o name=value` (or `-o { name = value }`) argument. */
export interface MasterCfOption {
  name: string;
  value: string;
  /** the `-o` and the `name=value` tokens, or the single token of `-oname=value` */
  tokens: Token[];
}

/** The eight fields by name, as master.cf spells them (`-` for a default). */
export type MasterCfFields = Record<FieldName, string>;

export interface MasterCfEntry extends MasterCfFields {
  /** a commented-out entry (a template) */
  commented: boolean;
  /** indices of the service line and its continuation lines (comments and prose in between are not listed) */
  lines: number[];
  /** the field tokens (eight on a well-formed line) */
  fields: Token[];
  /** `-o` options, in order */
  options: MasterCfOption[];
  /** command arguments that are not `-o` options, in order */
  words: Token[];
  /** every token: fields, then arguments in order */
  tokens: Token[];
}

export interface MasterCfDocument {
  lines: Line[];
  /** line end for new lines */
  eol: '\n' | '\r\n';
  /** active and commented entries in file order */
  entries: MasterCfEntry[];
}

/** `[::1]:smtps` → host `[::1]`, port `smtps`; `smtps` → host '', port `smtps`. */
export function splitService(service: string): { host: string; port: string } {
  const m = /^(.*):([^:\]]*)$/.exec(service);
  return m ? { host: m[1]!, port: m[2]! } : { host: '', port: service };
}

/** An edit the file's layout does not allow (a field missing from a broken line, a brace group spread over lines). */
export class MasterCfEditError extends Error {
  override name = 'MasterCfEditError';
}

const isSpace = (c: string | undefined) => c !== undefined && /[ \t\n\v\f\r]/.test(c);

/**
 * Tokens of a logical line made of `indices`. Commented lines are read with their `#` taken as a blank, so columns
 * stay those of the file. Postfix protects whitespace inside `{ }` (mystrtokq), so a brace group is one token.
 */
function tokenize(lines: readonly Line[], indices: number[], commented: boolean): Token[] {
  const texts = indices.map((i) => {
    const t = lines[i]!.text;
    return commented ? ` ${t.slice(1)}` : t;
  });
  const joined = texts.join('\n');
  const starts: number[] = [];
  let off = 0;
  for (const t of texts) {
    starts.push(off);
    off += t.length + 1;
  }
  const locate = (pos: number): [number, number] => {
    let k = starts.length - 1;
    while (k > 0 && starts[k]! > pos) k--;
    return [indices[k]!, pos - starts[k]!];
  };
  const tokens: Token[] = [];
  let i = 0;
  while (i < joined.length) {
    while (i < joined.length && isSpace(joined[i])) i++;
    if (i >= joined.length) break;
    const from = i;
    let depth = 0;
    while (i < joined.length && (depth > 0 || !isSpace(joined[i]))) {
      if (joined[i] === '{') depth++;
      else if (joined[i] === '}' && depth > 0) depth--;
      i++;
    }
    const [line, start] = locate(from);
    const [endLine, end] = locate(i - 1);
    tokens.push({ text: joined.slice(from, i), line, start, endLine, end: end + 1 });
  }
  return tokens;
}

/** Name and value of `name=value` or `{ name = value }`. */
export function parseOptionText(text: string): { name: string; value: string } {
  const braced = text.startsWith('{') && text.endsWith('}');
  const inner = braced ? text.slice(1, -1) : text;
  const eq = inner.indexOf('=');
  if (eq < 0) return { name: inner.trim(), value: '' };
  return braced
    ? { name: inner.slice(0, eq).trim(), value: inner.slice(eq + 1).trim() }
    : { name: inner.slice(0, eq), value: inner.slice(eq + 1) };
}

/** The token text for an option value: `{ name = value }` when the value holds whitespace (Postfix 3.0+). */
export function formatOption(name: string, value: string): string {
  return /[ \t]/.test(value) ? `{ ${name} = ${value} }` : `${name}=${value}`;
}

function entryOf(lines: readonly Line[], indices: number[], commented: boolean): MasterCfEntry {
  const tokens = tokenize(lines, indices, commented);
  const fields = tokens.slice(0, 8);
  const f = (k: number) => fields[k]?.text ?? '';
  const options: MasterCfOption[] = [];
  const words: Token[] = [];
  const args = tokens.slice(8);
  // pipe(8) hands everything after argv= to the command, so a -o there is the command's, not Postfix's
  const argvAt = args.findIndex((t) => t.text.startsWith('argv='));
  for (let k = 0; k < args.length; k++) {
    const t = args[k]!;
    if (argvAt >= 0 && k >= argvAt) {
      words.push(t);
    } else if (t.text === '-o' && k + 1 < args.length) {
      const v = args[++k]!;
      options.push({ ...parseOptionText(v.text), tokens: [t, v] });
    } else if (t.text.startsWith('-o') && t.text.length > 2) {
      options.push({ ...parseOptionText(t.text.slice(2)), tokens: [t] });
    } else {
      words.push(t);
    }
  }
  return {
    commented,
    lines: indices,
    fields,
    service: f(0),
    type: f(1),
    private: f(2),
    unpriv: f(3),
    chroot: f(4),
    wakeup: f(5),
    maxproc: f(6),
    command: f(7),
    options,
    words,
    tokens,
  };
}

/** A comment line that is a whole service line once its `#` is taken away. */
function isCommentedServiceLine(text: string): boolean {
  if (!/^#[ \t]*[^ \t#]/.test(text)) return false;
  const w = text.slice(1).trim().split(/[ \t]+/);
  return (
    w.length >= 8 &&
    (SERVICE_TYPES as readonly string[]).includes(w[1]!) &&
    /^[yn-]$/.test(w[2]!) &&
    /^[yn-]$/.test(w[3]!) &&
    /^[yn-]$/.test(w[4]!) &&
    /^(-|[0-9]+\??)$/.test(w[5]!) &&
    /^(-|[0-9]+)$/.test(w[6]!)
  );
}

/**
 * A commented line below a commented service line that belongs to it: `#`, whitespace, then an option or a command
 * argument (`-o …`, `flags=…`, `${nexthop} …`, `{ … }`). Other text there (`#     Instead of specifying …`) is
 * prose and stays a comment.
 */
function commentedArgumentKind(text: string): 'argument' | 'prose' | null {
  const m = /^#[ \t]+([^ \t]+)/.exec(text);
  if (!m || isCommentedServiceLine(text)) return null;
  return /^[-${]/.test(m[1]!) || m[1]!.includes('=') ? 'argument' : 'prose';
}

function build(lines: Line[], eol?: '\n' | '\r\n'): MasterCfDocument {
  const active = logicalLines(lines);
  // Comment lines inside an active logical line (between its first and last line) cannot start a template.
  const inside = new Set<number>();
  for (const g of active) for (let i = g[0]!; i <= g[g.length - 1]!; i++) inside.add(i);
  const groups: { indices: number[]; commented: boolean }[] = active.map((indices) => ({ indices, commented: false }));
  for (let i = 0; i < lines.length; i++) {
    if (inside.has(i) || lineKind(lines[i]!.text) !== 'comment' || !isCommentedServiceLine(lines[i]!.text)) continue;
    const indices = [i];
    let j = i + 1;
    for (; j < lines.length && !inside.has(j); j++) {
      const kind = commentedArgumentKind(lines[j]!.text);
      if (kind === null) break;
      if (kind === 'argument') indices.push(j);
    }
    groups.push({ indices, commented: true });
    i = indices[indices.length - 1]!;
  }
  groups.sort((a, b) => a.indices[0]! - b.indices[0]!);
  return {
    lines,
    eol: eol ?? dominantEol(lines),
    entries: groups.map((g) => entryOf(lines, g.indices, g.commented)),
  };
}

export function parseMasterCf(bytes: Buffer): MasterCfDocument {
  return build(splitLines(bytes));
}

/**
 * `parseMasterCf`, parsed once per distinct content (see sharedParser). A run reads the same master.cf up to three
 * times per host (postconf's name check, master_cf's preflight and its plan), and the hosts of a fleet mostly hold
 * one of a few files.
 */
export const parsedMasterCf: (bytes: Buffer) => MasterCfDocument = sharedParser(parseMasterCf, 32);

export function printMasterCf(doc: MasterCfDocument): Buffer {
  return joinLines(doc.lines);
}

/** The entry whose service line is line `at`. */
export function entryAt(doc: MasterCfDocument, at: number): MasterCfEntry {
  const e = doc.entries.find((x) => x.lines[0] === at);
  if (!e) throw new Error(`master.cf line ${at + 1} does not start an entry`);
  return e;
}

function edited(doc: MasterCfDocument, lines: Line[]): MasterCfDocument {
  return build(lines, doc.eol);
}

function single(t: Token): Token {
  if (t.line !== t.endLine) {
    throw new MasterCfEditError(`line ${t.line + 1}: "${t.text}" spans lines; put it on one line to let it be edited`);
  }
  return t;
}

/**
 * Uncomment a template in place: the service line loses its `#` (and blanks after it, since a service line must
 * start at column 0) and each of its option and argument lines in `only` (default: all of them) loses its `#`;
 * the other lines, prose among them, stay comments. Postfix skips comment lines inside an entry, so a line left
 * commented between two uncommented ones does not end the entry.
 */
export function uncommentEntry(doc: MasterCfDocument, at: number, only?: ReadonlySet<number>): MasterCfDocument {
  const e = entryAt(doc, at);
  if (!e.commented) return doc;
  const lines = doc.lines.slice();
  e.lines.forEach((i, k) => {
    if (k > 0 && only && !only.has(i)) return;
    const t = lines[i]!.text;
    lines[i] = { ...lines[i]!, text: k === 0 ? t.replace(/^#[ \t]*/, '') : t.slice(1) };
  });
  return edited(doc, lines);
}

/** Line indices an option's tokens cover (more than one only for `-o` and its value on two lines, or a `{ }` group). */
export function optionLines(o: MasterCfOption): number[] {
  const out: number[] = [];
  for (const t of o.tokens) for (let i = t.line; i <= t.endLine; i++) if (!out.includes(i)) out.push(i);
  return out;
}

/** Replace one token's text; for a column (`realign`), the blanks after it shrink or grow to keep the next column. */
function replaceToken(lines: Line[], token: Token, text: string, realign: boolean): void {
  const t = single(token);
  const line = lines[t.line]!;
  const before = line.text.slice(0, t.start);
  let after = line.text.slice(t.end);
  const gap = /^[ \t]*/.exec(after)![0];
  if (realign && gap.length > 0 && !gap.includes('\t') && gap.length < after.length) {
    const width = Math.max(1, gap.length - (text.length - t.text.length));
    after = ' '.repeat(width) + after.slice(gap.length);
  }
  lines[t.line] = { ...line, text: before + text + after };
}

/** Set one of the eight fields of the active entry at line `at`, keeping the columns after it aligned. */
export function setField(doc: MasterCfDocument, at: number, field: FieldName, value: string): MasterCfDocument {
  const e = entryAt(doc, at);
  const token = e.fields[FIELD_NAMES.indexOf(field)];
  if (!token) throw new MasterCfEditError(`line ${at + 1}: the entry has no ${field} field`);
  const lines = doc.lines.slice();
  replaceToken(lines, token, value, true);
  return edited(doc, lines);
}

/** Give an existing option a new value token (`name=value` or `{ name = value }`), in place. */
export function setOptionText(doc: MasterCfDocument, at: number, index: number, text: string): MasterCfDocument {
  const o = entryAt(doc, at).options[index]!;
  const lines = doc.lines.slice();
  if (o.tokens.length === 2) replaceToken(lines, o.tokens[1]!, text, false);
  else replaceToken(lines, o.tokens[0]!, `-o ${text}`, false);
  return edited(doc, lines);
}

/**
 * Remove a run of consecutive tokens of an entry. A continuation line left without tokens goes away; otherwise
 * the tokens are cut with the blanks before them (or after them, for the first token on a line).
 */
function removeTokens(doc: MasterCfDocument, e: MasterCfEntry, span: Token[]): MasterCfDocument {
  const lines = doc.lines.slice();
  const onLine = new Map<number, Token[]>();
  for (const t of span) onLine.set(single(t).line, [...(onLine.get(t.line) ?? []), t]);
  for (const ln of [...onLine.keys()].sort((a, b) => b - a)) {
    const cut = onLine.get(ln)!;
    const all = e.tokens.filter((t) => t.line === ln && t.endLine === ln);
    const first = cut[0]!;
    const last = cut[cut.length - 1]!;
    if (all.length === cut.length && ln !== e.lines[0]) {
      lines.splice(ln, 1);
      continue;
    }
    const prev = all[all.indexOf(first) - 1];
    const next = all[all.indexOf(last) + 1];
    const text = lines[ln]!.text;
    const from = prev ? prev.end : first.start;
    const to = prev ? last.end : next ? next.start : last.end;
    lines[ln] = { ...lines[ln]!, text: text.slice(0, from) + text.slice(to) };
  }
  return edited(doc, lines);
}

/** Remove the entry's option number `index`. */
export function removeOption(doc: MasterCfDocument, at: number, index: number): MasterCfDocument {
  const e = entryAt(doc, at);
  return removeTokens(doc, e, e.options[index]!.tokens);
}

/** Blanks that start the entry's continuation lines (those holding options first), or two spaces. */
function continuationIndent(doc: MasterCfDocument, e: MasterCfEntry): string {
  const cont = e.lines.slice(1).map((i) => doc.lines[i]!.text);
  const optLine = cont.find((t) => /^[ \t]+-o/.test(t));
  const any = optLine ?? cont[0];
  return any ? /^[ \t]*/.exec(any)![0] : '  ';
}

function insertLineAfter(doc: MasterCfDocument, lines: Line[], after: number, text: string): void {
  if (lines[after]!.eol === '') lines[after] = { ...lines[after]!, eol: doc.eol };
  lines.splice(after + 1, 0, { text, eol: doc.eol });
}

/** Insert `text` after token `anchor`: on a new line when the anchor ends its line, else inline after it. */
function insertAfterToken(doc: MasterCfDocument, e: MasterCfEntry, anchor: Token, text: string): MasterCfDocument {
  const lines = doc.lines.slice();
  const endsLine = !e.tokens.some((t) => t.line === anchor.endLine && t.start >= anchor.end);
  if (endsLine) {
    insertLineAfter(doc, lines, anchor.endLine, continuationIndent(doc, e) + text);
  } else {
    const l = lines[anchor.endLine]!;
    lines[anchor.endLine] = { ...l, text: `${l.text.slice(0, anchor.end)} ${text}${l.text.slice(anchor.end)}` };
  }
  return edited(doc, lines);
}

/**
 * Add `-o text` to the entry: after its last option, or, without options, before the first argument that is not
 * a flag (pipe(8) passes everything after `argv=` to the command), else after its last token.
 */
export function addOption(doc: MasterCfDocument, at: number, text: string): MasterCfDocument {
  const e = entryAt(doc, at);
  let anchor: Token;
  if (e.options.length) {
    const lastOpt = e.options[e.options.length - 1]!;
    anchor = lastOpt.tokens[lastOpt.tokens.length - 1]!;
  } else {
    const positional = e.words.find((w) => !w.text.startsWith('-'));
    anchor = positional ? e.tokens[e.tokens.indexOf(positional) - 1]! : e.tokens[e.tokens.length - 1]!;
  }
  return insertAfterToken(doc, e, anchor, `-o ${text}`);
}

/** Replace the command arguments that are not options by `words` (on a continuation line at the entry's end). */
export function setWords(doc: MasterCfDocument, at: number, words: string[]): MasterCfDocument {
  let d = doc;
  for (let e = entryAt(d, at); e.words.length; e = entryAt(d, at)) d = removeTokens(d, e, [e.words[e.words.length - 1]!]);
  if (words.length === 0) return d;
  const e = entryAt(d, at);
  const lines = d.lines.slice();
  const last = e.tokens[e.tokens.length - 1]!;
  insertLineAfter(d, lines, last.endLine, continuationIndent(d, e) + words.join(' '));
  return edited(d, lines);
}

/** Remove the entry's service line and continuation lines; comments between them stay. */
export function removeEntry(doc: MasterCfDocument, at: number): MasterCfDocument {
  const doomed = new Set(entryAt(doc, at).lines);
  return edited(doc, doc.lines.filter((_, i) => !doomed.has(i)));
}

/** A service to add, fields already in master.cf form (`-` for a default). */
export interface NewEntry extends MasterCfFields {
  /** option tokens (`name=value`, `{ name = value }`) */
  options: string[];
  /** other command arguments */
  words: string[];
}

/** The column widths of Postfix's own master.cf (service, type, then five 8-wide columns). */
const WIDTHS = [10, 6, 8, 8, 8, 8, 8];

/** Append a service at the end of the file, in the column layout of Postfix's master.cf. */
export function appendEntry(doc: MasterCfDocument, n: NewEntry): MasterCfDocument {
  const cols = [n.service, n.type, n.private, n.unpriv, n.chroot, n.wakeup, n.maxproc];
  const head = cols.map((c, k) => c + ' '.repeat(Math.max(1, WIDTHS[k]! - c.length))).join('') + n.command;
  const texts = [head, ...n.options.map((o) => `  -o ${o}`)];
  if (n.words.length) texts.push(`  ${n.words.join(' ')}`);
  const lines = doc.lines.slice();
  if (lines.length && lines[lines.length - 1]!.eol === '') lines[lines.length - 1] = { ...lines[lines.length - 1]!, eol: doc.eol };
  lines.push(...texts.map((text): Line => ({ text, eol: doc.eol })));
  return edited(doc, lines);
}

/**
 * Postfix main.cf: parse and print with a byte-exact round trip, and the edits the postconf module makes.
 *
 * Text is handled as latin1 strings, one character per byte, so bytes that are not UTF-8 survive untouched;
 * callers convert user input with `toBinary` and output for people with `fromBinary`.
 *
 * Postfix reads main.cf and master.cf the same way (readllines): a line whose first non-blank character is `#`
 * is a comment, a blank line is ignored, a line that starts with whitespace continues the logical line before
 * it, and comments and blank lines between a line and its continuation do not end the logical line.
 */
import { createHash } from 'node:crypto';

/** How a physical line ends: '' only for a last line without a newline. */
export type Eol = '\n' | '\r\n' | '';

/** One physical line: its text (latin1, without the line end) and its line end. */
export interface Line {
  text: string;
  eol: Eol;
}

/** What a physical line is to Postfix. */
export type LineKind =
  /** empty or whitespace only */
  | 'blank'
  /** first non-blank character is `#` */
  | 'comment'
  /** starts a logical line */
  | 'start'
  /** starts with whitespace and has text: continues the logical line before it */
  | 'continuation';

/** One `name = value` setting with its continuation lines. */
export interface MainCfEntry {
  name: string;
  /** indices into `lines` of the first line and its continuation lines (comments in between are not listed) */
  lines: number[];
  /** the value with continuations folded and whitespace runs collapsed, as Postfix compares and shows it */
  value: string;
}

export interface MainCfDocument {
  lines: Line[];
  /** line end used for new lines: the file's most common one */
  eol: '\n' | '\r\n';
  /** active settings in file order (a name may occur more than once; the last one wins) */
  entries: MainCfEntry[];
}

const SPACE = /[ \t\n\v\f\r]/;

/** Bytes to the latin1 string form the format code works on. */
export function toBinary(text: string): string {
  return Buffer.from(text, 'utf8').toString('latin1');
}

/** The latin1 string form back to readable text (UTF-8 where the bytes are UTF-8). */
export function fromBinary(text: string): string {
  return Buffer.from(text, 'latin1').toString('utf8');
}

export function splitLines(bytes: Buffer): Line[] {
  const s = bytes.toString('latin1');
  const lines: Line[] = [];
  let i = 0;
  while (i < s.length) {
    const nl = s.indexOf('\n', i);
    if (nl < 0) {
      lines.push({ text: s.slice(i), eol: '' });
      break;
    }
    const crlf = nl > i && s[nl - 1] === '\r';
    lines.push({ text: s.slice(i, crlf ? nl - 1 : nl), eol: crlf ? '\r\n' : '\n' });
    i = nl + 1;
  }
  return lines;
}

export function joinLines(lines: readonly Line[]): Buffer {
  return Buffer.from(lines.map((l) => l.text + l.eol).join(''), 'latin1');
}

export function dominantEol(lines: readonly Line[]): '\n' | '\r\n' {
  let crlf = 0;
  let lf = 0;
  for (const l of lines) {
    if (l.eol === '\r\n') crlf++;
    else if (l.eol === '\n') lf++;
  }
  return crlf > lf ? '\r\n' : '\n';
}

export function lineKind(text: string): LineKind {
  let i = 0;
  while (i < text.length && SPACE.test(text[i]!)) i++;
  if (i === text.length) return 'blank';
  if (text[i] === '#') return 'comment';
  return i === 0 ? 'start' : 'continuation';
}

/**
 * Group lines into logical lines: each start line with the continuation lines that follow it, across comments
 * and blank lines. Continuation lines with no start line before them (Postfix warns and ignores them) are left out.
 */
export function logicalLines(lines: readonly Line[]): number[][] {
  const groups: number[][] = [];
  let current: number[] | null = null;
  lines.forEach((line, i) => {
    const kind = lineKind(line.text);
    if (kind === 'start') {
      current = [i];
      groups.push(current);
    } else if (kind === 'continuation' && current) {
      current.push(i);
    }
  });
  return groups;
}

/** Collapse whitespace runs to one space and trim: the form in which two values are compared. */
export function foldValue(value: string): string {
  return value.split(/[ \t\n\v\f\r]+/).filter(Boolean).join(' ');
}

function entryOf(lines: readonly Line[], indices: number[]): MainCfEntry {
  const first = lines[indices[0]!]!.text;
  const name = /^[^=\s]*/.exec(first)![0];
  const eq = first.indexOf('=');
  const head = eq < 0 ? '' : first.slice(eq + 1);
  const value = foldValue([head, ...indices.slice(1).map((i) => lines[i]!.text)].join(' '));
  return { name, lines: indices, value };
}

function build(lines: Line[], eol?: '\n' | '\r\n'): MainCfDocument {
  return {
    lines,
    eol: eol ?? dominantEol(lines),
    entries: logicalLines(lines).map((g) => entryOf(lines, g)),
  };
}

export function parseMainCf(bytes: Buffer): MainCfDocument {
  return build(splitLines(bytes));
}

/** Freeze an object and everything it holds, so a document shared between readers cannot be changed by one. */
export function deepFreeze<T>(v: T): T {
  if (v && typeof v === 'object' && !Object.isFrozen(v)) {
    Object.freeze(v);
    for (const x of Object.values(v)) deepFreeze(x);
  }
  return v;
}

/**
 * `parse`, shared by every reader of the same content: documents are kept by the SHA-256 of the content, least
 * recently used first, at most `max` of them. Each is frozen, to the last token, so no reader can change what
 * another is handed; the edits of main.cf and master.cf never change a document in place (each builds a new one
 * from a copy of the lines), so they work on a shared one as on any other.
 */
export function sharedParser<T>(parse: (bytes: Buffer) => T, max: number): (bytes: Buffer) => T {
  const byContent = new Map<string, T>();
  return (bytes) => {
    const key = createHash('sha256').update(bytes).digest('base64');
    let doc = byContent.get(key);
    if (doc !== undefined) {
      byContent.delete(key);
    } else {
      doc = deepFreeze(parse(bytes));
      if (byContent.size >= max) byContent.delete(byContent.keys().next().value!);
    }
    byContent.set(key, doc);
    return doc;
  };
}

/**
 * `parseMainCf`, parsed once per distinct content (see sharedParser). A run reads the same main.cf several times
 * per host (the values names may be referenced in, for postconf's and master_cf's name checks, master_cf's
 * reference check, postconf's plan). Unlike master.cf, main.cf mostly differs from host to host (myhostname,
 * mydestination), so the cache holds one document for each of many hosts at work at once (50 by default), with
 * room to spare: with fewer places than hosts in flight, every host's first read would push out another's
 * document before its next read.
 */
export const parsedMainCf: (bytes: Buffer) => MainCfDocument = sharedParser(parseMainCf, 256);

export function printMainCf(doc: MainCfDocument): Buffer {
  return joinLines(doc.lines);
}

/** The value Postfix uses for `name` (the last active occurrence), or undefined when the file does not set it. */
export function getParameter(doc: MainCfDocument, name: string): string | undefined {
  const all = doc.entries.filter((e) => e.name === name);
  return all.length ? all[all.length - 1]!.value : undefined;
}

/** What `setParameter` did. */
export interface SetResult {
  doc: MainCfDocument;
  /** the last occurrence was rewritten, a new line was added, or the value was already right */
  action: 'replaced' | 'added' | 'unchanged';
  /** how many earlier occurrences were commented out */
  commentedOut: number;
}

/**
 * Lines for `name = value`. A value with newlines keeps its layout as continuation lines; a continuation line
 * cannot start with `#` (Postfix would read it as a comment), so such a piece joins the line before it.
 */
function renderEntry(head: string, value: string, indent: string): string[] {
  const pieces = value
    .split(/\r?\n/)
    .map((p) => p.trim())
    .filter(Boolean);
  const out: string[] = [];
  for (const p of pieces) {
    if (out.length === 0) out.push(head + p);
    else if (p.startsWith('#')) out[out.length - 1] += ` ${p}`;
    else out.push(indent + p);
  }
  return out.length ? out : [head.trimEnd()];
}

/** `name = ` in the spacing the existing line uses (`name=value` stays without spaces). */
function headOf(existing: string | undefined, name: string): string {
  if (existing === undefined) return `${name} = `;
  const m = /^([^=\s]*)([ \t]*)=([ \t]*)/.exec(existing);
  if (!m) return `${name} = `;
  const after = m[3] || (m[2] ? ' ' : '');
  return `${name}${m[2]}=${after}`;
}

function withEol(lines: Line[], index: number, eol: '\n' | '\r\n'): void {
  if (lines[index] && lines[index]!.eol === '') lines[index] = { ...lines[index]!, eol };
}

/**
 * Where a new line can go after line `index` without taking over continuation lines: if the next logical content
 * is a continuation (of an entry above that spans comments), the new line goes after it instead.
 */
function safeInsertAfter(lines: readonly Line[], index: number): number {
  let at = index;
  for (let i = at + 1; i < lines.length; i++) {
    const kind = lineKind(lines[i]!.text);
    if (kind === 'continuation') at = i;
    else if (kind === 'start') break;
  }
  return at;
}

/** A commented-out setting of `name` (`#name = …`, `# name=…`). */
function isCommentedSetting(text: string, name: string): boolean {
  const m = /^#[ \t]*([^=\s]+)[ \t]*=/.exec(text);
  return m !== null && m[1] === name;
}

/**
 * A commented continuation line of a commented-out setting: `#` then a tab or at least two spaces, then text.
 * A single space after `#` is how prose comments start, so those end the commented setting.
 */
function isCommentedContinuation(text: string): boolean {
  return /^#(\t|[ ]{2,})[ \t]*[^ \t#]/.test(text);
}

/**
 * Make `name` have `value` (latin1 form), the way a careful admin edits main.cf: the last active occurrence is
 * the one Postfix uses, so it is changed in place (keeping its `name = ` spacing) and earlier occurrences are
 * commented out; a new name goes after the last commented-out `#name = …` example when there is one, else at
 * the end. Values are compared folded, so a different layout of the same value is no change.
 */
export function setParameter(doc: MainCfDocument, name: string, value: string): SetResult {
  const all = doc.entries.filter((e) => e.name === name);
  const lines = doc.lines.slice();
  const eol = doc.eol;
  if (all.length === 0) {
    let anchor = -1;
    for (let i = 0; i < lines.length; i++) {
      if (lineKind(lines[i]!.text) === 'comment' && isCommentedSetting(lines[i]!.text, name)) {
        anchor = i;
        while (anchor + 1 < lines.length && isCommentedContinuation(lines[anchor + 1]!.text)) anchor++;
      }
    }
    const fresh = renderEntry(headOf(undefined, name), value, '    ').map((text): Line => ({ text, eol }));
    if (anchor < 0) {
      withEol(lines, lines.length - 1, eol);
      lines.push(...fresh);
    } else {
      const at = safeInsertAfter(lines, anchor);
      withEol(lines, at, eol);
      lines.splice(at + 1, 0, ...fresh);
    }
    return { doc: build(lines, eol), action: 'added', commentedOut: 0 };
  }
  const last = all[all.length - 1]!;
  const earlier = all.slice(0, -1);
  const sameValue = last.value === foldValue(value);
  if (sameValue && earlier.length === 0) return { doc, action: 'unchanged', commentedOut: 0 };
  if (!sameValue) {
    const [first, ...rest] = last.lines;
    const firstLine = lines[first!]!;
    const indent = rest.length ? /^[ \t]*/.exec(lines[rest[0]!]!.text)![0] : '    ';
    const fresh = renderEntry(headOf(firstLine.text, name), value, indent);
    // Continuation lines go first (bottom up, so indices hold); comments between them stay where they were.
    for (const i of rest.slice().reverse()) lines.splice(i, 1);
    // A single line keeps its own line end, so a file without a final newline keeps it that way.
    const lineEol = firstLine.eol || eol;
    const replacement = fresh.map((text, k): Line => ({ text, eol: k === fresh.length - 1 && rest.length === 0 ? firstLine.eol : lineEol }));
    lines.splice(first!, 1, ...replacement);
  }
  for (const e of earlier) {
    for (const i of e.lines) lines[i] = { ...lines[i]!, text: `#${lines[i]!.text}` };
  }
  return { doc: build(lines, eol), action: sameValue ? 'unchanged' : 'replaced', commentedOut: earlier.length };
}

/** Remove every active occurrence of `name` with its continuation lines; comments around them stay. */
export function removeParameter(doc: MainCfDocument, name: string): { doc: MainCfDocument; removed: number } {
  const doomed = new Set(doc.entries.filter((e) => e.name === name).flatMap((e) => e.lines));
  if (doomed.size === 0) return { doc, removed: 0 };
  const removed = doc.entries.filter((e) => e.name === name).length;
  return { doc: build(doc.lines.filter((_, i) => !doomed.has(i)), doc.eol), removed };
}

/**
 * Names a value refers to (`$name`, `${name}`, `${name?text}`, `$(name)`): Postfix counts a parameter defined
 * only in main.cf as used when some value refers to it.
 */
export function referencedNames(text: string): string[] {
  const out: string[] = [];
  const re = /\$(?:\{([A-Za-z0-9_]+)|\(([A-Za-z0-9_]+)|([A-Za-z0-9_]+))/g;
  for (let m = re.exec(text); m; m = re.exec(text)) out.push((m[1] ?? m[2] ?? m[3])!);
  return out;
}

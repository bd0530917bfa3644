/** lineinfile: make sure one line is in a file (or is not), as Ansible's module does. */
import { fileAttrSchema, fileAttrProblem, hostPathProblem, joinLines, planTextEdit, pyRegex, splitLines } from './file-common.js';
import type { ArgsOf, Module } from './module.js';

export type LineinfileArgs = ArgsOf<typeof lineinfileSchema>;

export interface LineEdit {
  text: string;
  changed: boolean;
  msg: string;
}

type Matcher = (line: string) => RegExpExecArray | boolean | null;

/** The pure edit: text in, text out, with the message a user sees. */
export function editLine(text: string, args: LineinfileArgs): LineEdit {
  const { lines, newline, finalNewline } = splitLines(text);
  const state = args.state ?? 'present';
  const regexp = args.regexp !== undefined ? pyRegex(args.regexp, 'regexp') : undefined;
  const match: Matcher | undefined = regexp
    ? (l) => regexp.exec(l)
    : args.search_string !== undefined
      ? (l) => l.includes(args.search_string!)
      : undefined;

  if (state === 'absent') {
    const keep = lines.filter((l) => !(match ? match(l) : l === args.line));
    const removed = lines.length - keep.length;
    if (removed === 0) return { text, changed: false, msg: 'the line is absent' };
    return { text: joinLines(keep, newline, finalNewline || keep.length === 0), changed: true, msg: `${removed} line${removed > 1 ? 's' : ''} removed` };
  }

  const line = args.line!;
  const pick = (indexes: number[]) => (indexes.length === 0 ? -1 : args.firstmatch ? indexes[0]! : indexes.at(-1)!);
  const found = match ? pick(lines.map((l, i) => (match(l) ? i : -1)).filter((i) => i >= 0)) : -1;

  if (found >= 0) {
    let wanted = line;
    if (args.backrefs && regexp) {
      const m = regexp.exec(lines[found]!)!;
      wanted = line.replace(/\\(\d+)|\\g<(\w+)>/g, (_, n: string | undefined, name: string | undefined) => (n !== undefined ? (m[Number(n)] ?? '') : (m.groups?.[name!] ?? '')));
    }
    if (lines[found] === wanted) return { text, changed: false, msg: 'the line is present' };
    const next = [...lines];
    next[found] = wanted;
    return { text: joinLines(next, newline, true), changed: true, msg: 'line replaced' };
  }
  // Nothing matched the regexp: with backrefs there is nothing to rewrite, and a line already present as is
  // needs no second copy.
  if (args.backrefs) return { text, changed: false, msg: 'the regexp matches no line; nothing to rewrite' };
  if (lines.includes(line)) return { text, changed: false, msg: 'the line is present' };

  let at = lines.length;
  if (args.insertbefore === 'BOF') at = 0;
  else if (args.insertbefore !== undefined) {
    const re = pyRegex(args.insertbefore, 'insertbefore');
    const i = pick(lines.map((l, j) => (re.test(l) ? j : -1)).filter((j) => j >= 0));
    if (i >= 0) at = i;
  } else if (args.insertafter !== undefined && args.insertafter !== 'EOF') {
    const re = pyRegex(args.insertafter, 'insertafter');
    const i = pick(lines.map((l, j) => (re.test(l) ? j : -1)).filter((j) => j >= 0));
    if (i >= 0) {
      if (lines[i + 1] === line) return { text, changed: false, msg: 'the line is present' };
      at = i + 1;
    }
  }
  const next = [...lines.slice(0, at), line, ...lines.slice(at)];
  return { text: joinLines(next, newline, true), changed: true, msg: 'line added' };
}

const lineinfileSchema = {
  additionalProperties: false,
  required: ['path'],
  properties: {
    path: { type: 'string', minLength: 1, description: 'File to edit.' },
    line: { type: 'string', description: 'The line that must be present (required with state=present).' },
    regexp: { type: 'string', description: 'Regular expression of the line to replace (or remove); the last match is used.' },
    search_string: { type: 'string', description: 'Literal text of the line to replace (or remove), instead of regexp.' },
    state: { enum: ['present', 'absent'], description: 'present (default) or absent.' },
    insertafter: { type: 'string', description: 'EOF (default) or a regexp: where a new line goes.' },
    insertbefore: { type: 'string', description: 'BOF or a regexp: where a new line goes.' },
    firstmatch: { type: 'boolean', description: 'Use the first match of regexp/insertafter/insertbefore instead of the last.' },
    backrefs: { type: 'boolean', description: 'Expand \\1 in line from regexp; change nothing if regexp does not match.' },
    create: { type: 'boolean', description: 'Create the file if it does not exist.' },
    ...fileAttrSchema,
  },
} as const;

export const lineinfileModule: Module<LineinfileArgs> = {
  name: 'lineinfile',
  aliases: { dest: 'path', destfile: 'path', name: 'path', regex: 'regexp' },
  description: 'Ensure a line is present in (or absent from) a text file, replacing the line a regexp matches.',
  schema: lineinfileSchema,
  check(args) {
    if ((args.state ?? 'present') === 'present' && args.line === undefined) return 'lineinfile needs "line" when state is present';
    if (args.state === 'absent' && args.line === undefined && args.regexp === undefined && args.search_string === undefined) {
      return 'lineinfile needs "line", "regexp" or "search_string" when state is absent';
    }
    if (args.regexp !== undefined && args.search_string !== undefined) return 'use "regexp" or "search_string", not both';
    if (args.insertafter !== undefined && args.insertbefore !== undefined) return 'use "insertafter" or "insertbefore", not both';
    if (args.backrefs && args.regexp === undefined) return '"backrefs" needs "regexp"';
    return hostPathProblem('path', args.path) ?? fileAttrProblem(args);
  },
  reads: (args) => ({ files: [args.path] }),
  plan: (ctx, args) => planTextEdit(ctx, args, (text) => editLine(text, args)),
};

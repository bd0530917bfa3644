/**
 * replace: every match of a Python regular expression in a file (multiline: ^ and $ at each line) replaced, as
 * Ansible's module does, optionally only between `after` and `before`. Python's replacement syntax (\1, \g<name>,
 * \n) is honoured; regular expressions whose Python meaning JavaScript would read differently are refused.
 */
import { fileAttrSchema, modeProblem, planTextEdit } from './file-common.js';
import { type ArgsOf, type Module, ModuleError } from './module.js';

export type ReplaceArgs = ArgsOf<typeof replaceSchema>;

/** A Python pattern as a JavaScript one, or an error for what would silently mean something else. */
export function pythonPattern(source: string, what: string): string {
  if (/\\[AZ]/.test(source.replace(/\\\\/g, ''))) throw new ModuleError(`${what}: \\A and \\Z are not supported yet (use ^ and $)`);
  const inline = /\(\?([aiLmsux]+)\)/.exec(source);
  if (inline) throw new ModuleError(`${what}: inline flags (?${inline[1]}) are not supported yet`);
  return source.replace(/\(\?P</g, '(?<').replace(/\(\?P=(\w+)\)/g, '\\k<$1>');
}

function compile(source: string, flags: string, what: string): RegExp {
  try {
    return new RegExp(pythonPattern(source, what), flags);
  } catch (e) {
    if (e instanceof ModuleError) throw e;
    throw new ModuleError(`${what} ${JSON.stringify(source)} is not a valid regular expression: ${(e as Error).message}`);
  }
}

const ESCAPES: Record<string, string> = { n: '\n', t: '\t', r: '\r', f: '\f', v: '\v', a: '\x07', b: '\b', '\\': '\\' };

/** Python's re.sub template: \1…\99, \g<n>, \g<name>, and the usual escapes, applied to one match. */
export function expandTemplate(template: string, m: RegExpExecArray): string {
  return template.replace(/\\(g<([^>]+)>|\d{1,2}|.)/gs, (whole, esc: string, g: string | undefined) => {
    if (g !== undefined) {
      const v = /^\d+$/.test(g) ? m[Number(g)] : m.groups?.[g];
      if (v === undefined && !(/^\d+$/.test(g) && Number(g) < m.length)) throw new ModuleError(`replace: no group ${g} in regexp`);
      return v ?? '';
    }
    if (/^\d+$/.test(esc)) {
      if (Number(esc) >= m.length) throw new ModuleError(`replace: no group ${esc} in regexp`);
      return m[Number(esc)] ?? '';
    }
    return ESCAPES[esc] ?? whole;
  });
}

/** The pure edit. */
export function editReplace(text: string, args: ReplaceArgs): { text: string; changed: boolean; msg: string } {
  const re = compile(args.regexp, 'gm', 'regexp');
  let start = 0;
  let end = text.length;
  if (args.after !== undefined || args.before !== undefined) {
    // As Ansible: the section lies after the first match of `after` and before the next match of `before`.
    const a = args.after !== undefined ? `(?:${pythonPattern(args.after, 'after')})` : '';
    const b = args.before !== undefined ? `(?:${pythonPattern(args.before, 'before')})` : '';
    const lazy = a && b ? '?' : '';
    const m = compile(`${a}(?<provisionSection>[\\s\\S]*${lazy})${b}`, 'd', 'after/before').exec(text);
    const at = m?.indices?.groups?.provisionSection;
    if (at) [start, end] = at;
  }
  const section = text.slice(start, end);
  let count = 0;
  let out = '';
  let last = 0;
  for (const m of section.matchAll(re)) {
    count++;
    out += section.slice(last, m.index) + expandTemplate(args.replace ?? '', m as RegExpExecArray);
    last = m.index! + m[0].length;
  }
  out = text.slice(0, start) + out + section.slice(last) + text.slice(end);
  if (out === text) return { text, changed: false, msg: count ? `${count} match${count === 1 ? '' : 'es'}, already as wanted` : 'the regexp matches nothing' };
  return { text: out, changed: true, msg: `${count} replacement${count === 1 ? '' : 's'}` };
}

const replaceSchema = {
  additionalProperties: false,
  required: ['path', 'regexp'],
  properties: {
    path: { type: 'string', minLength: 1, description: 'File to edit.' },
    regexp: { type: 'string', minLength: 1, description: 'Python regular expression; ^ and $ match at every line.' },
    replace: { type: 'string', description: 'Replacement (\\1, \\g<name>); default: remove the matches.' },
    after: { type: 'string', description: 'Only replace after the first match of this expression.' },
    before: { type: 'string', description: 'Only replace before this expression.' },
    ...fileAttrSchema,
  },
} as const;

export const replaceModule: Module<ReplaceArgs> = {
  name: 'replace',
  aliases: { dest: 'path', destfile: 'path', name: 'path' },
  description: 'Replace every match of a regular expression in a file (Python syntax, multiline), optionally between after and before.',
  schema: replaceSchema,
  check: (args) => modeProblem(args.mode),
  reads: (args) => ({ files: [args.path] }),
  plan: (ctx, args) => planTextEdit(ctx, args, (text) => editReplace(text, args)),
};

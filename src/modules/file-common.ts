/** What the file-writing modules (copy, template, lineinfile, blockinfile) share: attributes, validate, planning. */
import { sha256 } from '../runner/host-files.js';
import type { ArgsOf, FileChange, FileState, Plan, TaskContext, Validation } from './module.js';
import { ModuleError } from './module.js';

/** Arguments every file-writing module accepts. */
export type FileAttrs = ArgsOf<{ readonly additionalProperties: false; readonly properties: typeof fileAttrSchema }>;

export const fileAttrSchema = {
  mode: {
    description: 'Permissions as an octal string ("0640") or number; default: keep the file\'s, 0644 for a new one.',
    type: ['string', 'integer'],
    pattern: '^0?[0-7]{3,4}$',
    minimum: 0,
    maximum: 4095,
  },
  owner: { type: 'string', minLength: 1, description: 'Owner name; default: keep the file\'s.' },
  group: { type: 'string', minLength: 1, description: 'Group name; default: keep the file\'s.' },
  backup: { type: 'boolean', description: 'Keep a timestamped copy (FILE.YYYY-MM-DD@HH:MM:SS~) of the old file.' },
  validate: { type: 'string', pattern: '%s', description: 'Command that must accept the candidate file (%s is its path), in check mode too.' },
} as const;

/**
 * Strings are octal ("0644"). Playbooks are YAML 1.1 as in Ansible, so `mode: 0644` arrives as the number 420
 * and is used as is; `mode: 644` arrives as decimal 644 (0o1204), a classic mistake, refused with a hint.
 */
export function parseMode(mode: string | number | undefined): number | undefined {
  if (mode === undefined) return undefined;
  if (typeof mode === 'number') {
    if (!Number.isInteger(mode) || mode < 0 || mode > 0o777) {
      throw new ModuleError(`mode ${mode} is read as a decimal number; write it as a string, e.g. mode: "0${mode}"`);
    }
    return mode;
  }
  if (!/^0?[0-7]{3,4}$/.test(mode)) throw new ModuleError(`mode ${JSON.stringify(mode)} is not an octal permission like "0644"`);
  return parseInt(mode, 8);
}

/** A mode argument that cannot be right, found before any host is touched; null when it is fine. */
export function modeProblem(mode: string | number | undefined): string | null {
  try {
    parseMode(mode);
    return null;
  } catch (e) {
    return (e as Error).message;
  }
}

/**
 * A path on the host must be absolute: a relative one depends on the login directory, and one starting with "-"
 * would be read as an option by the commands it reaches (`dest: -tout` made `mv -t out`).
 */
export function hostPathProblem(arg: string, p: string | undefined): string | null {
  if (p === undefined || p.startsWith('/')) return null;
  return `${arg} "${p}" must be an absolute path on the host`;
}

/** The attributes of a file-writing module that cannot be right: a bad mode, an owner or group that is not a name. */
export function fileAttrProblem(args: FileAttrs): string | null {
  for (const k of ['owner', 'group'] as const) {
    const v = args[k];
    if (v !== undefined && (v.startsWith('-') || /[\s:]/.test(v))) return `${k} "${v}" is not a user or group name`;
  }
  return modeProblem(args.mode);
}

export function validationOf(cmd: string | undefined): Validation[] | undefined {
  if (!cmd) return undefined;
  return [{ script: cmd.split('%s').join('"$CANDIDATE"'), description: cmd }];
}

/** Which attributes differ from what the file has now. */
export function attrChanges(state: FileState, attrs: FileAttrs): string[] {
  const out: string[] = [];
  const mode = parseMode(attrs.mode);
  if (mode !== undefined && state.mode !== mode) out.push(`mode ${fmtMode(state.mode)} → ${fmtMode(mode)}`);
  if (attrs.owner && state.owner !== attrs.owner) out.push(`owner ${state.owner} → ${attrs.owner}`);
  if (attrs.group && state.group !== attrs.group) out.push(`group ${state.group} → ${attrs.group}`);
  return out;
}

export function fmtMode(m: number | null): string {
  return m === null ? '-' : `0${m.toString(8).padStart(3, '0')}`;
}

/**
 * The plan for making `path` hold `after` with the given attributes: no change when content and attributes
 * already match; otherwise one FileChange (a changed attribute alone rewrites the same content atomically,
 * which sets the new mode and owner in the same step).
 */
export function planContent(state: FileState, after: Buffer, attrs: FileAttrs, what: { present: string; change: string }): Plan {
  const sameContent = state.exists && state.content !== null && state.content.equals(after);
  const attrs_ = state.exists ? attrChanges(state, attrs) : [];
  if (sameContent && attrs_.length === 0) return { changed: false, msg: what.present };
  const change: FileChange = {
    path: state.path,
    before: state.exists ? state.content : null,
    after,
    beforeSha: state.exists ? (state.sha ?? (state.content ? sha256(state.content) : null)) : null,
    mode: parseMode(attrs.mode),
    owner: attrs.owner,
    group: attrs.group,
    backup: attrs.backup && !sameContent,
    validate: sameContent ? undefined : validationOf(attrs.validate),
  };
  const msg = sameContent ? `${state.path}: ${attrs_.join(', ')}` : what.change;
  return { changed: true, msg, files: [change], commands: [] };
}

/**
 * The plan of a line-based edit of a text file (lineinfile, blockinfile): read, refuse what is not a regular
 * file, create or refuse a missing one, edit the text in the file's own encoding, plan the write.
 */
export async function planTextEdit(
  ctx: TaskContext,
  args: FileAttrs & { path: string; state?: string; create?: boolean },
  edit: (text: string) => { text: string; changed: boolean; msg: string },
): Promise<Plan> {
  const state = await ctx.readFile(args.path);
  requireRegular(state);
  if (!state.exists) {
    if (args.state === 'absent') return { changed: false, msg: `${args.path} does not exist` };
    if (!args.create) throw new ModuleError(`${args.path} does not exist (set create: true to create it)`);
  }
  const { text, encoding } = decodeText(state.content);
  const result = edit(text);
  const after = result.changed ? Buffer.from(result.text, encoding) : (state.content ?? Buffer.alloc(0));
  const msg = `${args.path}: ${result.msg}`;
  return validated(ctx, planContent(state, after, args, { present: msg, change: msg }));
}

/** A plan whose files carry `validate:` gets them checked on the host now, so check mode runs them too. */
export async function validated(ctx: TaskContext, plan: Plan): Promise<Plan> {
  if (plan.changed) await ctx.validate(plan.files);
  return plan;
}

/** Refuse to edit something that is not a regular file. */
export function requireRegular(state: FileState): void {
  if (state.exists && state.kind !== 'file') throw new ModuleError(`${state.path} is a ${state.kind}, not a regular file`);
}

/** Newline used by a file: CRLF when its first line ends so, else LF. */
export function newlineOf(text: string): string {
  const i = text.indexOf('\n');
  return i > 0 && text[i - 1] === '\r' ? '\r\n' : '\n';
}

/** Text of a file for line-based editing: UTF-8 when it is valid UTF-8, else latin1 so every byte survives. */
export function decodeText(b: Buffer | null): { text: string; encoding: BufferEncoding } {
  if (!b) return { text: '', encoding: 'utf8' };
  const utf8 = b.toString('utf8');
  return Buffer.from(utf8, 'utf8').equals(b) ? { text: utf8, encoding: 'utf8' } : { text: b.toString('latin1'), encoding: 'latin1' };
}

/** Python-style regular expressions (what Ansible users write) as JavaScript ones. */
export function pyRegex(source: string, what: string): RegExp {
  const js = source.replace(/\(\?P</g, '(?<').replace(/\(\?P=(\w+)\)/g, '\\k<$1>');
  try {
    return new RegExp(js);
  } catch (e) {
    throw new ModuleError(`${what} ${JSON.stringify(source)} is not a valid regular expression: ${(e as Error).message}`);
  }
}

/** Split text into lines without their endings, remembering whether the last line was terminated. */
export function splitLines(text: string): { lines: string[]; newline: string; finalNewline: boolean } {
  const newline = newlineOf(text);
  if (text === '') return { lines: [], newline, finalNewline: true };
  const finalNewline = text.endsWith('\n');
  const body = finalNewline ? text.slice(0, text.endsWith('\r\n') ? -2 : -1) : text;
  return { lines: body.split(/\r?\n/), newline, finalNewline };
}

/** Join lines back; a file that gained lines always ends with a newline. */
export function joinLines(lines: string[], newline: string, finalNewline: boolean): string {
  if (lines.length === 0) return '';
  return lines.join(newline) + (finalNewline ? newline : '');
}

/** file (attributes, directories, absence, touch) and stat (what a path is, for `register` and `when`). */
import { quote } from '../connection/shell-quote.js';
import { attrChanges, fileAttrSchema, fileAttrProblem, fmtMode, hostPathProblem, parseMode } from './file-common.js';
import { type ArgsOf, type FileState, type Module, ModuleError } from './module.js';

export type FileArgs = ArgsOf<typeof fileSchema>;

/** Paths that `state: absent` must never remove, whatever a template rendered to. */
const PROTECTED = new Set(['/', '/bin', '/boot', '/dev', '/etc', '/home', '/lib', '/proc', '/root', '/sbin', '/sys', '/usr', '/var']);

function attrScript(path: string, args: FileArgs): string[] {
  const lines: string[] = [];
  const mode = parseMode(args.mode);
  if (args.owner || args.group) lines.push(`chown -- ${quote(`${args.owner ?? ''}${args.group ? `:${args.group}` : ''}`)} ${quote(path)}`);
  if (mode !== undefined) lines.push(`chmod ${fmtMode(mode)} -- ${quote(path)}`);
  return lines;
}

const fileSchema = {
  additionalProperties: false,
  required: ['path'],
  properties: {
    path: { type: 'string', minLength: 1, description: 'Path on the host.' },
    state: { enum: ['file', 'directory', 'absent', 'touch'], description: 'file (default: it must exist), directory, absent, or touch.' },
    mode: fileAttrSchema.mode!,
    owner: fileAttrSchema.owner!,
    group: fileAttrSchema.group!,
  },
} as const;

export const fileModule: Module<FileArgs> = {
  name: 'file',
  aliases: { dest: 'path', name: 'path' },
  description: 'Set the mode and owner of a file or directory, create a directory, touch a file, or remove a path.',
  schema: fileSchema,
  check: (args) => hostPathProblem('path', args.path) ?? fileAttrProblem(args),
  reads: (args) => ({ stats: [args.path] }),
  async plan(ctx, args) {
    const want = args.state ?? 'file';
    const st: FileState = await ctx.statFile(args.path);
    const p = args.path.replace(/\/+$/, '') || '/';
    if (want === 'absent') {
      if (PROTECTED.has(p)) throw new ModuleError(`refusing to remove ${p}`);
      if (!st.exists) return { changed: false, msg: `${p} is absent` };
      return { changed: true, msg: `remove ${p}`, files: [], commands: [{ script: `rm -rf -- ${quote(p)}`, description: `remove ${p}`, touches: [p] }] };
    }
    if (want === 'file' && !st.exists) throw new ModuleError(`${p} does not exist (use state: touch to create it)`);
    if (want === 'file' && st.kind === 'directory') throw new ModuleError(`${p} is a directory, not a file`);
    if (want === 'directory' && st.exists && st.kind !== 'directory') throw new ModuleError(`${p} exists and is not a directory`);
    const script: string[] = [];
    const what: string[] = [];
    if (!st.exists) {
      script.push(want === 'directory' ? `mkdir -p -- ${quote(p)}` : `touch -- ${quote(p)}`);
      what.push(want === 'directory' ? `create directory ${p}` : `create ${p}`);
      script.push(...attrScript(p, args));
    } else {
      const diffs = attrChanges(st, args);
      if (diffs.length) {
        script.push(...attrScript(p, args));
        what.push(`${p}: ${diffs.join(', ')}`);
      }
    }
    if (!script.length) return { changed: false, msg: `${p} is a ${st.kind === 'directory' ? 'directory' : 'file'} with the wanted mode and owner` };
    return { changed: true, msg: what.join('; '), files: [], commands: [{ script: `set -e\n${script.join('\n')}`, description: what.join('; '), touches: [p] }] };
  },
};

export type StatArgs = ArgsOf<typeof statSchema>;

const statSchema = {
  additionalProperties: false,
  required: ['path'],
  properties: {
    path: { type: 'string', minLength: 1, description: 'Path on the host.' },
    get_checksum: { type: 'boolean', description: 'Also return the sha256 of a regular file (reads its content).' },
  },
} as const;

export const statModule: Module<StatArgs> = {
  name: 'stat',
  aliases: { dest: 'path', name: 'path' },
  description: 'Tell whether a path exists and what it is (register the result and test it in when/assert).',
  schema: statSchema,
  reads: (args) => (args.get_checksum ? { files: [args.path] } : { stats: [args.path] }),
  async plan(ctx, args) {
    const st = args.get_checksum ? await ctx.readFile(args.path) : await ctx.statFile(args.path);
    const bits = (shift: number) => ((st.mode ?? 0) >> shift) & 7;
    const stat = st.exists
      ? {
          exists: true,
          path: args.path,
          isreg: st.kind === 'file',
          isdir: st.kind === 'directory',
          mode: fmtMode(st.mode),
          uid: st.uid,
          gid: st.gid,
          pw_name: st.owner,
          gr_name: st.group,
          rusr: (bits(6) & 4) > 0, wusr: (bits(6) & 2) > 0, xusr: (bits(6) & 1) > 0,
          rgrp: (bits(3) & 4) > 0, wgrp: (bits(3) & 2) > 0, xgrp: (bits(3) & 1) > 0,
          roth: (bits(0) & 4) > 0, woth: (bits(0) & 2) > 0, xoth: (bits(0) & 1) > 0,
          ...(args.get_checksum && st.sha ? { checksum: st.sha } : {}),
        }
      : { exists: false, path: args.path };
    const msg = st.exists ? `${args.path} is a ${st.kind === 'file' ? 'file' : st.kind} (${fmtMode(st.mode)} ${st.owner}:${st.group})` : `${args.path} does not exist`;
    return { changed: false, msg, data: { stat } };
  },
};

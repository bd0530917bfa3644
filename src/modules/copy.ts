/** copy and template: whole-file content from the playbook (inline, a local file, or a rendered template). */
import { readFileSync, realpathSync, statSync } from 'node:fs';
import path from 'node:path';
import { renderText } from '../playbook/template.js';
import { type FileAttrs, fileAttrSchema, fileAttrProblem, hostPathProblem, planContent, requireRegular, validated } from './file-common.js';
import { type ArgsOf, type Module, ModuleError, type TaskContext } from './module.js';

export type CopyArgs = ArgsOf<typeof copySchema>;

export type TemplateArgs = ArgsOf<typeof templateSchema>;

/** Local files above this size are refused: copy is for configuration files, not for images. */
const MAX_SRC_BYTES = 16 * 1024 * 1024;

/**
 * A `src:` path on the controller, relative to the playbook directory (or its `files/` / `templates/` folder, as in
 * Ansible). It must stay inside the playbook directory, after resolving symlinks, unless the task says otherwise:
 * a playbook from someone else must not be able to ship the controller's ~/.ssh to a host.
 */
export function resolveSource(base: string, src: string, folder: 'files' | 'templates', outsideAllowed: boolean, roleDir?: string): string {
  // A role's own files/ and templates/ come first, as Ansible searches them.
  const inRole = roleDir ? [path.join(roleDir, folder, src), path.join(roleDir, src)] : [];
  const candidates = path.isAbsolute(src) ? [src] : [...inRole, path.join(base, folder, src), path.join(base, src)];
  const found = candidates.find((c) => {
    try {
      return statSync(c).isFile();
    } catch {
      return false;
    }
  });
  if (!found) throw new ModuleError(`source ${src} not found (looked in ${candidates.map((c) => path.relative(process.cwd(), c) || '.').join(', ')})`);
  const real = realpathSync(found);
  const inside = (b: string) => {
    const realBase = realpathSync(b);
    return real === realBase || real.startsWith(realBase + path.sep);
  };
  if (!outsideAllowed && !inside(base) && !(roleDir && inside(roleDir))) {
    throw new ModuleError(`source ${src} is outside the playbook directory; set src_outside_playbook: true to allow it`);
  }
  if (statSync(real).size > MAX_SRC_BYTES) throw new ModuleError(`source ${src} is larger than ${MAX_SRC_BYTES / 1048576} MiB`);
  return real;
}

async function planWrite(ctx: TaskContext, dest: string, after: Buffer, args: FileAttrs & { force?: boolean }, srcName?: string) {
  let state = await ctx.readFile(dest);
  if (state.exists && state.kind === 'directory') {
    if (!srcName) throw new ModuleError(`${dest} is a directory; give a file name`);
    state = await ctx.readFile(path.posix.join(dest, path.basename(srcName)));
  }
  requireRegular(state);
  if (state.exists && args.force === false) return { changed: false as const, msg: `${state.path} exists (force: false)` };
  return validated(
    ctx,
    planContent(state, after, args, {
      present: `${state.path} is up to date`,
      change: state.exists ? `update ${state.path}` : `create ${state.path}`,
    }),
  );
}

const common = {
  dest: { type: 'string', minLength: 1, description: 'Path on the host (a directory takes the source file name).' },
  force: { type: 'boolean', description: 'Replace an existing file whose content differs (default true).' },
  src_outside_playbook: { type: 'boolean', description: 'Allow a src outside the playbook directory.' },
  ...fileAttrSchema,
} as const;

const copySchema = {
  additionalProperties: false,
  required: ['dest'],
  properties: {
    content: { type: 'string', description: 'The file content (templated like any argument).' },
    src: { type: 'string', minLength: 1, description: 'Local file, relative to the playbook (or its files/ folder).' },
    ...common,
  },
} as const;

export const copyModule: Module<CopyArgs> = {
  name: 'copy',
  description: 'Put a file on the host from inline content or a local file.',
  schema: copySchema,
  check(args) {
    if ((args.content === undefined) === (args.src === undefined)) return 'copy needs exactly one of "content" and "src"';
    if (args.dest.endsWith('/') && args.src === undefined) return 'a dest ending in "/" needs src (to name the file)';
    return hostPathProblem('dest', args.dest) ?? fileAttrProblem(args);
  },
  reads: (args) => ({ files: [args.dest.endsWith('/') && args.src ? path.posix.join(args.dest, path.basename(args.src)) : args.dest] }),
  async plan(ctx, args) {
    const bad = copyModule.check!(args);
    if (bad) throw new ModuleError(bad);
    let after: Buffer;
    let dest = args.dest;
    if (args.src !== undefined) {
      after = readFileSync(resolveSource(ctx.playbookDir, args.src, 'files', args.src_outside_playbook === true, ctx.roleDir));
      if (dest.endsWith('/')) dest = path.posix.join(dest, path.basename(args.src));
    } else {
      after = Buffer.from(args.content!);
    }
    return planWrite(ctx, dest, after, args, args.src);
  },
};

const templateSchema = {
  additionalProperties: false,
  required: ['src', 'dest'],
  properties: {
    src: { type: 'string', minLength: 1, description: 'Template file, relative to the playbook (or its templates/ folder).' },
    ...common,
  },
} as const;

export const templateModule: Module<TemplateArgs> = {
  name: 'template',
  description: 'Render a Jinja-style template from the playbook (or its templates/ folder) onto the host.',
  schema: templateSchema,
  check: (args) => hostPathProblem('dest', args.dest) ?? fileAttrProblem(args),
  reads: (args) => ({ files: [args.dest] }),
  async plan(ctx, args) {
    const file = resolveSource(ctx.playbookDir, args.src, 'templates', args.src_outside_playbook === true, ctx.roleDir);
    let rendered: string;
    try {
      rendered = renderText(readFileSync(file, 'utf8'), ctx.vars);
    } catch (e) {
      throw new ModuleError(`template ${args.src}: ${(e as Error).message}`);
    }
    return planWrite(ctx, args.dest, Buffer.from(rendered), args, args.src.replace(/\.j2$/, ''));
  },
};

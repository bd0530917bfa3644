/**
 * include_vars: variables from a YAML file on the controller, for the rest of the play on this host. A relative
 * name is looked up in the role's vars/, beside the task's file, then in the playbook's vars/ and directory.
 */
import { statSync } from 'node:fs';
import path from 'node:path';
import { InputError } from '../errors.js';
import { readYamlFile } from '../playbook/load.js';
import { type Module, ModuleError, type TaskContext } from './module.js';
import type { ArgsOf } from './module.js';

export type IncludeVarsArgs = ArgsOf<typeof includeVarsSchema>;

/** Where a relative vars file is looked for, in order. */
export function varsFileCandidates(ctx: Pick<TaskContext, 'roleDir' | 'taskDir' | 'playbookDir'>, file: string): string[] {
  if (path.isAbsolute(file)) return [file];
  const dirs = [
    ...(ctx.roleDir ? [path.join(ctx.roleDir, 'vars'), ctx.roleDir] : []),
    ...(ctx.taskDir ? [ctx.taskDir, path.join(ctx.taskDir, 'vars')] : []),
    path.join(ctx.playbookDir, 'vars'),
    ctx.playbookDir,
  ];
  return [...new Set(dirs.map((d) => path.join(d, file)))];
}

const includeVarsSchema = {
  additionalProperties: false,
  required: ['file'],
  properties: {
    file: { type: 'string', minLength: 1, description: 'The YAML file (relative: role vars/, the task file\'s directory, the playbook\'s vars/ and directory).' },
    name: { type: 'string', pattern: '^[A-Za-z_][A-Za-z0-9_]*$', description: 'Put the variables under this name.' },
  },
} as const;

export const includeVarsModule: Module<IncludeVarsArgs> = {
  name: 'include_vars',
  description: 'Load variables from a YAML file on the controller (role vars/ first), for the rest of the play.',
  controllerOnly: true,
  freeForm: 'file',
  schema: includeVarsSchema,
  async plan(ctx, args) {
    const candidates = varsFileCandidates(ctx, args.file);
    const found = candidates.find((c) => {
      try {
        return statSync(c).isFile();
      } catch {
        return false;
      }
    });
    if (!found) throw new ModuleError(`vars file ${args.file} not found (looked in ${candidates.join(', ')})`);
    let value: unknown;
    try {
      value = readYamlFile(found, 'vars file', { floats: true }).value;
    } catch (e) {
      throw new ModuleError(e instanceof InputError ? e.message : String(e));
    }
    if (value === null) value = {};
    if (typeof value !== 'object' || Array.isArray(value)) throw new ModuleError(`${found}: a vars file must be a mapping of variables`);
    const vars = args.name ? { [args.name]: value } : (value as Record<string, unknown>);
    return { changed: false, msg: `loaded ${Object.keys(value as object).length} variables from ${path.basename(found)}`, includedVars: vars, data: { ansible_included_var_files: [found] } };
  },
};

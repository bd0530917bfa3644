/**
 * group (ansible.builtin.group): a group present (groupadd, groupmod for its gid) or absent (groupdel), looked up
 * as Ansible's module does (the system's group database: `getent group`, /etc/group and directory groups alike).
 * `local`, `gid_min`/`gid_max` and `force` are refused.
 */
import { quote } from '../connection/shell-quote.js';
import { CommandError } from '../errors.js';
import { type ArgsOf, type Module, type Outcome, type Plan, type TaskContext } from './module.js';

export type GroupArgs = ArgsOf<typeof groupSchema>;

const NAME = /^[A-Za-z_][A-Za-z0-9_.-]*\$?$/;

/** A `getent group` line: name, gid; null when the output has none. */
export function parseGroup(out: string): { name: string; gid: number } | null {
  const f = out.split('\n')[0]?.split(':') ?? [];
  if (f.length < 4 || !/^\d+$/.test(f[2]!)) return null;
  return { name: f[0]!, gid: Number(f[2]) };
}

export function groupRead(name: string): { key: string; script: string } {
  // getent exits 2 when the group is not there.
  return { key: `group:${name}`, script: `getent group ${quote(name)}; exit 0` };
}

const groupSchema = {
  additionalProperties: false,
  required: ['name'],
  properties: {
    name: { type: 'string', minLength: 1, description: 'The group.' },
    state: { enum: ['present', 'absent'], description: 'present (default) or absent.' },
    gid: { type: 'integer', minimum: 0, description: 'Its group id (changed with groupmod when it differs).' },
    system: { type: 'boolean', description: 'Create it as a system group (groupadd -r).' },
    non_unique: { type: 'boolean', description: 'Allow a gid another group has (-o); needs gid.' },
  },
} as const;

export const groupModule: Module<GroupArgs> = {
  name: 'group',
  description: 'A group present (groupadd; groupmod for its gid) or absent (groupdel), as Ansible\'s group module does.',
  schema: groupSchema,
  check(args) {
    if (!NAME.test(args.name)) return `"${args.name}" is not a group name`;
    if (args.non_unique && args.gid === undefined) return 'non_unique needs gid';
    return null;
  },
  reads: (args) => ({ commands: [groupRead(args.name)] }),
  async plan(ctx: TaskContext, args: GroupArgs): Promise<Plan> {
    const read = groupRead(args.name);
    const now = parseGroup((await ctx.readCommand(read.key, read.script)).stdout.toString());
    const data = (gid: number | undefined) => ({ name: args.name, state: args.state ?? 'present', ...(gid !== undefined ? { gid } : {}), system: args.system ?? false });
    const n = quote(args.name);
    if ((args.state ?? 'present') === 'absent') {
      if (!now) return { changed: false, msg: `group ${args.name} does not exist`, data: data(undefined) };
      return { changed: true, msg: `remove group ${args.name} (gid ${now.gid})`, files: [], commands: [{ script: `groupdel ${n}`, description: `groupdel ${args.name}` }], data: data(now.gid) };
    }
    const gidOpt = args.gid !== undefined ? ` -g ${args.gid}${args.non_unique ? ' -o' : ''}` : '';
    if (!now) {
      const cmd = `groupadd${gidOpt}${args.system ? ' -r' : ''} ${n}`;
      return { changed: true, msg: `add group ${args.name}${args.gid !== undefined ? ` with gid ${args.gid}` : ''}${args.system ? ' (system)' : ''}`, files: [], commands: [{ script: cmd, description: cmd }], data: data(args.gid) };
    }
    if (args.gid !== undefined && args.gid !== now.gid) {
      const cmd = `groupmod${gidOpt} ${n}`;
      return { changed: true, msg: `change the gid of group ${args.name} from ${now.gid} to ${args.gid}`, files: [], commands: [{ script: cmd, description: cmd }], data: data(args.gid) };
    }
    // `system` only decides how a new group is made, as in Ansible.
    return { changed: false, msg: `group ${args.name} exists (gid ${now.gid})`, data: data(now.gid) };
  },
  async apply(ctx: TaskContext, plan: Extract<Plan, { changed: true }>): Promise<Outcome> {
    for (const c of plan.commands) {
      const r = await ctx.run(c.script);
      if (r.code !== 0) throw new CommandError(ctx.host, c.description, r.code, r.stdout.toString(), r.stderr.toString());
    }
    return { changed: true, msg: plan.msg.replace(/^add /, 'added ').replace(/^remove /, 'removed ').replace(/^change /, 'changed '), data: plan.data };
  },
};

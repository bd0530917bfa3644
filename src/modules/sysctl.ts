/**
 * sysctl (ansible.posix.sysctl): a kernel parameter in a sysctl file (/etc/sysctl.conf by default) and, with
 * `reload` (default) or `sysctl_set`, in the running kernel. It decides and rewrites the file as Ansible's module
 * does: the file's lines come back stripped, every `key = value` line is written `key=value`, a key written twice
 * keeps its first line only, a new key goes at the end; the file is compared by the key's last value, the
 * kernel's value word by word. A change reloads the file with `sysctl -p FILE` (`-e` with ignoreerrors).
 */
import { quote } from '../connection/shell-quote.js';
import { CommandError } from '../errors.js';
import { hostPathProblem, planContent } from './file-common.js';
import { type ArgsOf, type FileChange, type Module, ModuleError, type Outcome, type Plan, type RemoteCommand, type TaskContext } from './module.js';

export type SysctlArgs = ArgsOf<typeof sysctlSchema>;

const DEFAULT_FILE = '/etc/sysctl.conf';
/** What a kernel parameter's name may hold (it reaches a command line, and no option starts with a letter). */
const NAME = /^[A-Za-z0-9_][A-Za-z0-9_.\/*-]*$/;
/** Values Ansible reads as booleans (as strings, compared in lower case). */
const TRUE = new Set(['y', 'yes', 'on', '1', 'true', 't']);
const FALSE = new Set(['n', 'no', 'off', '0', 'false', 'f']);
/** sysctl -p exits 0 for these, Ansible's module fails on them. */
const STDERR_FAILURE = /^sysctl: setting key "[^"]+": (Invalid argument|Read-only file system)$/m;

/** The value as Ansible's module writes it: its argument is a string, booleans become 1 or 0, spaces trimmed. */
export function sysctlValue(v: SysctlArgs['value']): string {
  if (v === undefined) return '';
  // Ansible's argument type is str: YAML true arrives as "True".
  const s = typeof v === 'boolean' ? (v ? 'True' : 'False') : String(v);
  if (TRUE.has(s.toLowerCase())) return '1';
  if (FALSE.has(s.toLowerCase())) return '0';
  return s.trim();
}

/** Values compared as Ansible does: word by word, whitespace of any kind and amount between them. */
export function sameValue(a: string | null, b: string): boolean {
  if (a === null) return false;
  const x = a.split(/\s+/).filter(Boolean);
  const y = b.split(/\s+/).filter(Boolean);
  return x.length === y.length && x.every((w, i) => w === y[i]);
}

/** A key=value line (not blank, not a # or ; comment, with an =): its key and value, trimmed. */
function keyValue(line: string): [string, string] | null {
  if (!line || line.startsWith('#') || line.startsWith(';') || !line.includes('=')) return null;
  const at = line.indexOf('=');
  return [line.slice(0, at).trim(), line.slice(at + 1).trim()];
}

export interface SysctlEdit {
  /** the key's value in the file (its last line), null when absent */
  fileValue: string | null;
  /** the file as the module would write it */
  text: string;
}

/** The file's text rewritten for the task, and what the file says now. Pure. */
export function editSysctl(text: string, name: string, value: string, state: 'present' | 'absent'): SysctlEdit {
  // Python's readlines() then strip(): a last line without a newline is a line too.
  const lines = text === '' ? [] : text.replace(/\n$/, '').split('\n').map((l) => l.trim());
  let fileValue: string | null = null;
  const out: string[] = [];
  const seen = new Set<string>();
  for (const line of lines) {
    const kv = keyValue(line);
    if (!kv) {
      out.push(line);
      continue;
    }
    const [k, v] = kv;
    if (k === name) fileValue = v;
    if (seen.has(k)) continue;
    seen.add(k);
    if (k !== name) out.push(`${k}=${v}`);
    else if (state === 'present') out.push(`${k}=${value}`);
  }
  if (!seen.has(name) && state === 'present') out.push(`${name}=${value}`);
  return { fileValue, text: out.map((l) => `${l}\n`).join('') };
}

/** The read of the running kernel's value, as Ansible's module asks it. */
export function currentValueCommand(name: string): { key: string; script: string } {
  return { key: `sysctl:${name}`, script: `LC_ALL=C sysctl -e -n ${quote(name)}` };
}

interface SysctlPlanData {
  set: RemoteCommand | null;
  reload: RemoteCommand | null;
}

const sysctlSchema = {
  additionalProperties: false,
  required: ['name'],
  properties: {
    name: { type: 'string', minLength: 1, description: 'The parameter, e.g. net.ipv4.ip_forward.' },
    value: { type: ['string', 'number', 'boolean'], description: 'Its value (required with state present); yes/no become 1/0.' },
    state: { enum: ['present', 'absent'], description: 'present (default) or absent from the file.' },
    reload: { type: 'boolean', description: 'After a change, load the file with sysctl -p (default true).' },
    sysctl_file: { type: 'string', minLength: 1, description: 'The file to edit (default /etc/sysctl.conf).' },
    sysctl_set: { type: 'boolean', description: 'Also set the running value with sysctl -w when it differs (default false).' },
    ignoreerrors: { type: 'boolean', description: 'Reload with sysctl -e: unknown keys are not errors (default false).' },
  },
} as const;

export const sysctlModule: Module<SysctlArgs> = {
  name: 'sysctl',
  description: 'A kernel parameter in a sysctl file and the running kernel, as ansible.posix.sysctl does it.',
  aliases: { key: 'name', val: 'value' },
  schema: sysctlSchema,
  check(args) {
    const name = args.name.trim();
    if (!NAME.test(name)) return `"${args.name}" is not a kernel parameter name`;
    if ((args.state ?? 'present') === 'present' && args.value === undefined) return 'sysctl needs "value" when state is present';
    return hostPathProblem('sysctl_file', args.sysctl_file ?? DEFAULT_FILE);
  },
  reads: (args) => ({ files: [args.sysctl_file ?? DEFAULT_FILE], commands: [currentValueCommand(args.name.trim())] }),
  async plan(ctx: TaskContext, args: SysctlArgs): Promise<Plan> {
    const name = args.name.trim();
    const value = sysctlValue(args.value);
    const state = args.state ?? 'present';
    const file = args.sysctl_file ?? DEFAULT_FILE;
    const reload = args.reload ?? true;
    const st = await ctx.readFile(file);
    if (st.exists && st.kind !== 'file') throw new ModuleError(`${file} is a ${st.kind}, not a regular file`);
    const cur = await ctx.readCommand(currentValueCommand(name).key, currentValueCommand(name).script);
    // Ansible's module reads "no value" when sysctl fails, and compares the output as printed.
    const proc = cur.code === 0 ? cur.stdout.toString() : null;
    const edit = editSysctl(st.content?.toString('utf8') ?? '', name, value, state);

    // The decision, step for step as the module makes it.
    let changed = false;
    let write = false;
    let setProc = false;
    if (edit.fileValue === null && state === 'present') changed = write = true;
    else if (edit.fileValue === null) changed = false;
    else if (edit.fileValue !== '' && state === 'absent') changed = write = true;
    else if (edit.fileValue !== value) changed = write = true;
    else if (reload && !sameValue(proc, value)) changed = true;
    if (args.sysctl_set && state === 'present' && !sameValue(proc, value)) {
      changed = true;
      setProc = proc !== null;
    }

    const where = `${name} in ${file}`;
    if (!changed) {
      return { changed: false, msg: state === 'absent' ? `${where} is absent` : `${where} is ${value}${reload || args.sysctl_set ? ', and the running kernel has it' : ''}` };
    }
    const files: FileChange[] = [];
    if (write) {
      const p = planContent(st, Buffer.from(edit.text, 'utf8'), st.exists ? {} : { mode: '0644' }, { present: '', change: '' });
      if (p.changed) files.push(...p.files);
    }
    const data: SysctlPlanData = {
      set: setProc ? { script: `LC_ALL=C sysctl -w ${quote(`${name}=${value}`)}`, description: `sysctl -w ${name}=${value}` } : null,
      reload: reload ? { script: `LC_ALL=C sysctl${args.ignoreerrors ? ' -e' : ''} -p ${quote(file)}`, description: `sysctl -p ${file}` } : null,
    };
    const what = [
      write ? (state === 'absent' ? `remove ${where}` : `set ${where} to ${value}${edit.fileValue !== null ? ` (was ${edit.fileValue})` : ''}`) : '',
      data.set ? `set the running ${name} to ${value}${proc !== null ? ` (is ${proc.trim()})` : ''}` : '',
      data.reload ? `reload ${file}${!write && !data.set ? ` (the running ${name} is ${proc === null ? 'unknown' : proc.trim()})` : ''}` : '',
    ].filter(Boolean);
    return {
      changed: true,
      msg: what.join('; '),
      files,
      commands: [data.set, data.reload].filter((c): c is RemoteCommand => c !== null),
      data: { name, value, sysctl_file: file },
    };
  },
  // The module's order: the running value first, then the file, then the reload.
  async apply(ctx: TaskContext, plan: Extract<Plan, { changed: true }>): Promise<Outcome> {
    const set = plan.commands.find((c) => c.script.includes(' -w '));
    const reload = plan.commands.find((c) => c.script.includes(' -p '));
    if (set) {
      const r = await ctx.run(set.script);
      if (r.code !== 0) throw new CommandError(ctx.host, set.description, r.code, r.stdout.toString(), r.stderr.toString());
    }
    if (plan.files.length) await ctx.writeFiles(plan.files);
    if (reload) {
      const r = await ctx.run(reload.script);
      const err = r.stderr.toString();
      if (r.code !== 0 || STDERR_FAILURE.test(err)) throw new ModuleError(`Failed to reload sysctl: ${r.stdout.toString()}${err}`.trim());
    }
    return { changed: true, msg: plan.msg, data: plan.data };
  },
};

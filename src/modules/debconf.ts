/**
 * debconf (ansible.builtin.debconf): one answer in a Debian host's debconf database, read with `debconf-show`
 * (as Ansible's module reads it) and set with `debconf-set-selections` (the line on its standard input, never on a
 * command line). Without a question it only reports the package's answers. A password question's answer, which
 * debconf-show leaves out, is read from the database itself, so a password already set is "ok" as in Ansible 2.16
 * and later (2.14 reports it changed every time); password answers are never shown, in messages or results.
 * Only Debian-family hosts have debconf: on any other the task fails, naming the host's family.
 */
import { pipedInto, quote } from '../connection/shell-quote.js';
import { CommandError } from '../errors.js';
import { str } from '../playbook/template/python.js';
import { type ArgsOf, type Module, ModuleError, type Outcome, type Plan, type TaskContext } from './module.js';

export type DebconfArgs = ArgsOf<typeof debconfSchema>;

/** A Debian package name (debconf questions are owned by packages). */
const PACKAGE = /^[a-z0-9][a-z0-9+.-]*$/;
/** A question's name: owner/name, no blanks (debconf-set-selections splits its line at whitespace). */
const QUESTION = /^[^\s/][^\s]*$/;
const HIDDEN = '********';
const MARK = '@@PV-DEBCONF';

const debconfSchema = {
  additionalProperties: false,
  required: ['name'],
  properties: {
    name: { type: 'string', minLength: 1, description: 'The package whose answers these are (alias: pkg).' },
    question: { type: 'string', minLength: 1, description: 'The question, e.g. postfix/main_mailer_type (aliases: selection, setting).' },
    vtype: {
      enum: ['boolean', 'error', 'multiselect', 'note', 'password', 'seen', 'select', 'string', 'text', 'title'],
      description: 'The type of the answer.',
    },
    value: { type: ['string', 'number', 'boolean'], description: 'The answer (alias: answer); a password is never shown.' },
    unseen: { type: 'boolean', description: 'Do not mark the question seen (debconf-set-selections -u).' },
  },
} as const;

/** `debconf-show` output as Ansible's module reads it: question → answer, both stripped, the seen mark dropped. */
export function parseDebconfShow(out: string): Map<string, string> {
  const m = new Map<string, string>();
  for (const line of out.split(/\r\n|\r|\n/)) {
    if (line === '') continue;
    const at = line.indexOf(':');
    if (at < 0) continue;
    m.set(line.slice(0, at).replace(/^\*+|\*+$/g, '').trim(), line.slice(at + 1).trim());
  }
  return m;
}

/** The answer as Ansible passes it: its argument type is str (YAML true is "True"), booleans written lower case. */
export function debconfValue(vtype: string, v: DebconfArgs['value']): string {
  const s = str(v);
  if (vtype === 'boolean' && (s === 'True' || s === 'False')) return s.toLowerCase();
  return s;
}

/**
 * The read: debconf-show's listing, then, for a password question, its answer from the database (what
 * debconf-get-selections would print), in base64 so no byte of it can be taken for a line of the listing.
 */
export function debconfReadScript(pkg: string, question: string | undefined, password: boolean): string {
  const lines = [
    'command -v debconf-show >/dev/null 2>&1 || { echo "Failed to find required executable debconf-show" >&2; exit 127; }',
    `debconf-show ${quote(pkg)} || exit $?`,
  ];
  if (password && question !== undefined) {
    const perl = [
      'use Debconf::Db; use Debconf::Question; use MIME::Base64;',
      'Debconf::Db->load(readonly => "true");',
      'my $q = Debconf::Question->get($ARGV[0]);',
      'print defined $q && defined $q->value ? "set " . encode_base64($q->value, "") : "unset", "\\n";',
    ].join(' ');
    lines.push(`printf '%s\\n' '${MARK}'`, `perl -e ${quote(perl)} -- ${quote(question)} || exit $?`);
  }
  return lines.join('\n');
}

interface Read {
  selections: Map<string, string>;
  /** the password answer in the database: undefined when not read, null when the question has none */
  password?: string | null;
}

function parseRead(out: string): Read {
  const at = out.lastIndexOf(`${MARK}\n`);
  if (at < 0) return { selections: parseDebconfShow(out) };
  const tail = out.slice(at + MARK.length + 1).trim();
  const password = tail.startsWith('set ') ? Buffer.from(tail.slice(4), 'base64').toString('utf8') : null;
  return { selections: parseDebconfShow(out.slice(0, at)), password };
}

function readOf(args: DebconfArgs): { key: string; script: string } {
  const password = args.vtype === 'password';
  return { key: `debconf:${args.name}${password ? `:${args.question}` : ''}`, script: debconfReadScript(args.name, args.question, password) };
}

export const debconfModule: Module<DebconfArgs> = {
  name: 'debconf',
  description: 'One answer in a Debian host\'s debconf database (debconf-set-selections), compared with what debconf-show reports.',
  schema: debconfSchema,
  aliases: { pkg: 'name', selection: 'question', setting: 'question', answer: 'value' },
  check(args) {
    if (!PACKAGE.test(args.name)) return `"${args.name}" is not a package name`;
    const given = [args.question, args.vtype, args.value].filter((x) => x !== undefined).length;
    if (given > 0 && given < 3) return 'parameters are required together: question, vtype, value';
    if (args.question !== undefined && !QUESTION.test(args.question)) return `"${args.question}" is not a debconf question`;
    if (args.value !== undefined && /[\r\n]/.test(str(args.value))) return 'value cannot hold a line break (debconf-set-selections reads one line per answer)';
    return null;
  },
  reads: (args) => ({ commands: [readOf(args)] }),
  async plan(ctx: TaskContext, args: DebconfArgs): Promise<Plan> {
    if (ctx.facts.os_family !== 'Debian') {
      throw new ModuleError(`debconf: ${ctx.host} is not a Debian-family host (os family ${ctx.facts.os_family}): it has no debconf database`);
    }
    const read = readOf(args);
    const r = await ctx.readCommand(read.key, read.script);
    if (r.code !== 0) throw new ModuleError(r.stderr.toString().trim() || `debconf-show ${args.name} exited ${r.code}`);
    const { selections, password } = parseRead(r.stdout.toString());
    const q = args.question;
    if (q === undefined || args.vtype === undefined || args.value === undefined) {
      return { changed: false, msg: `${selections.size} answer${selections.size === 1 ? '' : 's'} for ${args.name}`, data: { current: Object.fromEntries(selections) } };
    }
    const vtype = args.vtype;
    const value = debconfValue(vtype, args.value);
    const secret = vtype === 'password';
    const has = selections.has(q);
    let existing = selections.get(q) ?? '';
    if (secret && password !== undefined) existing = password ?? '';
    const same = has && (vtype === 'boolean' ? existing.toLowerCase() === value.toLowerCase() : existing === value);
    const see = (v: string) => (secret ? HIDDEN : JSON.stringify(v));
    // debconf-show already leaves a password out ("(password omitted)").
    if (same) return { changed: false, msg: `${q} is ${see(value)}`, data: { current: Object.fromEntries(selections) } };
    // As Ansible's module returns it: the old answer, or every answer of the package and this one as "".
    const previous = has ? { [q]: secret ? HIDDEN : existing } : { ...Object.fromEntries(selections), [q]: '' };
    const line = `${args.name} ${q} ${vtype} ${value}`;
    const cmd = `debconf-set-selections${args.unseen ? ' -u' : ''}`;
    return {
      changed: true,
      msg: `set ${q} (${vtype}) to ${see(value)}${has ? ` (was ${secret ? HIDDEN : JSON.stringify(existing)})` : ''}`,
      files: [],
      commands: [{ script: pipedInto(`${line}\n`, cmd), description: `${cmd} (${args.name} ${q} ${vtype} ${secret ? HIDDEN : value})` }],
      data: { current: { [q]: secret ? HIDDEN : value }, previous },
    };
  },
  async apply(ctx: TaskContext, plan: Extract<Plan, { changed: true }>): Promise<Outcome> {
    const c = plan.commands[0]!;
    const r = await ctx.run(c.script);
    if (r.code !== 0) throw new CommandError(ctx.host, c.description, r.code, r.stdout.toString(), r.stderr.toString());
    return { changed: true, msg: plan.msg, data: { ...plan.data, ...(r.stdout.length ? { stdout: r.stdout.toString() } : {}) } };
  },
};

/**
 * master_cf: make one master.cf service look as asked, editing in place like a careful admin: an active entry is
 * updated, else its commented-out template is uncommented (with its command arguments and the `-o` lines the task
 * names; its other `-o` lines stay comments), else a new entry is appended.
 * `smtps`, `submissions` and `465` are one listener (as are the other names of Postfix's known_tcp_ports), so asking
 * for one of them never adds a second listener on 465.
 */
import { foldValue, fromBinary, parsedMainCf, referencedNames, toBinary } from '../formats/main-cf.js';
import {
  FIELD_NAMES,
  type FieldName,
  type MasterCfDocument,
  type MasterCfEntry,
  type MasterCfFields,
  type MasterCfOption,
  MasterCfEditError,
  addOption,
  appendEntry,
  entryAt,
  formatOption,
  optionLines,
  parsedMasterCf,
  printMasterCf,
  removeEntry,
  removeOption,
  setField,
  setOptionText,
  setWords,
  splitService,
  uncommentEntry,
  SERVICE_TYPES,
} from '../formats/master-cf.js';
import { hostPathProblem } from './file-common.js';
import { type FileChange, type FileState, type Module, ModuleError, type TaskContext, type Validation } from './module.js';
import type { ArgsOf } from './module.js';
import { checkAskedNames, contentOf, mainValues, postfixReads, readPostfixFiles } from './postfix-common.js';
import { builtinNames, postconfValidation, postfixVersion, renderValue, versionAtLeast } from './postfix-names.js';

export { splitService };

type Flag = 'y' | 'n' | '-' | boolean;
export type OptionValue = string | number | boolean | null;

export type MasterCfArgs = ArgsOf<typeof masterCfSchema>;

/** Postfix's default known_tcp_ports (3.6+): names that are the same TCP listener as a port number. */
const KNOWN_TCP_PORTS = new Map([
  ['lmtp', '24'],
  ['smtp', '25'],
  ['smtps', '465'],
  ['submissions', '465'],
  ['submission', '587'],
]);

const joinService = (host: string, port: string) => (host ? `${host}:${port}` : port);

/** The port an inet service name stands for when Postfix knows it by default, else the name itself. */
export function listenerPort(port: string): string {
  return /^[0-9]+$/.test(port) ? port : (KNOWN_TCP_PORTS.get(port) ?? port);
}

/** TCP service names /etc/services maps to each port. */
export function parseServices(text: string): Map<string, string> {
  const out = new Map<string, string>();
  for (const raw of text.split('\n')) {
    const words = raw.replace(/#.*/, '').trim().split(/\s+/);
    const m = /^([0-9]+)\/tcp$/.exec(words[1] ?? '');
    if (!m) continue;
    for (const name of [words[0]!, ...words.slice(2)]) if (!out.has(name)) out.set(name, m[1]!);
  }
  return out;
}

const flag = (v: Flag | undefined): string | undefined => (v === undefined ? undefined : v === true ? 'y' : v === false ? 'n' : v);

/**
 * How well entry `e` matches the asked service: 3 same name, 2 same listener and host, 1 same listener where one
 * side listens on every address; 0 no match. Only inet services have listeners.
 */
function matchRank(e: MasterCfEntry, service: string, type: string): number {
  if (e.type !== type) return 0;
  if (e.service === service) return 3;
  if (type !== 'inet') return 0;
  const a = splitService(e.service);
  const b = splitService(service);
  if (listenerPort(a.port) !== listenerPort(b.port)) return 0;
  if (a.host === b.host) return 2;
  return a.host === '' || b.host === '' ? 1 : 0;
}

function best(entries: MasterCfEntry[], service: string, type: string): MasterCfEntry | undefined {
  let found: MasterCfEntry | undefined;
  let rank = 0;
  for (const e of entries) {
    const r = matchRank(e, service, type);
    if (r > rank) {
      found = e;
      rank = r;
    }
  }
  return found;
}

/** What Postfix sees of an entry: fields and arguments, without layout. */
const signature = (e: MasterCfEntry) => e.tokens.map((t) => t.text).join(' ');

/** The fields after service and type: each is set by the argument of the same name. */
const FIELD_ARGS = FIELD_NAMES.slice(2) as Exclude<FieldName, 'service' | 'type'>[];

function wantedField(args: MasterCfArgs, key: (typeof FIELD_ARGS)[number]): string | undefined {
  const v = args[key];
  if (v === undefined) return undefined;
  if (key === 'private' || key === 'unpriv' || key === 'chroot') return flag(v as Flag);
  return toBinary(String(v));
}

function wantedOptions(args: MasterCfArgs, version: string): [string, string][] {
  return Object.entries(args.options ?? {}).map(([name, v]) => {
    const value = toBinary(renderValue(v));
    if (/[\r\n]/.test(value)) throw new ModuleError(`option ${name}: a master.cf value must be on one line`);
    if (/[ \t]/.test(value)) {
      if (!versionAtLeast(version, 3, 0)) {
        throw new ModuleError(`option ${name}: a value with spaces needs Postfix 3.0 or later (-o { name = value }); this host has ${version}`);
      }
      if (/[{}]/.test(value)) throw new ModuleError(`option ${name}: a value with spaces cannot contain { or }`);
    }
    return [name, value];
  });
}

/**
 * On Postfix before 3.6, master(8) resolves an inet service name through /etc/services: keep `name` when the host
 * maps it to its port, else use the port number.
 */
function resolvable(port: string, services: Map<string, string> | null): string {
  const number = KNOWN_TCP_PORTS.get(port);
  if (!number) return port;
  return services?.get(port) === number ? port : number;
}

const describeOption = (name: string, value: string) => `-o ${fromBinary(formatOption(name, value))}`;

interface Edit {
  doc: MasterCfDocument;
  /** line index of the entry's service line */
  at: number;
  changes: string[];
}

/** Make the entry at `at` (active, or a template to uncomment) match the task. */
function editEntry(doc: MasterCfDocument, at: number, name: string, args: MasterCfArgs, options: [string, string][]): Edit {
  const notes: string[] = [];
  const changes: string[] = [];
  let d = doc;
  const template = entryAt(d, at);
  if (template.commented) {
    // The template's service line and its command arguments make the service; of its -o lines only those the task
    // names are uncommented. The others (restrictions naming $mua_* parameters stock main.cf files lack, a milter
    // macro) would change what the listener does without being asked, so they stay comments for the admin to see.
    const asked = new Set(options.map(([n]) => n));
    const lastAsked = new Map<string, MasterCfOption>();
    for (const o of template.options) if (asked.has(o.name)) lastAsked.set(o.name, o);
    const take = new Set<number>();
    for (const w of template.words) for (let i = w.line; i <= w.endLine; i++) take.add(i);
    for (const o of lastAsked.values()) for (const i of optionLines(o)) take.add(i);
    d = uncommentEntry(d, at, take);
    changes.push(`uncomment the template at line ${at + 1}`);
    // an option the task does not name that shares a line with what had to be uncommented is left out
    const opts = entryAt(d, at).options;
    for (let i = opts.length - 1; i >= 0; i--) {
      if (asked.has(opts[i]!.name)) continue;
      changes.push(`leave out the template's ${describeOption(opts[i]!.name, opts[i]!.value)}`);
      d = removeOption(d, at, i);
    }
    const kept = template.options.filter((o) => !optionLines(o).some((i) => take.has(i)));
    if (kept.length) {
      const names = [...new Set(kept.map((o) => fromBinary(o.name)))];
      notes.push(names.length > 1 ? `the template's -o lines for ${names.join(', ')} stay commented` : `the template's -o ${names[0]} stays commented`);
    }
  }
  const fields: [FieldName, string | undefined][] = [['service', name], ...FIELD_ARGS.map((f): [FieldName, string | undefined] => [f, wantedField(args, f)])];
  for (const [field, value] of fields) {
    const old = entryAt(d, at)[field];
    if (value === undefined || value === old) continue;
    d = setField(d, at, field, value);
    changes.push(`${field} ${fromBinary(old)} → ${fromBinary(value)}`);
  }
  const missing: [string, string][] = [];
  for (const [oname, value] of options) {
    const idx = entryAt(d, at).options.flatMap((o, i) => (o.name === oname ? [i] : []));
    if (idx.length === 0) {
      missing.push([oname, value]);
      continue;
    }
    const last = entryAt(d, at).options[idx[idx.length - 1]!]!;
    if (foldValue(last.value) !== foldValue(value)) {
      d = setOptionText(d, at, idx[idx.length - 1]!, formatOption(oname, value));
      changes.push(`${describeOption(oname, value)} (was ${fromBinary(last.value) || 'empty'})`);
    }
    // getopt lets the last -o win; earlier ones would only mislead a reader
    for (const i of idx.slice(0, -1).reverse()) {
      d = removeOption(d, at, i);
      changes.push(`remove the earlier -o ${oname}`);
    }
  }
  for (const [oname, value] of missing) {
    d = addOption(d, at, formatOption(oname, value));
    changes.push(`add ${describeOption(oname, value)}`);
  }
  if (args.options_exact) {
    const keep = new Set(options.map(([n]) => n));
    const opts = entryAt(d, at).options;
    const dropped: string[] = [];
    // bottom up, so the indices of the options still to remove hold
    for (let i = opts.length - 1; i >= 0; i--) {
      if (keep.has(opts[i]!.name)) continue;
      d = removeOption(d, at, i);
      dropped.unshift(`remove ${describeOption(opts[i]!.name, opts[i]!.value)}`);
    }
    changes.push(...dropped);
  }
  if (args.args) {
    const words = args.args.map(toBinary);
    const old = entryAt(d, at).words.map((w) => w.text);
    if (old.join('\0') !== words.join('\0')) {
      d = setWords(d, at, words);
      changes.push(`arguments "${fromBinary(old.join(' '))}" → "${fromBinary(words.join(' '))}"`);
    }
  }
  return { doc: d, at, changes: [...changes, ...notes] };
}

function validations(version: string, main: FileState, warn: (m: string) => void): Validation[] {
  // postconf -M and its "unused parameter" warnings for master.cf came with Postfix 2.9
  if (!versionAtLeast(version, 2, 9)) {
    warn(`Postfix ${version} cannot check master.cf (postconf -M needs 2.9 or later); the edit is not validated on the host`);
    return [];
  }
  return [postconfValidation('master.cf', contentOf(main), '-M')];
}

/** Unknown `-o` names fail the task (in check mode too), before anything is validated or written. */
async function checkOptionNames(ctx: TaskContext, args: MasterCfArgs, options: [string, string][], main: FileState, master: MasterCfEntry[]): Promise<void> {
  if (!options.length) return;
  await checkAskedNames(ctx, `the options of ${args.service}/${args.type}`, options.map(([n]) => n), {
    texts: [...mainValues(main), ...options.map(([, v]) => v)],
    master,
    allowUnknown: args.allow_unknown,
  });
}

/**
 * A `$name` in a value being set must name a parameter Postfix has: a built-in, one main.cf sets, or an option of
 * the same entry. Otherwise postconf -M warns "undefined parameter" and smtpd reads an empty value (for a
 * template's `$mua_client_restrictions`: no client restrictions at all), so the task fails first, saying how to
 * define it.
 */
async function checkReferences(ctx: TaskContext, shown: string, options: [string, string][], entry: MasterCfEntry, main: FileState): Promise<void> {
  const defined = new Set([...parsedMainCf(contentOf(main)).entries.map((e) => e.name), ...entry.options.map((o) => o.name)]);
  const open = options.flatMap(([name, value]) => referencedNames(value).filter((r) => !defined.has(r)).map((r): [string, string] => [name, r]));
  if (!open.length) return;
  const builtin = await builtinNames(ctx, postfixVersion(ctx.facts));
  const undefinedRefs = open.filter(([, r]) => !builtin.has(r));
  if (!undefinedRefs.length) return;
  const refs = [...new Set(undefinedRefs.map(([, r]) => fromBinary(r)))];
  const which = undefinedRefs.map(([n, r]) => `-o ${fromBinary(n)} refers to $${fromBinary(r)}`);
  const example = refs.map((r) => `${r}: …`).join(', ');
  throw new ModuleError(
    `${shown}: ${[...new Set(which)].join(', ')}, which ${main.path} does not set and Postfix does not define ` +
      `(postconf would warn "undefined parameter" and smtpd would use an empty value); set ${refs.length > 1 ? 'them' : 'it'} in main.cf ` +
      `first (a postconf task before this one, settings: { ${example} }) or give the option its value itself`,
    { undefined: refs },
  );
}

const masterCfSchema = {
  additionalProperties: false,
  required: ['service', 'type'],
  properties: {
    service: {
      type: 'string',
      pattern: '^[^\\s#]\\S*$',
      description:
        'Service name, with an optional host: prefix (127.0.0.1:smtps). For inet services smtps, submissions and 465 (likewise smtp/25, submission/587, lmtp/24) are one listener: an entry under any of these names is edited and keeps its name.',
    },
    type: { enum: [...SERVICE_TYPES], description: 'Service type: inet, unix, unix-dgram, fifo or pass.' },
    private: { type: ['string', 'boolean'], enum: ['y', 'n', '-', true, false], description: 'Private field (y, n or - for the default); default: keep, n for a new inet service, - otherwise.' },
    unpriv: { type: ['string', 'boolean'], enum: ['y', 'n', '-', true, false], description: 'Unprivileged field (y, n or -); default: keep, - for a new service.' },
    chroot: { type: ['string', 'boolean'], enum: ['y', 'n', '-', true, false], description: 'Chroot field (y, n or -); default: keep, - for a new service.' },
    wakeup: {
      type: ['string', 'integer'],
      pattern: '^(-|[0-9]+\\??)$',
      minimum: 0,
      description: 'Wakeup time in seconds (60, 1000? or -); default: keep, - for a new service.',
    },
    maxproc: { type: ['string', 'integer'], pattern: '^(-|[0-9]+)$', minimum: 0, description: 'Process limit (a number or -); default: keep, - for a new service.' },
    command: { type: 'string', pattern: '^\\S+$', description: 'Command (smtpd, pipe, …); default: keep; required when no entry or template exists.' },
    args: {
      type: 'array',
      items: { type: 'string', pattern: '^\\S+$' },
      description: 'Command arguments other than -o options (flags=… user=… argv=…); default: keep.',
    },
    options: {
      type: 'object',
      propertyNames: { pattern: '^[A-Za-z0-9_]+$' },
      additionalProperties: { type: ['string', 'number', 'boolean', 'null'] },
      description:
        "Options name → value, written as -o name=value (true/false as yes/no); set in place, missing ones added after the last -o. Of a commented template only these -o lines are uncommented; a $name in a value must be defined (a Postfix parameter, main.cf or another option).",
    },
    options_exact: {
      type: 'boolean',
      description: 'Also remove active -o options that "options" does not name (default false); a template\'s other -o lines are never uncommented.',
    },
    state: { enum: ['present', 'absent'], description: 'present (default) or absent (remove the active entries of this service).' },
    config_dir: {
      type: 'string',
      minLength: 1,
      description: "Postfix configuration directory holding master.cf and main.cf; default: the host's postconf -h config_directory.",
    },
    allow_unknown: {
      type: 'array',
      items: { type: 'string', pattern: '^[A-Za-z0-9_]+$' },
      description: 'Option names to accept although postconf -d does not list them (postconf -M must still accept them).',
    },
    backup: { type: 'boolean', description: 'Keep a timestamped copy of the old master.cf beside it (default false).' },
  },
} as const;

export const masterCfModule: Module<MasterCfArgs> = {
  name: 'master_cf',
  description: 'Enable, update or remove a Postfix master.cf service in place, uncommenting its template when there is one.',
  schema: masterCfSchema,
  check(args) {
    const dir = hostPathProblem('config_dir', args.config_dir);
    if (dir) return dir;
    if ((args.state ?? 'present') === 'absent') {
      const extra = [...FIELD_ARGS, 'args', 'options', 'options_exact'].filter(
        (k) => args[k as keyof MasterCfArgs] !== undefined,
      );
      if (extra.length) return `state: absent removes the service; ${extra.map((k) => `"${k}"`).join(', ')} cannot be used with it`;
    }
    return null;
  },
  reads(args, facts) {
    const version = facts.postfix_version;
    // Before 3.6 master(8) looks inet service names up in /etc/services (see resolvable).
    const services = version && !versionAtLeast(version, 3, 6) && args.type === 'inet' ? ['/etc/services'] : [];
    return postfixReads(args.config_dir, facts, 'master.cf', Object.keys(args.options ?? {}).length > 0, services);
  },
  async preflight(ctx, args) {
    const { main, master } = await readPostfixFiles(ctx, args.config_dir, 'master.cf', false);
    await checkOptionNames(ctx, args, wantedOptions(args, postfixVersion(ctx.facts)), main, parsedMasterCf(contentOf(master)).entries);
  },
  async plan(ctx, args) {
    const bad = masterCfModule.check!(args);
    if (bad) throw new ModuleError(bad);
    const { path, main, master } = await readPostfixFiles(ctx, args.config_dir, 'master.cf', true);
    const version = postfixVersion(ctx.facts);
    const before = contentOf(master);
    const doc = parsedMasterCf(before);
    const service = toBinary(args.service);
    const asked = `${args.service}/${args.type}`;
    const active = doc.entries.filter((e) => !e.commented);
    const fileChange = async (after: Buffer): Promise<FileChange> => {
      const change: FileChange = {
        path,
        before: master.exists ? before : null,
        after,
        beforeSha: master.exists ? master.sha : null,
        validate: validations(version, main, (m) => ctx.warn(m)),
        backup: args.backup ?? false,
      };
      await ctx.validate([change]);
      return change;
    };

    if ((args.state ?? 'present') === 'absent') {
      // Without a host: prefix the service means every address, so every listener on its port goes.
      const everyAddress = splitService(service).host === '';
      const doomed = active.filter((e) => {
        const rank = matchRank(e, service, args.type);
        return rank >= 2 || (rank === 1 && everyAddress);
      });
      if (doomed.length === 0) return { changed: false, msg: `${asked} is not in ${path}` };
      let d = doc;
      for (const e of doomed.slice().reverse()) d = removeEntry(d, e.lines[0]!);
      const names = doomed.map((e) => `${fromBinary(e.service)}/${e.type} (line ${e.lines[0]! + 1})`);
      const change = await fileChange(printMasterCf(d));
      return { changed: true, msg: `remove ${names.join(', ')} from ${path}`, files: [change], commands: [] };
    }

    const options = wantedOptions(args, version);
    // Every entry, not only the active ones: checkNames picks those itself, and the parse's own list is shared.
    await checkOptionNames(ctx, args, options, main, doc.entries);

    // An active entry first, else a commented template; either keeps its own name for the listener.
    const target = best(active, service, args.type) ?? best(doc.entries.filter((e) => e.commented), service, args.type);
    const host = splitService(service).host;
    const port = splitService(target ? target.service : service).port;
    let name = joinService(host, port);
    const notes: string[] = [];
    if (args.type === 'inet' && !versionAtLeast(version, 3, 6) && KNOWN_TCP_PORTS.has(port)) {
      const etc = await ctx.readFile('/etc/services');
      const resolved = resolvable(port, etc.content ? parseServices(etc.content.toString('latin1')) : null);
      if (resolved !== port) {
        notes.push(`Postfix ${version} looks service names up in /etc/services, which does not map ${fromBinary(port)} to ${resolved}`);
      }
      name = joinService(host, resolved);
    }
    const shown = `${fromBinary(name)}/${args.type}${fromBinary(name) === args.service ? '' : ` (the ${args.service} listener)`}`;

    let edit: Edit;
    let verb: string;
    if (target) {
      try {
        edit = editEntry(doc, target.lines[0]!, name, args, options);
      } catch (e) {
        if (e instanceof MasterCfEditError) throw new ModuleError(`${path} ${e.message}`);
        throw e;
      }
      verb = target.commented ? `enable ${shown} in` : `update ${shown} in`;
      for (const other of active) {
        if (other !== target && matchRank(other, service, args.type) > 0) {
          ctx.warn(`${path} line ${other.lines[0]! + 1} also listens as ${fromBinary(other.service)}/${other.type}`);
        }
      }
    } else {
      if (!args.command) throw new ModuleError(`${path} has no ${asked} entry or commented template; "command" is needed to add one`);
      const fields = Object.fromEntries(
        FIELD_ARGS.map((f) => [f, wantedField(args, f) ?? (f === 'private' && args.type === 'inet' ? 'n' : '-')]),
      ) as MasterCfFields;
      const d = appendEntry(doc, {
        ...fields,
        service: name,
        type: args.type,
        options: options.map(([n, v]) => formatOption(n, v)),
        words: (args.args ?? []).map(toBinary),
      });
      edit = { doc: d, at: d.entries[d.entries.length - 1]!.lines[0]!, changes: [] };
      verb = `add ${shown} to`;
    }

    const after = printMasterCf(edit.doc);
    await checkReferences(ctx, shown, options, entryAt(edit.doc, edit.at), main);
    if (after.equals(before)) return { changed: false, msg: `${shown} is enabled in ${path}` };

    // Every other active entry must read the same to Postfix as before (no -o line may move to a neighbour).
    const others = (d: MasterCfDocument, skip: number | null) =>
      d.entries.filter((e) => !e.commented && e.lines[0] !== skip).map(signature);
    const was = others(doc, target && !target.commented ? target.lines[0]! : null);
    const now = others(edit.doc, edit.at);
    if (was.join('\n') !== now.join('\n')) {
      throw new ModuleError(`editing ${shown} would change other entries of ${path}; the file is left alone`);
    }

    const change = await fileChange(after);
    const detail = edit.changes.length || notes.length ? `: ${[...edit.changes, ...notes].join('; ')}` : '';
    return { changed: true, msg: `${verb} ${path}${detail}`, files: [change], commands: [] };
  },
};

/**
 * postconf: set and remove main.cf parameters the way a careful admin edits the file by hand (in place, comments
 * kept), refuse names Postfix does not know before touching anything, and check the result with the host's own
 * `postconf -n`, in check mode too.
 */
import {
  fromBinary,
  getParameter,
  type MainCfDocument,
  parsedMainCf,
  printMainCf,
  removeParameter,
  setParameter,
  toBinary,
} from '../formats/main-cf.js';
import { hostPathProblem } from './file-common.js';
import { type FileChange, type Module, ModuleError } from './module.js';
import type { ArgsOf } from './module.js';
import { checkAskedNames, contentOf, mainValues, postfixReads, readPostfixFiles } from './postfix-common.js';
import { postconfValidation, renderValue } from './postfix-names.js';

export type PostconfValue = string | number | boolean | null | (string | number)[];

export type PostconfArgs = ArgsOf<typeof postconfSchema>;

const NAME = '^[A-Za-z0-9_]+$';

/** name → the value Postfix uses (the last occurrence wins). */
function effective(doc: MainCfDocument): Map<string, string> {
  return new Map(doc.entries.map((e) => [e.name, e.value]));
}

const show = (s: string) => fromBinary(s);

/** The parameter names a task sets (unknown ones fail it, in check mode too, before anything is written). */
const settingNames = (args: PostconfArgs) => Object.keys(args.settings ?? {}).map(toBinary);

const postconfSchema = {
  additionalProperties: false,
  properties: {
    settings: {
      type: 'object',
      description:
        'main.cf parameters to set, name → value. true/false are written yes/no, a list is joined with ", ", an empty value is written "name =". The last occurrence is changed in place and earlier ones are commented out; a new name goes after its commented-out "#name =" example, else at the end.',
      propertyNames: { pattern: NAME },
      additionalProperties: {
        type: ['string', 'number', 'boolean', 'null', 'array'],
        items: { type: ['string', 'number'] },
      },
    },
    absent: {
      type: 'array',
      description: 'Parameters to remove: every occurrence, with its continuation lines.',
      items: { type: 'string', pattern: NAME },
    },
    config_dir: {
      type: 'string',
      minLength: 1,
      description: "Postfix configuration directory holding main.cf and master.cf; default: the host's postconf -h config_directory.",
    },
    allow_unknown: {
      type: 'array',
      description:
        'Names to accept although postconf -d does not list them (postconf -n must still accept the result without a warning).',
      items: { type: 'string', pattern: NAME },
    },
    backup: { type: 'boolean', description: 'Keep a timestamped copy of the old main.cf beside it (default false).' },
  },
} as const;

export const postconfModule: Module<PostconfArgs> = {
  name: 'postconf',
  description: 'Set or remove Postfix main.cf parameters in place, refusing unknown names and checking with postconf -n.',
  schema: postconfSchema,
  check(args) {
    const set = Object.keys(args.settings ?? {});
    if (set.length === 0 && (args.absent ?? []).length === 0) return 'postconf needs "settings" or "absent"';
    const dir = hostPathProblem('config_dir', args.config_dir);
    if (dir) return dir;
    const both = set.filter((n) => args.absent?.includes(n));
    if (both.length) return `${both.map((n) => `"${n}"`).join(', ')} cannot be both in settings and absent`;
    return null;
  },
  reads(args, facts) {
    return postfixReads(args.config_dir, facts, 'main.cf', Object.keys(args.settings ?? {}).length > 0);
  },
  async preflight(ctx, args) {
    const { path, main, master } = await readPostfixFiles(ctx, args.config_dir, 'main.cf', false);
    // The values this task sets may reference names too (`$my_restrictions`): they count as text of main.cf.
    const values = [...mainValues(main), ...Object.values(args.settings ?? {}).map((v) => toBinary(renderValue(v as PostconfValue)))];
    await checkAskedNames(ctx, path, settingNames(args), { texts: values, master, allowUnknown: args.allow_unknown });
  },
  async plan(ctx, args) {
    const bad = postconfModule.check!(args);
    if (bad) throw new ModuleError(bad);
    const { path, main, master } = await readPostfixFiles(ctx, args.config_dir, 'main.cf', true);
    const masterBytes = contentOf(master);
    const before = contentOf(main);

    const wanted = Object.entries(args.settings ?? {}).map(([n, v]) => [n, toBinary(renderValue(v))] as const);
    const absent = args.absent ?? [];
    const oldDoc = parsedMainCf(before);
    let doc = oldDoc;
    const done: string[] = [];
    const alreadySet: string[] = [];
    const alreadyAbsent: string[] = [];
    for (const [name, value] of wanted) {
      const old = getParameter(doc, name);
      const r = setParameter(doc, name, value);
      doc = r.doc;
      const shown = `${name} = ${show(getParameter(doc, name)!)}`;
      if (r.action === 'added') done.push(`add ${shown}`);
      else if (r.action === 'replaced') done.push(`set ${shown} (was ${show(old!)})`);
      else alreadySet.push(shown);
      if (r.commentedOut) done.push(`comment out ${r.commentedOut} earlier ${name} line${r.commentedOut > 1 ? 's' : ''}`);
    }
    for (const name of absent) {
      const r = removeParameter(doc, name);
      doc = r.doc;
      if (r.removed) done.push(`remove ${name}${r.removed > 1 ? ` (${r.removed} occurrences)` : ''}`);
      else alreadyAbsent.push(name);
    }

    await checkAskedNames(ctx, path, settingNames(args), { texts: doc.entries.map((e) => e.value), master, allowUnknown: args.allow_unknown });

    const after = printMainCf(doc);
    if (after.equals(before)) {
      const parts: string[] = [];
      if (alreadySet.length > 3) parts.push(`already sets the ${alreadySet.length} parameters as asked`);
      else if (alreadySet.length) parts.push(`already sets ${alreadySet.join(', ')}`);
      if (alreadyAbsent.length) parts.push(`has no ${alreadyAbsent.join(', ')}`);
      return { changed: false, msg: `${path} ${parts.join(' and ')}` };
    }

    // Every parameter the task does not name must keep the value Postfix uses: an edit that changed another one
    // (a continuation line taken over by a new entry) is a bug, and the file is left alone.
    const touched = new Set([...wanted.map(([n]) => n), ...absent]);
    const was = effective(oldDoc);
    const now = effective(doc);
    const drift = [...new Set([...was.keys(), ...now.keys()])].filter((n) => !touched.has(n) && was.get(n) !== now.get(n));
    if (drift.length) throw new ModuleError(`editing ${path} would also change ${drift.join(', ')}; the file is left alone`);

    const change: FileChange = {
      path,
      before: main.exists ? before : null,
      after,
      beforeSha: main.exists ? main.sha : null,
      validate: [postconfValidation('main.cf', masterBytes, '-n')],
      backup: args.backup ?? false,
    };
    await ctx.validate([change]);
    return { changed: true, msg: `${path}: ${done.join('; ')}`, files: [change], commands: [] };
  },
};

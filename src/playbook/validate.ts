/**
 * From YAML to a checked Playbook, before any host is contacted. Structure (plays, task keywords) and every
 * module's arguments are checked with ajv against JSON Schema; each error names file:line:col, the task, and the
 * nearest valid name when a name is unknown. All errors of a file are collected, then thrown together.
 */
import path from 'node:path';
import type { ErrorObject } from 'ajv/dist/2020.js';
import { InputError, InputErrors, type SourcePos } from '../errors.js';
import { findModule, moduleNames } from '../modules/index.js';
import type { Module } from '../modules/module.js';
import { didYouMean } from '../util/suggest.js';
import { type Located, pointer, positionOf, readYamlFile } from './load.js';
import playSchema from './schema/play.schema.json' with { type: 'json' };
import { checkConditionSyntax, checkSyntax, isTemplated } from './template.js';
import { coercingValidator, keywordSchemas, reportingValidator, validateKeywords, validatePlays } from './validators.js';
import { allTasks, type Play, type Playbook, type Task } from './types.js';

export const TASK_KEYWORDS = new Set(Object.keys(keywordSchemas));
const HANDLER_KEYWORDS = new Set([...TASK_KEYWORDS, 'listen']);

export type ArgsCheck =
  | { value: Record<string, unknown>; errors: undefined }
  | { value: undefined; errors: { ptr: string; message: string; prefer: 'key' | 'value' }[] };

/** Check a module's arguments against its schema; on success, the arguments with types coerced. */
export function checkArgs(mod: Module, args: Record<string, unknown>): ArgsCheck {
  const coerce = coercingValidator(mod);
  const copy = structuredClone(args);
  if (coerce(copy)) return { value: copy, errors: undefined };
  const report = reportingValidator(mod);
  const shown = structuredClone(args);
  report(shown);
  const known = Object.keys((mod.schema.properties as Record<string, unknown> | undefined) ?? {});
  const errors = describeAjvErrors(report.errors ?? coerce.errors ?? [], args, mod.name, (parent) => (parent === '' ? known : []));
  return { value: undefined, errors };
}

/** Collects errors for one file; stops at a sane number so a broken file does not flood the terminal. */
class Problems {
  readonly errors: InputError[] = [];
  constructor(readonly loc: Located) {}
  add(message: string, ptr: string, where?: string, prefer: 'key' | 'value' = 'value'): void {
    this.addAt(message, positionOf(this.loc, ptr, prefer), where);
  }
  addAt(message: string, pos: SourcePos, where?: string): void {
    if (this.errors.length < 50) this.errors.push(new InputError(message, pos, where));
  }
}

function valueAt(root: unknown, parts: string[]): unknown {
  let v = root;
  for (const p of parts) {
    if (v === null || typeof v !== 'object') return undefined;
    v = (v as Record<string, unknown>)[p];
  }
  return v;
}

function splitPointer(p: string): string[] {
  return p === '' ? [] : p.slice(1).split('/').map((s) => s.replace(/~1/g, '/').replace(/~0/g, '~'));
}

/**
 * Turn ajv errors into one message each. Errors at a value that is a template are dropped: its type is only known
 * once it is rendered. Of the errors ajv reports for one place (anyOf branches), the most telling is kept.
 */
export function describeAjvErrors(
  errors: ErrorObject[],
  data: unknown,
  subject: string,
  knownNames: (parentPtr: string) => string[],
): { ptr: string; message: string; prefer: 'key' | 'value' }[] {
  const out: { ptr: string; message: string; prefer: 'key' | 'value' }[] = [];
  const seen = new Set<string>();
  const templated = (ptr: string) => {
    const v = valueAt(data, splitPointer(ptr));
    return typeof v === 'string' && isTemplated(v);
  };
  const byPlace = new Map<string, ErrorObject[]>();
  for (const e of errors) {
    if (templated(e.instancePath)) continue;
    const place = e.keyword === 'additionalProperties' ? `${e.instancePath}/${(e.params as { additionalProperty: string }).additionalProperty}` : e.instancePath;
    byPlace.set(place, [...(byPlace.get(place) ?? []), e]);
  }
  for (const [place, errs] of byPlace) {
    const pick = (k: string) => errs.find((e) => e.keyword === k);
    // A value of an accepted type that is out of range (`serial: -1`) says so, rather than listing other types.
    const range = errs.find((x) => RANGE_KEYWORDS.has(x.keyword));
    const e = pick('additionalProperties') ?? pick('required') ?? pick('enum') ?? pick('const') ?? pick('pattern') ?? range ?? pick('type') ?? errs.find((x) => x.keyword !== 'anyOf' && x.keyword !== 'oneOf') ?? errs[0]!;
    const parts = splitPointer(e.instancePath);
    const name = parts.at(-1);
    const parent = parts.at(-2);
    // An item of the top-level list is named by the subject itself ("play 2"), not by a parent key it lacks.
    const item = (n: string) => (parent === undefined ? `${subject} ${Number(n) + 1}` : `item ${Number(n) + 1} of "${parent}"`);
    const field = name === undefined ? subject : /^\d+$/.test(name) ? item(name) : `"${name}"`;
    let message: string;
    let prefer: 'key' | 'value' = 'value';
    switch (e.keyword) {
      case 'additionalProperties': {
        const extra = (e.params as { additionalProperty: string }).additionalProperty;
        message = `${subject} has no argument "${extra}"${didYouMean(extra, knownNames(e.instancePath))}`;
        prefer = 'key';
        break;
      }
      case 'required':
        message = `${e.instancePath ? `${field} needs` : `${subject} needs argument`} "${(e.params as { missingProperty: string }).missingProperty}"`;
        break;
      case 'enum': {
        const allowed = (e.params as { allowedValues: unknown[] }).allowedValues;
        const given = valueAt(data, splitPointer(e.instancePath));
        message = `${field} must be one of ${allowed.map((a) => JSON.stringify(a)).join(', ')}${typeof given === 'string' ? didYouMean(given, allowed.map(String)) : ''}`;
        break;
      }
      case 'type': {
        const types = errs.filter((x) => x.keyword === 'type').map((x) => (x.params as { type: string }).type);
        message = `${field} must be ${[...new Set(types.flatMap((t) => t.split(',')))].map(article).join(' or ')}`;
        break;
      }
      case 'pattern':
        message =
          e.propertyName !== undefined
            ? `${field}: ${JSON.stringify(e.propertyName)} is not a valid name`
            : `${field} has an invalid value ${JSON.stringify(valueAt(data, splitPointer(e.instancePath)))}`;
        break;
      default:
        message = `${field} ${e.message ?? 'is invalid'}`;
    }
    if (!seen.has(place + message)) {
      seen.add(place + message);
      out.push({ ptr: place, message, prefer });
    }
  }
  return out;
}

const RANGE_KEYWORDS = new Set(['minimum', 'maximum', 'exclusiveMinimum', 'exclusiveMaximum', 'minLength', 'maxLength', 'minItems', 'maxItems']);

function article(t: string): string {
  return { integer: 'an integer', object: 'a mapping', array: 'a list', string: 'a string', boolean: 'true or false', number: 'a number', null: 'empty' }[t] ?? t;
}

/** A keyword that takes a string or a list of them; anything else was reported by the schema and is left out. */
function asList(v: unknown): string[] {
  if (v === undefined || v === null) return [];
  return (Array.isArray(v) ? v : [v]).filter((x): x is string => typeof x === 'string');
}

/** Every string inside a value, with its pointer. */
function strings(v: unknown, ptr: string, out: [string, string][] = []): [string, string][] {
  if (typeof v === 'string') out.push([ptr, v]);
  else if (Array.isArray(v)) v.forEach((x, i) => strings(x, `${ptr}/${i}`, out));
  else if (v && typeof v === 'object') for (const [k, x] of Object.entries(v)) strings(x, pointer([...splitPointer(ptr), k]), out);
  return out;
}

function taskLabel(raw: Record<string, unknown>, moduleKey: string | undefined): string {
  if (typeof raw.name === 'string' && raw.name) return `task "${raw.name}"`;
  return moduleKey ? `task "${moduleKey}"` : 'task';
}

function parseTask(raw: unknown, ptr: string, p: Problems, handler: boolean): Task | null {
  const pos = positionOf(p.loc, ptr);
  if (!raw || typeof raw !== 'object' || Array.isArray(raw)) {
    p.add(`a ${handler ? 'handler' : 'task'} must be a mapping of keywords and one module`, ptr);
    return null;
  }
  const t = raw as Record<string, unknown>;
  const keywords = handler ? HANDLER_KEYWORDS : TASK_KEYWORDS;
  const moduleKeys = Object.keys(t).filter((k) => !keywords.has(k));
  const known = moduleKeys.filter((k) => findModule(k));
  const unknown = moduleKeys.filter((k) => !findModule(k));
  const label = taskLabel(t, known[0] ?? unknown[0]);
  for (const k of unknown) {
    if (!handler && k === 'listen') {
      p.add('"listen" is only for handlers', `${ptr}/listen`, label, 'key');
      continue;
    }
    const hint = didYouMean(k, [...moduleNames(), ...keywords]);
    p.add(`unknown module or keyword "${k}"${hint}`, pointer([...splitPointer(ptr), k]), label, 'key');
  }
  if (known.length > 1) {
    p.add(`a task takes exactly one module, found ${known.map((k) => `"${k}"`).join(' and ')}`, pointer([...splitPointer(ptr), known[1]!]), label, 'key');
  }
  if (known.length === 0 && unknown.length === 0) {
    p.add('no module given (a task needs exactly one, e.g. "copy:" or "postconf:")', ptr, label);
  }
  if (!validateKeywords(t)) {
    for (const err of describeAjvErrors(validateKeywords.errors ?? [], t, label, () => [...keywords])) {
      p.add(err.message, ptr + err.ptr, label, err.prefer);
    }
  }
  if (handler && typeof t.name !== 'string') p.add('a handler needs a "name"', ptr, 'handler');
  if (handler && t.listen !== undefined && (Array.isArray(t.listen) ? t.listen : [t.listen]).some((x) => typeof x !== 'string')) {
    p.add('"listen" must be a string or a list of strings', `${ptr}/listen`, label);
  }
  for (const k of ['when', 'changed_when', 'failed_when'] as const) {
    for (const [sptr, s] of strings(t[k], `${ptr}/${k}`)) {
      const bad = checkConditionSyntax(s);
      if (bad) p.add(`invalid expression in "${k}": ${bad}`, sptr, label);
    }
  }
  if (known.length !== 1) return null;
  const moduleKey = known[0]!;
  const mod = findModule(moduleKey)!;
  const argPtr = pointer([...splitPointer(ptr), moduleKey]);
  let args = t[moduleKey];
  if (args === null || args === undefined) args = {};
  if (typeof args === 'string') {
    if (!mod.freeForm) {
      p.add(`${mod.name} takes a mapping of arguments, not a string`, argPtr, label);
      return null;
    }
    args = { [mod.freeForm]: args };
  }
  if (typeof args !== 'object' || Array.isArray(args)) {
    p.add(`the arguments of ${mod.name} must be a mapping`, argPtr, label);
    return null;
  }
  const argErrors = checkArgs(mod, args as Record<string, unknown>).errors ?? [];
  for (const err of argErrors) p.add(err.message, argPtr + err.ptr, label, err.prefer);
  for (const [sptr, s] of strings(args, argPtr)) {
    const bad = checkSyntax(s);
    if (bad) p.add(`invalid template: ${bad}`, sptr, label);
  }
  if (!argErrors.length && mod.check && !strings(args, '').some(([, s]) => isTemplated(s))) {
    const bad = mod.check(args as Record<string, unknown>);
    if (bad) p.add(bad, argPtr, label);
  }
  const positions = new Map<string, SourcePos>();
  for (const k of Object.keys(t)) positions.set(k === moduleKey ? 'args' : k, positionOf(p.loc, pointer([...splitPointer(ptr), k]), 'key'));
  // Every string a template may hide in, so a problem found before the run can point at it exactly.
  for (const k of ['when', 'loop'] as const) for (const [sptr] of strings(t[k], '')) positions.set(`${k}${sptr}`, positionOf(p.loc, `${ptr}/${k}${sptr}`));
  for (const [sptr] of strings(args, '')) positions.set(`args${sptr}`, positionOf(p.loc, argPtr + sptr));
  if (Array.isArray(t.notify)) t.notify.forEach((_, j) => positions.set(`notify/${j}`, positionOf(p.loc, `${ptr}/notify/${j}`)));
  else if (t.notify !== undefined) positions.set('notify/0', positionOf(p.loc, `${ptr}/notify`));
  const loopControl = (t.loop_control ?? {}) as { loop_var?: string };
  return {
    name: typeof t.name === 'string' && t.name ? t.name : mod.name,
    named: typeof t.name === 'string' && t.name !== '',
    module: mod.name,
    args: args as Record<string, unknown>,
    when: t.when,
    notify: asList(t.notify),
    tags: asList(t.tags),
    register: t.register as string | undefined,
    loop: t.loop,
    loopVar: loopControl.loop_var ?? 'item',
    changedWhen: t.changed_when,
    failedWhen: t.failed_when,
    ignoreErrors: t.ignore_errors === true,
    noLog: t.no_log === true,
    checkMode: t.check_mode as boolean | undefined,
    diff: t.diff as boolean | undefined,
    become: t.become as boolean | undefined,
    becomeUser: t.become_user as string | undefined,
    vars: (t.vars ?? {}) as Record<string, unknown>,
    listen: asList(t.listen),
    pos,
    positions,
  };
}

function parsePlay(raw: Record<string, unknown>, ptr: string, p: Problems): Play {
  const section = (key: 'pre_tasks' | 'tasks' | 'post_tasks' | 'handlers') => {
    const list = Array.isArray(raw[key]) ? (raw[key] as unknown[]) : [];
    return list.map((t, i) => parseTask(t, `${ptr}/${key}/${i}`, p, key === 'handlers')).filter((t): t is Task => t !== null);
  };
  const serial = raw.serial === undefined ? [] : Array.isArray(raw.serial) ? (raw.serial as (number | string)[]) : [raw.serial as number | string];
  const hosts = Array.isArray(raw.hosts) ? (raw.hosts as string[]).join(',') : String(raw.hosts ?? '');
  const play: Play = {
    name: typeof raw.name === 'string' ? raw.name : hosts,
    hosts,
    vars: (raw.vars ?? {}) as Record<string, unknown>,
    varsFiles: (raw.vars_files ?? []) as string[],
    serial,
    maxFailPercentage: raw.max_fail_percentage as number | undefined,
    anyErrorsFatal: raw.any_errors_fatal === true,
    gatherFacts: raw.gather_facts !== false,
    become: raw.become === true,
    becomeUser: raw.become_user as string | undefined,
    order: (raw.order as Play['order']) ?? 'inventory',
    tags: asList(raw.tags),
    preTasks: section('pre_tasks'),
    tasks: section('tasks'),
    postTasks: section('post_tasks'),
    handlers: section('handlers'),
    pos: positionOf(p.loc, ptr),
  };
  // A notify that matches no handler is a typo that would silently skip a restart: refuse it now.
  const targets = new Set(play.handlers.flatMap((h) => [h.name, ...h.listen]));
  for (const t of allTasks(play)) {
    t.notify.forEach((n, j) => {
      if (targets.has(n) || isTemplated(n)) return;
      const at = t.positions.get(`notify/${j}`) ?? t.positions.get('notify') ?? t.pos;
      p.addAt(`notifies "${n}", but no handler has that name or listen topic${didYouMean(n, targets)}`, at, `task "${t.name}"`);
    });
  }
  return play;
}

/** Load, check and normalise a playbook file. Throws InputErrors listing every problem found. */
export function loadPlaybook(file: string): Playbook {
  const loc = readYamlFile(file, 'playbook');
  const p = new Problems(loc);
  const data = loc.value;
  if (!Array.isArray(data)) {
    throw new InputError('a playbook is a list of plays (each starting with "- hosts: …")', positionOf(loc, ''));
  }
  if (data.length === 0) throw new InputError('the playbook has no plays', positionOf(loc, ''));
  if (!validatePlays(data)) {
    for (const err of describeAjvErrors(validatePlays.errors ?? [], data, 'play', (parent) =>
      /^\/\d+$/.test(parent) ? Object.keys((playSchema.$defs.play as { properties: object }).properties) : [],
    )) {
      // A task or handler that is not a mapping is reported once, by parseTask, in its own words.
      if (/^\/\d+\/(pre_tasks|tasks|post_tasks|handlers)\/\d+$/.test(err.ptr)) continue;
      const m = /^\/(\d+)/.exec(err.ptr);
      const play = m ? (data[Number(m[1])] as Record<string, unknown> | undefined) : undefined;
      const label = play && typeof play.name === 'string' ? `play "${play.name}"` : `play ${m ? Number(m[1]) + 1 : ''}`.trim();
      const message = err.message.replace(/^play has no argument/, 'play has no keyword');
      // A mistake in the play itself (not a mapping, a missing keyword) names the play in the message.
      if (m && err.ptr === m[0]) p.add(message.replace(/^play \d+/, label), err.ptr, undefined, err.prefer);
      else p.add(message, err.ptr, label, err.prefer);
    }
  }
  const plays = data.map((raw, i) => (raw && typeof raw === 'object' && !Array.isArray(raw) ? parsePlay(raw as Record<string, unknown>, `/${i}`, p) : null));
  if (p.errors.length) throw new InputErrors(p.errors);
  return { file, dir: path.dirname(path.resolve(file)), plays: plays as Play[] };
}

/**
 * From YAML to a checked Playbook, before any host is contacted. Structure (plays, task keywords) and every
 * module's arguments are checked with ajv against JSON Schema; each error names file:line:col, the task, and the
 * nearest valid name when a name is unknown. All errors of a file are collected, then thrown together.
 */
import path from 'node:path';
import type { ErrorObject } from 'ajv/dist/2020.js';
import { formatPos, InputError, InputErrors, type SourcePos } from '../errors.js';
import { findModule, moduleNames } from '../modules/index.js';
import type { Module } from '../modules/module.js';
import { didYouMean } from '../util/suggest.js';
import { type Located, pointer, positionOf, readYamlFile } from './load.js';
import playSchema from './schema/play.schema.json' with { type: 'json' };
import { checkConditionSyntax, checkSyntax, isTemplated } from './template.js';
import { floatRepr, PyFloat, unboxDeep } from './template/python.js';
import { UNSUPPORTED_MODULES, UNSUPPORTED_PLAY_KEYWORDS, UNSUPPORTED_TASK_KEYWORDS, WITH_LOOPS } from './ansible-names.js';
import { kvBool, parseKv } from './kv.js';
import { dynamicInclude, importNameError, renderAtLoad } from './includes.js';
import { type LoadCtx, loadIncludedTasks, loadRoleEntry, type PlayLoad, type RoleVars, rolesPathFor } from './roles.js';
import { allTasks, type LoopKind, type Play, type Playbook, type Task } from './types.js';
import { coercingValidator, keywordSchemas, reportingValidator, validateKeywords, validatePlays } from './validators.js';

/** Keywords of a task that runs a module (block, rescue and always make a block instead). */
export const TASK_KEYWORDS = new Set(Object.keys(keywordSchemas).filter((k) => !['block', 'rescue', 'always'].includes(k)));
const HANDLER_KEYWORDS = new Set([...TASK_KEYWORDS, 'listen']);
/** Keywords a block takes besides block, rescue and always. */
const BLOCK_KEYWORDS = new Set(['name', 'when', 'tags', 'vars', 'become', 'become_user', 'ignore_errors', 'no_log', 'environment', 'check_mode', 'diff', 'delegate_to', 'connection', 'run_once', 'block', 'rescue', 'always']);
/** Keywords an include_tasks / include_role takes besides its file or role. */
const INCLUDE_KEYWORDS = new Set(['name', 'when', 'tags', 'vars', 'loop', 'loop_control', 'become', 'become_user', 'ignore_errors', 'no_log', 'environment', 'args', ...[...WITH_LOOPS].map((w) => `with_${w}`)]);
/** Keywords an import_tasks / import_role takes (they pass down to every imported task). */
const IMPORT_KEYWORDS = new Set(['name', 'when', 'tags', 'vars', 'become', 'become_user', 'ignore_errors', 'no_log', 'environment', 'check_mode', 'diff', 'delegate_to', 'run_once', 'args']);
const INCLUDES = new Set(['include_tasks', 'import_tasks', 'include_role', 'import_role', 'include']);

export type ArgsCheck =
  | { value: Record<string, unknown>; errors: undefined }
  | { value: undefined; errors: { ptr: string; message: string; prefer: 'key' | 'value' }[] };

/** Check a module's arguments against its schema; on success, the arguments with types coerced. */
export function checkArgs(mod: Module, args: Record<string, unknown>): ArgsCheck {
  const coerce = coercingValidator(mod);
  const copy = copyArgs(unboxDeep(args)) as Record<string, unknown>;
  if (coerce(copy)) return { value: floatsRestored(args, copy, mod.controllerOnly === true) as Record<string, unknown>, errors: undefined };
  const report = reportingValidator(mod);
  const shown = structuredClone(args);
  report(shown);
  const known = Object.keys((mod.schema.properties as Record<string, unknown> | undefined) ?? {});
  const errors = describeAjvErrors(report.errors ?? coerce.errors ?? [], args, mod.name, (parent) => (parent === '' ? known : []));
  return { value: undefined, errors };
}

/**
 * A copy the coercing validator may change (it fills defaults and converts types): mappings and lists are copied,
 * anything else is kept as it is, so a value with a class of its own (a whole float of a template) keeps it, which
 * structuredClone would not.
 */
/**
 * A whole float from a template (`{{ 3.0 }}`, a variable holding 3.0) reaches a module as Ansible's argument
 * checks hand it over: where the argument takes text, the text Python's str() makes of it ("3.0", never "3");
 * where it takes a number, the number. Modules of the controller (debug, set_fact) keep the float itself, so it
 * shows and goes on being a float as in Ansible.
 */
function floatsRestored(kept: unknown, coerced: unknown, keepBoxes: boolean): unknown {
  if (kept instanceof PyFloat) {
    if (typeof coerced === 'string' && coerced === String(kept.value)) return floatRepr(kept.value);
    if (keepBoxes && typeof coerced === 'number' && coerced === kept.value) return kept;
    return coerced;
  }
  if (Array.isArray(kept) && Array.isArray(coerced) && kept.length === coerced.length) {
    return coerced.map((c, i) => floatsRestored(kept[i], c, keepBoxes));
  }
  if (isPlainObject(kept) && isPlainObject(coerced)) {
    return Object.fromEntries(Object.entries(coerced).map(([k, c]) => [k, floatsRestored(kept[k], c, keepBoxes)]));
  }
  return coerced;
}

function isPlainObject(v: unknown): v is Record<string, unknown> {
  if (v === null || typeof v !== 'object' || Array.isArray(v)) return false;
  const proto = Object.getPrototypeOf(v);
  return proto === Object.prototype || proto === null;
}

function copyArgs(v: unknown): unknown {
  if (Array.isArray(v)) return v.map(copyArgs);
  if (v !== null && typeof v === 'object') {
    const proto = Object.getPrototypeOf(v);
    if (proto === Object.prototype || proto === null) return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, copyArgs(x)]));
  }
  return v;
}

/** Collects errors for one file; stops at a sane number so a broken file does not flood the terminal. */
export class Problems {
  constructor(
    readonly loc: Located,
    /** shared by every file of one playbook (included files and roles add to the same list) */
    readonly errors: InputError[] = [],
  ) {}
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
        if (allowed.length === 1 && allowed[0] === false && given === true && name !== undefined) {
          // An option whose schema allows only false is one provision has not built (user's generate_ssh_key,
          // local): say so, rather than that true is not among the allowed values.
          message = `"${name}: true" is not supported yet (only false)`;
          prefer = 'key';
          break;
        }
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

function moduleKeyName(k: string): string {
  for (const prefix of ['ansible.builtin.', 'ansible.legacy.']) if (k.startsWith(prefix)) return k.slice(prefix.length);
  return k;
}

/** What a block, import or role passes down to each of its tasks. */
export interface Inherited {
  when: unknown[];
  tags: string[];
  vars: Record<string, unknown>;
  environment: Record<string, unknown>;
  become?: boolean;
  becomeUser?: string;
  ignoreErrors?: boolean;
  noLog?: boolean;
  checkMode?: boolean;
  diff?: boolean;
  local?: boolean;
  delegateTo?: string;
  runOnce?: boolean;
}

export const NOTHING_INHERITED: Inherited = { when: [], tags: [], vars: {}, environment: {} };

function conditions(v: unknown): unknown[] {
  return v === undefined || v === null ? [] : Array.isArray(v) ? v : [v];
}

function isLocal(t: Record<string, unknown>): boolean | undefined {
  if (t.connection === 'local') return true;
  if (typeof t.delegate_to === 'string') return isLocalName(t.delegate_to);
  return undefined;
}

/** A name Ansible runs on the controller when delegated to. */
export function isLocalName(name: string): boolean {
  return /^(localhost|127\.0\.0\.1|::1)$/.test(name.trim());
}

/** `delegate_to` an inventory host (not the controller), as written. */
function delegateOf(t: Record<string, unknown>): string | undefined {
  return typeof t.delegate_to === 'string' && isLocal(t) !== true ? t.delegate_to.trim() : undefined;
}

/** `parent` with what a block or import's own keywords add. */
export function inheritFrom(parent: Inherited, t: Record<string, unknown>): Inherited {
  const obj = (v: unknown) => (v && typeof v === 'object' && !Array.isArray(v) ? (v as Record<string, unknown>) : {});
  return {
    when: [...parent.when, ...conditions(t.when)],
    tags: [...new Set([...parent.tags, ...asList(t.tags)])],
    vars: { ...parent.vars, ...obj(t.vars) },
    environment: { ...parent.environment, ...obj(t.environment) },
    become: typeof t.become === 'boolean' ? t.become : parent.become,
    becomeUser: typeof t.become_user === 'string' ? t.become_user : parent.becomeUser,
    ignoreErrors: t.ignore_errors === true ? true : parent.ignoreErrors,
    noLog: t.no_log === true ? true : parent.noLog,
    checkMode: typeof t.check_mode === 'boolean' ? t.check_mode : parent.checkMode,
    diff: typeof t.diff === 'boolean' ? t.diff : parent.diff,
    local: isLocal(t) ?? parent.local,
    // A task's own delegate_to (or connection: local) wins over what encloses it.
    delegateTo: isLocal(t) !== undefined ? delegateOf(t) : parent.delegateTo,
    runOnce: t.run_once === true ? true : parent.runOnce,
  };
}

/** Put what encloses a task on it: conditions first, the task's own values win. */
function applyInherited(task: Task, inh: Inherited): Task {
  const own = conditions(task.when);
  task.when = inh.when.length ? [...inh.when, ...own] : task.when;
  task.tags = [...new Set([...inh.tags, ...task.tags])];
  task.vars = { ...inh.vars, ...task.vars };
  task.environment = { ...inh.environment, ...task.environment };
  task.become ??= inh.become;
  task.becomeUser ??= inh.becomeUser;
  task.ignoreErrors ||= inh.ignoreErrors === true;
  task.noLog ||= inh.noLog === true;
  task.checkMode ??= inh.checkMode;
  task.diff ??= inh.diff;
  if (inh.local && task.delegateTo === undefined) task.local = true;
  if (inh.delegateTo !== undefined && !task.local && task.delegateTo === undefined) task.delegateTo = inh.delegateTo;
  if (inh.runOnce) task.runOnce = true;
  return task;
}

/** A task list: each entry a task, a block, or an include/import (imports put their tasks in place). */
export function parseTaskList(list: unknown, ptr: string, ctx: LoadCtx): Task[] {
  if (list === undefined || list === null) return [];
  if (!Array.isArray(list)) {
    ctx.p.add(`${ctx.handler ? 'handlers' : 'tasks'} must be a list`, ptr);
    return [];
  }
  const out: Task[] = [];
  list.forEach((raw, i) => {
    const r = parseNode(raw, `${ptr}/${i}`, ctx);
    if (Array.isArray(r)) out.push(...r);
    else if (r) out.push(r);
  });
  return out;
}

function baseTask(t: Record<string, unknown>, ptr: string, ctx: LoadCtx, module: string): Task {
  return {
    name: typeof t.name === 'string' && t.name ? t.name : module,
    named: typeof t.name === 'string' && t.name !== '',
    module,
    args: {},
    notify: [],
    tags: asList(t.tags),
    loopVar: 'item',
    loopKind: 'loop',
    ignoreErrors: false,
    noLog: false,
    vars: {},
    listen: [],
    local: false,
    runOnce: false,
    environment: {},
    dir: ctx.dir,
    scopeNames: ctx.scopeNames,
    ...(ctx.role ? { role: ctx.role } : {}),
    pos: positionOf(ctx.p.loc, ptr),
    positions: new Map(),
  };
}

function checkOnly(t: Record<string, unknown>, allowed: Set<string>, what: string, ptr: string, ctx: LoadCtx, label: string): void {
  for (const k of Object.keys(t)) {
    if (allowed.has(k)) continue;
    ctx.p.add(`"${k}" is not a keyword of ${what}${didYouMean(k, allowed)}`, pointer([...splitPointer(ptr), k]), label, 'key');
  }
}

function parseNode(raw: unknown, ptr: string, ctx: LoadCtx): Task | Task[] | null {
  if (!raw || typeof raw !== 'object' || Array.isArray(raw)) {
    ctx.p.add(`a ${ctx.handler ? 'handler' : 'task'} must be a mapping of keywords and one module`, ptr);
    return null;
  }
  const t = raw as Record<string, unknown>;
  const include = Object.keys(t).find((k) => INCLUDES.has(moduleKeyName(k)));
  if (ctx.handler && 'block' in t) {
    // As in Ansible 2.14, each task of a block in handlers is a handler of its own (notified by its name or listen,
    // with the block's keywords); the block itself has no name to notify.
    for (const k of ['rescue', 'always'] as const) {
      if (k in t) ctx.p.add(`"${k}" in a block of handlers is not supported yet`, pointer([...splitPointer(ptr), k]), 'handler', 'key');
    }
    if ('listen' in t) ctx.p.add('"listen" is not a keyword of a block (put it on the handlers inside)', `${ptr}/listen`, 'handler', 'key');
    const { listen: _listen, rescue: _rescue, always: _always, ...rest } = t;
    return parseBlock(rest, ptr, ctx)?.block?.block ?? null;
  }
  if ('block' in t) return parseBlock(t, ptr, ctx);
  if (include) return parseInclude(t, include, ptr, ctx);
  const task = parseTask(t, ptr, ctx);
  return task ? applyInherited(task, ctx.inherit) : null;
}

function parseBlock(t: Record<string, unknown>, ptr: string, ctx: LoadCtx): Task | null {
  const label = typeof t.name === 'string' && t.name ? `block "${t.name}"` : 'block';
  checkOnly(t, BLOCK_KEYWORDS, 'a block', ptr, ctx, label);
  if (!validateKeywords(t)) {
    for (const err of describeAjvErrors(validateKeywords.errors ?? [], t, label, () => [...BLOCK_KEYWORDS])) ctx.p.add(err.message, ptr + err.ptr, label, err.prefer);
  }
  for (const [sptr, s] of strings(t.when, `${ptr}/when`)) {
    const bad = checkConditionSyntax(s);
    if (bad) ctx.p.add(`invalid expression in "when": ${bad}`, sptr, label);
  }
  if (typeof t.environment === 'string') ctx.p.add('environment as a template is not supported yet: give a mapping', `${ptr}/environment`, label);
  const inner: LoadCtx = { ...ctx, inherit: inheritFrom(ctx.inherit, t) };
  const node = baseTask(t, ptr, ctx, 'block');
  node.block = {
    block: parseTaskList(t.block, `${ptr}/block`, inner),
    rescue: parseTaskList(t.rescue, `${ptr}/rescue`, inner),
    always: parseTaskList(t.always, `${ptr}/always`, inner),
  };
  node.tags = [];
  return node;
}

/** The loop of a task: `loop:` or one `with_<lookup>:` (never both). */
function loopOf(t: Record<string, unknown>, ptr: string, ctx: LoadCtx, label: string): { kind: LoopKind; value: unknown; key?: string } | null {
  const keys = Object.keys(t).filter((k) => k === 'loop' || k.startsWith('with_'));
  if (keys.length > 1) ctx.p.add(`a task takes one loop, found ${keys.map((k) => `"${k}"`).join(' and ')}`, pointer([...splitPointer(ptr), keys[1]!]), label, 'key');
  const key = keys[0];
  if (!key) return null;
  if (key === 'loop') return { kind: 'loop', value: t.loop, key };
  const kind = key.slice(5);
  if (!WITH_LOOPS.has(kind)) return null;
  return { kind: kind as LoopKind, value: t[key], key };
}

function parseInclude(t: Record<string, unknown>, key: string, ptr: string, ctx: LoadCtx): Task | Task[] | null {
  const what = moduleKeyName(key) === 'include' ? 'include_tasks' : moduleKeyName(key);
  const label = typeof t.name === 'string' && t.name ? `task "${t.name}"` : `task "${what}"`;
  const dynamic = what.startsWith('include_');
  const allowed = new Set([key, ...(dynamic ? INCLUDE_KEYWORDS : IMPORT_KEYWORDS), ...(ctx.handler && dynamic ? ['listen'] : [])]);
  if (ctx.handler && dynamic && typeof t.name !== 'string' && t.listen === undefined) ctx.p.add(`a handler needs a "name" (an ${what} handler is notified by it)`, ptr, label);
  checkOnly(t, allowed, what, ptr, ctx, label);
  if (!validateKeywords(t)) {
    for (const err of describeAjvErrors(validateKeywords.errors ?? [], t, label, () => [...allowed])) ctx.p.add(err.message, ptr + err.ptr, label, err.prefer);
  }
  for (const [sptr, s] of strings(t.when, `${ptr}/when`)) {
    const bad = checkConditionSyntax(s);
    if (bad) ctx.p.add(`invalid expression in "when": ${bad}`, sptr, label);
  }
  const argPtr = pointer([...splitPointer(ptr), key]);
  let args = t[key];
  if (typeof args === 'string') {
    // `include_role: name=r public=yes` is Ansible's key=value form; a bare word is the role or file.
    const kv = parseKv(args, false);
    const hasOptions = Object.keys(kv.options).length > 0;
    if (what.endsWith('_role')) args = hasOptions && kv.free === null ? kv.options : { name: args };
    else args = hasOptions ? { ...kv.options, ...(kv.free !== null ? { file: kv.free } : {}) } : { file: args };
  }
  if (!args || typeof args !== 'object' || Array.isArray(args)) {
    ctx.p.add(`${what} takes ${what.endsWith('_role') ? 'a role name' : 'a file name'} or a mapping`, argPtr, label);
    return null;
  }
  const a = { ...((t.args ?? {}) as Record<string, unknown>), ...(args as Record<string, unknown>) };
  if (typeof a._raw_params === 'string') a.file = a._raw_params;
  delete a._raw_params;
  const loop = dynamic ? loopOf(t, ptr, ctx, label) : null;
  const loopControl = (t.loop_control ?? {}) as { loop_var?: string; index_var?: string; label?: string };
  // An import passes its keywords down to every task it brings; an include is one task whose `when` and loop
  // decide whether and how often its tasks run, and whose `vars` they all see.
  const inherit = dynamic ? ctx.inherit : inheritFrom(ctx.inherit, t);
  const own = dynamic ? { ...((t.vars ?? {}) as Record<string, unknown>) } : {};
  const names = dynamic ? [...Object.keys(own), ...(loop ? [loopControl.loop_var ?? 'item', ...(loopControl.index_var ? [loopControl.index_var] : [])] : [])] : [];
  // The tasks an include handler brings all run when it is notified: they need no names of their own.
  const inner: LoadCtx = { ...ctx, inherit, scopeNames: [...ctx.scopeNames, ...names], depth: ctx.depth + 1, ...(ctx.handler && dynamic ? { includedHandler: true } : {}) };
  if (ctx.depth > 20) {
    ctx.p.add(`${what} nested more than 20 deep (does a file include itself?)`, argPtr, label);
    return null;
  }
  let tasks: Task[] | null;
  const roleVars: RoleVars = { defaults: {}, vars: {} };
  if (what.endsWith('_role')) {
    const allowedArgs = new Set(['name', 'tasks_from', 'vars_from', 'defaults_from', 'handlers_from', 'allow_duplicates', 'public', 'apply', 'rolespec_validate']);
    for (const k of Object.keys(a)) if (!allowedArgs.has(k)) ctx.p.add(`${what} has no argument "${k}"${didYouMean(k, allowedArgs)}`, `${argPtr}/${k}`, label, 'key');
    if (typeof a.name !== 'string' || !a.name) {
      ctx.p.add(`${what} needs the role's "name"`, argPtr, label);
      return null;
    }
    // A templated tasks_from (and the like) is chosen while the playbook loads, from play vars and --extra-vars.
    const from = (k: string): string | undefined => {
      const v = a[k];
      if (typeof v !== 'string' || !isTemplated(v)) return v as string | undefined;
      const r = renderAtLoad(v, ctx, own);
      if ('value' in r) return r.value;
      ctx.p.add(`${what}'s "${k}" "${v}" must be known before the run (play vars, the role's variables, --extra-vars): ${r.error}; a ${k} chosen per host is not supported yet`, `${argPtr}/${k}`, label);
      return undefined;
    };
    const options = {
      tasksFrom: from('tasks_from'),
      varsFrom: from('vars_from'),
      defaultsFrom: from('defaults_from'),
      handlersFrom: from('handlers_from'),
      allowDuplicates: a.allow_duplicates !== false,
    };
    if (dynamic && isTemplated(a.name)) {
      const publish = ansiblePublic(a.public, argPtr, ctx, label);
      const d = dynamicInclude('include_role', a.name, argPtr, inner, own, { options, publish });
      return dynamicNode(t, ptr, ctx, what, d, own, loop, loopControl, label);
    }
    tasks = loadRoleEntry({ role: a.name, ...(dynamic ? {} : { vars: t.vars }) }, argPtr, inner, { ...options, ...(dynamic ? { sink: roleVars } : {}) });
  } else {
    for (const k of Object.keys(a)) if (k !== 'file' && k !== 'apply') ctx.p.add(`${what} has no argument "${k}"`, `${argPtr}/${k}`, label, 'key');
    if (typeof a.file !== 'string' || !a.file) {
      ctx.p.add(`${what} needs a file name`, argPtr, label);
      return null;
    }
    let file = a.file;
    if (isTemplated(file) && dynamic) {
      const d = dynamicInclude('include_tasks', file, argPtr, inner, own, null);
      return dynamicNode(t, ptr, ctx, what, d, own, loop, loopControl, label);
    }
    if (isTemplated(file)) {
      // import_tasks: chosen while the playbook loads, from play vars and --extra-vars only, as Ansible does.
      const rendered = renderAtLoad(file, ctx);
      if ('error' in rendered) {
        ctx.p.add(importNameError(what, file, rendered.error), argPtr, label);
        return null;
      }
      file = rendered.value;
    }
    tasks = loadIncludedTasks(file, argPtr, inner);
  }
  if (!tasks) return null;
  if (!dynamic) return tasks;
  return includeNode(t, ptr, ctx, what, { tasks, params: own }, loop, loopControl, what === 'include_role' && ansiblePublic(a.public, argPtr, ctx, label) ? roleVars : undefined);
}

/**
 * The task of an include whose name is a template: its tasks are chosen per host at run time; validate says so
 * and names the files it could check.
 */
function dynamicNode(
  t: Record<string, unknown>,
  ptr: string,
  ctx: LoadCtx,
  what: string,
  d: ReturnType<typeof dynamicInclude>,
  own: Record<string, unknown>,
  loop: ReturnType<typeof loopOf>,
  loopControl: { loop_var?: string; index_var?: string; label?: string },
  label: string,
): Task {
  const pos = positionOf(ctx.p.loc, ptr);
  const at = formatPos({ ...pos, file: path.relative(process.cwd(), pos.file) || pos.file });
  const checked = d.checked.map((c) => path.relative(ctx.play.playbookDir, c) || c);
  ctx.play.notes.push(
    `${at}: ${label}: ${what} "${d.include.name}" is resolved per host at run time; ` +
      (checked.length ? `checked the ${checked.length === 1 ? 'one' : checked.length} ${what === 'include_role' ? 'role' : 'file'}${checked.length === 1 ? '' : 's'} it can name now: ${checked.join(', ')}` : 'no file could be checked before the run'),
  );
  return includeNode(t, ptr, ctx, what, { tasks: d.tasks, params: own, dynamic: d.include }, loop, loopControl, undefined);
}

/** The task of an include_tasks / include_role: `when` and the loop decide whether and how often its tasks run. */
function includeNode(
  t: Record<string, unknown>,
  ptr: string,
  ctx: LoadCtx,
  what: string,
  include: NonNullable<Task['include']>,
  loop: ReturnType<typeof loopOf>,
  loopControl: { loop_var?: string; index_var?: string; label?: string },
  publish: RoleVars | undefined,
): Task {
  const node = baseTask(t, ptr, ctx, what);
  node.when = t.when;
  node.include = include;
  node.listen = ctx.handler ? asList(t.listen) : [];
  // include_role's public (false by default in Ansible 2.14): the role's defaults and vars join the play once the
  // include has run; until then, and without it, only the role's own tasks see them.
  if (publish) node.include.publish = publish;
  node.become = t.become as boolean | undefined;
  node.becomeUser = t.become_user as string | undefined;
  node.ignoreErrors = t.ignore_errors === true;
  if (loop) {
    node.loop = loop.value;
    node.loopKind = loop.kind;
    node.loopVar = loopControl.loop_var ?? 'item';
    node.indexVar = loopControl.index_var;
    node.loopLabel = loopControl.label;
    for (const [sptr] of strings(loop.value, '')) node.positions.set(`loop${sptr}`, positionOf(ctx.p.loc, `${ptr}/${loop.key}${sptr}`));
  }
  for (const [sptr] of strings(t.when, '')) node.positions.set(`when${sptr}`, positionOf(ctx.p.loc, `${ptr}/when${sptr}`));
  // The include's own conditions come after what encloses it, like any task's; enclosing vars are visible to them.
  return applyInherited(node, ctx.inherit);
}

/** include_role's `public`: a boolean as YAML or key=value writes it; a template is refused (it decides at load time). */
function ansiblePublic(v: unknown, argPtr: string, ctx: LoadCtx, label: string): boolean {
  if (v === undefined || typeof v === 'boolean') return v === true;
  const b = typeof v === 'string' ? kvBool(v) : undefined;
  if (b === undefined) ctx.p.add(`include_role's "public" must be true or false, got ${JSON.stringify(v)}`, `${argPtr}/public`, label);
  return b === true;
}

/** Arguments from a `key=value` string, typed where the module's schema wants a boolean. */
function shorthandArgs(mod: Module, text: string, argPtr: string, ctx: LoadCtx, label: string): Record<string, unknown> | null {
  let kv;
  try {
    kv = parseKv(text, mod.name === 'command' || mod.name === 'shell');
  } catch (e) {
    ctx.p.add((e as Error).message, argPtr, label);
    return null;
  }
  const props = (mod.schema.properties ?? {}) as Record<string, { type?: unknown; anyOf?: { type?: unknown }[] }>;
  const wantsBool = (k: string) => {
    const s = props[k];
    return !!s && (s.type === 'boolean' || (s.anyOf ?? []).some((x) => x.type === 'boolean'));
  };
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(kv.options)) {
    const b = wantsBool(k) ? kvBool(v) : undefined;
    out[k] = b ?? v;
  }
  if (kv.free !== null) {
    // A free-form module takes the rest as its text; `debug: hello world` is a message, as before.
    if (mod.freeForm) out[mod.freeForm] = Object.keys(kv.options).length && mod.freeForm in out ? out[mod.freeForm] : kv.free;
    else {
      ctx.p.add(`${mod.name} takes key=value arguments; "${kv.free}" is not one`, argPtr, label);
      return null;
    }
  }
  return out;
}

function parseTask(t: Record<string, unknown>, ptr: string, ctx: LoadCtx): Task | null {
  const p = ctx.p;
  const handler = ctx.handler;
  const keywords = handler ? HANDLER_KEYWORDS : TASK_KEYWORDS;
  const moduleKeys = Object.keys(t).filter((k) => !keywords.has(k));
  const known = moduleKeys.filter((k) => findModule(k));
  const unknown = moduleKeys.filter((k) => !findModule(k));
  const label = taskLabel(t, known[0] ?? unknown[0]);
  for (const k of unknown) {
    const at = pointer([...splitPointer(ptr), k]);
    if (!handler && k === 'listen') {
      p.add('"listen" is only for handlers', at, label, 'key');
      continue;
    }
    if (k === 'rescue' || k === 'always') {
      p.add(`"${k}" belongs to a block (a task with "block:")`, at, label, 'key');
      continue;
    }
    if (UNSUPPORTED_TASK_KEYWORDS.has(k)) {
      p.add(`"${k}": ${UNSUPPORTED_TASK_KEYWORDS.get(k)}`, at, label, 'key');
      continue;
    }
    if (k.startsWith('with_')) {
      p.add(`"${k}" is not supported yet; write the loop with "loop:" (supported: ${[...WITH_LOOPS].map((w) => `with_${w}`).join(', ')})`, at, label, 'key');
      continue;
    }
    const bare = moduleKeyName(k).replace(/^(community\.general|ansible\.posix|community\.crypto)\./, '');
    if (UNSUPPORTED_MODULES.has(bare)) {
      p.add(`module "${k}" is not supported yet`, at, label, 'key');
      continue;
    }
    const hint = didYouMean(k, [...moduleNames(), ...keywords]);
    p.add(`unknown module or keyword "${k}"${hint}`, at, label, 'key');
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
  if (handler && typeof t.name !== 'string' && !ctx.includedHandler) p.add('a handler needs a "name"', ptr, 'handler');
  if (handler && t.listen !== undefined && (Array.isArray(t.listen) ? t.listen : [t.listen]).some((x) => typeof x !== 'string')) {
    p.add('"listen" must be a string or a list of strings', `${ptr}/listen`, label);
  }
  for (const k of ['when', 'changed_when', 'failed_when', 'until'] as const) {
    for (const [sptr, s] of strings(t[k], `${ptr}/${k}`)) {
      const bad = checkConditionSyntax(s);
      if (bad) p.add(`invalid expression in "${k}": ${bad}`, sptr, label);
    }
  }
  if (typeof t.environment === 'string') p.add('environment as a template is not supported yet: give a mapping', `${ptr}/environment`, label);
  if (t.delegate_facts === true) {
    p.add('"delegate_facts": true is not supported yet (facts of a delegated task go to the host it runs for, as with the default false)', `${ptr}/delegate_facts`, label, 'key');
  }
  const delegate = delegateOf(t);
  const looped = t.loop !== undefined || Object.keys(t).some((k) => k.startsWith('with_'));
  if (delegate !== undefined && looped && isTemplated(delegate)) {
    const loopVar = (t.loop_control as { loop_var?: unknown } | undefined)?.loop_var ?? 'item';
    if (typeof loopVar === 'string' && new RegExp(`\\b${loopVar}\\b`).test(delegate)) {
      p.add(`delegate_to per loop item ("${loopVar}" in delegate_to) is not supported yet: give each target a task of its own`, `${ptr}/delegate_to`, label);
    }
  }
  const loop = loopOf(t, ptr, ctx, label);
  if (known.length !== 1) return null;
  const moduleKey = known[0]!;
  const mod = findModule(moduleKey)!;
  const argPtr = pointer([...splitPointer(ptr), moduleKey]);
  // Ansible gives the variables a run_once include_vars loads to every host of the batch; provision keeps them on
  // the host that ran it, so the other hosts would silently miss them.
  if (t.run_once === true && mod.name === 'include_vars') {
    p.add('run_once with include_vars is not supported yet (Ansible gives the variables to every host of the batch): drop run_once', `${ptr}/run_once`, label);
  }
  let args = t[moduleKey];
  if (args === null || args === undefined) args = {};
  if (typeof args === 'string') {
    const parsed = shorthandArgs(mod, args, argPtr, ctx, label);
    if (!parsed) return null;
    args = parsed;
  }
  if (typeof args !== 'object' || Array.isArray(args)) {
    p.add(`the arguments of ${mod.name} must be a mapping`, argPtr, label);
    return null;
  }
  // `args:` gives arguments too; those written with the module win, as in Ansible.
  if (t.args && typeof t.args === 'object' && !Array.isArray(t.args)) args = { ...(t.args as Record<string, unknown>), ...(args as Record<string, unknown>) };
  args = mod.aliases ? resolveAliases(mod, args as Record<string, unknown>, argPtr, p, label) : args;
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
  for (const k of Object.keys(t)) positions.set(k === moduleKey ? 'args' : k === loop?.key ? 'loop' : k, positionOf(p.loc, pointer([...splitPointer(ptr), k]), 'key'));
  // Every string a template may hide in, so a problem found before the run can point at it exactly.
  for (const k of ['when'] as const) for (const [sptr] of strings(t[k], '')) positions.set(`${k}${sptr}`, positionOf(p.loc, `${ptr}/${k}${sptr}`));
  if (loop) for (const [sptr] of strings(loop.value, '')) positions.set(`loop${sptr}`, positionOf(p.loc, `${ptr}/${loop.key}${sptr}`));
  for (const [sptr] of strings(args, '')) positions.set(`args${sptr}`, positionOf(p.loc, argPtr + sptr));
  if (Array.isArray(t.notify)) t.notify.forEach((_, j) => positions.set(`notify/${j}`, positionOf(p.loc, `${ptr}/notify/${j}`)));
  else if (t.notify !== undefined) positions.set('notify/0', positionOf(p.loc, `${ptr}/notify`));
  const loopControl = (t.loop_control ?? {}) as { loop_var?: string; index_var?: string; label?: unknown; pause?: number };
  const task = baseTask(t, ptr, ctx, mod.name);
  return Object.assign(task, {
    name: typeof t.name === 'string' && t.name ? t.name : mod.name,
    args: args as Record<string, unknown>,
    when: t.when,
    notify: asList(t.notify),
    register: t.register as string | undefined,
    loop: loop?.value,
    loopKind: loop?.kind ?? 'loop',
    loopVar: loopControl.loop_var ?? 'item',
    indexVar: loopControl.index_var,
    loopLabel: loopControl.label === undefined ? undefined : String(loopControl.label),
    loopPause: loopControl.pause,
    until: t.until,
    retries: t.retries,
    delay: t.delay,
    changedWhen: t.changed_when,
    failedWhen: t.failed_when,
    ignoreErrors: t.ignore_errors === true,
    noLog: t.no_log === true,
    checkMode: t.check_mode as boolean | undefined,
    diff: t.diff as boolean | undefined,
    become: t.become as boolean | undefined,
    becomeUser: t.become_user as string | undefined,
    vars: (t.vars ?? {}) as Record<string, unknown>,
    local: isLocal(t) === true,
    ...(delegateOf(t) !== undefined ? { delegateTo: delegateOf(t) } : {}),
    runOnce: t.run_once === true,
    environment: (t.environment && typeof t.environment === 'object' ? t.environment : {}) as Record<string, unknown>,
    listen: asList(t.listen),
    positions,
  });
}

/** Ansible's documented aliases of a module's arguments, renamed to the name provision uses. */
function resolveAliases(mod: Module, args: Record<string, unknown>, argPtr: string, p: Problems, label: string): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(args)) {
    const canonical = mod.aliases![k] ?? k;
    if (canonical !== k && k in args && canonical in args) {
      p.add(`"${k}" and "${canonical}" name the same argument of ${mod.name}; give one`, `${argPtr}/${k}`, label, 'key');
      continue;
    }
    out[canonical] = v;
  }
  return out;
}

function parsePlay(raw: Record<string, unknown>, ptr: string, p: Problems, load: Omit<PlayLoad, 'handlers' | 'roleDefaults' | 'roleVars' | 'seenRoles' | 'vars'>): Play {
  const playVars = raw.vars && typeof raw.vars === 'object' && !Array.isArray(raw.vars) ? (raw.vars as Record<string, unknown>) : {};
  // vars_files named literally are known at load time too (above play vars, as in Ansible); problems in them are
  // reported when the run reads them.
  const filesVars = Object.assign({}, ...(Array.isArray(raw.vars_files) ? raw.vars_files : []).map((f) => literalVarsFile(f, load.playbookDir))) as Record<string, unknown>;
  const playLoad: PlayLoad = { ...load, vars: { ...playVars, ...filesVars }, handlers: [], roleDefaults: {}, roleVars: {}, seenRoles: new Set() };
  const inherit = inheritFrom(NOTHING_INHERITED, { environment: raw.environment });
  if (typeof raw.environment === 'string') p.add('environment as a template is not supported yet: give a mapping', `${ptr}/environment`);
  const ctx = (handler: boolean): LoadCtx => ({ p, dir: load.playbookDir, handler, inherit, play: playLoad, depth: 0, scopeNames: [] });
  const section = (key: 'pre_tasks' | 'tasks' | 'post_tasks' | 'handlers') => parseTaskList(Array.isArray(raw[key]) ? raw[key] : [], `${ptr}/${key}`, ctx(key === 'handlers'));
  const preTasks = section('pre_tasks');
  const roleTasks: Task[] = [];
  if (Array.isArray(raw.roles)) raw.roles.forEach((entry, i) => roleTasks.push(...(loadRoleEntry(entry, `${ptr}/roles/${i}`, ctx(false)) ?? [])));
  const tasks = section('tasks');
  const postTasks = section('post_tasks');
  const handlers = section('handlers');
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
    preTasks,
    tasks: [...roleTasks, ...tasks],
    postTasks,
    // Handlers of roles come first: they are defined before the play's own, as Ansible orders them.
    handlers: [...playLoad.handlers, ...handlers],
    roleDefaults: playLoad.roleDefaults,
    roleVars: playLoad.roleVars,
    local: raw.connection === 'local',
    environment: inherit.environment,
    pos: positionOf(p.loc, ptr),
  };
  if (play.local) for (const t of allTasks(play)) t.local = true;
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

/** The variables of a vars_files entry named without a template; none when it cannot be read as a mapping. */
function literalVarsFile(name: unknown, playbookDir: string): Record<string, unknown> {
  if (typeof name !== 'string' || isTemplated(name)) return {};
  try {
    const v = readYamlFile(path.resolve(playbookDir, name), 'vars file', { floats: true }).value;
    return v && typeof v === 'object' && !Array.isArray(v) ? (v as Record<string, unknown>) : {};
  } catch {
    // Unreadable, or vaulted without a password: the run reads it again and says why.
    return {};
  }
}

/** How a playbook is loaded: where roles are looked up besides roles/ beside the playbook. */
export interface LoadOptions {
  /** `--roles-path` entries (before ANSIBLE_ROLES_PATH and ansible.cfg's roles_path) */
  rolesPath?: string[];
  /** `--extra-vars`: an import's templated name may use them */
  extraVars?: Record<string, unknown>;
}

/** Load, check and normalise a playbook file. Throws InputErrors listing every problem found. */
export function loadPlaybook(file: string, opts: LoadOptions = {}): Playbook {
  const errors: InputError[] = [];
  const notes: string[] = [];
  const plays = loadPlays(file, opts, errors, 0, notes);
  if (errors.length) throw new InputErrors(errors.slice(0, 50));
  return { file, dir: path.dirname(path.resolve(file)), plays, notes };
}

function loadPlays(file: string, opts: LoadOptions, errors: InputError[], depth: number, notes: string[]): Play[] {
  const loc = readYamlFile(file, 'playbook');
  const p = new Problems(loc, errors);
  const data = loc.value;
  if (!Array.isArray(data)) {
    throw new InputError('a playbook is a list of plays (each starting with "- hosts: …")', positionOf(loc, ''));
  }
  if (data.length === 0) throw new InputError('the playbook has no plays', positionOf(loc, ''));
  const isImport = (raw: unknown) => !!raw && typeof raw === 'object' && !Array.isArray(raw) && Object.keys(raw).some((k) => moduleKeyName(k) === 'import_playbook');
  if (!validatePlays(data)) {
    for (const err of describeAjvErrors(validatePlays.errors ?? [], data, 'play', (parent) =>
      /^\/\d+$/.test(parent) ? Object.keys((playSchema.$defs.play as { properties: object }).properties) : [],
    )) {
      // A task or handler that is not a mapping is reported once, by parseTask, in its own words.
      if (/^\/\d+\/(pre_tasks|tasks|post_tasks|handlers)\/\d+$/.test(err.ptr)) continue;
      const m = /^\/(\d+)/.exec(err.ptr);
      const play = m ? (data[Number(m[1])] as Record<string, unknown> | undefined) : undefined;
      if (isImport(play)) continue;
      const label = play && typeof play.name === 'string' ? `play "${play.name}"` : `play ${m ? Number(m[1]) + 1 : ''}`.trim();
      const extra = /^\/\d+\/([^/]+)$/.exec(err.ptr)?.[1];
      let message = err.message.replace(/^play has no argument/, 'play has no keyword');
      if (extra && /^play has no keyword/.test(message) && UNSUPPORTED_PLAY_KEYWORDS.has(extra)) message = `"${extra}": ${UNSUPPORTED_PLAY_KEYWORDS.get(extra)}`;
      if (extra && /^play has no keyword/.test(message) && (TASK_KEYWORDS.has(extra) || findModule(extra))) message = `"${extra}" belongs to a task, not to a play (put it under tasks:)`;
      // A mistake in the play itself (not a mapping, a missing keyword) names the play in the message.
      if (m && err.ptr === m[0]) p.add(message.replace(/^play \d+/, label), err.ptr, undefined, err.prefer);
      else p.add(message, err.ptr, label, err.prefer);
    }
  }
  const dir = path.dirname(path.resolve(file));
  const rolesPath = rolesPathFor(dir, opts.rolesPath ?? []);
  const plays: Play[] = [];
  data.forEach((raw, i) => {
    if (isImport(raw)) {
      const r = raw as Record<string, unknown>;
      const key = Object.keys(r).find((k) => moduleKeyName(k) === 'import_playbook')!;
      const target = r[key];
      for (const k of Object.keys(r)) if (k !== key && k !== 'name' && k !== 'vars') p.add(`"${k}" is not supported on import_playbook yet`, `/${i}/${k}`, 'import_playbook', 'key');
      if (typeof target !== 'string' || isTemplated(target)) {
        p.add('import_playbook takes a file name', `/${i}/${key}`, 'import_playbook');
        return;
      }
      if (depth > 20) {
        p.add('import_playbook nested more than 20 deep (does a playbook import itself?)', `/${i}/${key}`, 'import_playbook');
        return;
      }
      try {
        const imported = loadPlays(path.resolve(dir, target), opts, errors, depth + 1, notes);
        const vars = (r.vars ?? {}) as Record<string, unknown>;
        for (const pl of imported) pl.vars = { ...pl.vars, ...vars };
        plays.push(...imported);
      } catch (e) {
        if (e instanceof InputError) errors.push(e);
        else throw e;
      }
      return;
    }
    if (raw && typeof raw === 'object' && !Array.isArray(raw)) plays.push(parsePlay(raw as Record<string, unknown>, `/${i}`, p, { playbookDir: dir, rolesPath, extraVars: opts.extraVars ?? {}, notes }));
  });
  return plays;
}

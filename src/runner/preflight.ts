/**
 * Checks made on the controller before any host is touched, so that a playbook that cannot work is bad input
 * (exit 1) and nothing changes anywhere: templates that read a name nothing in the run can define, or that reach
 * for JavaScript internals or other templates; `src:` files that are missing or lie outside the playbook
 * directory. Only what is certain before the run is refused: a name that some host, play, register, set_fact,
 * loop or --extra-vars could define passes, as does a name a template only tests (`x is defined`) or defaults.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { InputError, type SourcePos } from '../errors.js';
import { resolveSource } from '../modules/copy.js';
import { findModule } from '../modules/index.js';
import { ModuleError } from '../modules/module.js';
import { isTemplated, templateRefs, templateShapeProblem, type TemplatePlace } from '../playbook/template.js';
import { allTasks, type Playbook, type Task } from '../playbook/types.js';
import { didYouMean } from '../util/suggest.js';
import type { VaultedValue } from '../util/vault.js';

/** Names the runner itself gives every task (see HostRun.vars). */
export const RUNNER_NAMES: readonly string[] = [
  'facts',
  'ansible_check_mode',
  'playbook_dir',
  'ansible_search_path',
  'hostvars',
  'play_hosts',
  'ansible_play_hosts',
  'ansible_play_hosts_all',
  'ansible_play_batch',
  'ansible_version',
  'ansible_managed',
  'omit',
];
/** Names the inventory gives every host even when it sets no variable. */
export const INVENTORY_NAMES: readonly string[] = ['inventory_hostname', 'inventory_hostname_short', 'group_names', 'groups', 'inventory_file', 'inventory_dir'];

export interface PreflightScope {
  /**
   * Every variable name some host of the run has from the inventory, plus the extra vars; null when the
   * inventory is not known (`provision validate` without -i): then names are not checked.
   */
  names: ReadonlySet<string> | null;
  /** variables whose value is vault-encrypted and no password was given: a task that uses one is refused */
  vaulted?: ReadonlyMap<string, VaultedValue>;
}

/** A string of a task where a template may be, and how it is read. */
interface TemplateSite {
  text: string;
  /** a bare expression (when:, assert's that:, debug's var:) rather than text with {{ }} */
  expression: boolean;
  pos: SourcePos;
}

function stringsIn(v: unknown, ptr: string, out: [string, string][] = []): [string, string][] {
  if (typeof v === 'string') out.push([ptr, v]);
  else if (Array.isArray(v)) v.forEach((x, i) => stringsIn(x, `${ptr}/${i}`, out));
  else if (v && typeof v === 'object') for (const [k, x] of Object.entries(v)) stringsIn(x, `${ptr}/${k.replace(/~/g, '~0').replace(/\//g, '~1')}`, out);
  return out;
}

/** Where templates hide in a task: its module arguments, `when`, `loop` and templated `notify` names. */
function sitesOf(task: Task): TemplateSite[] {
  const raw = new Set(findModule(task.module)?.raw ?? []);
  const at = (key: string) => task.positions.get(key) ?? task.positions.get(key.split('/')[0]!) ?? task.pos;
  const sites: TemplateSite[] = [];
  for (const [ptr, text] of stringsIn(task.args, '')) {
    const expression = raw.has(ptr.split('/')[1] ?? '');
    if (expression || isTemplated(text)) sites.push({ text, expression, pos: at(`args${ptr}`) });
  }
  for (const [ptr, text] of stringsIn(task.when, '')) sites.push({ text, expression: true, pos: at(`when${ptr}`) });
  for (const [ptr, text] of stringsIn(task.loop, '')) if (isTemplated(text)) sites.push({ text, expression: false, pos: at(`loop${ptr}`) });
  task.notify.forEach((n, j) => {
    if (isTemplated(n)) sites.push({ text: n, expression: false, pos: at(`notify/${j}`) });
  });
  return sites;
}

/** Names that registers and set_fact define anywhere in the playbook: a host keeps them from play to play. */
export function runNames(playbook: Playbook): Set<string> {
  const out = new Set<string>();
  for (const play of playbook.plays) {
    for (const t of allTasks(play)) {
      if (t.register) out.add(t.register);
      if (t.module === 'set_fact') for (const k of Object.keys(t.args)) out.add(k);
    }
  }
  return out;
}

function undefinedVariable(name: string, known: ReadonlySet<string>, pos: SourcePos, label: string): InputError {
  const defined = 'inventory, play vars, vars_files, register, set_fact, loop or --extra-vars';
  return new InputError(`undefined variable "${name}": nothing in this run defines it (${defined})${didYouMean(name, known)}`, pos, label);
}

/** `hostvars[h].name` where the playbook registers or sets `name`: provision does not share those (see makeHostvars). */
function unsharedRead(name: string, pos: SourcePos, label: string): InputError {
  return new InputError(
    `hostvars[…].${name}: "${name}" is registered or set with set_fact in this playbook, and provision does not share such variables through hostvars (Ansible gives another host's value as it stands at that moment of its lockstep run, which provision, running hosts apart, cannot give exactly); use it on its own host, or make it an inventory variable`,
    pos,
    label,
  );
}

function placeIn(file: string, p: TemplatePlace): SourcePos {
  return { file, line: p.line, col: p.col };
}

/** Problems with one task; `known` is null when names are not checked. */
function checkTask(task: Task, known: ReadonlySet<string> | null, unshared: ReadonlySet<string>, playbookDir: string, label: string, vaulted?: ReadonlyMap<string, VaultedValue>): InputError[] {
  const errors: InputError[] = [];
  const sites = sitesOf(task);
  const analysed = sites.map((s) => ({ site: s, refs: templateRefs(s.text, s.expression) }));
  const guarded = new Set(analysed.flatMap((a) => [...(a.refs?.guarded ?? [])]));
  const taskKnown = known
    ? new Set([
        ...known,
        ...Object.keys(task.vars),
        ...task.scopeNames,
        ...(task.role ? [...Object.keys(task.role.defaults), ...Object.keys(task.role.vars), ...Object.keys(task.role.params), 'role_path', 'role_name'] : []),
        ...(task.loop !== undefined ? [task.loopVar, ...(task.indexVar ? [task.indexVar] : [])] : []),
      ])
    : null;
  const undefinedName = (name: string, pos: SourcePos) => {
    // ansible_* names are facts (known once gathered) or connection settings: never refused before the run.
    if (!taskKnown || taskKnown.has(name) || guarded.has(name) || name.startsWith('ansible_')) return;
    errors.push(undefinedVariable(name, taskKnown, pos, label));
  };
  for (const { site, refs } of analysed) {
    if (!refs) continue;
    for (const p of refs.problems) errors.push(new InputError(p.message, site.pos, label));
    for (const key of refs.hostvarsKeys.keys()) if (unshared.has(key)) errors.push(unsharedRead(key, site.pos, label));
    for (const name of refs.names.keys()) {
      undefinedName(name, site.pos);
      const v = vaulted?.get(name);
      if (v) errors.push(new InputError(`"${name}": ${v.message()}`, site.pos, label));
    }
  }

  // Local files named by a literal src: found, inside the playbook directory (unless allowed), and for a
  // template its own text checked the same way.
  const mod = task.module;
  const src = task.args.src;
  if ((mod === 'copy' || mod === 'template') && typeof src === 'string' && !isTemplated(src)) {
    const pos = task.positions.get('args/src') ?? task.positions.get('args') ?? task.pos;
    let file: string;
    try {
      file = resolveSource(playbookDir, src, mod === 'copy' ? 'files' : 'templates', task.args.src_outside_playbook === true, task.role?.dir);
    } catch (e) {
      if (e instanceof ModuleError) {
        errors.push(new InputError(e.message, pos, label));
        return errors;
      }
      throw e;
    }
    if (mod === 'template') errors.push(...checkTemplateFile(file, taskKnown, guarded, unshared, label));
  }
  return errors;
}

function checkTemplateFile(file: string, known: ReadonlySet<string> | null, guarded: ReadonlySet<string>, unshared: ReadonlySet<string>, label: string): InputError[] {
  const shown = path.relative(process.cwd(), file) || file;
  const text = readFileSync(file, 'utf8');
  const shape = templateShapeProblem(text);
  if (shape) return [new InputError(shape, { file: shown, line: 1, col: 1 }, label)];
  const refs = templateRefs(text);
  if (!refs) return [];
  const errors = refs.problems.map((p) => new InputError(p.message, placeIn(shown, p.place), label));
  for (const [key, place] of refs.hostvarsKeys) if (unshared.has(key)) errors.push(unsharedRead(key, placeIn(shown, place), label));
  for (const [name, place] of refs.names) {
    if (!known || known.has(name) || guarded.has(name) || refs.guarded.has(name) || name.startsWith('ansible_')) continue;
    errors.push(undefinedVariable(name, known, placeIn(shown, place), label));
  }
  return errors;
}

/**
 * Everything found wrong before the run, at most 50 problems. Play vars must already include what the play's
 * vars_files define.
 */
export function preflight(playbook: Playbook, scope: PreflightScope): InputError[] {
  const registered = runNames(playbook);
  const errors: InputError[] = [];
  for (const play of playbook.plays) {
    // Variables an include_vars file defines are only known when it is read: names are not checked in such a play.
    const includesVars = allTasks(play).some((t) => t.module === 'include_vars');
    const known =
      scope.names && !includesVars
        ? new Set([...scope.names, ...RUNNER_NAMES, ...INVENTORY_NAMES, ...registered, ...Object.keys(play.vars), ...Object.keys(play.roleDefaults), ...Object.keys(play.roleVars)])
        : null;
    for (const task of allTasks(play)) {
      errors.push(...checkTask(task, known, registered, playbook.dir, `task "${task.name}"`, scope.vaulted));
      if (errors.length >= 50) return errors.slice(0, 50);
    }
  }
  return errors;
}

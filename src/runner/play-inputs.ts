/**
 * What a play reads before any host is touched: the hosts it targets and its vars files. Apart from the runner
 * so that `provision validate` can use them without loading it.
 */
import { InputError } from '../errors.js';
import { selectHosts } from '../inventory/patterns.js';
import type { Inventory } from '../inventory/types.js';
import { pointer, positionOf, readYamlFile } from '../playbook/load.js';
import { isTemplated } from '../playbook/template.js';
import { allTasks, type Playbook } from '../playbook/types.js';

/** Hosts a play targets: its pattern, narrowed by --limit, in the play's order. */
export function playHosts(inv: Inventory, pattern: string, limit: string | undefined, baseDir: string): string[] {
  let hosts = selectHosts(inv, pattern, { baseDir });
  if (limit) {
    const allowed = new Set(selectHosts(inv, limit, { baseDir: process.cwd() }));
    hosts = hosts.filter((h) => allowed.has(h));
  }
  return hosts;
}

/** A vars file: a mapping whose keys are valid variable names (a bad one is named with its file:line:col). */
export function readVarsFile(file: string): Record<string, unknown> {
  const loc = readYamlFile(file, 'vars file', { floats: true });
  if (loc.value === null) return {};
  if (typeof loc.value !== 'object' || Array.isArray(loc.value)) {
    throw new InputError('a vars file must be a mapping of names to values', { file, line: 1, col: 1 });
  }
  for (const name of Object.keys(loc.value)) {
    if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(name)) {
      throw new InputError(`${JSON.stringify(name)} is not a valid variable name (letters, digits and _, not starting with a digit)`, positionOf(loc, pointer([name]), 'key'));
    }
  }
  return loc.value as Record<string, unknown>;
}

/** Why a delegation target outside the inventory is refused (after its quoted name). */
export const NOT_AN_INVENTORY_HOST = 'is not a host of the inventory (provision delegates only to inventory hosts, whose connection settings it knows)';

/** Tasks delegated to a host written as is (not a template) that is not an inventory host. */
export function delegateProblems(playbook: Playbook, inventory: Inventory): InputError[] {
  const out: InputError[] = [];
  for (const play of playbook.plays) {
    for (const task of allTasks(play)) {
      const to = task.delegateTo;
      if (to === undefined || isTemplated(to) || inventory.hosts.has(to)) continue;
      const msg = `delegate_to: "${to}" ${NOT_AN_INVENTORY_HOST}`;
      out.push(new InputError(msg, task.positions.get('delegate_to') ?? task.pos, `task "${task.name}"`));
    }
  }
  return out;
}

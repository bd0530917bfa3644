/** `validate`, `inventory` and `schema`: commands that read files only and never connect to a host. */
import path from 'node:path';
import { InputError, InputErrors } from '../errors.js';
import { loadInventory } from '../inventory/load.js';
import { hostVars, inventoryGraph, inventoryHost, inventoryList } from '../inventory/vars.js';
import { buildPlaybookSchema } from '../playbook/schema.js';
import { allTasks } from '../playbook/types.js';
import { loadPlaybook } from '../playbook/validate.js';
import { preflight } from '../runner/preflight.js';
import { delegateProblems, playHosts, readVarsFile } from '../runner/play-inputs.js';
import { forDisplay } from '../util/vault.js';
import { type CliIO, parseExtraVars, warnUnmatched } from './shared.js';
import { setupVault, type VaultFlags } from './vault-secrets.js';

export async function commandValidate(
  playbookFile: string,
  flags: { inventory?: string[]; limit?: string; extraVars?: string[]; rolesPath?: string[] } & VaultFlags,
  io: CliIO,
): Promise<number> {
  await setupVault(flags, io.stdinIsTTY);
  const extraVars = parseExtraVars(flags.extraVars ?? []);
  const playbook = loadPlaybook(playbookFile, { rolesPath: flags.rolesPath, extraVars });
  // Names are only checked when every variable source is known: the inventory, and vars files named literally.
  let names: Set<string> | null = null;
  if (flags.inventory?.length) names = new Set(Object.keys(extraVars));
  for (const play of playbook.plays) {
    for (const f of play.varsFiles) {
      if (f.includes('{{')) {
        names = null;
        continue;
      }
      const vars = readVarsFile(path.resolve(playbook.dir, f));
      for (const k of Object.keys(vars)) names?.add(k);
    }
  }
  const tasks = playbook.plays.reduce((n, p) => n + allTasks(p).length, 0);
  const lines = [`${playbookFile}: ${playbook.plays.length} play${playbook.plays.length === 1 ? '' : 's'}, ${tasks} tasks and handlers: valid`];
  const inventory = flags.inventory?.length ? loadInventory(flags.inventory) : null;
  for (const w of inventory?.warnings ?? []) io.err(`warning: ${w}\n`);
  if (inventory && names) {
    for (const play of playbook.plays) {
      for (const h of playHosts(inventory, play.hosts, flags.limit, playbook.dir)) for (const k of Object.keys(hostVars(inventory, h))) names.add(k);
    }
  }
  const problems = [...preflight(playbook, { names }), ...(inventory ? delegateProblems(playbook, inventory) : [])];
  if (problems.length) throw new InputErrors(problems);
  if (inventory) {
    warnUnmatched(inventory, playbook, flags.limit, io);
    for (const play of playbook.plays) {
      const hosts = playHosts(inventory, play.hosts, flags.limit, playbook.dir);
      lines.push(`  play "${play.name}": ${hosts.length} host${hosts.length === 1 ? '' : 's'}${hosts.length ? ` (${hosts.slice(0, 5).join(', ')}${hosts.length > 5 ? ', …' : ''})` : ''}`);
    }
  }
  // What is only known per host: an include whose name is a template.
  for (const n of playbook.notes) lines.push(`  note: ${n}`);
  io.out(`${lines.join('\n')}\n`);
  return 0;
}

export async function commandInventory(flags: { inventory: string[]; list?: boolean; graph?: string | boolean; host?: string } & VaultFlags, io: CliIO): Promise<number> {
  await setupVault(flags, io.stdinIsTTY);
  const chosen = [flags.list, flags.graph !== undefined, flags.host !== undefined].filter(Boolean).length;
  if (chosen !== 1) throw new InputError('inventory: give exactly one of --list, --graph, --host NAME');
  const inventory = loadInventory(flags.inventory);
  for (const w of inventory.warnings ?? []) io.err(`warning: ${w}\n`);
  if (flags.list) io.out(`${JSON.stringify(forDisplay(inventoryList(inventory)), null, 2)}\n`);
  else if (flags.host !== undefined) io.out(`${JSON.stringify(forDisplay(inventoryHost(inventory, flags.host)), null, 2)}\n`);
  else io.out(`${inventoryGraph(inventory, typeof flags.graph === 'string' ? flags.graph : 'all')}\n`);
  return 0;
}

export async function commandSchema(io: CliIO): Promise<number> {
  io.out(`${JSON.stringify(buildPlaybookSchema(), null, 2)}\n`);
  return 0;
}

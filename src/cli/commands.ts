/** Each command as a function of its flags that returns an exit code; main.ts only wires flags to these. */
import path from 'node:path';
import type { Connection } from '../connection/connection.js';
import { LocalConnection } from '../connection/local.js';
import { createSecrets } from '../connection/secrets.js';
import { createSshRunState, SshConnection } from '../connection/ssh.js';
import { defaultSshConfigPath, loadSshConfig, type HostKeyChecking } from '../connection/ssh-config.js';
import { resolveSshTarget } from '../connection/ssh-target.js';
import { InputError, InputErrors } from '../errors.js';
import { loadInventory } from '../inventory/load.js';
import { unmatchedPatterns } from '../inventory/patterns.js';
import { hostVars, inventoryGraph, inventoryHost, inventoryList } from '../inventory/vars.js';
import type { Inventory } from '../inventory/types.js';
import { allTasks, type Playbook } from '../playbook/types.js';
import { forDisplay } from '../util/vault.js';
import { setupVault, type VaultFlags } from './vault-secrets.js';
import { parseYaml, readYamlFile } from '../playbook/load.js';
import { buildPlaybookSchema } from '../playbook/schema.js';
import { loadPlaybook } from '../playbook/validate.js';
import { JsonReporter } from '../report/json.js';
import { ListrReporter } from '../report/listr.js';
import { PlainReporter, type Reporter } from '../report/plain.js';
import { preflight } from '../runner/preflight.js';
import { playHosts, readVarsFile, runPlaybook } from '../runner/run.js';
import { cacheDir } from '../util/cache-dir.js';
import { splitWords } from '../util/words.js';

export interface CliIO {
  out(s: string): void;
  err(s: string): void;
  /** stdout is a terminal: listr2 view and colours */
  isTTY: boolean;
  /** someone can answer a password prompt */
  stdinIsTTY: boolean;
  version: string;
  /** call fn on Ctrl-C; returns a function that stops listening */
  onInterrupt(fn: () => void): () => void;
}

export interface RunFlags extends VaultFlags {
  inventory: string[];
  /** `--roles-path`: colon-separated directories, repeatable */
  rolesPath?: string[];
  limit?: string;
  forks: number;
  extraVars?: string[];
  tags?: string[];
  skipTags?: string[];
  diff?: boolean;
  check?: boolean;
  user?: string;
  privateKey?: string;
  askPass?: boolean;
  become?: boolean;
  becomeUser?: string;
  askBecomePass?: boolean;
  sshConfig?: string;
  hostKeyChecking?: HostKeyChecking;
  timeout?: number;
  canary: number;
  lockTimeout: number;
  retryFile?: string | false;
  json?: boolean;
  verbose?: boolean;
  debug?: boolean;
}

/** `-e` values: key=value words, an inline YAML/JSON mapping, or @file. Later ones override earlier ones. */
export function parseExtraVars(values: string[]): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const raw of values) {
    const v = raw.trim();
    let parsed: unknown;
    if (v.startsWith('@')) {
      parsed = readYamlFile(v.slice(1), 'extra vars file').value;
    } else if (v.startsWith('{')) {
      parsed = parseYaml(v, '--extra-vars').value;
    } else {
      let words: string[];
      try {
        words = splitWords(v);
      } catch (e) {
        throw new InputError(`--extra-vars: ${(e as Error).message}`);
      }
      parsed = {};
      for (const w of words) {
        const i = w.indexOf('=');
        if (i <= 0) throw new InputError(`--extra-vars: expected key=value, got "${w}"`);
        (parsed as Record<string, unknown>)[w.slice(0, i)] = w.slice(i + 1);
      }
    }
    if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed)) {
      throw new InputError(`--extra-vars ${raw}: expected a mapping of names to values`);
    }
    for (const k of Object.keys(parsed)) {
      const source = v.startsWith('@') ? `--extra-vars ${v}` : '--extra-vars';
      if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(k)) throw new InputError(`${source}: ${JSON.stringify(k)} is not a valid variable name`);
    }
    Object.assign(out, parsed);
  }
  return out;
}

function pickReporter(flags: RunFlags, io: CliIO): Reporter {
  if (flags.json) return new JsonReporter(io.out);
  if (io.isTTY) return new ListrReporter(io.out, true);
  return new PlainReporter(io.out, false, flags.verbose === true);
}

/** Warn about each host pattern of the plays and of --limit that matches no host or group of the inventory. */
function warnUnmatched(inv: Inventory, playbook: Playbook, limit: string | undefined, io: CliIO): void {
  for (const p of [...playbook.plays.map((play) => play.hosts), ...(limit ? [limit] : [])]) {
    for (const u of unmatchedPatterns(inv, p)) io.err(`warning: "${u}" matches no host or group\n`);
  }
}

export async function commandRun(playbookFile: string, flags: RunFlags, io: CliIO): Promise<number> {
  await setupVault(flags, io.stdinIsTTY);
  const playbook = loadPlaybook(playbookFile, { rolesPath: flags.rolesPath });
  const inventory = loadInventory(flags.inventory);
  const extraVars = parseExtraVars(flags.extraVars ?? []);
  for (const w of inventory.warnings ?? []) io.err(`warning: ${w}\n`);
  warnUnmatched(inventory, playbook, flags.limit, io);
  const sshConfigFile = flags.sshConfig ?? defaultSshConfigPath();
  const sshConfig = sshConfigFile ? loadSshConfig(sshConfigFile) : null;
  const secrets = createSecrets({ interactive: io.stdinIsTTY, askPass: flags.askPass, askBecomePass: flags.askBecomePass });
  // Asked before anything runs, once: fifty hosts must not each prompt.
  const becomePassword = flags.askBecomePass ? await secrets.password('become') : undefined;
  // A warning about a host outside any task (a changed host key let through) goes to the run's reporter.
  const sshState = createSshRunState(secrets, { warn: (host, msg) => reporter.handle({ type: 'warning', host, msg }) });
  const cli = { user: flags.user, privateKey: flags.privateKey, hostKeyChecking: flags.hostKeyChecking, timeoutS: flags.timeout };

  const connectionFor = (host: string, vars: Record<string, unknown>): Connection => {
    const kind = vars.ansible_connection ?? 'ssh';
    if (kind === 'local') return new LocalConnection(host);
    if (kind !== 'ssh' && kind !== 'paramiko' && kind !== 'smart') {
      throw new InputError(`host "${host}": ansible_connection "${String(kind)}" is not supported (use ssh or local)`);
    }
    return new SshConnection(resolveSshTarget(host, vars, cli, sshConfig), sshState);
  };

  const reporter = pickReporter(flags, io);
  let interrupted = false;
  const stopListening = io.onInterrupt(() => {
    if (interrupted) {
      io.err('\nprovision: interrupted twice, exiting now\n');
      process.exit(130);
    }
    interrupted = true;
    io.err('\nprovision: stopping: no new tasks will start; tasks in flight finish (Ctrl-C again to quit now)\n');
  });
  try {
    const report = await runPlaybook({
      playbook,
      inventory,
      check: flags.check === true,
      diff: flags.diff === true,
      limit: flags.limit,
      forks: flags.forks,
      extraVars,
      tags: flags.tags ?? [],
      skipTags: flags.skipTags ?? [],
      become: flags.become === true,
      becomeUser: flags.becomeUser,
      becomePassword,
      canary: flags.canary,
      lockTimeoutS: flags.lockTimeout,
      retryFile: flags.retryFile === false ? null : flags.retryFile,
      cacheDir: cacheDir(),
      connectionFor,
      emit: (e) => reporter.handle(e),
      interrupted: () => interrupted,
    });
    return report.exitCode;
  } finally {
    // Also after an error: a terminal view left running would keep the process alive.
    await reporter.finish();
    stopListening();
  }
}

export function commandCheck(playbookFile: string, flags: RunFlags, io: CliIO): Promise<number> {
  return commandRun(playbookFile, { ...flags, check: true, diff: true }, io);
}

export async function commandValidate(
  playbookFile: string,
  flags: { inventory?: string[]; limit?: string; extraVars?: string[]; rolesPath?: string[] } & VaultFlags,
  io: CliIO,
): Promise<number> {
  await setupVault(flags, io.stdinIsTTY);
  const playbook = loadPlaybook(playbookFile, { rolesPath: flags.rolesPath });
  const extraVars = parseExtraVars(flags.extraVars ?? []);
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
  const problems = preflight(playbook, { names });
  if (problems.length) throw new InputErrors(problems);
  if (inventory) {
    warnUnmatched(inventory, playbook, flags.limit, io);
    for (const play of playbook.plays) {
      const hosts = playHosts(inventory, play.hosts, flags.limit, playbook.dir);
      lines.push(`  play "${play.name}": ${hosts.length} host${hosts.length === 1 ? '' : 's'}${hosts.length ? ` (${hosts.slice(0, 5).join(', ')}${hosts.length > 5 ? ', …' : ''})` : ''}`);
    }
  }
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

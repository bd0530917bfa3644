/**
 * What every command shares: the terminal wiring, the run flags, `-e` parsing and the unmatched-pattern warning.
 * Kept apart from the commands so that `validate` and `inventory` load no SSH, reporters or runner.
 */
import type { HostKeyChecking } from '../connection/ssh-config.js';
import { InputError } from '../errors.js';
import { unmatchedPatterns } from '../inventory/patterns.js';
import type { Inventory } from '../inventory/types.js';
import { parseYaml, readYamlFile } from '../playbook/load.js';
import type { Playbook } from '../playbook/types.js';
import { splitWords } from '../util/words.js';
import type { VaultFlags } from './vault-secrets.js';

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
      parsed = readYamlFile(v.slice(1), 'extra vars file', { floats: true }).value;
    } else if (v.startsWith('{')) {
      parsed = parseYaml(v, '--extra-vars', { floats: true }).value;
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

export /** Warn about each host pattern of the plays and of --limit that matches no host or group of the inventory. */
function warnUnmatched(inv: Inventory, playbook: Playbook, limit: string | undefined, io: CliIO): void {
  for (const p of [...playbook.plays.map((play) => play.hosts), ...(limit ? [limit] : [])]) {
    for (const u of unmatchedPatterns(inv, p)) io.err(`warning: "${u}" matches no host or group\n`);
  }
}


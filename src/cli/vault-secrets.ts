/**
 * Vault passwords for a run, from the flags Ansible has: --vault-password-file (a file, or an executable that
 * prints the password), --ask-vault-pass, --vault-id [label@]source (source: a file, an executable, or "prompt"),
 * and ANSIBLE_VAULT_PASSWORD_FILE. Read once, before any playbook or inventory file.
 */
import { spawnSync } from 'node:child_process';
import { accessSync, constants, readFileSync, statSync } from 'node:fs';
import { promptOnTerminal } from '../connection/secrets.js';
import { InputError } from '../errors.js';
import { setVaultSecrets, type VaultSecret } from '../util/vault.js';

export interface VaultFlags {
  vaultPasswordFile?: string[];
  askVaultPass?: boolean;
  vaultId?: string[];
}

function fromSource(source: string, id: string, interactive: boolean, ask: (prompt: string) => Promise<string>): Promise<Buffer> | Buffer {
  if (source === 'prompt') {
    if (!interactive) throw new InputError('cannot ask for the vault password: not running interactively');
    return ask(id === 'default' ? 'Vault password: ' : `Vault password (${id}): `).then((p) => Buffer.from(p));
  }
  let executable = false;
  try {
    const st = statSync(source);
    if (!st.isFile()) throw new InputError(`vault password file ${source} is not a file`);
    accessSync(source, constants.X_OK);
    executable = true;
  } catch (e) {
    if (e instanceof InputError) throw e;
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') throw new InputError(`vault password file ${source}: no such file`);
  }
  if (executable) {
    // A script prints the password, as Ansible runs it (with --vault-id for client scripts).
    const r = spawnSync(source, id === 'default' ? [] : ['--vault-id', id], { encoding: 'buffer', timeout: 60_000 });
    if (r.status !== 0) throw new InputError(`vault password script ${source} failed (exit ${r.status ?? 'on a signal'})`);
    return Buffer.from(r.stdout.toString('utf8').trim());
  }
  try {
    return Buffer.from(readFileSync(source, 'utf8').trim());
  } catch (e) {
    throw new InputError(`cannot read vault password file ${source}: ${(e as Error).message}`);
  }
}

/** Read the passwords the flags name and make them this run's; returns how many there are. */
export async function setupVault(flags: VaultFlags, interactive: boolean, ask: (prompt: string) => Promise<string> = promptOnTerminal): Promise<number> {
  const list: VaultSecret[] = [];
  const sources: { id: string; source: string }[] = [];
  for (const v of flags.vaultId ?? []) {
    const at = v.indexOf('@');
    sources.push(at < 0 ? { id: 'default', source: v } : { id: v.slice(0, at) || 'default', source: v.slice(at + 1) });
  }
  for (const f of flags.vaultPasswordFile ?? []) sources.push({ id: 'default', source: f });
  if (flags.askVaultPass) sources.push({ id: 'default', source: 'prompt' });
  if (!sources.length && process.env.ANSIBLE_VAULT_PASSWORD_FILE) sources.push({ id: 'default', source: process.env.ANSIBLE_VAULT_PASSWORD_FILE });
  for (const s of sources) {
    const password = await fromSource(s.source, s.id, interactive, ask);
    if (!password.length) throw new InputError(`the vault password from ${s.source} is empty`);
    list.push({ id: s.id, password });
  }
  setVaultSecrets(list);
  return list.length;
}

import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
import { setupVault } from '../../../src/cli/vault-secrets.js';
import { parseYaml } from '../../../src/playbook/load.js';
import { decrypt, decryptWith, encrypt, setVaultSecrets, VaultedValue } from '../../../src/util/vault.js';

const fixture = (name: string) => fileURLToPath(new URL(`../../fixtures/vault/${name}`, import.meta.url));
const read = (name: string) => readFileSync(fixture(name), 'utf8');
const PASSWORD = Buffer.from('vault-test-password');
const PROD = Buffer.from('second-password');
/** The vault text of an encrypt_string fixture. */
const vaultText = (name: string) => read(name).split('|\n')[1]!.replace(/^ +/gm, '');

afterEach(() => setVaultSecrets([]));

describe('Ansible Vault (vectors made by ansible-vault of ansible-core 2.14)', () => {
  it('decrypts an encrypt_string value, format 1.1', () => {
    expect(decryptWith(vaultText('string-1.1.yml'), PASSWORD)?.toString()).toBe('S3cret pass');
  });

  it('decrypts a 1.2 value with a vault id, trying the password of that id first', () => {
    const list = [
      { id: 'default', password: PASSWORD },
      { id: 'prod', password: PROD },
    ];
    expect(decrypt(vaultText('string-1.2.yml'), list).toString()).toBe('prod secret');
  });

  it('decrypts whole files, 1.1 and 1.2', () => {
    expect(decryptWith(read('whole.yml'), PASSWORD)?.toString()).toBe('file_secret: from a vaulted file\nplain: 1\n');
    expect(decryptWith(read('whole-1.2.yml'), PROD)?.toString()).toBe('prod_file_secret: from a 1.2 file\n');
  });

  it('a wrong password, or a ciphertext changed by one byte, fails the HMAC check', () => {
    expect(decryptWith(vaultText('string-1.1.yml'), Buffer.from('wrong'))).toBeNull();
    const text = vaultText('string-1.1.yml');
    const [header, ...body] = text.trim().split('\n');
    const inner = Buffer.from(body.join(''), 'hex').toString('latin1');
    const flipped = inner.slice(0, -1) + (inner.endsWith('0') ? '1' : '0');
    const tampered = `${header}\n${Buffer.from(flipped, 'latin1').toString('hex')}\n`;
    expect(decryptWith(tampered, PASSWORD)).toBeNull();
    expect(() => decrypt(text, [{ id: 'default', password: Buffer.from('wrong') }])).toThrow(/no vault password given decrypts it/);
  });

  it('what provision encrypts, ansible-vault\'s format, decrypts again (also 1.2 with an id)', () => {
    const t = encrypt(Buffer.from('x'.repeat(33)), PASSWORD, 'prod');
    expect(t.startsWith('$ANSIBLE_VAULT;1.2;AES256;prod\n')).toBe(true);
    expect(decryptWith(t, PASSWORD)?.toString()).toBe('x'.repeat(33));
  });

  it('!vault values in YAML: decrypted with a password; without one a placeholder naming its place, which refuses to be used', async () => {
    const text = read('string-1.1.yml');
    const without = parseYaml(text, 'group_vars/all.yml').value as Record<string, unknown>;
    const v = without.db_password;
    expect(v).toBeInstanceOf(VaultedValue);
    expect((v as VaultedValue).where).toBe('group_vars/all.yml:1:21');
    expect(() => String(v)).toThrow(/vault-encrypted value at group_vars\/all\.yml:1:21 is used, but no vault password was given/);
    expect(() => JSON.stringify(v)).toThrow(/no vault password/);
    await setupVault({ vaultPasswordFile: [fixture('password.txt')] }, false);
    expect((parseYaml(text, 'g.yml').value as Record<string, unknown>).db_password).toBe('S3cret pass');
  });

  it('a whole encrypted file: read decrypted with a password, refused naming it without', async () => {
    expect(() => parseYaml(read('whole.yml'), 'group_vars/db.yml')).toThrow(/group_vars\/db\.yml:1:1: group_vars\/db\.yml is encrypted with ansible-vault: no vault password was given/);
    await setupVault({ vaultId: [`prod@${fixture('prod-password.txt')}`, fixture('password.txt')] }, false);
    expect(parseYaml(read('whole.yml'), 'f.yml').value).toEqual({ file_secret: 'from a vaulted file', plain: 1 });
    expect(parseYaml(read('whole-1.2.yml'), 'f.yml').value).toEqual({ prod_file_secret: 'from a 1.2 file' });
  });

  it('--ask-vault-pass needs a terminal; a missing password file is named', async () => {
    await expect(setupVault({ askVaultPass: true }, false)).rejects.toThrow(/cannot ask for the vault password: not running interactively/);
    await expect(setupVault({ askVaultPass: true }, true, async () => 'vault-test-password')).resolves.toBe(1);
    await expect(setupVault({ vaultPasswordFile: ['/nonexistent/pw'] }, false)).rejects.toThrow(/vault password file \/nonexistent\/pw: no such file/);
  });
});

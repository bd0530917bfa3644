/**
 * Ansible Vault, format 1.1 and 1.2 (AES256): whole files and `!vault` values. The key material is
 * PBKDF2-HMAC-SHA256 of the password and the file's salt, 10000 iterations, 80 bytes: an AES-256 key, an HMAC key,
 * and the CTR counter's start. The HMAC-SHA256 of the ciphertext is checked before anything is decrypted.
 *
 * Passwords are set once per run by the CLI (setVaultSecrets) before any file is read. A `!vault` value read
 * without a password becomes a VaultedValue, which refuses to be used, naming where it was written.
 */
import { createCipheriv, createDecipheriv, createHmac, pbkdf2Sync, randomBytes, timingSafeEqual } from 'node:crypto';
import { type Document, isScalar, type ScalarTag, visit } from 'yaml';

export interface VaultSecret {
  /** the vault id (`--vault-id prod@file`), or "default" */
  id: string;
  password: Buffer;
}

let secrets: VaultSecret[] = [];

/** The passwords of this run (replaces any set before). */
export function setVaultSecrets(list: VaultSecret[]): void {
  secrets = list;
}

export function haveVaultSecrets(): boolean {
  return secrets.length > 0;
}

export class VaultError extends Error {
  override name = 'VaultError';
}

/** A vaulted value read without a password: any use of it is an error naming it. */
export class VaultedValue {
  constructor(
    readonly vaulttext: string,
    /** where it was written ("group_vars/all.yml:3:14"), set once the parser knows the position */
    public where: string,
  ) {}
  message(): string {
    return `the vault-encrypted value at ${this.where} is used, but no vault password was given (--vault-password-file, --ask-vault-pass or --vault-id)`;
  }
  toString(): string {
    throw new VaultError(this.message());
  }
  toJSON(): never {
    throw new VaultError(this.message());
  }
  valueOf(): never {
    throw new VaultError(this.message());
  }
}

export function isVaultText(text: string): boolean {
  return text.trimStart().startsWith('$ANSIBLE_VAULT;');
}

interface Envelope {
  version: string;
  id: string | null;
  salt: Buffer;
  hmac: Buffer;
  ciphertext: Buffer;
}

function parseEnvelope(text: string): Envelope {
  const lines = text.trim().split(/\r?\n/).map((l) => l.trim());
  const header = lines[0]!.split(';');
  if (header[0] !== '$ANSIBLE_VAULT' || header.length < 3) throw new VaultError('not an Ansible Vault header');
  const [, version, cipher, id] = header;
  if (version !== '1.1' && version !== '1.2') throw new VaultError(`vault format ${version} is not supported (1.1 and 1.2 are)`);
  if (cipher !== 'AES256') throw new VaultError(`vault cipher ${cipher} is not supported (AES256 is)`);
  const body = lines.slice(1).join('');
  if (!/^(?:[0-9a-fA-F]{2})+$/.test(body)) throw new VaultError('the vault body is not hex');
  const parts = Buffer.from(body, 'hex').toString('latin1').split('\n');
  if (parts.length !== 3 || parts.some((p) => !/^(?:[0-9a-fA-F]{2})+$/.test(p))) throw new VaultError('the vault body is malformed');
  return { version, id: id?.trim() || null, salt: Buffer.from(parts[0]!, 'hex'), hmac: Buffer.from(parts[1]!, 'hex'), ciphertext: Buffer.from(parts[2]!, 'hex') };
}

function keys(password: Buffer, salt: Buffer): { cipherKey: Buffer; hmacKey: Buffer; iv: Buffer } {
  const m = pbkdf2Sync(password, salt, 10000, 80, 'sha256');
  return { cipherKey: m.subarray(0, 32), hmacKey: m.subarray(32, 64), iv: m.subarray(64, 80) };
}

function unpad(b: Buffer): Buffer {
  const n = b.length ? b[b.length - 1]! : 0;
  if (n < 1 || n > 16 || n > b.length || !b.subarray(b.length - n).every((x) => x === n)) throw new VaultError('bad padding after decryption');
  return b.subarray(0, b.length - n);
}

/** Decrypt with one password; null when the HMAC says it is the wrong one. */
export function decryptWith(text: string, password: Buffer): Buffer | null {
  const env = parseEnvelope(text);
  const k = keys(password, env.salt);
  const mac = createHmac('sha256', k.hmacKey).update(env.ciphertext).digest();
  if (mac.length !== env.hmac.length || !timingSafeEqual(mac, env.hmac)) return null;
  const d = createDecipheriv('aes-256-ctr', k.cipherKey, k.iv);
  return unpad(Buffer.concat([d.update(env.ciphertext), d.final()]));
}

/**
 * Decrypt vault text with this run's passwords: those whose id matches a 1.2 header first, then the others, as
 * Ansible tries them. Throws VaultError naming why.
 */
export function decrypt(text: string, list: VaultSecret[] = secrets): Buffer {
  if (!list.length) throw new VaultError('no vault password was given (--vault-password-file, --ask-vault-pass or --vault-id)');
  const env = parseEnvelope(text);
  const ordered = env.id ? [...list.filter((s) => s.id === env.id), ...list.filter((s) => s.id !== env.id)] : list;
  for (const s of ordered) {
    const plain = decryptWith(text, s.password);
    if (plain) return plain;
  }
  throw new VaultError(`no vault password given decrypts it${env.id ? ` (vault id "${env.id}")` : ''}`);
}

/** Encrypt as ansible-vault does (format 1.1, or 1.2 with an id); for tests and tools. */
export function encrypt(plain: Buffer, password: Buffer, id?: string): string {
  const salt = randomBytes(32);
  const k = keys(password, salt);
  const pad = 16 - (plain.length % 16);
  const c = createCipheriv('aes-256-ctr', k.cipherKey, k.iv);
  const ciphertext = Buffer.concat([c.update(Buffer.concat([plain, Buffer.alloc(pad, pad)])), c.final()]);
  const mac = createHmac('sha256', k.hmacKey).update(ciphertext).digest('hex');
  const body = Buffer.from(`${salt.toString('hex')}\n${mac}\n${ciphertext.toString('hex')}`, 'latin1').toString('hex');
  const header = id ? `$ANSIBLE_VAULT;1.2;AES256;${id}` : '$ANSIBLE_VAULT;1.1;AES256';
  return `${header}\n${body.match(/.{1,80}/g)!.join('\n')}\n`;
}

/**
 * The text of a file that may be vault-encrypted as a whole: decrypted with this run's passwords. `file` names it
 * in errors.
 */
export function openVaultFile(text: string, file: string): string {
  if (!isVaultText(text)) return text;
  try {
    return decrypt(text).toString('utf8');
  } catch (e) {
    throw new VaultError(`${file} is encrypted with ansible-vault: ${(e as Error).message}`);
  }
}

/** The `!vault` YAML tag: decrypted when this run has passwords, else a VaultedValue placeholder. */
export function vaultTag(file: string): ScalarTag {
  return {
    tag: '!vault',
    resolve(value: string, onError: (msg: string) => void) {
      if (!isVaultText(value)) {
        onError('a !vault value must start with $ANSIBLE_VAULT;');
        return value;
      }
      if (!secrets.length) return new VaultedValue(value, file) as unknown as string;
      try {
        return decrypt(value).toString('utf8');
      } catch (e) {
        onError(`vault: ${(e as Error).message}`);
        return value;
      }
    },
  };
}

/** Give each VaultedValue of a parsed document its position (`at` turns an offset into "file:line:col"). */
export function placeVaulted(doc: Document, at: (offset: number) => string): void {
  visit(doc, {
    Scalar(_, node) {
      if (isScalar(node) && node.value instanceof VaultedValue && node.range) node.value.where = at(node.range[0]);
    },
  });
}

/** A copy of `v` fit for display: vaulted values as Ansible shows them ({"__ansible_vault": text}). */
export function forDisplay(v: unknown): unknown {
  if (v instanceof VaultedValue) return { __ansible_vault: v.vaulttext };
  if (Array.isArray(v)) return v.map(forDisplay);
  // A value that says how it is written in JSON (a whole float: its number) is left to say so.
  if (v && typeof v === 'object' && typeof (v as { toJSON?: unknown }).toJSON === 'function') return v;
  if (v && typeof v === 'object') return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, forDisplay(x)]));
  return v;
}

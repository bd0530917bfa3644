/**
 * OpenSSH known_hosts files: reading (plain, wildcard and hashed `|1|` host fields, `[host]:port`, `@revoked`),
 * deciding whether a server's key is the one on record, and recording a new key for `accept-new`.
 */
import { createHash, createHmac, randomBytes } from 'node:crypto';
import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { globMatcher } from '../util/glob.js';

/** One key line of a known_hosts file. */
export interface KnownHostsEntry {
  /** file the line came from */
  file: string;
  /** 1-based line number */
  line: number;
  /** `@revoked` refuses the key; `@cert-authority` lines vouch for host certificates, which ssh2 cannot check (such hosts are refused) */
  marker: 'revoked' | 'cert-authority' | null;
  /** the host field as written (comma-separated patterns, or one `|1|salt|hash`) */
  hosts: string;
  /** key type as written, e.g. ssh-ed25519 */
  keyType: string;
  /** the decoded key blob */
  key: Buffer;
}

/** What known_hosts says about the key a server offered. */
export type HostKeyVerdict =
  /** a line for this host holds exactly this key */
  | { status: 'known'; entry: KnownHostsEntry }
  /**
   * no line for this host holds a key of this type; `otherTypes` are the types that are on record, `authorities`
   * the `@cert-authority` lines that vouch for this host's certificates
   */
  | { status: 'unknown'; otherTypes: string[]; authorities: KnownHostsEntry[] }
  /** a line for this host holds a different key of the same type */
  | { status: 'changed'; entry: KnownHostsEntry }
  /** the key is listed under `@revoked` for this host */
  | { status: 'revoked'; entry: KnownHostsEntry };

/** The name a host is recorded under: `host` on port 22, `[host]:port` otherwise (as OpenSSH writes it). */
export function hostField(host: string, port: number): string {
  const h = host.toLowerCase();
  return port === 22 ? h : `[${h}]:${port}`;
}

/** OpenSSH's fingerprint: "SHA256:" and the unpadded base64 of the SHA-256 of the key blob. */
export function fingerprint(key: Buffer): string {
  return `SHA256:${createHash('sha256').update(key).digest('base64').replace(/=+$/, '')}`;
}

/** The key type named inside a key blob (its first SSH string), e.g. ssh-ed25519. */
export function keyTypeOf(key: Buffer): string {
  if (key.length < 4) return 'unknown';
  const len = key.readUInt32BE(0);
  if (len === 0 || len > 64 || key.length < 4 + len) return 'unknown';
  return key.subarray(4, 4 + len).toString('latin1');
}

/** Parse a known_hosts file; lines that are not key lines (comments, garbage) are skipped as OpenSSH does. */
export function parseKnownHosts(text: string, file: string): KnownHostsEntry[] {
  const entries: KnownHostsEntry[] = [];
  const lines = text.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const fields = lines[i]!.trim().split(/[ \t]+/);
    if (fields[0] === '' || fields[0]!.startsWith('#')) continue;
    let marker: KnownHostsEntry['marker'] = null;
    if (fields[0]!.startsWith('@')) {
      if (fields[0] === '@revoked') marker = 'revoked';
      else if (fields[0] === '@cert-authority') marker = 'cert-authority';
      else continue;
      fields.shift();
    }
    const [hosts, keyType, b64] = fields;
    if (!hosts || !keyType || !b64 || !/^[A-Za-z0-9+/]+={0,2}$/.test(b64)) continue;
    const key = Buffer.from(b64, 'base64');
    // A line whose blob does not name its own type is corrupt; trusting it could match the wrong key.
    if (keyTypeOf(key) !== keyType) continue;
    entries.push({ file, line: i + 1, marker, hosts, keyType, key });
  }
  return entries;
}

/** Read and parse known_hosts files in order; a file that does not exist holds no keys. */
export async function loadKnownHosts(files: readonly string[]): Promise<KnownHostsEntry[]> {
  const all: KnownHostsEntry[] = [];
  for (const file of files) {
    let text: string;
    try {
      text = await fs.readFile(file, 'utf8');
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      if (code === 'ENOENT' || code === 'ENOTDIR') continue;
      throw new Error(`cannot read ${file}: ${(e as Error).message}`);
    }
    all.push(...parseKnownHosts(text, file));
  }
  return all;
}

/**
 * A host field's patterns, split and compiled, by field. Every host of a run checks every line of known_hosts,
 * twice per handshake; the lines are the same for all of them. Bounded, as globMatcher's own cache is.
 */
const fieldPatterns = new Map<string, { negated: boolean; test: (name: string) => boolean }[]>();
const FIELDS_MAX = 4096;

function patternsOf(hosts: string): { negated: boolean; test: (name: string) => boolean }[] {
  let patterns = fieldPatterns.get(hosts);
  if (!patterns) {
    patterns = hosts.split(',').map((raw) => {
      const negated = raw.startsWith('!');
      return { negated, test: globMatcher((negated ? raw.slice(1) : raw).toLowerCase(), { sets: false }) };
    });
    if (fieldPatterns.size >= FIELDS_MAX) fieldPatterns.clear();
    fieldPatterns.set(hosts, patterns);
  }
  return patterns;
}

/** Whether a known_hosts host field names `host` on `port`. */
export function entryMatches(hosts: string, host: string, port: number): boolean {
  const name = hostField(host, port);
  if (hosts.startsWith('|1|')) return hashedMatches(hosts, name);
  let matched = false;
  for (const { negated, test } of patternsOf(hosts)) {
    if (!test(name)) continue;
    // A negated pattern that matches vetoes the whole line, whatever else matched.
    if (negated) return false;
    matched = true;
  }
  return matched;
}

function hashedMatches(field: string, name: string): boolean {
  const parts = field.split('|');
  if (parts.length !== 4 || !parts[2] || !parts[3]) return false;
  const salt = Buffer.from(parts[2], 'base64');
  const want = Buffer.from(parts[3], 'base64');
  const got = createHmac('sha1', salt).update(name).digest();
  return got.length === want.length && got.equals(want);
}

/** Judge the key a server offered for `host` on `port` against known_hosts entries. */
export function checkHostKey(entries: readonly KnownHostsEntry[], host: string, port: number, key: Buffer): HostKeyVerdict {
  const mine = entries.filter((e) => e.marker !== 'cert-authority' && entryMatches(e.hosts, host, port));
  const revoked = mine.find((e) => e.marker === 'revoked' && e.key.equals(key));
  if (revoked) return { status: 'revoked', entry: revoked };
  const plain = mine.filter((e) => e.marker === null);
  const same = plain.find((e) => e.key.equals(key));
  if (same) return { status: 'known', entry: same };
  const type = keyTypeOf(key);
  const changed = plain.find((e) => e.keyType === type);
  if (changed) return { status: 'changed', entry: changed };
  const authorities = entries.filter((e) => e.marker === 'cert-authority' && entryMatches(e.hosts, host, port));
  return { status: 'unknown', otherTypes: [...new Set(plain.map((e) => e.keyType))], authorities };
}

/** Key types on record for a host, in file order (used to ask the server for a key we can check). */
export function knownKeyTypes(entries: readonly KnownHostsEntry[], host: string, port: number): string[] {
  const types = entries
    .filter((e) => e.marker === null && entryMatches(e.hosts, host, port))
    .map((e) => e.keyType);
  return [...new Set(types)];
}

/**
 * The line `accept-new` records: host field, key type, base64 blob. With `hashed` (HashKnownHosts yes) the host
 * field is OpenSSH's `|1|salt|HMAC-SHA1(salt, name)`, so the file does not list the hosts one manages.
 */
export function knownHostsLine(host: string, port: number, key: Buffer, hashed = false, salt = randomBytes(20)): string {
  const name = hostField(host, port);
  const field = hashed ? `|1|${salt.toString('base64')}|${createHmac('sha1', salt).update(name).digest('base64')}` : name;
  return `${field} ${keyTypeOf(key)} ${key.toString('base64')}\n`;
}

/**
 * Append a key for `host` to `file`, creating the file (and ~/.ssh-like parent directories, private) when
 * missing. A file that does not end with a newline gets one first so the new line stays a line of its own.
 */
export async function appendKnownHost(file: string, host: string, port: number, key: Buffer, hashed = false): Promise<void> {
  await fs.mkdir(path.dirname(file), { recursive: true, mode: 0o700 });
  let prefix = '';
  try {
    const handle = await fs.open(file, 'r');
    try {
      const { size } = await handle.stat();
      if (size > 0) {
        const last = Buffer.alloc(1);
        await handle.read(last, 0, 1, size - 1);
        if (last[0] !== 0x0a) prefix = '\n';
      }
    } finally {
      await handle.close();
    }
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
  }
  await fs.appendFile(file, prefix + knownHostsLine(host, port, key, hashed), { mode: 0o644 });
}

/** A path as a user would write it: under the home directory it starts with `~/`. */
export function tildePath(file: string): string {
  const home = os.homedir();
  return home && file.startsWith(home + path.sep) ? `~${file.slice(home.length)}` : file;
}

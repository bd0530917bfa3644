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

/** What a file was when it was last read: a file whose every field is the same was not written since. */
interface Stamp {
  sig: string;
  /** change time in ms (any write or change of the file's inode), 0 for a file that does not exist */
  ctimeMs: number;
}

/** The entries of the last read of each list of files, with the files' stamps then (see loadKnownHosts). */
const lastRead = new Map<string, { stamps: string[]; entries: KnownHostsEntry[] }>();

/** The read under way of each list of files, with the stamps it was started for. */
const reading = new Map<string, { stamps: string[]; entries: Promise<KnownHostsEntry[]> }>();

/**
 * A file changed this recently before it was read may be written again within the same tick of the file system's
 * clock, with the same size: its stamp would not show it. Such a read is not kept (as git treats a "racily clean"
 * file). loadKnownHosts takes another span only for tests.
 */
const SETTLED_MS = 2000;

async function stampOf(file: string): Promise<Stamp> {
  try {
    const st = await fs.stat(file, { bigint: true });
    return { sig: `${st.dev}:${st.ino}:${st.size}:${st.mtimeNs}:${st.ctimeNs}`, ctimeMs: Number(st.ctimeMs) };
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    return { sig: code === 'ENOENT' || code === 'ENOTDIR' ? 'absent' : `error:${code}`, ctimeMs: 0 };
  }
}

/**
 * Read and parse known_hosts files in order; a file that does not exist holds no keys. Every handshake reads them
 * twice, and a fleet's file has a line per host: a run of 500 hosts read and parsed 500 lines a thousand times. So
 * the entries of the last read are kept, and given again (the same array, which entriesFor's index is kept for)
 * while every file has the same inode, size, modification and change times; a file written since, by this process
 * (accept-new) or any other, is read again, and so is one written in the SETTLED_MS before it was read. The entries
 * returned are not to be changed.
 */
export async function loadKnownHosts(files: readonly string[], settledMs = SETTLED_MS): Promise<readonly KnownHostsEntry[]> {
  const key = files.join('\0');
  const stamps = await Promise.all(files.map(stampOf));
  const sigs = stamps.map((st) => st.sig);
  const same = (kept: string[]) => kept.every((sig, i) => sig === sigs[i]);
  const last = lastRead.get(key);
  if (last && same(last.stamps)) return last.entries;
  // A run starts its handshakes together: while one read of files that are settled and unchanged is under way,
  // the others wait for it rather than each reading and parsing the same lines.
  const settledAtStamp = settledFiles(stamps, settledMs);
  const pending = reading.get(key);
  if (settledAtStamp && pending && same(pending.stamps)) return pending.entries;
  const entries = readEntries(files);
  if (settledAtStamp) reading.set(key, { stamps: sigs, entries });
  let all: KnownHostsEntry[];
  try {
    all = await entries;
  } finally {
    if (reading.get(key)?.entries === entries) reading.delete(key);
  }
  if (lastRead.size >= 16) lastRead.clear();
  if (settledFiles(stamps, settledMs)) lastRead.set(key, { stamps: sigs, entries: all });
  else lastRead.delete(key);
  return all;
}

/** Every file was stamped without error, and none changed in the `settledMs` before now. */
function settledFiles(stamps: Stamp[], settledMs: number): boolean {
  const before = Date.now() - settledMs;
  return stamps.every((st) => !st.sig.startsWith('error:') && st.ctimeMs < before);
}

async function readEntries(files: readonly string[]): Promise<KnownHostsEntry[]> {
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
 * For a list of entries: the positions of the lines whose host field is plain names only (no wildcard, no negation,
 * not hashed), by name, and the positions of all other lines. A plain field names a host exactly when one of its
 * names is the host's (lower-cased) name, so a lookup needs only the lines under that name and the others.
 */
interface EntryIndex {
  byName: Map<string, number[]>;
  others: number[];
}
const indexes = new WeakMap<readonly KnownHostsEntry[], EntryIndex>();

function indexOf(entries: readonly KnownHostsEntry[]): EntryIndex {
  let index = indexes.get(entries);
  if (index) return index;
  index = { byName: new Map(), others: [] };
  entries.forEach((e, i) => {
    const names = e.hosts.startsWith('|1|') ? null : e.hosts.split(',');
    if (!names || names.some((n) => n.startsWith('!') || n.includes('*') || n.includes('?'))) {
      index!.others.push(i);
      return;
    }
    for (const name of new Set(names.map((n) => n.toLowerCase()))) {
      const at = index!.byName.get(name);
      if (at) at.push(i);
      else index!.byName.set(name, [i]);
    }
  });
  indexes.set(entries, index);
  return index;
}

/** The entries that may name `host` on `port`, in file order: every one that does is among them (entryMatches decides). */
function entriesFor(entries: readonly KnownHostsEntry[], host: string, port: number): KnownHostsEntry[] {
  const index = indexOf(entries);
  const named = index.byName.get(hostField(host, port)) ?? [];
  const at = named.length === 0 ? index.others : index.others.length === 0 ? named : [...named, ...index.others].sort((a, b) => a - b);
  return at.map((i) => entries[i]!);
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
export function checkHostKey(all: readonly KnownHostsEntry[], host: string, port: number, key: Buffer): HostKeyVerdict {
  const entries = entriesFor(all, host, port);
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
export function knownKeyTypes(all: readonly KnownHostsEntry[], host: string, port: number): string[] {
  const types = entriesFor(all, host, port)
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

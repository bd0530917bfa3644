import { execFileSync } from 'node:child_process';
import { createHmac } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, statSync, utimesSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import ssh2 from 'ssh2';
import { afterAll, describe, expect, it } from 'vitest';
import {
  appendKnownHost,
  checkHostKey,
  entryMatches,
  fingerprint,
  keyTypeOf,
  knownHostsLine,
  knownKeyTypes,
  loadKnownHosts,
  parseKnownHosts,
} from '../../../src/connection/known-hosts.js';
import { parsableKeyPair } from './loopback-sshd.js';

const dir = mkdtempSync(path.join(os.tmpdir(), 'provision-kh-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** A fresh public key as written in a .pub file, and its blob. */
function newKey(type: 'ed25519' | 'ecdsa' = 'ed25519'): { line: string; blob: Buffer } {
  const pair = parsableKeyPair(() => (type === 'ecdsa' ? ssh2.utils.generateKeyPairSync('ecdsa', { bits: 256 }) : ssh2.utils.generateKeyPairSync('ed25519')));
  const line = pair.public.trim().split(' ').slice(0, 2).join(' ');
  return { line, blob: Buffer.from(line.split(' ')[1]!, 'base64') };
}

const a = newKey();
const b = newKey();
const e = newKey('ecdsa');

describe('fingerprint', () => {
  it("is OpenSSH's SHA256 fingerprint (as ssh-keygen -l prints it)", () => {
    const pub = path.join(dir, 'a.pub');
    writeFileSync(pub, `${a.line} comment\n`);
    const keygen = execFileSync('ssh-keygen', ['-l', '-E', 'sha256', '-f', pub]).toString().split(' ')[1];
    expect(fingerprint(a.blob)).toBe(keygen);
    expect(fingerprint(a.blob)).not.toContain('=');
  });

  it('names the key type from the blob', () => {
    expect(keyTypeOf(a.blob)).toBe('ssh-ed25519');
    expect(keyTypeOf(e.blob)).toBe('ecdsa-sha2-nistp256');
    expect(keyTypeOf(Buffer.from([0, 0]))).toBe('unknown');
  });
});

describe('host matching', () => {
  const cases: [string, string, number, boolean][] = [
    ['h1.lab.test', 'h1.lab.test', 22, true],
    ['H1.Lab.Test', 'h1.LAB.test', 22, true],
    ['h1.lab.test', 'h1.lab.test', 2222, false],
    ['[h1.lab.test]:2222', 'h1.lab.test', 2222, true],
    ['[h1.lab.test]:2222', 'h1.lab.test', 22, false],
    ['h1,h1.lab.test,198.19.1.1', '198.19.1.1', 22, true],
    ['*.lab.test', 'h7.lab.test', 22, true],
    ['*.lab.test,!h7.lab.test', 'h7.lab.test', 22, false],
    ['!h7.lab.test,*.lab.test', 'h8.lab.test', 22, true],
    ['h?.lab.test', 'h12.lab.test', 22, false],
    ['h?.lab.test', 'h2.lab.test', 22, true],
    ['[198.19.1.*]:2222', '198.19.1.9', 2222, true],
    ['[198.19.1.*]:2222', '198.19.1.9', 22, false],
    ['mx[12].lab.test', 'mx1.lab.test', 22, false],
    ['{mx1,mx2}.lab.test', 'mx1.lab.test', 22, false],
    ['*', 'mx1.mail.lab.test', 22, true],
    ['*.LAB.test', 'mx1.mail.lab.TEST', 22, true],
  ];
  it.each(cases)('%s matches %s port %i: %s', (field, host, port, want) => {
    expect(entryMatches(field, host, port)).toBe(want);
  });

  it('matches hashed entries written by ssh-keygen -H, with and without a port', () => {
    const file = path.join(dir, 'hashed');
    writeFileSync(file, `h1.lab.test ${a.line}\n[h1.lab.test]:2222 ${b.line}\n`);
    execFileSync('ssh-keygen', ['-H', '-f', file], { stdio: 'ignore' });
    const entries = parseKnownHosts(readFileSync(file, 'utf8'), file);
    expect(entries.map((x) => x.hosts.startsWith('|1|'))).toEqual([true, true]);
    expect(checkHostKey(entries, 'h1.lab.test', 22, a.blob).status).toBe('known');
    expect(checkHostKey(entries, 'h1.lab.test', 2222, b.blob).status).toBe('known');
    expect(checkHostKey(entries, 'h2.lab.test', 22, a.blob).status).toBe('unknown');
    expect(checkHostKey(entries, 'h1.lab.test', 22, b.blob)).toMatchObject({ status: 'changed', entry: { line: 1 } });
  });
});

describe('checkHostKey', () => {
  const text = [
    '# comment line',
    '',
    `h1.lab.test ${a.line}`,
    `@cert-authority *.lab.test ${b.line}`,
    'garbage line without a key',
    `h2.lab.test ${e.line} trailing comment`,
    `@revoked * ${b.line}`,
    `h3.lab.test ssh-ed25519 ${e.line.split(' ')[1]}`,
  ].join('\n');
  const entries = parseKnownHosts(text, '/k');

  it('skips comments, blank and malformed lines, and lines whose blob is of another type', () => {
    expect(entries.map((x) => [x.line, x.marker])).toEqual([
      [3, null],
      [4, 'cert-authority'],
      [6, null],
      [7, 'revoked'],
    ]);
  });

  it.each([
    ['the recorded key', 'h1.lab.test', a.blob, 'known'],
    ['another key of the recorded type', 'h1.lab.test', newKey().blob, 'changed'],
    ['a key of a type not on record', 'h2.lab.test', a.blob, 'unknown'],
    ['a host not on record', 'h9.lab.test', a.blob, 'unknown'],
    ['a revoked key', 'h1.lab.test', b.blob, 'revoked'],
  ])('%s is %s', (_what, host, key, status) => {
    expect(checkHostKey(entries, host, 22, key).status).toBe(status);
  });

  it('names the @cert-authority lines that vouch for a host whose key is not on record', () => {
    const v = checkHostKey(entries, 'h2.lab.test', 22, a.blob);
    expect(v.status === 'unknown' && v.authorities.map((x) => x.line)).toEqual([4]);
    const off = checkHostKey(entries, 'mail.example.org', 22, a.blob);
    expect(off.status === 'unknown' && off.authorities).toEqual([]);
  });

  it('points at the line that holds the old key when it changed', () => {
    expect(checkHostKey(entries, 'h1.lab.test', 22, newKey().blob)).toMatchObject({ status: 'changed', entry: { file: '/k', line: 3 } });
  });

  it('says which types are on record when the offered type is not', () => {
    expect(checkHostKey(entries, 'h2.lab.test', 22, a.blob)).toMatchObject({ status: 'unknown', otherTypes: ['ecdsa-sha2-nistp256'] });
    expect(knownKeyTypes(entries, 'h2.lab.test', 22)).toEqual(['ecdsa-sha2-nistp256']);
  });
});

describe('appendKnownHost', () => {
  it('creates the file and its directory, writing `host` on port 22 and `[host]:port` otherwise', async () => {
    const file = path.join(dir, 'new', '.ssh', 'known_hosts');
    await appendKnownHost(file, 'H1.lab.test', 22, a.blob);
    await appendKnownHost(file, '198.19.1.1', 2222, b.blob);
    expect(readFileSync(file, 'utf8')).toBe(`h1.lab.test ${a.line}\n[198.19.1.1]:2222 ${b.line}\n`);
    const entries = await loadKnownHosts([file]);
    expect(checkHostKey(entries, '198.19.1.1', 2222, b.blob).status).toBe('known');
  });

  it('starts a new line when the file does not end with one', async () => {
    const file = path.join(dir, 'no-newline');
    writeFileSync(file, `h1 ${a.line}`);
    await appendKnownHost(file, 'h2', 22, b.blob);
    expect(readFileSync(file, 'utf8')).toBe(`h1 ${a.line}\nh2 ${b.line}\n`);
  });

  it('treats a missing file as empty when loading', async () => {
    expect(await loadKnownHosts([path.join(dir, 'absent')])).toEqual([]);
  });
});

describe('hashed lines for HashKnownHosts', () => {
  it('hashes the host field as OpenSSH does, so the line matches the host and no other', () => {
    const key = Buffer.from('AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl', 'base64');
    const line = knownHostsLine('Mail.Example.org', 2222, key, true, Buffer.alloc(20, 7));
    const [field] = line.split(' ');
    expect(field).toBe(`|1|${Buffer.alloc(20, 7).toString('base64')}|${createHmac('sha1', Buffer.alloc(20, 7)).update('[mail.example.org]:2222').digest('base64')}`);
    expect(entryMatches(field!, 'mail.example.org', 2222)).toBe(true);
    expect(entryMatches(field!, 'mail.example.org', 22)).toBe(false);
    expect(parseKnownHosts(line, 'f')).toHaveLength(1);
  });
});

describe('a host field is split and compiled once, and answers for every host', () => {
  // entryMatches keeps each field's patterns; the answers must be those of a field read afresh for each host
  // (OpenSSH's match_hostname: a matching negated pattern vetoes the line).
  it('one field asked about many hosts, in turn, gives each its own answer', () => {
    const field = '*.lab.test,!h2.lab.test,[198.19.1.*]:2222,MX1.Example.ORG';
    const ask = () => [
      entryMatches(field, 'h1.lab.test', 22),
      entryMatches(field, 'h2.lab.test', 22),
      entryMatches(field, '198.19.1.9', 2222),
      entryMatches(field, '198.19.1.9', 22),
      entryMatches(field, 'mx1.example.org', 22),
    ];
    const want = [true, false, true, false, true];
    expect(ask()).toEqual(want);
    expect(ask()).toEqual(want);
  });
});

// Issue 18 (scale): every handshake read and parsed known_hosts twice and matched every line against the host, so
// a run of 500 hosts with a line per host did 500 × 1000 line parses and matches.
describe('a fleet-sized known_hosts: read once while unchanged, and looked up by name', () => {
  const hashed = (name: string, salt = Buffer.from('0123456789abcdefghij')) =>
    `|1|${salt.toString('base64')}|${createHmac('sha1', salt).update(name).digest('base64')}`;
  /** Lines of every kind OpenSSH writes or accepts, in an order that makes file order matter. */
  const lines = [
    `h1.lab.test ${b.line}`,
    `*.lab.test,!h3.lab.test ${e.line}`,
    `H2.LAB.TEST,198.19.0.2 ${a.line}`,
    `${hashed('h4.lab.test')} ${a.line}`,
    `[h5.lab.test]:2222 ${a.line}`,
    `h?.lab.test ${b.line}`,
    `@revoked h6.lab.test ${a.line}`,
    `@cert-authority *.lab.test ${e.line}`,
    `h1.lab.test ${a.line}`,
    `h1.lab.test,h1.lab.test ${e.line}`,
    ...Array.from({ length: 200 }, (_, i) => `h${100 + i}.lab.test ${b.line}`),
  ];
  const entries = parseKnownHosts(lines.join('\n'), 'known_hosts');
  /** What a scan of every line, without the index, says (the matching rules are entryMatches's, tested above). */
  const scanned = (host: string, port: number) =>
    [...new Set(entries.filter((x) => x.marker === null && entryMatches(x.hosts, host, port)).map((x) => x.keyType))];
  const hosts: [string, number][] = [
    ['h1.lab.test', 22], ['H1.lab.test', 22], ['h2.lab.test', 22], ['198.19.0.2', 22], ['h3.lab.test', 22], ['h4.lab.test', 22],
    ['h5.lab.test', 2222], ['h5.lab.test', 22], ['h6.lab.test', 22], ['h150.lab.test', 22], ['other.example', 22],
  ];

  it.each(hosts)('%s port %d: the key types and the verdicts of a scan of every line', (host, port) => {
    expect(knownKeyTypes(entries, host, port)).toEqual(scanned(host, port));
    for (const key of [a.blob, b.blob, e.blob]) {
      const mine = entries.filter((x) => x.marker !== 'cert-authority' && entryMatches(x.hosts, host, port));
      const verdict = checkHostKey(entries, host, port, key);
      if (mine.some((x) => x.marker === 'revoked' && x.key.equals(key))) expect(verdict.status).toBe('revoked');
      else if (mine.some((x) => x.marker === null && x.key.equals(key))) {
        expect(verdict).toEqual({ status: 'known', entry: mine.find((x) => x.marker === null && x.key.equals(key)) });
      } else if (mine.some((x) => x.marker === null && x.keyType === keyTypeOf(key))) {
        expect(verdict).toEqual({ status: 'changed', entry: mine.find((x) => x.marker === null && x.keyType === keyTypeOf(key)) });
      } else expect(verdict.status).toBe('unknown');
    }
  });

  it('the first line that names the host decides, in file order, across plain and wildcard lines', () => {
    // h1: line 1 (b, plain), line 2 (ecdsa, wildcard), line 6 (b, wildcard), line 9 (a, plain), line 10 (ecdsa, plain)
    expect(knownKeyTypes(entries, 'h1.lab.test', 22)).toEqual(['ssh-ed25519', 'ecdsa-sha2-nistp256']);
    expect(checkHostKey(entries, 'h1.lab.test', 22, a.blob)).toMatchObject({ status: 'known', entry: { line: 9 } });
    expect(checkHostKey(entries, 'h1.lab.test', 22, e.blob)).toMatchObject({ status: 'known', entry: { line: 2 } });
    // the negated name vetoes line 2 for h3, which no other line names with an ECDSA key
    expect(checkHostKey(entries, 'h3.lab.test', 22, e.blob).status).toBe('unknown');
    expect(checkHostKey(entries, 'h6.lab.test', 22, a.blob).status).toBe('revoked');
  });

  it('loadKnownHosts gives the same entries while the file is unchanged, and reads it again once it is written', async () => {
    const file = path.join(dir, 'fleet_known_hosts');
    writeFileSync(file, `${lines.join('\n')}\n`);
    // files changed within the last 0 ms count as settled here; the default span is tested below
    const load = (f: string) => loadKnownHosts([f], 0);
    const first = await load(file);
    expect(first).toHaveLength(entries.length);
    expect(await load(file)).toBe(first);
    // accept-new appends a line: read again, with the new line
    await appendKnownHost(file, 'new.lab.test', 22, a.blob);
    const after = await load(file);
    expect(after).not.toBe(first);
    expect(checkHostKey(after, 'new.lab.test', 22, a.blob).status).toBe('known');
    expect(await load(file)).toBe(after);
    // the same size rewritten in place, its modification time put back: the change time still tells
    expect(checkHostKey(after, 'h1.lab.test', 22, a.blob)).toMatchObject({ status: 'known', entry: { line: 9 } });
    const before = readFileSync(file, 'utf8');
    const changed = before.replace(`h1.lab.test ${a.line}`, `h1.lab.test ${b.line}`);
    expect(changed).toHaveLength(before.length);
    const { mtime } = statSync(file);
    writeFileSync(file, changed);
    utimesSync(file, mtime, mtime);
    const rewritten = await load(file);
    expect(rewritten).not.toBe(after);
    expect(checkHostKey(rewritten, 'h1.lab.test', 22, a.blob).status).toBe('changed');
    // a file that appears where none was
    const missing = path.join(dir, 'not_yet_known_hosts');
    expect(await load(missing)).toEqual([]);
    writeFileSync(missing, `late.lab.test ${a.line}\n`);
    expect(await load(missing)).toHaveLength(1);
  });

  it('a file changed in the last two seconds is read again at every handshake (it could change again unseen)', async () => {
    const file = path.join(dir, 'recent_known_hosts');
    writeFileSync(file, `${lines.join('\n')}\n`);
    const first = await loadKnownHosts([file]);
    expect(await loadKnownHosts([file])).not.toBe(first);
    expect(await loadKnownHosts([file])).toEqual(first);
  });

  it('handshakes that start together share one read of a settled file; of a file changed just now, each reads it', async () => {
    const settled = path.join(dir, 'together_known_hosts');
    writeFileSync(settled, `${lines.join('\n')}\n`);
    // a span below zero: every file counts as settled, even one written in this millisecond
    const together = await Promise.all([1, 2, 3, 4].map(() => loadKnownHosts([settled], -60_000)));
    expect(new Set(together).size).toBe(1);
    expect(together[0]).toHaveLength(entries.length);
    // written since: a new read, shared again by the handshakes that start after the write
    await appendKnownHost(settled, 'new.lab.test', 22, a.blob);
    const again = await Promise.all([1, 2, 3].map(() => loadKnownHosts([settled], -60_000)));
    expect(new Set(again).size).toBe(1);
    expect(again[0]).not.toBe(together[0]);
    expect(checkHostKey(again[0]!, 'new.lab.test', 22, a.blob).status).toBe('known');
    const recent = path.join(dir, 'together_recent_known_hosts');
    writeFileSync(recent, `${lines.join('\n')}\n`);
    const apart = await Promise.all([1, 2, 3].map(() => loadKnownHosts([recent])));
    expect(new Set(apart).size).toBe(3);
    expect(apart[1]).toEqual(apart[0]);
  });
});

import { execFileSync } from 'node:child_process';
import { createHmac } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
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

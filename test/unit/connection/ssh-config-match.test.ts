/**
 * Host and Match matching against OpenSSH's own answers. The expected values of the table are what OpenSSH 9.2p1
 * (Debian 12) prints for `ssh -F <file> -G <name>`, and the oracle test asks the installed ssh again; the
 * helpers are checked against readconf.c/match.c behaviour (match_pattern, match_pattern_list, match_hostname).
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { loadSshConfig } from '../../../src/connection/ssh-config.js';
import { connectName, hostLineMatches, matchHostname, matchPattern, matchPatternList } from '../../../src/connection/ssh-config-match.js';
import { resolveSshTarget } from '../../../src/connection/ssh-target.js';

const dir = mkdtempSync(path.join(os.tmpdir(), 'provision-sshmatch-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const me = os.userInfo().username;

interface Case {
  /** where the shape comes from */
  what: string;
  config: string;
  name: string;
  /** -l: the remote user given on the command line */
  user?: string;
  want: { hostname: string; port: number; user?: string; identityFiles?: string[] };
  /** false when ssh refuses the name itself (Debian's 9.2 refuses commas in host names) */
  oracle?: boolean;
}

const CASE_HOSTS = 'Host Web1\n  Port 1001\nHost web2\n  Port 1002\nHost *\n  Port 1099\n';
const QUESTION = 'Host web?\n  Port 1004\n';
const NEGATION = 'Host *.lab.test !db.lab.test\n  Port 1005\n';
const COMMAS = 'Host a,b\n  HostName ab\n  Port 1006\nMatch host x,Y\n  Port 1007\n';
const MATCH_HOST = 'Match host DB*\n  Port 1008\n';
const ORIGINAL = 'Host Foo\n  HostName bar\nMatch originalhost ORIG*,foo\n  Port 1009\n';
const MATCH_USER = 'Match user Alice\n  Port 1010\n';
const LOCAL_USER = `Match localuser ${me.toUpperCase()}\n  Port 1011\nMatch localuser ${me}\n  ConnectTimeout 5\n  Port 1012\n`;
const HOSTNAME_THEN_MATCH = 'Host Foo\n  HostName Bar.Example\nMatch host bar.example\n  Port 1013\n';
const FINAL = 'Host Foo\n  HostName Bar\nHost bar\n  Port 2222\nHost Bar\n  Port 3333\nMatch final\n  User fin\n';
const FINAL_CANONICAL = 'Host Foo\n  Port 1111\nHost foo\n  User fooer\nMatch canonical\n  Port 1234\nMatch final all\n  IdentityFile /k/final\n';
const IDENTITIES = 'Host Web1\n  IdentityFile /k/one\nHost web1\n  IdentityFile /k/lower\nHost *\n  IdentityFile /k/two\n';
const STARS = 'Host w*1\n  Port 1014\nHost w**\n  Port 1015\n';

const TABLE: Case[] = [
  { what: 'Host is case-sensitive: Host Web1 applies to Web1', config: CASE_HOSTS, name: 'Web1', want: { hostname: 'web1', port: 1001 } },
  { what: 'Host is case-sensitive: Host Web1 does not apply to web1', config: CASE_HOSTS, name: 'web1', want: { hostname: 'web1', port: 1099 } },
  { what: 'Host is case-sensitive: Host web2 does not apply to WEB2', config: CASE_HOSTS, name: 'WEB2', want: { hostname: 'web2', port: 1099 } },
  { what: 'Host web2 applies to web2', config: CASE_HOSTS, name: 'web2', want: { hostname: 'web2', port: 1002 } },
  { what: '? is exactly one character: web? does not match web', config: QUESTION, name: 'web', want: { hostname: 'web', port: 22 } },
  { what: '? is exactly one character: web? matches webz', config: QUESTION, name: 'webz', want: { hostname: 'webz', port: 1004 } },
  { what: '? is exactly one character: web? does not match web12', config: QUESTION, name: 'web12', want: { hostname: 'web12', port: 22 } },
  { what: 'a negated word rules the block out', config: NEGATION, name: 'db.lab.test', want: { hostname: 'db.lab.test', port: 22 } },
  { what: 'a wildcard word with a negation beside it', config: NEGATION, name: 'www.lab.test', want: { hostname: 'www.lab.test', port: 1005 } },
  { what: '* is any run, also across dots and letter case stays', config: NEGATION, name: 'www.LAB.test', want: { hostname: 'www.lab.test', port: 22 } },
  { what: 'a comma is an ordinary character in a Host word', config: COMMAS, name: 'a', want: { hostname: 'a', port: 22 } },
  { what: 'a Host word with a comma matches only that name', config: COMMAS, name: 'a,b', want: { hostname: 'ab', port: 1006 }, oracle: false },
  { what: 'Match host takes a comma list, compared in lower case', config: COMMAS, name: 'y', want: { hostname: 'y', port: 1007 } },
  { what: 'Match host is case-insensitive (match_hostname)', config: MATCH_HOST, name: 'db1', want: { hostname: 'db1', port: 1008 } },
  { what: 'Match host is case-insensitive for the name too', config: MATCH_HOST, name: 'DB1', want: { hostname: 'db1', port: 1008 } },
  { what: 'Match originalhost is case-insensitive', config: ORIGINAL, name: 'orig1', want: { hostname: 'orig1', port: 1009 } },
  { what: 'Match originalhost compares the name asked, not the HostName', config: ORIGINAL, name: 'Foo', want: { hostname: 'bar', port: 1009 } },
  { what: 'Match user is case-sensitive: Alice', config: MATCH_USER, name: 'h', user: 'Alice', want: { hostname: 'h', port: 1010, user: 'Alice' } },
  { what: 'Match user is case-sensitive: alice', config: MATCH_USER, name: 'h', user: 'alice', want: { hostname: 'h', port: 22, user: 'alice' } },
  { what: 'Match localuser is case-sensitive', config: LOCAL_USER, name: 'h', want: { hostname: 'h', port: me === me.toUpperCase() ? 1011 : 1012 } },
  { what: 'Match host after HostName compares the HostName, in lower case', config: HOSTNAME_THEN_MATCH, name: 'Foo', want: { hostname: 'bar.example', port: 1013 } },
  { what: 'Match final: the second pass matches Host lines against the lower-cased HostName', config: FINAL, name: 'Foo', want: { hostname: 'bar', port: 2222, user: 'fin' } },
  { what: 'Match final: the second pass uses the lower-cased name; canonical holds there', config: FINAL_CANONICAL, name: 'Foo', want: { hostname: 'foo', port: 1111, user: 'fooer', identityFiles: ['/k/final'] } },
  { what: 'IdentityFile adds up over the blocks that apply, as written', config: IDENTITIES, name: 'Web1', want: { hostname: 'web1', port: 22, identityFiles: ['/k/one', '/k/two'] } },
  { what: 'IdentityFile of the lower-case block for the lower-case name', config: IDENTITIES, name: 'web1', want: { hostname: 'web1', port: 22, identityFiles: ['/k/lower', '/k/two'] } },
  { what: '* matches an empty run', config: STARS, name: 'w1', want: { hostname: 'w1', port: 1014 } },
  { what: '* matches a long run', config: STARS, name: 'wxyz1', want: { hostname: 'wxyz1', port: 1014 } },
  { what: 'consecutive stars are one', config: STARS, name: 'w', want: { hostname: 'w', port: 1015 } },
];

let n = 0;
function fileOf(text: string): string {
  const file = path.join(dir, `config-${++n}`);
  writeFileSync(file, text);
  return file;
}

/** What provision would use: the lookup's settings resolved into a target as for an inventory host. */
function provisionAnswer(c: Case) {
  const file = fileOf(c.config);
  const cfg = loadSshConfig(file);
  const target = resolveSshTarget(c.name, c.user === undefined ? {} : { ansible_user: c.user }, {}, cfg);
  const raw = cfg.lookup(c.name, c.user);
  return { file, hostname: target.hostname, port: target.port, user: target.user, identityFiles: raw.identityFiles };
}

describe('ssh_config matching as OpenSSH 9.2 ssh -G answers (readconf.c, match.c)', () => {
  it.each(TABLE)('$what ($name)', (c) => {
    const got = provisionAnswer(c);
    expect({ hostname: got.hostname, port: got.port }).toEqual({ hostname: c.want.hostname, port: c.want.port });
    expect(got.user).toBe(c.want.user ?? me);
    expect(got.identityFiles).toEqual(c.want.identityFiles ?? []);
  });

  const ssh = spawnSync('ssh', ['-V'], { encoding: 'utf8' });
  const haveSsh = ssh.error === undefined;
  if (!haveSsh) console.warn('ssh-config-match oracle skipped: no `ssh` on PATH (install openssh-client)');
  it.skipIf(!haveSsh)('gives the same port, user, hostname and identity files as the installed `ssh -G` (never connects)', () => {
    for (const c of TABLE.filter((t) => t.oracle !== false)) {
      const got = provisionAnswer(c);
      const args = ['-F', got.file, ...(c.user === undefined ? [] : ['-l', c.user]), '-G', '--', c.name];
      const out = execFileSync('ssh', args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] });
      const lines = out.split('\n').map((l) => l.split(' '));
      const one = (key: string) => lines.find((l) => l[0] === key)?.slice(1).join(' ');
      const files = lines.filter((l) => l[0] === 'identityfile').map((l) => l.slice(1).join(' '));
      const label = `${c.what}: ssh ${args.join(' ')}`;
      expect({ hostname: got.hostname, port: String(got.port), user: got.user }, label).toEqual({ hostname: one('hostname'), port: one('port'), user: one('user') });
      // ssh prints its default identities when none is configured; compare the configured ones only.
      if (got.identityFiles.length > 0) expect(got.identityFiles, label).toEqual(files);
    }
  });
});

describe('the pattern helpers follow match.c', () => {
  it.each([
    ['web', 'web?', false],
    ['webz', 'web?', true],
    ['', '*', true],
    ['a.b', 'a?b', true],
    ['aXb', 'a.b', false],
    ['h(1)+', 'h(1)+', true],
    ['h11', 'h(1)+', false],
    ['a|b', 'a|b', true],
    ['a', 'a|b', false],
    ['[h]', '[h]', true],
    ['h', '[h]', false],
    ['x\\y', 'x\\y', true],
    // `?` is one byte, as in C: a two-byte character needs two.
    ['wéb', 'w?b', false],
    ['wéb', 'w??b', true],
  ])('match_pattern(%j, %j) is %s', (text, pattern, want) => {
    expect(matchPattern(text, pattern)).toBe(want);
  });

  it('match_pattern_list: negation wins, empty entries, a trailing comma, case only when asked', () => {
    expect(matchPatternList('db', '*,!db', false)).toBe(-1);
    expect(matchPatternList('web', '*,!db', false)).toBe(1);
    expect(matchPatternList('', 'a,', false)).toBe(0);
    expect(matchPatternList('', 'a,,b', false)).toBe(1);
    expect(matchPatternList('Alice', 'alice', false)).toBe(0);
    expect(matchPatternList('alice', 'ALICE', true)).toBe(1);
    // An entry of 1023 bytes or more makes the whole list fail (match.c copies at most 1022).
    expect(matchPatternList('a', `a,${'x'.repeat(1023)}`, false)).toBe(0);
    expect(matchHostname('DB1.Lab', 'db*.LAB')).toBe(true);
  });

  it('Host words: negation, commas and case', () => {
    expect(hostLineMatches(['a,b'], 'a')).toBe(false);
    expect(hostLineMatches(['*', '!Db'], 'Db')).toBe(false);
    expect(hostLineMatches(['*', '!Db'], 'db')).toBe(true);
    expect(hostLineMatches(['!x'], 'y')).toBe(false);
  });

  it('connects to the lower-cased name, addresses as they are (ssh.c)', () => {
    expect(connectName(undefined, 'Web1')).toBe('web1');
    expect(connectName('%h.Example', 'Web1')).toBe('web1.example');
    expect(connectName('FD00::A', 'x')).toBe('FD00::A');
  });
});

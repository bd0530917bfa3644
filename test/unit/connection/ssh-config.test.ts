import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { InputError } from '../../../src/errors.js';
import SSHConfig from 'ssh-config';
import {
  candidateLines,
  computeSettings,
  defaultSshConfigPath,
  loadSshConfig,
  parseProxyJump,
  plainHostBlocks,
} from '../../../src/connection/ssh-config.js';

const dir = mkdtempSync(path.join(os.tmpdir(), 'provision-sshcfg-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

let n = 0;
function configFile(text: string): string {
  const file = path.join(dir, `config-${++n}`);
  writeFileSync(file, text);
  return file;
}

const LAB = `# lab hosts
Host h1 h1.lab.test
  HostName 198.19.1.1
  User root
  IdentityFile /lab/key
  UserKnownHostsFile /lab/known_hosts /lab/known_hosts2
  StrictHostKeyChecking yes

Host h2.lab.test
  HostName 198.19.1.2
  Port 2222
  ProxyJump admin@h1:22
  IdentityFile "/lab/key with space"
  IdentitiesOnly yes

Host *.lab.test !h3.lab.test
  ConnectTimeout 3
  ServerAliveInterval 15
  ServerAliveCountMax 2

Host *
  User nobody
  Port 22
  IdentityFile ~/.ssh/id_fallback
  StrictHostKeyChecking accept-new
`;

describe('lookup', () => {
  const cfg = loadSshConfig(configFile(LAB));

  it('applies the first value obtained, in file order, across matching Host blocks', () => {
    expect(cfg.lookup('h1.lab.test')).toEqual({
      hostName: '198.19.1.1',
      user: 'root',
      port: 22,
      identityFiles: ['/lab/key', '~/.ssh/id_fallback'],
      userKnownHostsFiles: ['/lab/known_hosts', '/lab/known_hosts2'],
      strictHostKeyChecking: 'yes',
      connectTimeoutS: 3,
      serverAliveIntervalS: 15,
      serverAliveCountMax: 2,
    });
  });

  it('reads ports, quoted paths, IdentitiesOnly and ProxyJump', () => {
    expect(cfg.lookup('h2.lab.test')).toMatchObject({
      hostName: '198.19.1.2',
      port: 2222,
      user: 'nobody',
      identityFiles: ['/lab/key with space', '~/.ssh/id_fallback'],
      identitiesOnly: true,
      proxyJump: [{ host: 'h1', user: 'admin', port: 22 }],
      strictHostKeyChecking: 'accept-new',
    });
  });

  it('honours negated patterns and matches Host patterns case-sensitively (OpenSSH 9.2 ssh -G)', () => {
    expect(cfg.lookup('h3.lab.test').connectTimeoutS).toBeUndefined();
    // `ssh -G H1.LAB.TEST` with this file prints `hostname h1.lab.test`: the block for h1.lab.test does not apply.
    expect(cfg.lookup('H1.LAB.TEST').hostName).toBeUndefined();
  });

  it('lets a user given on the command line win over User', () => {
    expect(cfg.lookup('h1', 'deploy').user).toBe('deploy');
  });

  it('gives only the catch-all settings to an unknown host', () => {
    expect(cfg.lookup('elsewhere.example')).toEqual({
      user: 'nobody',
      port: 22,
      identityFiles: ['~/.ssh/id_fallback'],
      strictHostKeyChecking: 'accept-new',
    });
  });

  it('maps ask and off onto the checks that can run unattended', () => {
    const c = loadSshConfig(configFile('Host a\n  StrictHostKeyChecking ask\nHost b\n  StrictHostKeyChecking off\n'));
    expect(c.lookup('a').strictHostKeyChecking).toBe('yes');
    expect(c.lookup('b').strictHostKeyChecking).toBe('no');
  });

  it('reads Match host and Match user blocks', () => {
    const c = loadSshConfig(configFile('Match host 198.19.*\n  Port 2200\nMatch user deploy\n  ConnectTimeout 4\n'));
    expect(c.lookup('198.19.1.5').port).toBe(2200);
    expect(c.lookup('x', 'deploy').connectTimeoutS).toBe(4);
    expect(c.lookup('x').connectTimeoutS).toBeUndefined();
  });

  it('refuses ProxyCommand for the host it applies to, with its position', () => {
    const c = loadSshConfig(configFile('Host a\n  ProxyCommand nc %h %p\n'));
    expect(c.lookup('b')).toEqual({ identityFiles: [] });
    expect(() => c.lookup('a')).toThrow(/config-\d+:2:3: ProxyCommand \(for a\) is not supported; use ProxyJump/);
  });
});

describe('lookup reads only the Host blocks that can match', () => {
  // The lab's ssh_config (test/lab: one `Host hN hN.lab.test <address>` block per host) with, around it, the
  // pattern forms of ssh_config(5) PATTERNS: wildcards, negations, commas (ordinary characters in a Host word),
  // quoted words, regex characters in plain words, capitals (Host compares case-sensitively), a word listed by two
  // blocks, Match blocks.
  const perHost = Array.from({ length: 60 }, (_, k) => {
    const i = k + 1;
    return `Host h${i} h${i}.lab.test 198.19.104.${i}\n  HostName 198.19.104.${i}\n  User root\n  IdentityFile /lab/key${i % 3}\n  ConnectTimeout ${i}\n`;
  }).join('\n');
  const TEXT = `# top-level settings apply to every host
ServerAliveCountMax 5
Host h7 extra7
  Port 2207
  IdentityFile /lab/extra7
${perHost}
Host a,b
  Port 2001
Host c,d e
  Port 2002
Host "x y" z
  User quoted
Host h(1)+.x a|b h$ [h]
  User regexchars
Host Web1
  User capital
Host *.lab.test !h3.lab.test
  ServerAliveInterval 15
Host h1?
  User glob
Host !h5 198.19.104.*
  Port 2222
Host !nomatch
  User negated
Match host 198.19.104.4*
  User matched
Match user deploy
  ConnectionAttempts 3
Match originalhost h2*
  HashKnownHosts yes
Match all
  IdentityFile /lab/default
Host *
  User nobody
  StrictHostKeyChecking accept-new
`;
  const config = SSHConfig.parse(TEXT);
  const blocks = plainHostBlocks(config);
  const names = [
    ...Array.from({ length: 62 }, (_, k) => [`h${k + 1}`, `h${k + 1}.lab.test`, `198.19.104.${k + 1}`]).flat(),
    'H7', 'H1.LAB.TEST', 'extra7', 'a', 'b', 'a,b', 'c', 'd', 'c,d', 'e', 'x y', 'x', 'z', 'h(1)+.x', 'h1+.x', 'a|b',
    'h$', 'h', '[h]', 'Web1', 'web1', 'WEB1', 'nomatch', '!nomatch', 'elsewhere.example', '',
  ];
  // The settings computed over the whole file, with no block left out.
  const whole = (host: string, user?: string) => computeSettings(config, null, host, user);

  it('gives every host, with and without a user, the same settings as a lookup over the whole file', () => {
    expect(blocks).not.toBeNull();
    for (const host of names) {
      for (const user of [undefined, 'deploy', 'alice']) expect(computeSettings(config, blocks, host, user), `${host} ${user}`).toEqual(whole(host, user));
    }
    const file = loadSshConfig(configFile(TEXT));
    expect(file.lookup('h7')).toMatchObject({ hostName: '198.19.104.7', port: 2207, identityFiles: ['/lab/extra7', '/lab/key1', '/lab/default'] });
    expect(file.lookup('h5.lab.test', 'deploy')).toMatchObject({ user: 'deploy', connectionAttempts: 3, serverAliveIntervalS: 15 });
  });

  it('leaves out the plain blocks that do not list the name, and only those', () => {
    const hostLines = (c: SSHConfig) => c.filter((l) => 'config' in l).map((l) => (l as { value: string | { val: string }[] }).value).map((v) => (typeof v === 'string' ? v : v.map((x) => x.val).join(' ')));
    const kept = hostLines(candidateLines(config, blocks, 'h7'));
    expect(kept).toEqual(['h7 extra7', 'h7 h7.lab.test 198.19.104.7', '*.lab.test !h3.lab.test', 'h1?', '!h5 198.19.104.*', '!nomatch',
      'host 198.19.104.4*', 'user deploy', 'originalhost h2*', 'all', '*']);
    // A Host word is one pattern, commas included (readconf.c matches each word with match_pattern).
    expect(hostLines(candidateLines(config, blocks, 'a'))).not.toContain('a,b');
    expect(hostLines(candidateLines(config, blocks, 'a,b'))).toContain('a,b');
    expect(hostLines(candidateLines(config, blocks, 'c,d'))).toContain('c,d e');
    expect(hostLines(candidateLines(config, blocks, 'c'))).not.toContain('c,d e');
    expect(hostLines(candidateLines(config, blocks, 'web1'))).not.toContain('Web1');
    expect(hostLines(candidateLines(config, blocks, 'Web1'))).toContain('Web1');
    // Every other line (comments, top-level settings) stays, in file order.
    expect(candidateLines(config, blocks, 'nothing').filter((l) => !('config' in l))).toEqual(config.filter((l) => !('config' in l)));
  });

  it('reads every block when the name can change during the lookup (Match final, canonicalisation)', () => {
    // In the final pass Host lines are matched against the HostName: h1's block sends it to h2's.
    const final = SSHConfig.parse('Host h1\n  HostName h2\nHost h2\n  Port 2200\nMatch final all\n  User last\n');
    expect(plainHostBlocks(final)).toBeNull();
    expect(computeSettings(final, plainHostBlocks(final), 'h1', undefined)).toMatchObject({ port: '2200' });
    expect(plainHostBlocks(SSHConfig.parse('Host h1\n  CanonicalizeHostName no\n'))).toBeNull();
    expect(plainHostBlocks(SSHConfig.parse('CanonicalDomains lab.test\nHost h1\n  Port 1\n'))).toBeNull();
  });
});

describe('errors carry file and line', () => {
  it.each([
    ['Host a\n  Port 70000\n', 2, 'Port "70000" is not a port number'],
    ['Host a\n\n\n  Port ssh\n', 4, 'Port "ssh" is not a port number'],
    ['Host a\n  ConnectTimeout 0\n', 2, 'ConnectTimeout "0" is not a positive whole number'],
    ['Host a\n  ServerAliveInterval soon\n', 2, 'ServerAliveInterval "soon"'],
    ['Host a\n  StrictHostKeyChecking maybe\n', 2, 'StrictHostKeyChecking "maybe" is not one of'],
    ['Host a\n  IdentitiesOnly sometimes\n', 2, 'IdentitiesOnly "sometimes" is not yes or no'],
    ['Host a\n  ProxyJump a@b@c\n', 2, 'ProxyJump "a@b@c" is not [user@]host[:port]'],
    ['Include ~/.ssh/conf.d/*\n', 1, 'Include is not supported'],
    ['# c\nMatch exec "true"\n  User x\n', 2, 'Match exec is not supported'],
    // OpenSSH 9.2 ssh -G: "'all' cannot be combined with other Match attributes" (readconf.c match_cfg_line).
    ['Match all host x\n  User x\n', 1, 'Match all cannot be combined with other criteria'],
    ['Host a\nMatch host a final all\n  User x\n', 2, 'Match all cannot be combined with other criteria'],
    ['Host a\n  IdentityFile "/unterminated\n', 2, 'cannot parse "IdentityFile "/unterminated": unterminated quote'],
    ['Host a\nHost\n', 2, 'Host has no value'],
    ['Host a\n  Port\n  User x\n  Port nope\n', 2, 'Port has no value'],
    ['Host a\n  User\n\n  Port nope\n', 2, 'User has no value'],
  ])('%j → line %i', (text, line, message) => {
    const file = configFile(text);
    let error: unknown;
    try {
      loadSshConfig(file);
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(InputError);
    expect((error as InputError).pos).toMatchObject({ line });
    expect((error as Error).message).toContain(`:${line}:`);
    expect((error as Error).message).toContain(message);
  });

  it('names the file when it cannot be read', () => {
    expect(() => loadSshConfig(path.join(dir, 'missing'))).toThrow(/missing: cannot read ssh config: ENOENT/);
  });
});

describe('parseProxyJump', () => {
  it.each([
    ['none', []],
    ['h1', [{ host: 'h1' }]],
    ['admin@h1:2222,h2', [{ host: 'h1', user: 'admin', port: 2222 }, { host: 'h2' }]],
    ['ssh://root@bastion.example:22', [{ host: 'bastion.example', user: 'root', port: 22 }]],
    ['[fd00::1]:2200', [{ host: 'fd00::1', port: 2200 }]],
  ])('%s', (value, want) => {
    expect(parseProxyJump(value)).toEqual(want);
  });

  it('refuses a port out of range', () => {
    expect(() => parseProxyJump('h1:99999')).toThrow('invalid port');
  });
});

describe('defaultSshConfigPath', () => {
  const home = process.env.HOME;
  afterEach(() => {
    process.env.HOME = home;
  });

  it('is ~/.ssh/config only when that file exists', () => {
    const fakeHome = path.join(dir, 'home');
    mkdirSync(path.join(fakeHome, '.ssh'), { recursive: true });
    process.env.HOME = fakeHome;
    expect(defaultSshConfigPath()).toBeNull();
    writeFileSync(path.join(fakeHome, '.ssh', 'config'), 'Host *\n');
    expect(defaultSshConfigPath()).toBe(path.join(fakeHome, '.ssh', 'config'));
  });
});

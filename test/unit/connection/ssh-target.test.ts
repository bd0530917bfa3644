import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { loadSshConfig } from '../../../src/connection/ssh-config.js';
import { resolveSshTarget, type SshTarget } from '../../../src/connection/ssh-target.js';

const dir = mkdtempSync(path.join(os.tmpdir(), 'provision-target-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function config(text: string) {
  const file = path.join(dir, `config-${Math.random().toString(36).slice(2)}`);
  writeFileSync(file, text);
  return loadSshConfig(file);
}

const home = os.homedir();
const me = os.userInfo().username;

const CFG = config(`
Host h1.lab.test
  HostName 198.19.1.1
  User cfguser
  Port 2201
  IdentityFile /cfg/key-%h-%r-%p
  UserKnownHostsFile /cfg/known_hosts
  StrictHostKeyChecking accept-new
  ConnectTimeout 4
  ServerAliveInterval 5
  ConnectionAttempts 2

Host h2.lab.test
  HostName %h.internal
  ProxyJump jumper@h1.lab.test

Host chain.lab.test
  ProxyJump a.lab.test,b.lab.test:2200

Host a.lab.test
  ProxyJump h1.lab.test

Host loop1
  ProxyJump loop2
Host loop2
  ProxyJump loop1

Host self
  ProxyJump self
`);

describe('resolveSshTarget precedence', () => {
  type Case = [string, Record<string, unknown>, Parameters<typeof resolveSshTarget>[2], Partial<SshTarget>];
  const cases: Case[] = [
    [
      'OpenSSH defaults without config',
      {},
      {},
      {
        hostname: 'web1',
        port: 22,
        user: me,
        identityFiles: ['id_rsa', 'id_ecdsa', 'id_ed25519'].map((f) => path.join(home, '.ssh', f)),
        knownHostsFiles: [path.join(home, '.ssh', 'known_hosts'), path.join(home, '.ssh', 'known_hosts2')],
        hostKeyChecking: 'yes',
        connectTimeoutMs: 10_000,
        connectionAttempts: 3,
        serverAliveIntervalMs: 0,
        password: null,
        via: null,
      },
    ],
    [
      'inventory variables',
      { ansible_host: '198.19.9.9', ansible_port: '2222', ansible_user: 'deploy', ansible_ssh_private_key_file: '~/keys/lab', ansible_password: 'pw' },
      {},
      { hostname: '198.19.9.9', port: 2222, user: 'deploy', identityFiles: [path.join(home, 'keys/lab')], password: 'pw' },
    ],
    [
      'old ansible_ssh_* spellings',
      { ansible_ssh_host: '198.19.9.8', ansible_ssh_port: 2022, ansible_ssh_user: 'old', ansible_ssh_pass: 'pw2' },
      {},
      { hostname: '198.19.9.8', port: 2022, user: 'old', password: 'pw2' },
    ],
    [
      'command line options',
      {},
      { user: 'cliuser', privateKey: '/cli/key', hostKeyChecking: 'accept-new', timeoutS: 7 },
      { user: 'cliuser', identityFiles: ['/cli/key'], hostKeyChecking: 'accept-new', connectTimeoutMs: 7000 },
    ],
    [
      'inventory variables over the command line',
      { ansible_user: 'invuser', ansible_ssh_private_key_file: '/inv/key', ansible_host_key_checking: false, ansible_ssh_timeout: 3 },
      { user: 'cliuser', privateKey: '/cli/key', hostKeyChecking: 'yes', timeoutS: 7 },
      // Except the host key policy: an inventory may not loosen an explicit --host-key-checking yes.
      { user: 'invuser', identityFiles: ['/inv/key'], hostKeyChecking: 'yes', connectTimeoutMs: 3000 },
    ],
  ];
  it.each(cases)('%s', (_name, vars, cli, want) => {
    expect(resolveSshTarget('web1', vars, cli, null)).toMatchObject(want);
  });

  const POLICIES: [unknown, 'yes' | 'accept-new' | 'no' | undefined, string][] = [
    [false, 'yes', 'yes'],
    ['no', 'accept-new', 'accept-new'],
    [true, 'no', 'yes'],
    ['accept-new', 'no', 'accept-new'],
    [false, undefined, 'no'],
    [undefined, 'no', 'no'],
  ];
  it.each(POLICIES)('ansible_host_key_checking %s with --host-key-checking %s: the stricter, %s', (inv, cli, want) => {
    const vars = inv === undefined ? {} : { ansible_host_key_checking: inv };
    expect(resolveSshTarget('web1', vars, cli ? { hostKeyChecking: cli } : {}, null).hostKeyChecking).toBe(want);
  });

  it('takes ssh_config for the inventory hostname, expanding %h %r %p in paths', () => {
    expect(resolveSshTarget('h1.lab.test', {}, {}, CFG)).toMatchObject({
      name: 'h1.lab.test',
      hostname: '198.19.1.1',
      port: 2201,
      user: 'cfguser',
      identityFiles: ['/cfg/key-198.19.1.1-cfguser-2201'],
      knownHostsFiles: ['/cfg/known_hosts'],
      hostKeyName: '198.19.1.1',
      hostKeyChecking: 'accept-new',
      connectTimeoutMs: 4000,
      serverAliveIntervalMs: 5000,
      connectionAttempts: 2,
    });
  });

  it('lets inventory variables and -u override ssh_config, and puts --private-key before IdentityFile', () => {
    const t = resolveSshTarget('h1.lab.test', { ansible_host: '198.19.5.5', ansible_port: 22 }, { user: 'cli', privateKey: '/cli/key' }, CFG);
    expect(t).toMatchObject({ hostname: '198.19.5.5', port: 22, user: 'cli', identityFiles: ['/cli/key', '/cfg/key-198.19.5.5-cli-22'] });
    expect(resolveSshTarget('h1.lab.test', {}, { hostKeyChecking: 'yes' }, CFG).hostKeyChecking).toBe('yes');
  });

  it.each([
    [{ ansible_port: 'ssh' }, 'host "web1": ansible_port "ssh" is not a port number'],
    [{ ansible_port: 0 }, 'ansible_port "0" is not a port number'],
    [{ ansible_host_key_checking: 'perhaps' }, 'ansible_host_key_checking "perhaps" is not a boolean or accept-new'],
    [{ ansible_ssh_timeout: '-1' }, 'ansible_ssh_timeout "-1" is not a positive whole number'],
    [{ ansible_user: ['a'] }, 'ansible_user must be a string'],
  ])('refuses %j', (vars, message) => {
    expect(() => resolveSshTarget('web1', vars, {}, null)).toThrow(message);
  });
});

describe('ProxyJump', () => {
  it('reaches a host through a jump host resolved with its own ssh_config entry', () => {
    const t = resolveSshTarget('h2.lab.test', {}, { user: 'cli', hostKeyChecking: 'accept-new' }, CFG);
    expect(t.hostname).toBe('h2.lab.test.internal');
    expect(t.user).toBe('cli');
    // The jump host gets its ssh_config settings and the user from ProxyJump, not the target's -u.
    expect(t.via).toMatchObject({ name: 'h1.lab.test', hostname: '198.19.1.1', port: 2201, user: 'jumper', hostKeyChecking: 'accept-new', via: null });
  });

  it('builds a chain: the last hop through the ones before it, the first through its own ProxyJump', () => {
    const t = resolveSshTarget('chain.lab.test', {}, {}, CFG);
    const names: string[] = [];
    for (let hop = t.via; hop; hop = hop.via) names.push(`${hop.name}:${hop.port}`);
    expect(names).toEqual(['b.lab.test:2200', 'a.lab.test:22', 'h1.lab.test:2201']);
  });

  it.each([
    ['loop1', 'ProxyJump loops: loop1 -> loop2 -> loop1'],
    ['self', 'ProxyJump loops: self -> self'],
  ])('refuses the loop through %s', (host, message) => {
    expect(() => resolveSshTarget(host, {}, {}, CFG)).toThrow(message);
  });

  it('refuses a chain longer than eight hops', () => {
    const lines = Array.from({ length: 12 }, (_, i) => `Host n${i}\n  ProxyJump n${i + 1}\n`).join('');
    expect(() => resolveSshTarget('n0', {}, {}, config(lines))).toThrow('ProxyJump chain is longer than 8 hops');
  });
});

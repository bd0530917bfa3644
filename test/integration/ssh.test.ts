/**
 * The SSH transport against the lab's real sshd hosts: host keys, ssh_config, ProxyJump, sudo, unreachable
 * addresses and content that must arrive byte for byte. Checks on the hosts go through labExec (nsenter), not
 * through the connection under test.
 */
import { execFileSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterEach, describe, expect, inject, it } from 'vitest';
import { UnreachableError } from '../../src/errors.js';
import { fingerprint, parseKnownHosts } from '../../src/connection/known-hosts.js';
import { createSecrets, type Prompter } from '../../src/connection/secrets.js';
import { heredocTo, quote } from '../../src/connection/shell-quote.js';
import { SshConnection, createSshRunState } from '../../src/connection/ssh.js';
import { loadSshConfig } from '../../src/connection/ssh-config.js';
import { resolveSshTarget, type SshCliOptions } from '../../src/connection/ssh-target.js';
import { labExec, type LabHost, type LabState } from '../lab/lab.js';
import { tempDir } from '../support/tmp.js';

declare module 'vitest' {
  export interface ProvidedContext {
    lab: LabState | null;
  }
}

const lab = inject('lab');

describe.skipIf(!lab)('SSH transport against the lab', () => {
  const state = lab!;
  const [h1, h2] = state.hosts as [LabHost, LabHost | undefined];
  const dir = tempDir('provision-ssh-it-');

  const opened: SshConnection[] = [];
  afterEach(async () => {
    await Promise.all(opened.splice(0).map((c) => c.close()));
  });

  function run(opts: { prompter?: Prompter; askPass?: boolean; interactive?: boolean } = {}) {
    const prompter = opts.prompter ?? (async () => Promise.reject(new Error('unexpected prompt')));
    return createSshRunState(createSecrets({ interactive: opts.interactive ?? true, askPass: opts.askPass ?? false, prompter }), { retryDelayMs: 200 });
  }

  /** A connection to a lab host as the inventory describes it, with extra inventory variables. */
  function connect(host: LabHost, vars: Record<string, unknown> = {}, cli: SshCliOptions = {}, r = run()) {
    const config = loadSshConfig(state.sshConfig);
    const base = { ansible_host: host.ip, ansible_user: 'root', ansible_ssh_private_key_file: state.key };
    const c = new SshConnection(resolveSshTarget(host.name, { ...base, ...vars }, cli, config), r);
    opened.push(c);
    return c;
  }

  function withConfig(text: string, name: string, vars: Record<string, unknown> = {}, cli: SshCliOptions = {}, r = run()) {
    const file = path.join(dir, `ssh_config_${Math.random().toString(36).slice(2)}`);
    writeFileSync(file, text);
    const c = new SshConnection(resolveSshTarget(name, vars, cli, loadSshConfig(file)), r);
    opened.push(c);
    return c;
  }

  async function unreachable(p: Promise<unknown>): Promise<UnreachableError> {
    const e = await p.then(
      () => null,
      (err: unknown) => err,
    );
    expect(e).toBeInstanceOf(UnreachableError);
    return e as UnreachableError;
  }

  /** The host key the lab recorded for a host. */
  function labKey(host: LabHost): Buffer {
    const entry = parseKnownHosts(readFileSync(state.knownHosts, 'utf8'), state.knownHosts).find((e) => e.hosts.split(',').includes(host.ip));
    if (!entry) throw new Error(`the lab's known_hosts has no key for ${host.ip}`);
    return entry.key;
  }

  function knownHostsFile(lines: string[]): string {
    const file = path.join(dir, `known_hosts_${Math.random().toString(36).slice(2)}`);
    writeFileSync(file, lines.map((l) => `${l}\n`).join(''));
    return file;
  }

  it('connects with the inventory settings and runs scripts as steps of one session on one connection, counting them', async () => {
    const c = connect(h1);
    await c.connect();
    const r = await c.exec('uname -n; id -un; echo oops >&2; exit 3');
    expect([r.code, r.stdout.toString(), r.stderr.toString()]).toEqual([3, `${h1.name}\nroot\n`, 'oops\n']);
    for (let i = 0; i < 4; i++) await c.exec('true');
    // One channel (the session) carried the five scripts.
    expect([c.execs, c.steps]).toEqual([1, 5]);
    // One TCP connection from the controller carried all of it.
    const ss = await labExec(h1, `ss -Htn state established '( sport = :22 )' | grep -c ${quote(state.controllerIp)} || true`);
    expect(ss.stdout.trim()).toBe('1');
  });

  it('delivers hostile strings into a file byte for byte', async () => {
    const c = connect(h1);
    await c.connect();
    const content = Buffer.concat([
      Buffer.from(`it's "quoted" $(touch /tmp/pwned) \`id\` $HOME \${IFS}\nPROVISION_EOF\n\\\\ \t\r\n; rm -rf / #\n`),
      Buffer.from(Array.from({ length: 256 }, (_, i) => i)),
    ]);
    const file = `/tmp/it's a "file" $(x) \`y\``;
    const r = await c.exec(`${heredocTo(quote(file), content)}`);
    expect(r.code).toBe(0);
    const back = await labExec(h1, `base64 -w0 < ${quote(file)}; test ! -e /tmp/pwned`);
    expect(back.code).toBe(0);
    expect(Buffer.from(back.stdout, 'base64').equals(content)).toBe(true);
  });

  it('honours ssh_config Host, HostName, User and IdentityFile', async () => {
    const block = (user: string, key: string | null) =>
      ['Host via-config', `  HostName ${h1.ip}`, `  User ${user}`, ...(key ? [`  IdentityFile ${key}`] : []), `  UserKnownHostsFile ${state.knownHosts}`, ''].join('\n');
    const asRoot = withConfig(block('root', state.key), 'via-config');
    await asRoot.connect();
    expect((await asRoot.exec('id -un')).stdout.toString()).toBe('root\n');

    const asUser = withConfig(block(state.sudoUser.name, state.key), 'via-config');
    await asUser.connect();
    expect((await asUser.exec('id -un')).stdout.toString()).toBe(`${state.sudoUser.name}\n`);

    const withoutKey = withConfig(block('root', path.join(dir, 'no-such-key')), 'via-config', {}, {}, run({ interactive: false }));
    expect((await unreachable(withoutKey.connect())).message).toMatch(/^authentication failed for root@/);
  });

  it('refuses an unknown host key, naming its type and fingerprint', async () => {
    const empty = knownHostsFile([]);
    const c = withConfig(`Host ${h1.name}\n  HostName ${h1.ip}\n  User root\n  IdentityFile ${state.key}\n  UserKnownHostsFile ${empty}\n`, h1.name);
    const e = await unreachable(c.connect());
    expect(e.message).toBe(
      `host key for ${h1.name} (${h1.ip}:22) is not known: ssh-ed25519 ${fingerprint(labKey(h1))} (add it to ${empty} or use --host-key-checking accept-new)`,
    );
    expect(readFileSync(empty, 'utf8')).toBe('');
  });

  it.skipIf(!h2)('refuses a changed host key, naming the known_hosts line', async () => {
    const file = knownHostsFile(['# stale', `${h1.ip} ssh-ed25519 ${labKey(h2!).toString('base64')}`]);
    const target = withConfig(`Host ${h1.name}\n  HostName ${h1.ip}\n  User root\n  IdentityFile ${state.key}\n  UserKnownHostsFile ${file}\n`, h1.name);
    const e = await unreachable(target.connect());
    expect(e.message).toBe(
      `REMOTE HOST KEY CHANGED for ${h1.name} (${h1.ip}:22): server offers ssh-ed25519 ${fingerprint(labKey(h1))}, ${file} line 2 has ${fingerprint(labKey(h2!))} (if the host was reinstalled, remove that line)`,
    );
  });

  it('records a new host key with accept-new, then trusts it strictly', async () => {
    const file = path.join(dir, 'accept-new', 'known_hosts');
    const text = `Host ${h1.name}\n  HostName ${h1.ip}\n  User root\n  IdentityFile ${state.key}\n  UserKnownHostsFile ${file}\n`;
    const c = withConfig(text, h1.name, {}, { hostKeyChecking: 'accept-new' });
    await c.connect();
    expect(readFileSync(file, 'utf8')).toBe(`${h1.ip} ssh-ed25519 ${labKey(h1).toString('base64')}\n`);
    const strict = withConfig(text, h1.name);
    await strict.connect();
    expect((await strict.exec('echo again')).stdout.toString()).toBe('again\n');
  });

  it.skipIf(!h2)('reaches a host through ProxyJump when it only accepts SSH from the jump host', async () => {
    const allowOnlyH1 = `iptables -I INPUT 1 -p tcp --dport 22 ! -s ${h1.ip} -j REJECT --reject-with tcp-reset`;
    const undo = allowOnlyH1.replace('-I INPUT 1', '-D INPUT');
    expect((await labExec(h2!, allowOnlyH1)).code).toBe(0);
    try {
      const lines = readFileSync(state.sshConfig, 'utf8');
      const jumped = `Host jumped\n  HostName ${h2!.ip}\n  User root\n  IdentityFile ${state.key}\n  UserKnownHostsFile ${state.knownHosts}\n  ProxyJump ${h1.short}\n\n${lines}`;
      const c = withConfig(jumped, 'jumped', {}, {}, run());
      await c.connect();
      expect((await c.exec('uname -n')).stdout.toString()).toBe(`${h2!.name}\n`);
      const seen = await labExec(h2!, `ss -Htn state established '( sport = :22 )'`);
      expect(seen.stdout).toContain(`${h1.ip}:`);
      await c.probeNew(10_000);

      const direct = withConfig(`Host direct\n  HostName ${h2!.ip}\n  User root\n  IdentityFile ${state.key}\n  UserKnownHostsFile ${state.knownHosts}\n`, 'direct', { ansible_ssh_timeout: 3 });
      expect((await unreachable(direct.connect())).message).toMatch(new RegExp(`^cannot connect to ${h2!.ip.replace(/\./g, '\\.')}:22: connection (refused|reset)`));
    } finally {
      await labExec(h2!, undo);
    }
  });

  describe('become through sudo with a password', () => {
    const user = state.sudoUser;
    const asSudoUser = () => connect(h1, { ansible_user: user.name });

    it('runs as root with the password on stdin, never in argv or output', async () => {
      const c = asSudoUser();
      await c.connect();
      const running = c.exec('id -u; sleep 2; echo done', { become: { user: 'root', password: user.password } });
      await new Promise((r) => setTimeout(r, 1000));
      const ps = await labExec(h1, 'ps -eo args');
      const r = await running;
      expect([r.code, r.stdout.toString(), r.stderr.toString()]).toEqual([0, '0\ndone\n', '']);
      expect(ps.stdout).toContain('sudo -S -p');
      expect(ps.stdout).not.toContain(user.password);
    });

    it('fails the task, not the host, on a wrong password', async () => {
      const c = asSudoUser();
      await c.connect();
      const r = await c.exec('echo never', { become: { user: 'root', password: 'wrong-password' } });
      expect(r.code).not.toBe(0);
      expect(r.stdout.toString()).toBe('');
      expect(r.stderr.toString()).toMatch(/incorrect password|Sorry, try again/);
      expect(r.stderr.toString()).not.toContain('wrong-password');
      expect((await c.exec('id -un')).stdout.toString()).toBe(`${user.name}\n`);
    });

    it('neither leaks nor runs the password when sudo does not ask for it', async () => {
      const dropIn = '/etc/sudoers.d/zz-provision-ssh-test';
      expect((await labExec(h1, `printf '%s ALL=(ALL) NOPASSWD: ALL\\n' ${quote(user.name)} > ${dropIn} && chmod 0440 ${dropIn}`)).code).toBe(0);
      try {
        const c = asSudoUser();
        await c.connect();
        const r = await c.exec('id -u', { become: { user: 'root', password: user.password } });
        expect([r.code, r.stdout.toString(), r.stderr.toString()]).toEqual([0, '0\n', '']);
      } finally {
        await labExec(h1, `rm -f ${dropIn}`);
      }
    });

    it('logs in with the --ask-pass password, asked once for every host', async () => {
      const prompts: string[] = [];
      const r = run({ askPass: true, prompter: async (p) => (prompts.push(p), user.password) });
      // No usable key anywhere: only the password can log in.
      const noKeys = `Host *\n  IdentityFile ${path.join(dir, 'no-key')}\n  UserKnownHostsFile ${state.knownHosts}\n`;
      const conns = state.hosts.slice(0, 3).map((h) => withConfig(noKeys, h.name, { ansible_host: h.ip, ansible_user: user.name }, {}, r));
      await Promise.all(conns.map((c) => c.connect()));
      expect(prompts).toEqual(['SSH password: ']);
      expect((await conns[0]!.exec('id -un')).stdout.toString()).toBe(`${user.name}\n`);
    });
  });

  it('asks an encrypted key’s passphrase once for all hosts', async () => {
    const key = path.join(dir, 'encrypted_key');
    writeFileSync(key, readFileSync(state.key), { mode: 0o600 });
    execFileSync('ssh-keygen', ['-p', '-q', '-P', '', '-N', 'lab passphrase', '-f', key]);
    const prompts: string[] = [];
    const r = run({ prompter: async (p) => (prompts.push(p), 'lab passphrase') });
    const conns = state.hosts.map((h) => connect(h, { ansible_ssh_private_key_file: key }, {}, r));
    await Promise.all(conns.map((c) => c.connect()));
    expect(prompts).toEqual([`Enter passphrase for key '${key}': `]);
  });

  it('reports an address that never answers as unreachable while other hosts work', async () => {
    const last = Number(state.subnet.split('/')[0]!.split('.')[3]);
    const base = state.subnet.split('/')[0]!.split('.').slice(0, 3).join('.');
    const unused = `${base}.${last + 250}`;
    expect(state.hosts.map((h) => h.ip)).not.toContain(unused);
    const dead = connect({ ...h1, name: 'ghost.lab.test', ip: unused }, { ansible_ssh_timeout: 2 });
    const alive = connect(h1);
    const started = Date.now();
    const [d, a] = await Promise.allSettled([dead.connect(), alive.connect()]);
    expect(a.status).toBe('fulfilled');
    expect(d.status).toBe('rejected');
    const e = (d as PromiseRejectedResult).reason as UnreachableError;
    expect(e).toBeInstanceOf(UnreachableError);
    expect(e.host).toBe('ghost.lab.test');
    expect(e.message).toMatch(new RegExp(`^cannot connect to ${unused.replace(/\./g, '\\.')}:22: (timed out after 2 s connecting|no route to host)`));
    expect(Date.now() - started).toBeLessThan(30_000);
  });
});

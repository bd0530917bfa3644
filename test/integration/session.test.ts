/**
 * The remote session over real SSH channels to the lab's hosts: one channel runs the loop, steps go through it,
 * sudo with a password is paid once, and a session killed on the host or cut off by a lost connection fails its
 * pending steps and releases what it held. Checks on the hosts go through labExec, not through the session.
 */
import { readFileSync } from 'node:fs';
import ssh2 from 'ssh2';
import type { Client as Ssh2Client } from 'ssh2';
import { afterEach, describe, expect, inject, it } from 'vitest';
import { channelTransport, RemoteSession, SessionLostError, sessionLaunch, SessionStartError } from '../../src/connection/session.js';
import type { BecomeSpec } from '../../src/connection/connection.js';
import { labExec, type LabHost, type LabState } from '../lab/lab.js';

declare module 'vitest' {
  export interface ProvidedContext {
    lab: LabState | null;
  }
}

const lab = inject('lab');

describe.skipIf(!lab)('remote sessions on the lab hosts', () => {
  const state = lab!;
  const hosts = state.hosts.slice(0, 2);
  const clients: Ssh2Client[] = [];
  afterEach(() => {
    for (const c of clients.splice(0)) c.end();
  });

  function connect(host: LabHost, user = 'root'): Promise<Ssh2Client> {
    return new Promise((resolve, reject) => {
      const c = new ssh2.Client();
      clients.push(c);
      c.on('ready', () => resolve(c));
      c.on('error', reject);
      c.connect({ host: host.ip, username: user, privateKey: readFileSync(state.key), readyTimeout: 30_000 });
    });
  }

  async function session(client: Ssh2Client, become?: BecomeSpec): Promise<RemoteSession> {
    const launch = sessionLaunch(become);
    const channel = await new Promise<ssh2.ClientChannel>((resolve, reject) => client.exec(launch.command, (e, ch) => (e ? reject(e) : resolve(ch))));
    return RemoteSession.start(channelTransport(channel), launch, { timeoutMs: 60_000 });
  }

  describe.each(hosts.map((h) => [h.flavour, h] as const))('on %s', (_flavour, host) => {
    it('runs many steps on one channel, with every byte of their output', async () => {
      const s = await session(await connect(host));
      const bytes = Buffer.from(Array.from({ length: 256 }, (_, i) => i));
      const r = await s.run(`printf '${[...bytes].map((b) => `\\${b.toString(8).padStart(3, '0')}`).join('')}'; echo err >&2; exit 4`);
      expect([r.code, r.stdout.equals(bytes), r.stderr.toString()]).toEqual([4, true, 'err\n']);
      const big = await s.run('head -c 20000000 /dev/zero');
      expect([big.stdout.length, big.stdout.every((b) => b === 0)]).toEqual([20_000_000, true]);
      for (let i = 0; i < 20; i++) expect((await s.run(`echo ${i}`)).stdout.toString()).toBe(`${i}\n`);
      expect(s.steps).toBe(22);
      const shells = await labExec(host, 'ps -eo args');
      expect(shells.stdout).not.toContain('head -c 20000000');
      await s.close();
    });

    it('kills a hung step at its timeout and the session runs the next one', async () => {
      const s = await session(await connect(host));
      const r = await s.run('sleep 120 & echo $!; wait', { timeoutMs: 1000 });
      expect([r.timedOut, r.code]).toEqual([true, null]);
      const child = r.stdout.toString().trim();
      expect((await labExec(host, `sleep 0.5; kill -0 ${child} 2>/dev/null && echo alive || echo gone`)).stdout).toBe('gone\n');
      expect((await s.run('echo next')).stdout.toString()).toBe('next\n');
    });

    it('fails the pending step when the session is killed on the host', async () => {
      const s = await session(await connect(host));
      const loop = (await s.run('echo $PPID')).stdout.toString().trim();
      const d = (await s.run('dirname "$(readlink /proc/$$/fd/1)"')).stdout.toString().trim();
      // The handler is attached before the kill: the step fails while labExec is still waiting.
      const failed = expect(s.run('sleep 30')).rejects.toBeInstanceOf(SessionLostError);
      await new Promise((r) => setTimeout(r, 300));
      await labExec(host, `kill -TERM ${loop}`);
      await failed;
      expect((await labExec(host, `sleep 0.3; [ -e '${d}' ] && echo left || echo removed`)).stdout).toBe('removed\n');
    });

    it('releases a lock held by a persistent step when the connection is lost', async () => {
      const client = await connect(host);
      const s = await session(client);
      const lock = `/root/provision-session-lock-test`;
      const take = await s.run(`exec 9>${lock}; flock -n 9 && echo held`, { persistent: true });
      expect(take.stdout.toString()).toBe('held\n');
      expect((await labExec(host, `flock -n ${lock} true && echo free || echo taken`)).stdout).toBe('taken\n');
      const pending = s.run('sleep 2; echo done');
      client.destroy();
      await expect(pending).rejects.toBeInstanceOf(SessionLostError);
      const free = await labExec(host, `for i in $(seq 50); do flock -n ${lock} true && { echo free; break; }; sleep 0.2; done; rm -f ${lock}`);
      expect(free.stdout).toBe('free\n');
    });
  });

  describe('become with a password', () => {
    const user = state.sudoUser;
    const host = hosts[0]!;

    it('asks sudo once and runs every step as root', async () => {
      const s = await session(await connect(host, user.name), { user: 'root', password: user.password });
      const ids = await Promise.all([s.run('id -u'), s.run('id -un'), s.run('echo $HOME >&2')]);
      expect(ids.map((r) => r.code)).toEqual([0, 0, 0]);
      expect([ids[0]!.stdout.toString(), ids[1]!.stdout.toString()]).toEqual(['0\n', 'root\n']);
      const ps = await labExec(host, 'ps -eo args');
      expect(ps.stdout).toContain('sudo -S -p');
      expect(ps.stdout).not.toContain(user.password);
      await s.close();
    });

    it('does not start with a wrong password and reports what sudo said', async () => {
      const e = await session(await connect(host, user.name), { user: 'root', password: 'wrong-password' }).catch((x: unknown) => x);
      expect(e).toBeInstanceOf(SessionStartError);
      const stderr = (e as SessionStartError).stderr.toString();
      expect(stderr).toMatch(/incorrect password|Sorry, try again/);
      expect(stderr).not.toContain('wrong-password');
    });
  });
});

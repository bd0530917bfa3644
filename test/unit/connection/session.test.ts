/**
 * The remote session protocol on local shells: dash (Debian's sh), bash and the machine's /bin/sh run the loop of
 * session-remote.ts exactly as a host would over an SSH channel.
 */
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chmodSync, existsSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import {
  childTransport,
  RemoteSession,
  SessionLostError,
  SessionStartError,
  sessionLaunch,
  type SessionLaunch,
} from '../../../src/connection/session.js';
import { SCRATCH_VAR, sessionProgram } from '../../../src/connection/session-remote.js';
import { tempDir } from '../../support/tmp.js';

const dir = tempDir('provision-session-');
const shells = ['dash', 'bash', '/bin/sh'].filter((s) => {
  try {
    execFileSync(s, ['-c', 'true']);
    return true;
  } catch {
    return false;
  }
});

const started: { child: ChildProcess; session?: RemoteSession }[] = [];
afterEach(async () => {
  for (const s of started.splice(0)) {
    if (s.session) await s.session.close(500);
    else s.child.kill('SIGKILL');
  }
});

async function open(shell: string, launch: SessionLaunch = sessionLaunch(), env?: NodeJS.ProcessEnv) {
  const child = launch.sudo
    ? spawn(shell, ['-c', launch.command], { stdio: 'pipe', env })
    : spawn(shell, ['-s'], { stdio: 'pipe', env });
  const entry: { child: ChildProcess; session?: RemoteSession } = { child };
  started.push(entry);
  entry.session = await RemoteSession.start(childTransport(child), launch, { timeoutMs: 20_000 });
  return { child, session: entry.session, launch };
}

/** The loop's private directory, seen from a step: the script it runs lives there. */
async function privateDir(session: RemoteSession): Promise<string> {
  return (await session.run('dirname "$(readlink /proc/$$/fd/1)"')).stdout.toString().trim();
}

function gone(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return false;
  } catch {
    return true;
  }
}

async function eventually(check: () => boolean, ms = 5000): Promise<boolean> {
  for (const end = Date.now() + ms; Date.now() < end; await new Promise((r) => setTimeout(r, 50))) if (check()) return true;
  return check();
}

describe.each(shells)('a session on %s', (shell) => {
  it('runs steps one after another in one shell, with their status, output and timing', async () => {
    const { child, session } = await open(shell);
    const a = await session.run('echo out; echo err >&2; exit 3');
    expect([a.code, a.stdout.toString(), a.stderr.toString(), a.timedOut]).toEqual([3, 'out\n', 'err\n', false]);
    const b = await session.run('sleep 0.3; echo "parent $PPID"');
    expect(b.stdout.toString()).toBe(`parent ${child.pid}\n`);
    expect(b.elapsedMs).toBeGreaterThanOrEqual(250);
    const many = await Promise.all(Array.from({ length: 20 }, (_, i) => session.run(`echo ${i}`)));
    expect(many.map((r) => r.stdout.toString())).toEqual(Array.from({ length: 20 }, (_, i) => `${i}\n`));
    expect(session.steps).toBe(22);
  });

  it('keeps its files in a private directory that is gone when the session ends', async () => {
    const { session } = await open(shell);
    const d = await privateDir(session);
    const st = statSync(d);
    expect([st.mode & 0o777, st.uid]).toEqual([0o700, process.getuid!()]);
    expect(d).not.toBe(await privateDir((await open(shell)).session));
    await session.close();
    expect(existsSync(d)).toBe(false);
  });

  it('makes its directory private whatever the login\'s umask, without a chmod', async () => {
    const child = spawn(shell, ['-c', 'umask 0277; exec sh -s'], { stdio: 'pipe' });
    const entry: { child: ChildProcess; session?: RemoteSession } = { child };
    started.push(entry);
    entry.session = await RemoteSession.start(childTransport(child), sessionLaunch(), { timeoutMs: 20_000 });
    const st = statSync(await privateDir(entry.session));
    expect(st.mode & 0o777).toBe(0o700);
    expect((await entry.session.run('echo ok')).stdout.toString()).toBe('ok\n');
  });

  it('gives every step, persistent or not, a scratch prefix in its private directory', async () => {
    const { session } = await open(shell);
    const d = await privateDir(session);
    for (const persistent of [false, true]) {
      const r = await session.run(`printf '%s' "$${SCRATCH_VAR}"; echo data > "\${${SCRATCH_VAR}}f"`, { persistent });
      expect(r.stdout.toString()).toBe(`${d}/x-`);
      expect(readFileSync(`${d}/x-f`, 'utf8')).toBe('data\n');
    }
  });

  it('runs a step without a timeout in the loop\'s session; one with a timeout, or any when detached, in its own', async () => {
    // the step's session id, then its parent's (the loop's): fields 4 after the command name in /proc/PID/stat
    const sids = 'read -r a </proc/$$/stat; set -- ${a##*) }; s=$4; read -r a </proc/$PPID/stat; set -- ${a##*) }; echo "$s $4"';
    const same = (out: Buffer) => {
      const [a, b] = out.toString().trim().split(' ');
      return a === b;
    };
    const { session } = await open(shell);
    expect(same((await session.run(sids)).stdout)).toBe(true);
    expect(same((await session.run(sids, { timeoutMs: 20_000 })).stdout)).toBe(false);
    const launch = sessionLaunch();
    const text = launch.bootstrap.toString();
    expect(text).toContain(sessionProgram(launch.nonce));
    const detached = { ...launch, bootstrap: Buffer.from(text.replace(sessionProgram(launch.nonce), sessionProgram(launch.nonce, { detach: true }))) };
    const d = await open(shell, detached);
    expect(same((await d.session.run(sids)).stdout)).toBe(false);
  });

  it('gives steps no stdin and none of the descriptors a persistent step holds', async () => {
    const { session } = await open(shell);
    const lock = path.join(dir, `lock-${randomBytes(4).toString('hex')}`);
    expect((await session.run(`exec 9>'${lock}'; pv_kept=yes`, { persistent: true })).code).toBe(0);
    const r = await session.run('cat; ls /proc/$$/fd; echo "kept=$pv_kept"');
    expect(r.stdout.toString().split('\n')).not.toContain('9');
    expect(r.stdout.toString()).toMatch(/kept=\n$/);
    expect((await session.run('echo "kept=$pv_kept"', { persistent: true })).stdout.toString()).toBe('kept=yes\n');
  });

  it('passes on output that looks like frames, with its nonce, byte for byte', async () => {
    const launch = sessionLaunch();
    const { session } = await open(shell, launch);
    const fake = `${launch.nonce} 2 0 5 0 0 0\n${launch.nonce} end\n${launch.nonce} ready\n`;
    const file = path.join(dir, 'frames');
    writeFileSync(file, fake);
    const r = await session.run(`cat '${file}'; cat '${file}' >&2; printf '%s 9 0' '${launch.nonce}'`);
    expect(r.stdout.toString()).toBe(`${fake}${launch.nonce} 9 0`);
    expect(r.stderr.toString()).toBe(fake);
    expect((await session.run('echo next')).stdout.toString()).toBe('next\n');
  });

  it('passes on binary output: every byte value, NULs, no final newline', async () => {
    const { session } = await open(shell);
    const bytes = Buffer.concat([Buffer.from(Array.from({ length: 256 }, (_, i) => i)), Buffer.alloc(1000), Buffer.from([10, 0, 13])]);
    const file = path.join(dir, 'binary');
    writeFileSync(file, bytes);
    const r = await session.run(`cat '${file}'; cat '${file}' '${file}' >&2`);
    expect(r.stdout.equals(bytes)).toBe(true);
    expect(r.stderr.equals(Buffer.concat([bytes, bytes]))).toBe(true);
  });

  it('passes on tens of megabytes of output', async () => {
    const { session } = await open(shell);
    const big = randomBytes(40 * 1024 * 1024);
    const file = path.join(dir, 'big');
    writeFileSync(file, big);
    const r = await session.run(`cat '${file}'; echo tail >&2`);
    expect(r.stdout.length).toBe(big.length);
    expect(r.stdout.equals(big)).toBe(true);
    expect(r.stderr.toString()).toBe('tail\n');
    expect((await session.run('echo after')).stdout.toString()).toBe('after\n');
  }, 60_000);

  it('kills a step and what it started at its timeout, and runs the next step', async () => {
    const { session } = await open(shell);
    const pids = path.join(dir, `pids-${randomBytes(4).toString('hex')}`);
    const t0 = Date.now();
    const r = await session.run(`sleep 60 & echo $! > '${pids}'; echo $$ >> '${pids}'; echo started; wait; echo never`, { timeoutMs: 500 });
    expect(Date.now() - t0).toBeLessThan(5000);
    expect([r.timedOut, r.code, r.stdout.toString()]).toEqual([true, null, 'started\n']);
    const [child, step] = readFileSync(pids, 'utf8').trim().split('\n').map(Number) as [number, number];
    expect(await eventually(() => gone(child) && gone(step))).toBe(true);
    const next = await session.run('echo alive', { timeoutMs: 5000 });
    expect([next.code, next.stdout.toString(), next.timedOut]).toEqual([0, 'alive\n', false]);
  });

  it('fails pending steps cleanly when the shell is killed on the host, and removes its directory on TERM', async () => {
    const { child, session } = await open(shell);
    const d = await privateDir(session);
    const running = session.run('sleep 30');
    const queued = session.run('echo queued');
    await new Promise((r) => setTimeout(r, 300));
    process.kill(child.pid!, 'SIGTERM');
    await expect(running).rejects.toBeInstanceOf(SessionLostError);
    await expect(queued).rejects.toThrow(/remote shell ended/);
    await expect(session.run('echo later')).rejects.toBeInstanceOf(SessionLostError);
    expect(session.dead).toMatch(/remote shell ended/);
    expect(await eventually(() => !existsSync(d))).toBe(true);
  });

  it('fails pending steps when the shell dies at once (SIGKILL)', async () => {
    const { child, session } = await open(shell);
    const running = session.run('sleep 30');
    await new Promise((r) => setTimeout(r, 300));
    process.kill(child.pid!, 'SIGKILL');
    await expect(running).rejects.toThrow(SessionLostError);
  });

  it('holds a persistent step\'s lock for the session\'s life only; a broken persistent step fails alone', async () => {
    const { child, session } = await open(shell);
    const lock = path.join(dir, `held-${randomBytes(4).toString('hex')}`);
    const take = await session.run(`exec 9>'${lock}'; flock -n 9 && echo held`, { persistent: true });
    expect([take.code, take.stdout.toString()]).toEqual([0, 'held\n']);
    const tryLock = () => spawnSyncCode('flock', ['-n', lock, 'true']);
    expect(tryLock()).not.toBe(0);
    const broken = await session.run('if then fi', { persistent: true });
    expect(broken.code).not.toBe(0);
    expect(broken.stderr.toString()).toMatch(/syntax|unexpected/i);
    expect(tryLock()).not.toBe(0);
    process.kill(child.pid!, 'SIGKILL');
    await expect(session.run('true')).rejects.toThrow(SessionLostError);
    expect(await eventually(() => tryLock() === 0)).toBe(true);
  });

  it('gives up the session when a persistent step outlives its time', async () => {
    const { session } = await open(shell);
    await expect(session.run('sleep 5', { persistent: true, timeoutMs: 300 })).rejects.toThrow(/did not come back within 300 ms/);
    expect(session.dead).not.toBeNull();
  });
});

function spawnSyncCode(cmd: string, args: string[]): number {
  try {
    execFileSync(cmd, args, { stdio: 'ignore' });
    return 0;
  } catch (e) {
    return (e as { status?: number }).status ?? -1;
  }
}

describe('what reaches the loop', () => {
  /** A loop running on dash, driven by hand. */
  async function raw() {
    const nonce = randomBytes(16).toString('hex');
    const child = spawn('dash', ['-s'], { stdio: 'pipe' });
    started.push({ child });
    const out: Buffer[] = [];
    child.stdout.on('data', (b: Buffer) => out.push(b));
    const code = new Promise<number | null>((r) => child.on('close', (c) => r(c)));
    child.stdin.write(sessionProgram(nonce));
    expect(await eventually(() => Buffer.concat(out).toString() === `${nonce} ready\n`)).toBe(true);
    return { nonce, child, code, out: () => Buffer.concat(out).toString() };
  }

  it('never runs a script cut short in transit', async () => {
    const { nonce, child, code, out } = await raw();
    const marker = path.join(dir, `ran-${randomBytes(4).toString('hex')}`);
    const script = `touch '${marker}'\n${'#'.repeat(100)}\n`;
    child.stdin.end(`${nonce} 1 s ${Buffer.byteLength(script)} 0\n${script.slice(0, 20)}`);
    expect(await code).not.toBe(0);
    expect(existsSync(marker)).toBe(false);
    expect(out()).toBe(`${nonce} ready\n`);
  });

  it('never runs a whole script whose end-of-frame line did not arrive', async () => {
    const { nonce, child, code } = await raw();
    const marker = path.join(dir, `ran-${randomBytes(4).toString('hex')}`);
    const script = `touch '${marker}'\n`;
    child.stdin.end(`${nonce} 1 s ${Buffer.byteLength(script)} 0\n${script}${nonce} en`);
    expect(await code).not.toBe(0);
    expect(existsSync(marker)).toBe(false);
  });

  it('runs nothing from a frame without its nonce', async () => {
    const { child, code } = await raw();
    const marker = path.join(dir, `ran-${randomBytes(4).toString('hex')}`);
    const script = `touch '${marker}'\n`;
    child.stdin.write(`${'0'.repeat(32)} 1 s ${Buffer.byteLength(script)} 0\n${script}${'0'.repeat(32)} end\n`);
    expect(await code).toBe(2);
    expect(existsSync(marker)).toBe(false);
  });

  it('puts nothing of a script in the process list', async () => {
    const { session } = await open('dash');
    const secret = `pv-secret-${randomBytes(6).toString('hex')}`;
    const r = await session.run(`: ${secret}; ps -eo args`);
    expect(r.stdout.toString()).not.toContain(secret);
  });
});

describe('a session under sudo with a password', () => {
  const bin = path.join(dir, 'fake-sudo-bin');
  const password = `pw ${randomBytes(6).toString('hex')} $x;'`;
  execFileSync('mkdir', ['-p', bin]);
  // Asks with the -p prompt on stderr, reads the password from stdin as sudo -S does, then runs the command.
  writeFileSync(
    path.join(bin, 'sudo'),
    `#!/bin/sh
prompt=
while [ $# -gt 0 ]; do
  case $1 in -p) prompt=$2; shift 2 ;; -u) shift 2 ;; -S|-n) shift ;; --) shift; break ;; *) break ;; esac
done
for try in 1 2; do
  printf '%s' "$prompt" >&2
  IFS= read -r pw || { echo "sudo: no password was provided" >&2; exit 1; }
  if [ "$pw" = "$FAKE_SUDO_PASSWORD" ]; then exec "$@"; fi
  echo 'Sorry, try again.' >&2
done
echo "sudo: 2 incorrect password attempts" >&2
exit 1
`,
  );
  chmodSync(path.join(bin, 'sudo'), 0o755);
  const env = { ...process.env, PATH: `${bin}:${process.env.PATH}`, FAKE_SUDO_PASSWORD: password };

  it('sends the password once, then runs every step in the one shell', async () => {
    const launch = sessionLaunch({ user: 'root', password });
    const { session } = await open('dash', launch, env);
    const a = await session.run('echo one; ps -eo args');
    const b = await session.run('echo two >&2');
    expect(a.stdout.toString()).toMatch(/^one\n/);
    expect(a.stdout.toString()).toContain('sudo -S -p');
    expect(a.stdout.toString()).not.toContain(password);
    expect([b.code, b.stderr.toString()]).toEqual([0, 'two\n']);
    // under sudo every step has a session of its own (a terminal sudo made must not hang it up)
    const sids = 'read -r a </proc/$$/stat; set -- ${a##*) }; s=$4; read -r a </proc/$PPID/stat; set -- ${a##*) }; echo "$s $4"';
    const [mine, loops] = (await session.run(sids)).stdout.toString().trim().split(' ');
    expect(mine).not.toBe(loops);
  });

  it('refuses to start with a wrong password and says what sudo said', async () => {
    const launch = sessionLaunch({ user: 'root', password: 'wrong' });
    const e = await open('dash', launch, env).catch((x: unknown) => x);
    expect(e).toBeInstanceOf(SessionStartError);
    const err = e as SessionStartError;
    expect([err.code, err.reason]).toEqual([1, 'ended']);
    expect(err.stderr.toString()).toMatch(/Sorry, try again/);
    expect(err.stderr.toString()).not.toContain('wrong');
  });
});

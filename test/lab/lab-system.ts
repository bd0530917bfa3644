/** What the lab needs from the machine: running commands, finding its processes, installing packages. */
import type { ChildProcessByStdio } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync, readlinkSync, renameSync, rmSync, statSync, unlinkSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import type { Readable, Writable } from 'node:stream';
import { $ } from 'zx/core';

/** A lab failure the CLI prints as one line. */
export class LabError extends Error {
  override name = 'LabError';
}

/** The lab name is taken: its directory exists (a lab is up, half made, or being made by another process). */
export class LabExistsError extends LabError {
  override name = 'LabExistsError';
}

export interface RunResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

export const SYSTEM_PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';

export interface RunOptions {
  input?: string | Buffer;
  env?: NodeJS.ProcessEnv;
  timeoutMs?: number;
}

/**
 * Run a program with arguments (quoted by zx, nothing is interpreted) and collect what it prints; a non-zero exit
 * is a result, not an error. After `timeoutMs` the command and its children are killed with SIGKILL and stderr says
 * it timed out.
 */
export async function run(cmd: string, args: string[], opts: RunOptions = {}): Promise<RunResult> {
  const r = await $({
    env: opts.env ?? { ...process.env, PATH: `${SYSTEM_PATH}:${process.env.PATH ?? ''}` },
    ...(opts.input === undefined ? {} : { input: opts.input }),
    ...(opts.timeoutMs ? { timeout: opts.timeoutMs, timeoutSignal: 'SIGKILL' as const } : {}),
    nothrow: true,
    quiet: true,
  })`${cmd} ${args}`;
  const timedOut = r.signal === 'SIGKILL' && opts.timeoutMs !== undefined;
  return { code: r.exitCode, stdout: r.stdout, stderr: timedOut ? `${r.stderr}${cmd} timed out after ${opts.timeoutMs} ms\n` : r.stderr };
}

/**
 * How a spawned child exits and what it prints, its stdin given `input`. After `timeoutMs` it is ended with `kill`
 * (default: SIGKILL to the child) and the result says it timed out; a child that cannot start rejects the promise.
 */
export function childResult(
  child: ChildProcessByStdio<Writable, Readable, Readable>,
  opts: { input?: string | Buffer; timeoutMs?: number; kill?: () => void; cannotRun: string },
): Promise<RunResult & { timedOut: boolean }> {
  return new Promise((resolve, reject) => {
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    let timedOut = false;
    const timer = opts.timeoutMs
      ? setTimeout(() => {
          timedOut = true;
          if (opts.kill) opts.kill();
          else child.kill('SIGKILL');
        }, opts.timeoutMs)
      : undefined;
    child.stdout.on('data', (b: Buffer) => out.push(b));
    child.stderr.on('data', (b: Buffer) => err.push(b));
    child.on('error', (e) => {
      if (timer) clearTimeout(timer);
      reject(new LabError(`${opts.cannotRun}: ${e.message}`));
    });
    child.on('close', (code) => {
      if (timer) clearTimeout(timer);
      resolve({ code, stdout: Buffer.concat(out).toString(), stderr: Buffer.concat(err).toString(), timedOut });
    });
    child.stdin.on('error', () => undefined);
    child.stdin.end(opts.input);
  });
}

/** Run a command that must succeed; its last stderr lines explain a failure. */
export async function must(cmd: string, args: string[], opts: RunOptions = {}): Promise<string> {
  const r = await run(cmd, args, opts);
  if (r.code !== 0) {
    const why = (r.stderr.trim() || r.stdout.trim()).split('\n').slice(-3).join(' | ');
    throw new LabError(`${[cmd, ...args].join(' ')} ${r.code === null ? 'was killed' : `exited ${r.code}`}${why ? `: ${why}` : ''}`);
  }
  return r.stdout;
}

export const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/** Run fn over items with at most `limit` at a time; the first failure is thrown after the others settle. */
export async function pool<T, R>(items: T[], limit: number, fn: (item: T) => Promise<R>): Promise<R[]> {
  const results: R[] = new Array(items.length);
  let next = 0;
  let failure: { error: unknown } | null = null;
  const worker = async () => {
    while (next < items.length && !failure) {
      const i = next++;
      try {
        results[i] = await fn(items[i]!);
      } catch (error) {
        failure ??= { error };
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  if (failure) throw (failure as { error: unknown }).error;
  return results;
}

export function isRoot(): boolean {
  return process.getuid?.() === 0;
}

export function requireRoot(): void {
  if (!isRoot()) throw new LabError('the lab needs root (it creates network namespaces, a bridge and mounts): run it as root');
}

/** The kernel's start time of a process (clock ticks since boot): a pid plus this names one process for good. */
export function processStart(pid: number): string | null {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19] ?? null;
  } catch {
    return null;
  }
}

/** Inode of a named network namespace (/run/netns/NAME), null when it does not exist. */
export function netnsInode(name: string): number | null {
  try {
    return statSync(`/run/netns/${name}`).ino;
  } catch {
    return null;
  }
}

/** Inode of a process's network namespace, null when the process is gone. */
export function netInode(pid: number | string): number | null {
  try {
    const m = /^net:\[(\d+)\]$/.exec(readlinkSync(`/proc/${pid}/ns/net`));
    return m ? Number(m[1]) : null;
  } catch {
    return null;
  }
}

/** Every live process whose network namespace is one of `inodes`, grouped by that inode. */
export function processesInNetns(inodes: Iterable<number>): Map<number, number[]> {
  const wanted = new Set(inodes);
  const found = new Map<number, number[]>();
  if (wanted.size === 0) return found;
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    const ino = netInode(entry);
    if (ino === null || !wanted.has(ino)) continue;
    const list = found.get(ino) ?? [];
    list.push(Number(entry));
    found.set(ino, list);
  }
  return found;
}

/** True when pid is the init of a child PID namespace (its innermost pid is 1). */
export function isNamespaceInit(pid: number): boolean {
  try {
    const status = readFileSync(`/proc/${pid}/status`, 'utf8');
    const ids = /^NSpid:\s+(.*)$/m.exec(status)?.[1]?.trim().split(/\s+/) ?? [];
    return ids.length > 1 && ids[ids.length - 1] === '1';
  } catch {
    return false;
  }
}

/** The init process of the host that lives in this network namespace, or null when none runs. */
export function findHostInit(netnsIno: number): number | null {
  const pids = processesInNetns([netnsIno]).get(netnsIno) ?? [];
  return pids.find(isNamespaceInit) ?? null;
}

/**
 * SIGKILL every process in these network namespaces and wait until they are gone. Killing a host's init takes its
 * whole PID namespace with it; the rest (unshare, nsenter) are the lab's own helpers in the same namespace.
 */
export async function killNetnsProcesses(inodes: number[], timeoutMs = 15_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const found = [...processesInNetns(inodes).values()].flat();
    if (found.length === 0) return;
    if (Date.now() > deadline) throw new LabError(`processes ${found.slice(0, 10).join(', ')} of the lab did not exit after SIGKILL`);
    for (const pid of found) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        // gone already
      }
    }
    await sleep(25);
  }
}

/** Packages the hosts run or the integration tests use from the controller. */
export const LAB_PACKAGES = [
  'openssh-server',
  'postfix',
  'iptables',
  'iptables-persistent',
  'sasl2-bin',
  'libsasl2-modules',
  'swaks',
  // swaks's TLS support (only Recommends of swaks, which --no-install-recommends leaves out)
  'libnet-ssleay-perl',
  'libio-socket-ssl-perl',
  // swaks over IPv6
  'libio-socket-inet6-perl',
  'openssl',
  // rhel9 hosts run firewalld (it brings dbus and python3, which ufw on ubuntu2204 hosts needs too); ipset is
  // only its Recommends, named as the lab was tested with it, and rulesets with -m set need it in hosts and in
  // the verification's throwaway namespaces
  'firewalld',
  'ipset',
  // ubuntu2404 hosts: nft and /etc/nftables.conf
  'nftables',
  // named although firewalld depends on them: rhel9 hosts start dbus-daemon, ubuntu2204's unpacked ufw runs on python3
  'dbus',
  'python3',
  // ip, ss (namespaces, links, readiness), ssh-keygen and the ssh client of the tests and the demo
  'iproute2',
  'openssh-client',
  'rsyslog',
  'sudo',
];

const DEBCONF_PRESEED = [
  'postfix postfix/main_mailer_type select Internet Site',
  'postfix postfix/mailname string lab.test',
  'iptables-persistent iptables-persistent/autosave_v4 boolean false',
  'iptables-persistent iptables-persistent/autosave_v6 boolean false',
].join('\n');

const POLICY_RC_D = '/usr/sbin/policy-rc.d';

async function missingPackages(): Promise<string[]> {
  const r = await run('dpkg-query', ['-W', '-f', '${Package}\t${db:Status-Status}\n', ...LAB_PACKAGES]);
  const installed = new Set(
    r.stdout
      .split('\n')
      .map((l) => l.split('\t'))
      .filter(([, status]) => status === 'installed')
      .map(([pkg]) => pkg),
  );
  return LAB_PACKAGES.filter((p) => !installed.has(p));
}

/**
 * Install what the lab needs, non-interactively. Package scripts would start postfix, sshd and rsyslog on the
 * machine itself; a policy-rc.d that refuses every start (unless the machine already has one) keeps them down.
 */
export async function ensurePackages(log: (msg: string) => void): Promise<void> {
  const missing = await missingPackages();
  if (missing.length === 0) return;
  log(`installing ${missing.join(' ')}`);
  const env = { ...process.env, PATH: SYSTEM_PATH, DEBIAN_FRONTEND: 'noninteractive', DEBCONF_NONINTERACTIVE_SEEN: 'true' };
  const ownPolicy = !existsSync(POLICY_RC_D);
  if (ownPolicy) writeFileSync(POLICY_RC_D, '#!/bin/sh\n# written by the provision lab while it installs packages\nexit 101\n', { mode: 0o755 });
  try {
    await must('debconf-set-selections', [], { input: `${DEBCONF_PRESEED}\n`, env });
    await must('apt-get', ['update'], { env, timeoutMs: 300_000 });
    await must('apt-get', ['install', '-y', '--no-install-recommends', ...missing], { env, timeoutMs: 900_000 });
  } finally {
    if (ownPolicy) unlinkSync(POLICY_RC_D);
  }
  // The machine is the controller: its own firewalld must never start (at a reboot it would shut the lab out).
  if (missing.includes('firewalld')) await run('systemctl', ['disable', 'firewalld.service'], { env });
  const still = await missingPackages();
  if (still.length > 0) throw new LabError(`packages still missing after apt-get install: ${still.join(' ')}`);
}

/**
 * Debian's ufw package unpacked under `root` (its /lib merged into /usr), for hosts that run ufw: the package
 * Breaks iptables-persistent and netfilter-persistent, which the other flavours need, so it is not installed.
 */
export async function ensureUfw(root: string, log: (msg: string) => void): Promise<void> {
  if (existsSync(join(root, 'usr', 'sbin', 'ufw'))) return;
  log('unpacking ufw');
  const base = dirname(root);
  rmSync(base, { recursive: true, force: true });
  mkdirSync(join(base, 'deb'), { recursive: true, mode: 0o755 });
  const env = { ...process.env, PATH: SYSTEM_PATH };
  // apt-get download writes into the current directory, as the _apt user when it can.
  const download = async () => {
    const inDeb = $({ cwd: join(base, 'deb'), env, nothrow: true, quiet: true });
    await inDeb`chown _apt .`;
    const r = await inDeb({ timeout: 300_000, timeoutSignal: 'SIGKILL' })`apt-get download ufw`;
    return { code: r.exitCode, stderr: r.stderr };
  };
  // A machine whose package lists were cleaned after its last install knows no ufw yet: update once, then retry.
  if ((await download()).code !== 0) {
    await must('apt-get', ['update'], { env, timeoutMs: 300_000 });
    const again = await download();
    if (again.code !== 0) throw new LabError(`apt-get download ufw exited ${again.code}: ${again.stderr.trim().split('\n').slice(-2).join(' | ')}`);
  }
  const deb = readdirSync(join(base, 'deb')).find((f) => /^ufw_.*\.deb$/.test(f));
  if (!deb) throw new LabError(`apt-get download ufw left no ufw_*.deb in ${join(base, 'deb')}`);
  const tmp = `${root}.tmp`;
  await must('dpkg-deb', ['-x', join(base, 'deb', deb), tmp], { env });
  if (existsSync(join(tmp, 'lib'))) {
    await must('cp', ['-a', `${join(tmp, 'lib')}/.`, join(tmp, 'usr', 'lib')], { env });
    rmSync(join(tmp, 'lib'), { recursive: true, force: true });
  }
  renameSync(tmp, root);
}

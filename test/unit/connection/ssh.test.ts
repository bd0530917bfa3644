import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import ssh2 from 'ssh2';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { UnreachableError } from '../../../src/errors.js';
import { fingerprint } from '../../../src/connection/known-hosts.js';
import { createSecrets, type Prompter } from '../../../src/connection/secrets.js';
import { SshConnection, createSshRunState } from '../../../src/connection/ssh.js';
import { SudoHandshake } from '../../../src/connection/sudo.js';
import type { SshTarget } from '../../../src/connection/ssh-target.js';
import { keyPair, startLoopback, startTcp, type Loopback } from './loopback-sshd.js';

const dir = mkdtempSync(path.join(os.tmpdir(), 'provision-ssh-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const userKey = keyPair();
const userKeyFile = path.join(dir, 'id_user');
writeFileSync(userKeyFile, userKey.private, { mode: 0o600 });

let files = 0;
function knownHosts(lines: string[]): string {
  const file = path.join(dir, `known_hosts_${++files}`);
  if (lines.length) writeFileSync(file, lines.join('\n') + '\n');
  return file;
}

function hostLine(server: Loopback, key = server.hostKey): string {
  return `[127.0.0.1]:${server.port} ${key.public}`;
}

function target(server: { port: number }, over: Partial<SshTarget> = {}): SshTarget {
  return {
    name: 'h1.lab.test',
    hostname: '127.0.0.1',
    port: server.port,
    user: 'root',
    identityFiles: [userKeyFile],
    identitiesOnly: false,
    agent: null,
    password: null,
    knownHostsFiles: [knownHosts([])],
    globalKnownHostsFiles: [],
    hostKeyName: '127.0.0.1',
    hostKeyChecking: 'yes',
    connectTimeoutMs: 5000,
    connectionAttempts: 3,
    serverAliveIntervalMs: 0,
    serverAliveCountMax: 3,
    via: null,
    ...over,
  };
}

function runState(opts: { prompter?: Prompter; askPass?: boolean; interactive?: boolean; warn?: (host: string, msg: string) => void } = {}) {
  const secrets = createSecrets({
    interactive: opts.interactive ?? true,
    askPass: opts.askPass ?? false,
    prompter: opts.prompter ?? (async () => Promise.reject(new Error('unexpected prompt'))),
  });
  return createSshRunState(secrets, { retryDelayMs: 20, ...(opts.warn ? { warn: opts.warn } : {}) });
}

const servers: Loopback[] = [];
const opened: SshConnection[] = [];
async function server(opts: Parameters<typeof startLoopback>[0] = {}): Promise<Loopback> {
  const s = await startLoopback({ authorized: [userKey], ...opts });
  servers.push(s);
  return s;
}
function connection(t: SshTarget, run = runState()): SshConnection {
  const c = new SshConnection(t, run);
  opened.push(c);
  return c;
}
afterEach(async () => {
  await Promise.all(opened.splice(0).map((c) => c.close()));
  await Promise.all(servers.splice(0).map((s) => s.close()));
});

async function unreachable(p: Promise<unknown>): Promise<UnreachableError> {
  const e = await p.then(
    () => null,
    (err: unknown) => err,
  );
  expect(e).toBeInstanceOf(UnreachableError);
  return e as UnreachableError;
}

describe('exec over one connection', () => {
  let srv: Loopback;
  let conn: SshConnection;
  beforeAll(async () => {
    srv = await startLoopback({ authorized: [userKey] });
    conn = new SshConnection(target(srv, { knownHostsFiles: [knownHosts([hostLine(srv)])] }), runState());
    await conn.connect();
  });
  afterAll(async () => {
    await conn.close();
    await srv.close();
  });

  it('sends the script on stdin of sh -s and returns stdout, stderr and the exit code as bytes', async () => {
    const r = await conn.exec(`printf 'out\\000\\377'; printf 'err\\n' >&2; exit 7`);
    expect(r.stdout).toEqual(Buffer.from([0x6f, 0x75, 0x74, 0, 0xff]));
    expect(r.stderr.toString()).toBe('err\n');
    expect(r.code).toBe(7);
    expect(srv.commands.at(-1)).toBe('sh -s');
  });

  it('reports a command killed by a signal with code null', async () => {
    // The loopback server runs `sh -c 'sh -s'`: killing the outer shell makes the session end by a signal.
    expect((await conn.exec('kill -9 $PPID')).code).toBeNull();
  });

  it('keeps hostile content out of the command line and delivers it byte for byte', async () => {
    const hostile = `it's "$(id)" \`id\` $HOME\n; rm -rf / # \\ \t end`;
    const file = path.join(dir, 'hostile.txt');
    const b64 = Buffer.from(hostile).toString('base64');
    const r = await conn.exec(`printf '%s' '${b64}' | base64 -d > '${file}'`);
    expect(r.code).toBe(0);
    expect(readFileSync(file, 'utf8')).toBe(hostile);
    expect(srv.commands.every((c) => c === 'sh -s')).toBe(true);
  });

  it('runs parallel scripts as steps of the connection\'s one session and counts every step', async () => {
    await conn.exec('true');
    const [execs, steps] = [conn.execs, conn.steps];
    const results = await Promise.all(Array.from({ length: 12 }, (_, i) => conn.exec(`echo ${i}`)));
    expect(results.map((r) => r.stdout.toString())).toEqual(Array.from({ length: 12 }, (_, i) => `${i}\n`));
    expect([conn.execs - execs, conn.steps - steps]).toEqual([0, 12]);
    expect(srv.connections).toBe(1);
  });
});

describe('host keys', () => {
  it("does not ask sshd to prove the host keys it offers after login (OpenSSH's hostkeys-00, which ssh2 would answer)", async () => {
    const srv = await server({ offerHostKeys: true });
    const conn = connection(target(srv, { knownHostsFiles: [knownHosts([hostLine(srv)])] }));
    await conn.connect();
    // Two steps: the server reads whatever the client sent on receiving the offer before it reads the second.
    expect((await conn.exec('echo 1')).code).toBe(0);
    expect((await conn.exec('echo 2')).code).toBe(0);
    expect(srv.globalRequests).not.toContain('hostkeys-prove-00@openssh.com');
    // The same server with ssh2's own client, as it comes: it asks for the proof, so the offer was made and seen.
    const plain = new ssh2.Client();
    await new Promise<void>((resolve, reject) => {
      plain.on('ready', () => resolve()).on('error', reject);
      plain.connect({ host: '127.0.0.1', port: srv.port, username: 'root', privateKey: userKey.private, hostVerifier: () => true });
    });
    await new Promise<void>((resolve, reject) => plain.exec('true', (e, ch) => (e ? reject(e) : ch.on('close', () => resolve()).resume())));
    await new Promise<void>((resolve, reject) => plain.exec('true', (e, ch) => (e ? reject(e) : ch.on('close', () => resolve()).resume())));
    plain.end();
    expect(srv.globalRequests).toContain('hostkeys-prove-00@openssh.com');
  });

  it('refuses an unknown key by default, naming its type and SHA256 fingerprint, before any credential is sent', async () => {
    const srv = await server();
    const kh = knownHosts([]);
    const e = await unreachable(connection(target(srv, { knownHostsFiles: [kh] })).connect());
    expect(e.host).toBe('h1.lab.test');
    expect(e.message).toBe(
      `host key for h1.lab.test (127.0.0.1:${srv.port}) is not known: ssh-ed25519 ${fingerprint(srv.hostKey.blob)} ` +
        `(add it to ${kh} or use --host-key-checking accept-new)`,
    );
    expect(srv.auths).toEqual([]);
    expect(existsSync(kh)).toBe(false);
  });

  it('refuses a changed key, pointing at the known_hosts line, and does not retry', async () => {
    const srv = await server();
    const old = keyPair();
    const kh = knownHosts(['# lab', `other.host ${keyPair().public}`, hostLine(srv, old)]);
    const e = await unreachable(connection(target(srv, { knownHostsFiles: [kh] })).connect());
    expect(e.message).toBe(
      `REMOTE HOST KEY CHANGED for h1.lab.test (127.0.0.1:${srv.port}): server offers ssh-ed25519 ${fingerprint(srv.hostKey.blob)}, ` +
        `${kh} line 3 has ${fingerprint(old.blob)} (if the host was reinstalled, remove that line)`,
    );
    expect(srv.auths).toEqual([]);
    expect(srv.connections).toBe(1);
  });

  it('refuses a changed key even with accept-new', async () => {
    const srv = await server();
    const kh = knownHosts([hostLine(srv, keyPair())]);
    const e = await unreachable(connection(target(srv, { knownHostsFiles: [kh], hostKeyChecking: 'accept-new' })).connect());
    expect(e.message).toMatch(/^REMOTE HOST KEY CHANGED/);
  });

  it('refuses a key marked @revoked', async () => {
    const srv = await server();
    const kh = knownHosts([hostLine(srv), `@revoked * ${srv.hostKey.public}`]);
    const e = await unreachable(connection(target(srv, { knownHostsFiles: [kh] })).connect());
    expect(e.message).toBe(`host key for h1.lab.test (127.0.0.1:${srv.port}) is REVOKED: ssh-ed25519 ${fingerprint(srv.hostKey.blob)} is marked @revoked in ${kh} line 2`);
  });

  it('records a new key with accept-new, once, even for parallel connections', async () => {
    const srv = await server();
    const kh = path.join(dir, 'fresh', 'known_hosts');
    const run = runState();
    await Promise.all(Array.from({ length: 5 }, () => connection(target(srv, { knownHostsFiles: [kh], hostKeyChecking: 'accept-new' }), run).connect()));
    expect(readFileSync(kh, 'utf8')).toBe(`${hostLine(srv)}\n`);
    await connection(target(srv, { knownHostsFiles: [kh] })).connect();
  });

  it('refuses, clearly, a host known_hosts vouches for by a @cert-authority line: host certificates cannot be checked', async () => {
    const srv = await server();
    const ca = keyPair();
    const kh = knownHosts(['# fleet CA', `@cert-authority [*.lab.test]:* ${ca.public}`]);
    for (const policy of ['yes', 'accept-new'] as const) {
      const e = await unreachable(connection(target(srv, { hostKeyName: 'h1.lab.test', knownHostsFiles: [kh], hostKeyChecking: policy })).connect());
      expect(e.message).toBe(
        `host key for h1.lab.test (127.0.0.1:${srv.port}) is not known: ssh-ed25519 ${fingerprint(srv.hostKey.blob)}; ${kh} line 2 trusts a certificate authority (@cert-authority) for it, but provision cannot verify host certificates: add the host's own key to known_hosts`,
      );
    }
    expect(readFileSync(kh, 'utf8')).not.toContain(srv.hostKey.public);
    expect(srv.auths).toEqual([]);
  });

  it('records a new key under a hashed name with HashKnownHosts, and knows it next time', async () => {
    const srv = await server();
    const kh = path.join(dir, 'hashed', 'known_hosts');
    await connection(target(srv, { knownHostsFiles: [kh], hostKeyChecking: 'accept-new', hashKnownHosts: true })).connect();
    const text = readFileSync(kh, 'utf8');
    expect(text).toMatch(/^\|1\|[A-Za-z0-9+/]{27}=\|[A-Za-z0-9+/]{27}= ssh-ed25519 [A-Za-z0-9+/=]+\n$/);
    expect(text).not.toContain('127.0.0.1');
    await connection(target(srv, { knownHostsFiles: [kh] })).connect();
  });

  it('accepts a key recorded under HostKeyAlias and found in a read-only global file', async () => {
    const srv = await server();
    const global = knownHosts([`[alias.lab.test]:${srv.port} ${srv.hostKey.public}`]);
    await connection(target(srv, { hostKeyName: 'alias.lab.test', globalKnownHostsFiles: [global] })).connect();
  });
});

describe('authentication', () => {
  it('asks an encrypted key’s passphrase once for many hosts connecting at once', async () => {
    const encrypted = keyPair('correct horse');
    const file = path.join(dir, 'id_encrypted');
    writeFileSync(file, encrypted.private, { mode: 0o600 });
    const srv = await server({ authorized: [encrypted] });
    const prompts: string[] = [];
    const run = runState({ prompter: async (p) => (prompts.push(p), 'correct horse') });
    const kh = knownHosts([hostLine(srv)]);
    const conns = Array.from({ length: 6 }, () => connection(target(srv, { identityFiles: [file], knownHostsFiles: [kh] }), run));
    await Promise.all(conns.map((c) => c.connect()));
    expect(prompts).toEqual([`Enter passphrase for key '${file}': `]);
    expect((await conns[5]!.exec('echo ok')).stdout.toString()).toBe('ok\n');
  });

  it('uses the --ask-pass password, asked once, when keys are refused', async () => {
    const srv = await server({ authorized: [], password: 's3cret' });
    const prompts: string[] = [];
    const run = runState({ askPass: true, prompter: async (p) => (prompts.push(p), 's3cret') });
    const kh = knownHosts([hostLine(srv)]);
    await Promise.all([1, 2, 3].map(() => connection(target(srv, { knownHostsFiles: [kh] }), run).connect()));
    expect(prompts).toEqual(['SSH password: ']);
    expect(srv.auths.filter((a) => a === 'password:ok')).toHaveLength(3);
  });

  it('uses ansible_password from the inventory without asking', async () => {
    const srv = await server({ authorized: [], password: 'inv' });
    await connection(target(srv, { password: 'inv', knownHostsFiles: [knownHosts([hostLine(srv)])] })).connect();
  });

  it('says what was tried when every method fails, without retrying and without the secrets', async () => {
    const srv = await server({ authorized: [], password: 'other' });
    const missing = path.join(dir, 'no-such-key');
    const t = target(srv, { identityFiles: [userKeyFile, missing], password: 'wrong-secret', knownHostsFiles: [knownHosts([hostLine(srv)])] });
    const e = await unreachable(connection(t).connect());
    expect(e.message).toBe(`authentication failed for root@127.0.0.1:${srv.port}; tried: ${userKeyFile}, ${missing} (missing), password`);
    expect(e.message).not.toContain('wrong-secret');
    expect(srv.connections).toBe(1);
  });

  it('skips an encrypted key when nobody can be asked, and says so', async () => {
    const encrypted = keyPair('pp');
    const file = path.join(dir, 'id_encrypted_2');
    writeFileSync(file, encrypted.private);
    const srv = await server({ authorized: [encrypted] });
    const t = target(srv, { identityFiles: [file], knownHostsFiles: [knownHosts([hostLine(srv)])] });
    const e = await unreachable(connection(t, runState({ interactive: false })).connect());
    expect(e.message).toContain(`${file} (encrypted: cannot ask for the passphrase of ${file}: not running interactively)`);
  });
});

describe.skipIf(!existsSync('/usr/bin/ssh-agent'))('ssh-agent', () => {
  let agent: ChildProcess;
  const sock = path.join(dir, 'agent.sock');
  const agentKey = keyPair();
  beforeAll(async () => {
    agent = spawn('/usr/bin/ssh-agent', ['-D', '-a', sock], { stdio: 'ignore' });
    for (let i = 0; i < 50 && !existsSync(sock); i++) await new Promise((r) => setTimeout(r, 20));
    const file = path.join(dir, 'id_agent');
    writeFileSync(file, agentKey.private, { mode: 0o600 });
    execFileSync('ssh-add', [file], { env: { ...process.env, SSH_AUTH_SOCK: sock }, stdio: 'ignore' });
  });
  afterAll(() => {
    agent.kill();
  });

  it('authenticates with a key held by the agent', async () => {
    const srv = await server({ authorized: [agentKey] });
    const t = target(srv, { agent: sock, identityFiles: [path.join(dir, 'absent-key')], knownHostsFiles: [knownHosts([hostLine(srv)])] });
    await connection(t).connect();
    expect(srv.auths).toContain('publickey:ok');
  });

  it('offers only the agent keys of the identity files with IdentitiesOnly', async () => {
    const other = keyPair();
    const file = path.join(dir, 'id_other');
    writeFileSync(file, other.private, { mode: 0o600 });
    writeFileSync(`${file}.pub`, `${other.public}\n`);
    const srv = await server({ authorized: [agentKey] });
    const t = target(srv, { agent: sock, identityFiles: [file], identitiesOnly: true, knownHostsFiles: [knownHosts([hostLine(srv)])] });
    const e = await unreachable(connection(t).connect());
    expect(e.message).toBe(`authentication failed for root@127.0.0.1:${srv.port}; tried: ssh-agent, ${file}`);
    expect(srv.auths).toEqual(['none', 'publickey']);
  });
});

describe('failures and retries', () => {
  it('retries a refused connection a bounded number of times, then reports the host unreachable', async () => {
    const tcp = await startTcp('silent');
    const port = tcp.port;
    await tcp.close();
    const started = Date.now();
    const e = await unreachable(connection(target({ port }, { connectionAttempts: 3 })).connect());
    expect(e.message).toBe(`cannot connect to 127.0.0.1:${port}: connection refused (3 attempts)`);
    // Backoff: 20 ms, then 40 ms.
    expect(Date.now() - started).toBeGreaterThanOrEqual(60);
  });

  it('retries a connection closed before the handshake', async () => {
    const tcp = await startTcp('reset');
    try {
      const e = await unreachable(connection(target(tcp, { connectionAttempts: 2 })).connect());
      expect(e.message).toMatch(/^cannot connect to 127\.0\.0\.1:\d+: connection (reset|closed before the SSH handshake) \(2 attempts\)$/);
      expect(tcp.connections).toBe(2);
    } finally {
      await tcp.close();
    }
  });

  it('gives up after the connect timeout on a host that never answers, without retrying', async () => {
    const tcp = await startTcp('silent');
    try {
      const e = await unreachable(connection(target(tcp, { connectTimeoutMs: 300 })).connect());
      expect(e.message).toBe(`cannot connect to 127.0.0.1:${tcp.port}: timed out after 0.3 s during the SSH handshake`);
      expect(tcp.connections).toBe(1);
    } finally {
      await tcp.close();
    }
  });

  it('reports a connection lost during an exec as unreachable, and later execs too', async () => {
    // The first exec starts the session; the second, as another user, needs a second one: the server drops then.
    const srv = await server({ onExec: () => (srv.commands.length > 1 ? 'drop' : 'run') });
    const c = connection(target(srv, { knownHostsFiles: [knownHosts([hostLine(srv)])] }));
    await c.connect();
    expect((await c.exec('true')).code).toBe(0);
    const e = await unreachable(c.exec('sleep 5', { become: { user: 'root' } }));
    expect(e.message).toMatch(new RegExp(`^connection to 127\\.0\\.0\\.1:${srv.port} lost`));
    await unreachable(c.exec('true'));
    expect(c.execs).toBe(2);
  });

  it('notices a host that stopped answering through ServerAliveInterval', async () => {
    const srv = await server({ onExec: () => 'freeze' });
    const c = connection(target(srv, { serverAliveIntervalMs: 100, serverAliveCountMax: 2, knownHostsFiles: [knownHosts([hostLine(srv)])] }));
    await c.connect();
    const started = Date.now();
    const e = await unreachable(c.exec('true'));
    expect(e.message).toBe(`connection to 127.0.0.1:${srv.port} lost: Keepalive timeout`);
    expect(Date.now() - started).toBeLessThan(2000);
  });

  it('gives up on an exec that outlives its timeout', async () => {
    const srv = await server({ onExec: () => 'hang' });
    const c = connection(target(srv, { knownHostsFiles: [knownHosts([hostLine(srv)])] }));
    await c.connect();
    const e = await unreachable(c.exec('true', { timeoutMs: 200 }));
    expect(e.message).toBe('command timed out after 200 ms');
  });

  it('refuses execs after close, and closes twice safely', async () => {
    const srv = await server();
    const c = connection(target(srv, { knownHostsFiles: [knownHosts([hostLine(srv)])] }));
    await c.connect();
    await c.close();
    await c.close();
    expect((await unreachable(c.exec('true'))).message).toBe('connection is closed');
  });
});

describe('probeNew', () => {
  it('opens a separate connection, runs a command and counts it as an exec', async () => {
    const srv = await server();
    const c = connection(target(srv, { knownHostsFiles: [knownHosts([hostLine(srv)])] }));
    await c.connect();
    await c.probeNew(3000);
    expect(srv.connections).toBe(2);
    expect(c.execs).toBe(1);
  });

  it('fails within its own time limit', async () => {
    const tcp = await startTcp('silent');
    try {
      const c = connection(target(tcp));
      const started = Date.now();
      const e = await unreachable(c.probeNew(250));
      // The connect timeout is capped to the probe's limit, so either of the two may fire first.
      expect(e.message).toMatch(/^new connection failed: (no new connection within 250 ms|cannot connect to 127\.0\.0\.1:\d+: timed out after 0\.25 s)/);
      expect(Date.now() - started).toBeLessThan(2000);
    } finally {
      await tcp.close();
    }
  });
});

describe('ProxyJump', () => {
  it('reaches the host through the jump host, checking both host keys', async () => {
    const jump = await server();
    const inner = await server();
    const kh = knownHosts([hostLine(jump), hostLine(inner)]);
    const via = target(jump, { name: 'bastion', knownHostsFiles: [kh] });
    const c = connection(target(inner, { knownHostsFiles: [kh], via }));
    await c.connect();
    expect((await c.exec('echo inner')).stdout.toString()).toBe('inner\n');
    expect(jump.forwards).toEqual([`127.0.0.1:${inner.port}`]);
    expect(jump.commands).toEqual([]);
    expect(inner.commands).toEqual(['sh -s']);
  });

  it('names the jump host whose key is unknown', async () => {
    const jump = await server();
    const inner = await server();
    const via = target(jump, { name: 'bastion', knownHostsFiles: [knownHosts([hostLine(inner)])] });
    const e = await unreachable(connection(target(inner, { knownHostsFiles: [knownHosts([hostLine(inner)])], via })).connect());
    expect(e.host).toBe('h1.lab.test');
    expect(e.message).toMatch(new RegExp(`^host key for jump host bastion \\(127\\.0\\.0\\.1:${jump.port}\\) is not known: ssh-ed25519 SHA256:`));
  });

  it('says the jump host could not reach the target', async () => {
    const jump = await server();
    const tcp = await startTcp('silent');
    const deadPort = tcp.port;
    await tcp.close();
    const kh = knownHosts([hostLine(jump)]);
    const via = target(jump, { name: 'bastion', knownHostsFiles: [kh] });
    const e = await unreachable(connection(target({ port: deadPort }, { via, connectionAttempts: 1 })).connect());
    expect(e.message).toMatch(new RegExp(`^cannot connect to 127\\.0\\.0\\.1:${deadPort} through jump host bastion: `));
  });
});

describe('become with a password', () => {
  const script = 'id -un >/dev/null; echo "ran as $0"; cat';

  it('sends the password only when sudo prompts, then the script; the password is never in argv or output', async () => {
    const srv = await server({ sudo: { password: 'pa$$ word' } });
    const c = connection(target(srv, { knownHostsFiles: [knownHosts([hostLine(srv)])] }));
    await c.connect();
    const r = await c.exec(script, { become: { user: 'root', password: 'pa$$ word' } });
    expect([r.code, r.stdout.toString(), r.stderr.toString()]).toEqual([0, 'ran as sh\n', '']);
    expect(srv.commands.join('\n')).not.toContain('pa$$ word');
  });

  it('does not leak or run the password when sudo does not ask for it', async () => {
    const srv = await server({ sudo: 'nopasswd' });
    const c = connection(target(srv, { knownHostsFiles: [knownHosts([hostLine(srv)])] }));
    await c.connect();
    const r = await c.exec('echo done', { become: { user: 'root', password: 'echo LEAKED' } });
    expect([r.code, r.stdout.toString(), r.stderr.toString()]).toEqual([0, 'done\n', '']);
  });

  it('fails the exec (not the connection) on a wrong password, with sudo’s message and no hang', async () => {
    const srv = await server({ sudo: { password: 'right' } });
    const c = connection(target(srv, { knownHostsFiles: [knownHosts([hostLine(srv)])] }));
    await c.connect();
    const r = await c.exec('echo never', { become: { user: 'root', password: 'wrong' } });
    expect(r.code).toBe(1);
    expect(r.stdout.toString()).toBe('');
    expect(r.stderr.toString()).toBe('Sorry, try again.\nsudo: 1 incorrect password attempt\n');
    expect((await c.exec('echo still here')).stdout.toString()).toBe('still here\n');
  });

  it('uses sudo -n when no password is given', async () => {
    const srv = await server({ sudo: { password: 'x' } });
    const c = connection(target(srv, { knownHostsFiles: [knownHosts([hostLine(srv)])] }));
    await c.connect();
    const r = await c.exec('echo hi', { become: { user: 'root' } });
    expect(srv.commands.at(-1)).toBe('sudo -n -u root -- sh -s');
    expect(r.stderr.toString()).toBe('sudo: a password is required\n');
  });
});

describe('SudoHandshake', () => {
  it('finds a prompt and the start marker split across chunks and strips them from stderr', () => {
    const h = new SudoHandshake('pw', Buffer.from('SCRIPT'));
    const p = h.prompt;
    const steps = [
      h.push(Buffer.from(`lecture\n${p.slice(0, 5)}`)),
      h.push(Buffer.from(p.slice(5))),
      h.push(Buffer.from(`${h.marker.slice(0, 3)}`)),
      h.push(Buffer.from(`${h.marker.slice(3)}\nwarning from the script\n`)),
      h.push(Buffer.from('later\n')),
    ];
    expect(steps.map((s) => s.send?.toString() ?? null)).toEqual([null, 'pw\n', null, 'SCRIPT', null]);
    expect(steps[3]!.end).toBe(true);
    expect(Buffer.concat(steps.map((s) => s.stderr)).toString()).toBe('lecture\nwarning from the script\nlater\n');
    expect(h.started).toBe(true);
  });

  it('closes stdin at the second prompt instead of sending the script as a password', () => {
    const h = new SudoHandshake('pw', Buffer.from('SCRIPT'));
    expect(h.push(Buffer.from(h.prompt)).send?.toString()).toBe('pw\n');
    const second = h.push(Buffer.from(`Sorry, try again.\n${h.prompt}`));
    expect([second.send, second.end]).toEqual([undefined, true]);
    expect(h.flush().toString()).toBe('Sorry, try again.\n');
  });

  it('quotes the prompt and user in the sudo command line', () => {
    const h = new SudoHandshake('pw', Buffer.alloc(0));
    expect(h.command('postfix')).toBe(`sudo -S -p '${h.prompt}' -u postfix -- sh -c 'printf '\\''%s\\n'\\'' ${h.marker} >&2; exec sh -s'`);
  });
});

describe('a changed host key let through by --host-key-checking no (an impostor, as far as anyone knows)', () => {
  it('sends no become password, says why, and warns loudly once', async () => {
    const srv = await server({ sudo: { password: 'become-secret' } });
    const warnings: string[] = [];
    const kh = knownHosts([hostLine(srv, keyPair())]);
    const c = connection(target(srv, { knownHostsFiles: [kh], hostKeyChecking: 'no' }), runState({ warn: (h, m) => warnings.push(`${h}: ${m}`) }));
    await c.connect();
    const e = await unreachable(c.exec('echo never', { become: { user: 'root', password: 'become-secret' } }));
    expect(e.message).toMatch(/^not sending the become password: REMOTE HOST KEY CHANGED for h1\.lab\.test .*\(whoever answers may be an impostor\)$/);
    expect(srv.commands.some((cmd) => cmd.startsWith('sudo'))).toBe(false);
    expect(warnings).toHaveLength(1);
    expect(warnings[0]).toMatch(/^h1\.lab\.test: REMOTE HOST KEY CHANGED .*; connecting anyway because of --host-key-checking no, but sending no password or become password to it$/);
    // What needs no secret still runs.
    expect((await c.exec('echo fine')).stdout.toString()).toBe('fine\n');
  });

  it('sends no SSH password either', async () => {
    const srv = await server({ authorized: [], password: 'ssh-secret' });
    const kh = knownHosts([hostLine(srv, keyPair())]);
    await unreachable(connection(target(srv, { knownHostsFiles: [kh], hostKeyChecking: 'no', password: 'ssh-secret' })).connect());
    expect(srv.auths.filter((a) => a.startsWith('password') || a.startsWith('keyboard'))).toEqual([]);
  });

  it('a key that matches sends the become password as before', async () => {
    const srv = await server({ sudo: { password: 'become-secret' } });
    const c = connection(target(srv, { knownHostsFiles: [knownHosts([hostLine(srv)])], hostKeyChecking: 'no' }));
    await c.connect();
    expect((await c.exec('echo ok', { become: { user: 'root', password: 'become-secret' } })).stdout.toString()).toBe('ok\n');
  });
});

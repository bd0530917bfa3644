/**
 * The SSH transport (ssh2): one connection per host for the whole run, each script on a channel of it.
 *
 * Host keys are checked against known_hosts before any credential is sent. Authentication follows OpenSSH's
 * order: agent keys, identity files (passphrases asked once per run), then password. Transient network
 * failures are retried a bounded number of times with backoff; anything else makes the host unreachable at once.
 */
import { promises as fs } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import type { Duplex } from 'node:stream';
import ssh2 from 'ssh2';
import type {
  AnyAuthMethod,
  AuthenticationType,
  Client as Ssh2Client,
  ClientChannel,
  IdentityCallback,
  KeyboardInteractiveCallback,
  NextAuthHandler,
  ParsedKey,
  Prompt,
  SignCallback,
  SigningRequestOptions,
} from 'ssh2';
import { UnreachableError } from '../errors.js';
import { beforeMarker, type Connection, type ExecOptions, type ExecResult, guard, type HeldExec, prepareExec } from './connection.js';
import { SudoHandshake } from './sudo.js';
import {
  appendKnownHost,
  checkHostKey,
  fingerprint,
  keyTypeOf,
  knownKeyTypes,
  loadKnownHosts,
  tildePath,
  type KnownHostsEntry,
} from './known-hosts.js';
import type { Secrets } from './secrets.js';
import type { SshTarget } from './ssh-target.js';

const { Client, utils, createAgent, BaseAgent } = ssh2;

/** State shared by every connection of a run. */
export interface SshRunState {
  secrets: Secrets;
  /** pause before the second connection attempt; doubles for each further one */
  retryDelayMs: number;
  /** decrypted private keys by path, so each passphrase is asked and each key decrypted once */
  keys: Map<string, Promise<LoadedKey>>;
  /** pending known_hosts appends by file, so parallel hosts record keys one at a time */
  knownHostsWrites: Map<string, Promise<unknown>>;
  /** tells the operator something about a host outside any task (a changed host key let through) */
  warn: (host: string, msg: string) => void;
  /** hosts (and jump hosts) already warned about for a changed key, so retries and probes do not repeat it */
  warnedKeys: Set<string>;
}

/** A private key ready to sign, or why it cannot be used. */
export type LoadedKey = { key: ParsedKey } | { skipped: string };

export function createSshRunState(secrets: Secrets, opts: { retryDelayMs?: number; warn?: SshRunState['warn'] } = {}): SshRunState {
  return { secrets, retryDelayMs: opts.retryDelayMs ?? 1000, keys: new Map(), knownHostsWrites: new Map(), warn: opts.warn ?? (() => undefined), warnedKeys: new Set() };
}

/** Concurrent channels per connection; OpenSSH's sshd allows 10 sessions per connection by default. */
const MAX_CHANNELS = 8;
/** How long sudo may take to ask for the password or start the shell before the exec is given up. */
const BECOME_TIMEOUT_MS = 60_000;
const CLOSE_WAIT_MS = 2_000;

/** Server host key algorithms for each key type, in ssh2's default order. */
const HOST_KEY_ALGORITHMS: Record<string, string[]> = {
  'ssh-ed25519': ['ssh-ed25519'],
  'ecdsa-sha2-nistp256': ['ecdsa-sha2-nistp256'],
  'ecdsa-sha2-nistp384': ['ecdsa-sha2-nistp384'],
  'ecdsa-sha2-nistp521': ['ecdsa-sha2-nistp521'],
  'ssh-rsa': ['rsa-sha2-512', 'rsa-sha2-256', 'ssh-rsa'],
};

/** A failure to open a connection; `transient` ones are worth another attempt. */
class ConnectFailure extends Error {
  constructor(
    message: string,
    readonly transient: boolean,
  ) {
    super(message);
  }
}

/**
 * Connections whose host key differs from the one on record and was let through by `--host-key-checking no`,
 * with what was offered: whoever answers may be an impostor, so no secret (SSH or become password) goes to it.
 */
const changedKeys = new WeakMap<Ssh2Client, string>();

export class SshConnection implements Connection {
  private count = 0;
  /** why this connection must not be given secrets: a hop's host key changed (see changedKeys) */
  private untrusted: string | null = null;
  private chain: Ssh2Client[] | null = null;
  private connecting: Promise<void> | null = null;
  private lost: string | null = null;
  private closed = false;
  private readonly pending = new Set<(e: Error) => void>();
  private readonly slots = new Slots(MAX_CHANNELS);

  constructor(
    private readonly target: SshTarget,
    private readonly run: SshRunState,
  ) {}

  get host(): string {
    return this.target.name;
  }

  get execs(): number {
    return this.count;
  }

  connect(): Promise<void> {
    if (this.chain) return Promise.resolve();
    this.connecting ??= this.connectWithRetries().finally(() => {
      this.connecting = null;
    });
    return this.connecting;
  }

  private async connectWithRetries(): Promise<void> {
    if (this.closed) throw new UnreachableError(this.host, 'connection is closed');
    const attempts = Math.max(1, this.target.connectionAttempts);
    for (let attempt = 1; ; attempt++) {
      try {
        const chain = await openChain(this.target, this.run, this.target.connectTimeoutMs);
        if (this.closed) {
          await endAll(chain);
          throw new UnreachableError(this.host, 'connection closed while it was being opened');
        }
        this.adopt(chain);
        return;
      } catch (e) {
        if (e instanceof UnreachableError) throw e;
        const failure = e instanceof ConnectFailure ? e : new ConnectFailure((e as Error).message, false);
        if (!failure.transient || attempt >= attempts) {
          const tries = attempt > 1 ? ` (${attempt} attempts)` : '';
          throw new UnreachableError(this.host, failure.message + tries);
        }
        await sleep(this.run.retryDelayMs * 2 ** (attempt - 1));
      }
    }
  }

  private adopt(chain: Ssh2Client[]): void {
    this.chain = chain;
    this.lost = null;
    this.untrusted = chain.map((c) => changedKeys.get(c)).find((m) => m !== undefined) ?? null;
    const last = chain[chain.length - 1]!;
    let lastError = '';
    // Errors after the handshake (keepalive timeout, reset) end in 'close'; keep the reason for the message.
    for (const c of chain) c.on('error', (e: Error) => (lastError = e.message));
    last.on('close', () => {
      if (this.chain !== chain) return;
      this.chain = null;
      this.lost = `connection to ${this.target.hostname}:${this.target.port} lost${lastError ? `: ${lastError}` : ''}`;
      for (const reject of this.pending) reject(new UnreachableError(this.host, this.lost));
      this.pending.clear();
      void endAll(chain);
    });
  }

  async exec(script: string, opts: ExecOptions = {}): Promise<ExecResult> {
    return this.start(script, opts, null);
  }

  async hold(script: string, marker: string, opts: ExecOptions = {}): Promise<HeldExec> {
    return this.start(script, opts, marker) as Promise<HeldExec>;
  }

  private async start(script: string, opts: ExecOptions, marker: string | null): Promise<ExecResult | HeldExec> {
    if (this.untrusted && opts.become?.password !== undefined) {
      throw new UnreachableError(this.host, `not sending the become password: ${this.untrusted} (whoever answers may be an impostor)`);
    }
    const { command, stdin, sudo } = prepareExec(script, opts, marker !== null);
    const client = this.requireClient();
    this.count++;
    await this.slots.acquire();
    try {
      return await this.runChannel(this.requireClient(client), command, stdin, sudo, opts.timeoutMs, marker);
    } finally {
      this.slots.release();
    }
  }

  private requireClient(expected?: Ssh2Client): Ssh2Client {
    const client = this.chain?.[this.chain.length - 1];
    if (!client || (expected && client !== expected)) {
      throw new UnreachableError(this.host, this.lost ?? (this.closed ? 'connection is closed' : 'not connected'));
    }
    return client;
  }

  private runChannel(
    client: Ssh2Client,
    command: string,
    stdin: Buffer,
    sudo: SudoHandshake | null,
    timeoutMs: number | undefined,
    marker: string | null,
  ): Promise<ExecResult | HeldExec> {
    return new Promise<ExecResult | HeldExec>((resolve, reject) => {
      let settled = false;
      let channel: ClientChannel | null = null;
      const timers: NodeJS.Timeout[] = [];
      const settle = (f: () => void) => {
        if (settled) return;
        settled = true;
        for (const t of timers) clearTimeout(t);
        this.pending.delete(onLost);
        f();
      };
      const onLost = (e: Error) => settle(() => reject(e));
      this.pending.add(onLost);
      if (timeoutMs) {
        timers.push(
          setTimeout(() => {
            const message = `command timed out after ${timeoutMs} ms`;
            settle(() => reject(new UnreachableError(this.host, message)));
            // The remote command may still hold locks or files; dropping the connection ends its session.
            channel?.signal('KILL');
            this.lost = message;
            void this.close();
          }, timeoutMs),
        );
      }
      try {
        client.exec(command, (err, ch) => {
          if (err) {
            settle(() => reject(new UnreachableError(this.host, `cannot open a channel: ${err.message}`)));
            return;
          }
          channel = ch;
          if (settled) {
            ch.close();
            return;
          }
          const out: Buffer[] = [];
          const errOut: Buffer[] = [];
          let code: number | null = null;
          ch.on('data', (b: Buffer) => {
            out.push(b);
            if (marker === null || settled) return;
            // A held script: resolve as soon as it says it is ready; its channel stays open until release.
            const stdout = beforeMarker(out, marker);
            if (stdout) {
              settle(() => resolve({ stdout, stderr: Buffer.concat(errOut), code: null, held: true, release: () => ch.end() }));
            }
          });
          ch.on('error', () => undefined);
          ch.on('exit', (c: number | null) => {
            code = typeof c === 'number' ? c : null;
          });
          if (sudo) {
            timers.push(
              setTimeout(() => {
                if (sudo.started) return;
                errOut.push(Buffer.from('provision: sudo neither asked for the password nor started the shell in time\n'));
                ch.close();
              }, BECOME_TIMEOUT_MS),
            );
            ch.stderr.on('data', (b: Buffer) => {
              const step = sudo.push(b);
              if (step.stderr.length) errOut.push(step.stderr);
              if (step.send) ch.write(step.send);
              // A held script keeps stdin open once it runs; a refused password ends it either way, or sudo waits.
              if (step.end && (marker === null || !sudo.started)) ch.end();
            });
          } else {
            ch.stderr.on('data', (b: Buffer) => errOut.push(b));
            if (marker === null) ch.end(stdin);
            else ch.write(stdin);
          }
          ch.on('close', () => {
            if (sudo) {
              const rest = sudo.flush();
              if (rest.length) errOut.push(rest);
            }
            const result = { stdout: Buffer.concat(out), stderr: Buffer.concat(errOut), code };
            settle(() => resolve(marker === null ? result : { ...result, held: false, release: () => undefined }));
          });
        });
      } catch (e) {
        settle(() => reject(new UnreachableError(this.host, this.lost ?? (e as Error).message)));
      }
    });
  }

  async probeNew(timeoutMs: number): Promise<void> {
    const capped = capTimeouts(this.target, timeoutMs);
    let chain: Ssh2Client[] | null = null;
    let timer: NodeJS.Timeout | undefined;
    const deadline = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new ConnectFailure(`no new connection within ${timeoutMs} ms`, false)), timeoutMs);
    });
    const opening = openChain(capped, this.run, capped.connectTimeoutMs).then((c) => (chain = c));
    try {
      await Promise.race([opening, deadline]);
      this.count++;
      const probe = await Promise.race([
        runSimple(chain![chain!.length - 1]!, 'sh -s', Buffer.from(guard('true'))),
        deadline,
      ]);
      if (probe.code !== 0) {
        throw new ConnectFailure(`a new connection could not run a command (exit ${probe.code ?? 'by signal'})`, false);
      }
    } catch (e) {
      throw new UnreachableError(this.host, `new connection failed: ${(e as Error).message}`);
    } finally {
      clearTimeout(timer);
      // The chain may still be opening when the deadline passed; end it whenever it arrives.
      opening.then((c) => endAll(c), () => undefined);
    }
  }

  async close(): Promise<void> {
    this.closed = true;
    const chain = this.chain;
    this.chain = null;
    if (!this.lost) this.lost = 'connection is closed';
    for (const reject of this.pending) reject(new UnreachableError(this.host, 'connection closed'));
    this.pending.clear();
    if (chain) await endAll(chain);
  }
}


/** A counting semaphore. */
class Slots {
  private free: number;
  private readonly waiting: (() => void)[] = [];
  constructor(size: number) {
    this.free = size;
  }
  async acquire(): Promise<void> {
    if (this.free > 0) {
      this.free--;
      return;
    }
    await new Promise<void>((resolve) => this.waiting.push(resolve));
  }
  release(): void {
    const next = this.waiting.shift();
    if (next) next();
    else this.free++;
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

function capTimeouts(target: SshTarget, ms: number): SshTarget {
  return {
    ...target,
    connectTimeoutMs: Math.min(target.connectTimeoutMs, ms),
    via: target.via ? capTimeouts(target.via, ms) : null,
  };
}

function address(t: SshTarget): string {
  return t.hostname.includes(':') ? `[${t.hostname}]:${t.port}` : `${t.hostname}:${t.port}`;
}

/** Open every hop from the outermost jump host to the target; on failure, close what was opened. */
async function openChain(target: SshTarget, run: SshRunState, timeoutMs: number): Promise<Ssh2Client[]> {
  const hops: SshTarget[] = [];
  for (let t: SshTarget | null = target; t; t = t.via) hops.unshift(t);
  const chain: Ssh2Client[] = [];
  try {
    for (let i = 0; i < hops.length; i++) {
      const hop = hops[i]!;
      const label = i === hops.length - 1 ? hop.name : `jump host ${hop.name}`;
      const through = i > 0 ? hops[i - 1]!.name : null;
      const sock = i > 0 ? await forward(chain[i - 1]!, hop, through!, Math.min(timeoutMs, hop.connectTimeoutMs)) : null;
      chain.push(await handshake(hop, sock, label, run, Math.min(timeoutMs, hop.connectTimeoutMs)));
    }
    return chain;
  } catch (e) {
    await endAll(chain);
    throw e;
  }
}

function forward(jump: Ssh2Client, hop: SshTarget, through: string, timeoutMs: number): Promise<Duplex> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      reject(new ConnectFailure(`cannot connect to ${address(hop)} through jump host ${through}: timed out after ${timeoutMs / 1000} s`, false));
    }, timeoutMs);
    jump.forwardOut('127.0.0.1', 0, hop.hostname, hop.port, (err, stream) => {
      clearTimeout(timer);
      if (err) {
        // Reason 2 (connect failed) is the jump host's own refused/unreachable: worth retrying like a direct one.
        const reason = (err as Error & { reason?: number }).reason;
        reject(new ConnectFailure(`cannot connect to ${address(hop)} through jump host ${through}: ${err.message.replace(/^\(SSH\) /, '')}`, reason === 2));
        return;
      }
      resolve(stream);
    });
  });
}

/** Connections whose socket has closed: ending them again would wait for a 'close' that never comes. */
const gone = new WeakSet<Ssh2Client>();

async function endAll(chain: Ssh2Client[]): Promise<void> {
  for (const c of [...chain].reverse()) {
    if (gone.has(c)) continue;
    await new Promise<void>((resolve) => {
      const timer = setTimeout(() => {
        c.destroy();
        resolve();
      }, CLOSE_WAIT_MS);
      c.once('close', () => {
        clearTimeout(timer);
        resolve();
      });
      c.on('error', () => undefined);
      c.end();
    });
  }
}

/** A countdown that can be paused while the user is typing a passphrase. */
class Countdown {
  private timer: NodeJS.Timeout | undefined;
  constructor(
    private readonly ms: number,
    private readonly onExpire: () => void,
  ) {}
  start(): void {
    this.stop();
    this.timer = setTimeout(this.onExpire, this.ms);
  }
  stop(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
  }
}

/** Key exchange, host key check and authentication with one hop. */
async function handshake(t: SshTarget, sock: Duplex | null, label: string, run: SshRunState, timeoutMs: number): Promise<Ssh2Client> {
  const entries = await readKnownHosts(t);
  const preferred = knownKeyTypes(entries, t.hostKeyName, t.port);
  const client = new Client();
  client.once('close', () => gone.add(client));
  const socket = sock ?? net.connect({ host: t.hostname, port: t.port });
  let tcpUp = sock !== null;
  socket.once('connect', () => (tcpUp = true));
  let hostKeyProblem: string | null = null;
  let passwordAllowed = true;
  const tried: string[] = [];

  return new Promise<Ssh2Client>((resolve, reject) => {
    let done = false;
    const finish = (error: ConnectFailure | null) => {
      if (done) return;
      done = true;
      countdown.stop();
      if (error) {
        client.on('error', () => undefined);
        client.destroy();
        socket.destroy();
        reject(error);
      } else {
        resolve(client);
      }
    };
    const countdown = new Countdown(timeoutMs, () => {
      const stage = tcpUp ? 'during the SSH handshake' : 'connecting';
      finish(new ConnectFailure(`cannot connect to ${address(t)}: timed out after ${timeoutMs / 1000} s ${stage}`, false));
    });
    const waitFor = async <T>(p: Promise<T>): Promise<T> => {
      countdown.stop();
      try {
        return await p;
      } finally {
        if (!done) countdown.start();
      }
    };

    const verify = async (key: Buffer): Promise<boolean> => {
      const verdict = await judgeHostKey(t, key, run, label);
      if (verdict.ok) {
        if (verdict.changedButAllowed) {
          passwordAllowed = false;
          changedKeys.set(client, verdict.changedButAllowed);
          if (!run.warnedKeys.has(label)) {
            run.warnedKeys.add(label);
            run.warn(t.name, `${verdict.changedButAllowed}; connecting anyway because of --host-key-checking no, but sending no password or become password to it`);
          }
        }
        return true;
      }
      hostKeyProblem = verdict.message;
      return false;
    };

    const steps = authSteps(t, run, waitFor, tried, () => passwordAllowed);
    const authHandler = (left: AuthenticationType[] | null, _partial: boolean | null, next: NextAuthHandler) => {
      if (left === null) {
        next({ type: 'none', username: t.user });
        return;
      }
      void (async () => {
        for (let s = steps.next(left); s !== null; s = steps.next(left)) {
          const method = await s;
          if (method) return next(method);
        }
        (next as unknown as (m: false) => void)(false);
      })().catch(() => (next as unknown as (m: false) => void)(false));
    };

    client.on('ready', () => finish(null));
    client.on('error', (e: Error & { level?: string; code?: string }) => {
      if (hostKeyProblem) return finish(new ConnectFailure(hostKeyProblem, false));
      if (e.level === 'agent' || (e.level === 'client-authentication' && !/All configured authentication methods failed/.test(e.message))) {
        tried.push(`(${e.message})`);
        return;
      }
      if (e.level === 'client-authentication') {
        const what = tried.length ? tried.join(', ') : 'no method the server accepts';
        return finish(new ConnectFailure(`authentication failed for ${t.user}@${address(t)}${label === t.name ? '' : ` (${label})`}; tried: ${what}`, false));
      }
      finish(classify(e, t, label));
    });
    client.on('close', () => {
      if (hostKeyProblem) return finish(new ConnectFailure(hostKeyProblem, false));
      finish(new ConnectFailure(`cannot connect to ${address(t)}: connection closed during the SSH handshake`, true));
    });

    countdown.start();
    client.connect({
      sock: socket,
      username: t.user,
      readyTimeout: 0,
      keepaliveInterval: t.serverAliveIntervalMs,
      keepaliveCountMax: t.serverAliveCountMax,
      algorithms: { serverHostKey: hostKeyAlgorithms(preferred) as never },
      hostVerifier: (key: Buffer, callback: (ok: boolean) => void) => {
        void waitFor(verify(key)).then(callback, (e: Error) => {
          hostKeyProblem = `cannot check the host key of ${label} (${address(t)}): ${e.message}`;
          callback(false);
        });
      },
      authHandler: authHandler as never,
    });
  });
}

/** Server host key algorithms with the types known_hosts has for this host first, as OpenSSH orders them. */
function hostKeyAlgorithms(preferred: string[]): string[] {
  const all = Object.values(HOST_KEY_ALGORITHMS).flat();
  const first = preferred.flatMap((type) => HOST_KEY_ALGORITHMS[type] ?? []);
  return [...new Set([...first, ...all])];
}

function classify(e: Error & { level?: string; code?: string }, t: SshTarget, label: string): ConnectFailure {
  const where = `cannot connect to ${address(t)}${label === t.name ? '' : ` (${label})`}`;
  if (e.level === 'client-socket') {
    switch (e.code) {
      case 'ECONNREFUSED':
        return new ConnectFailure(`${where}: connection refused`, true);
      case 'ECONNRESET':
      case 'EPIPE':
        return new ConnectFailure(`${where}: connection reset`, true);
      case 'EHOSTUNREACH':
        return new ConnectFailure(`${where}: no route to host`, true);
      case 'ENETUNREACH':
        return new ConnectFailure(`${where}: network unreachable`, true);
      case 'EAI_AGAIN':
        return new ConnectFailure(`${where}: name resolution failed temporarily`, true);
      case 'ENOTFOUND':
        return new ConnectFailure(`${where}: unknown host name`, false);
      case 'ETIMEDOUT':
        return new ConnectFailure(`${where}: timed out`, false);
    }
    return new ConnectFailure(`${where}: ${e.message}`, false);
  }
  if (/Connection lost before handshake/.test(e.message)) return new ConnectFailure(`${where}: connection closed before the SSH handshake`, true);
  if (e.level === 'handshake') return new ConnectFailure(`${where}: SSH handshake failed: ${e.message}`, false);
  return new ConnectFailure(`${where}: ${e.message}`, false);
}

async function readKnownHosts(t: SshTarget): Promise<KnownHostsEntry[]> {
  return loadKnownHosts([...t.knownHostsFiles, ...t.globalKnownHostsFiles]);
}

/** `changedButAllowed`: why the key is not the one on record, when --host-key-checking no let it through anyway. */
type HostKeyJudgement = { ok: true; changedButAllowed: string | null } | { ok: false; message: string };

async function judgeHostKey(t: SshTarget, key: Buffer, run: SshRunState, label: string): Promise<HostKeyJudgement> {
  const who = `${label} (${address(t)})`;
  const offered = `${keyTypeOf(key)} ${fingerprint(key)}`;
  const verdict = checkHostKey(await readKnownHosts(t), t.hostKeyName, t.port, key);
  switch (verdict.status) {
    case 'known':
      return { ok: true, changedButAllowed: null };
    case 'revoked':
      return { ok: false, message: `host key for ${who} is REVOKED: ${offered} is marked @revoked in ${tildePath(verdict.entry.file)} line ${verdict.entry.line}` };
    case 'changed': {
      const changed = `REMOTE HOST KEY CHANGED for ${who}: server offers ${offered}, ${tildePath(verdict.entry.file)} line ${verdict.entry.line} has ${fingerprint(verdict.entry.key)}`;
      if (t.hostKeyChecking === 'no') return { ok: true, changedButAllowed: changed };
      return { ok: false, message: `${changed} (if the host was reinstalled, remove that line)` };
    }
    case 'unknown': {
      // known_hosts trusts a CA for this host: OpenSSH would check the host's certificate. ssh2 neither asks for
      // nor returns certificates, so saying yes (or recording the plain key) would pretend a check that never ran.
      const ca = verdict.authorities[0];
      if (ca && t.hostKeyChecking !== 'no') {
        return {
          ok: false,
          message: `host key for ${who} is not known: ${offered}; ${tildePath(ca.file)} line ${ca.line} trusts a certificate authority (@cert-authority) for it, but provision cannot verify host certificates: add the host's own key to known_hosts`,
        };
      }
      if (t.hostKeyChecking === 'yes') {
        const file = tildePath(t.knownHostsFiles[0] ?? path.join(os.homedir(), '.ssh', 'known_hosts'));
        const others = verdict.otherTypes.length ? `; known_hosts has only ${verdict.otherTypes.join(', ')} for it` : '';
        return { ok: false, message: `host key for ${who} is not known: ${offered}${others} (add it to ${file} or use --host-key-checking accept-new)` };
      }
      const file = t.knownHostsFiles[0];
      if (!file) return { ok: true, changedButAllowed: null };
      return recordHostKey(t, key, file, run, who, offered);
    }
  }
}

/** accept-new: record the key unless, meanwhile, another connection recorded a key for this host. */
function recordHostKey(t: SshTarget, key: Buffer, file: string, run: SshRunState, who: string, offered: string): Promise<HostKeyJudgement> {
  const previous = run.knownHostsWrites.get(file) ?? Promise.resolve();
  const next = previous.then(async (): Promise<HostKeyJudgement> => {
    const again = checkHostKey(await readKnownHosts(t), t.hostKeyName, t.port, key);
    if (again.status === 'known') return { ok: true, changedButAllowed: null };
    if (again.status === 'unknown') {
      await appendKnownHost(file, t.hostKeyName, t.port, key, t.hashKnownHosts === true);
      return { ok: true, changedButAllowed: null };
    }
    return { ok: false, message: `host key for ${who} changed while it was being recorded: server offers ${offered}` };
  });
  run.knownHostsWrites.set(file, next.catch(() => undefined));
  return next;
}

/** The authentication methods to try, produced lazily so secrets are asked only when a method needs them. */
function authSteps(
  t: SshTarget,
  run: SshRunState,
  waitFor: <T>(p: Promise<T>) => Promise<T>,
  tried: string[],
  passwordAllowed: () => boolean,
): { next(left: AuthenticationType[]): Promise<AnyAuthMethod | null> | null } {
  const username = t.user;
  const queue: ((left: AuthenticationType[]) => Promise<AnyAuthMethod | null>)[] = [];
  if (t.agent) {
    queue.push(async (left) => {
      if (!left.includes('publickey')) return null;
      try {
        await fs.access(t.agent!);
      } catch {
        return null;
      }
      tried.push('ssh-agent');
      const agent = t.identitiesOnly
        ? new OnlyTheseKeys(createAgent(t.agent!) as InstanceType<typeof BaseAgent<ParsedKey>>, await publicBlobs(t.identityFiles))
        : t.agent!;
      return { type: 'agent', username, agent };
    });
  }
  for (const file of t.identityFiles) {
    queue.push(async (left) => {
      if (!left.includes('publickey')) return null;
      const loaded = await waitFor(loadKey(file, run));
      if ('skipped' in loaded) {
        if (loaded.skipped !== 'missing' || !isDefaultIdentity(file)) tried.push(`${tildePath(file)} (${loaded.skipped})`);
        return null;
      }
      tried.push(tildePath(file));
      return { type: 'publickey', username, key: loaded.key };
    });
  }
  const password = async (): Promise<string | null> => {
    if (!passwordAllowed()) return null;
    if (t.password !== null) return t.password;
    if (!run.secrets.askPass) return null;
    return waitFor(run.secrets.password('ssh'));
  };
  queue.push(async (left) => {
    if (!left.includes('password')) return null;
    const pw = await password();
    if (pw === null) return null;
    tried.push('password');
    return { type: 'password', username, password: pw };
  });
  queue.push(async (left) => {
    if (!left.includes('keyboard-interactive')) return null;
    const pw = await password();
    if (pw === null) return null;
    tried.push('keyboard-interactive');
    return {
      type: 'keyboard-interactive',
      username,
      prompt(_name: string, _instructions: string, _lang: string, prompts: Prompt[], finish: KeyboardInteractiveCallback) {
        // Only a lone hidden prompt is a password question; anything else (codes, confirmations) is not ours to answer.
        finish(prompts.length === 1 && !prompts[0]!.echo ? [pw] : []);
      },
    };
  });
  let i = 0;
  return {
    next(left) {
      const step = queue[i++];
      return step ? step(left) : null;
    },
  };
}

function isDefaultIdentity(file: string): boolean {
  return path.dirname(file) === path.join(os.homedir(), '.ssh') && /^id_(rsa|ecdsa|ed25519)$/.test(path.basename(file));
}

/** Read and decrypt a private key once per run; every host using it waits on the same promise. */
function loadKey(file: string, run: SshRunState): Promise<LoadedKey> {
  let pending = run.keys.get(file);
  if (!pending) {
    pending = (async (): Promise<LoadedKey> => {
      let data: Buffer;
      try {
        data = await fs.readFile(file);
      } catch (e) {
        const code = (e as NodeJS.ErrnoException).code;
        return { skipped: code === 'ENOENT' ? 'missing' : `cannot read: ${code ?? (e as Error).message}` };
      }
      let parsed = utils.parseKey(data);
      if (parsed instanceof Error && /no passphrase given/.test(parsed.message)) {
        try {
          const passphrase = await run.secrets.passphrase(file, (p) => !(utils.parseKey(data, p) instanceof Error));
          parsed = utils.parseKey(data, passphrase);
        } catch (e) {
          return { skipped: `encrypted: ${(e as Error).message}` };
        }
      }
      if (parsed instanceof Error) return { skipped: `not usable: ${parsed.message}` };
      const key = Array.isArray(parsed) ? (parsed[0] as ParsedKey) : parsed;
      if (!key.isPrivateKey()) return { skipped: 'not a private key' };
      return { key };
    })();
    run.keys.set(file, pending);
  }
  return pending;
}

/** Public key blobs of identity files, from their .pub files (readable without the passphrase). */
async function publicBlobs(files: string[]): Promise<Buffer[]> {
  const blobs: Buffer[] = [];
  for (const f of files) {
    try {
      const parsed = utils.parseKey(await fs.readFile(`${f}.pub`));
      if (!(parsed instanceof Error)) blobs.push((Array.isArray(parsed) ? (parsed[0] as ParsedKey) : parsed).getPublicSSH());
    } catch {
      // No .pub file: that identity cannot be matched to an agent key, as with OpenSSH.
    }
  }
  return blobs;
}

/** IdentitiesOnly with an agent: offer only the agent keys that belong to the configured identity files. */
class OnlyTheseKeys extends BaseAgent<ParsedKey> {
  constructor(
    private readonly inner: InstanceType<typeof BaseAgent<ParsedKey>>,
    private readonly allowed: Buffer[],
  ) {
    super();
  }
  getIdentities(cb: IdentityCallback<ParsedKey>): void {
    this.inner.getIdentities((err, keys) => {
      if (err) return cb(err);
      const parsed = (keys ?? []).filter((k): k is ParsedKey => 'getPublicSSH' in k);
      cb(undefined, parsed.filter((k) => this.allowed.some((a) => a.equals(k.getPublicSSH()))));
    });
  }
  sign(pubKey: ParsedKey, data: Buffer, options: SigningRequestOptions | SignCallback, cb?: SignCallback): void {
    if (typeof options === 'function') this.inner.sign(pubKey, data, options);
    else this.inner.sign(pubKey, data, options, cb);
  }
}

/** Run one command on a channel and collect its output (for probes). */
function runSimple(client: Ssh2Client, command: string, stdin: Buffer): Promise<ExecResult> {
  return new Promise((resolve, reject) => {
    client.exec(command, (err, ch) => {
      if (err) return reject(err);
      const out: Buffer[] = [];
      const errOut: Buffer[] = [];
      let code: number | null = null;
      ch.on('data', (b: Buffer) => out.push(b));
      ch.stderr.on('data', (b: Buffer) => errOut.push(b));
      ch.on('error', () => undefined);
      ch.on('exit', (c: number | null) => (code = typeof c === 'number' ? c : null));
      ch.on('close', () => resolve({ stdout: Buffer.concat(out), stderr: Buffer.concat(errOut), code }));
      ch.end(stdin);
    });
  });
}

/**
 * The SSH transport (ssh2): one connection per host for the whole run, each script on a channel of it.
 *
 * Host keys are checked against known_hosts before any credential is sent (host-keys.ts). Authentication follows
 * OpenSSH's order (ssh-auth.ts). Jump hosts are chained through forwarded channels. Transient network failures are
 * retried a bounded number of times with backoff; anything else makes the host unreachable at once. Every script
 * of a connection goes through SshConnection.start: execs as steps of the host's remote session (session.ts, one
 * channel per become spec for the whole run), held scripts as the first, persistent step of that session when
 * they come with a session variant, else (and on hosts that cannot run sessions) on channels of their own
 * (ssh-channel.ts).
 */
import type { Duplex } from 'node:stream';
import pLimit from 'p-limit';
import ssh2 from 'ssh2';
import type { AuthenticationType, Client as Ssh2Client, NextAuthHandler } from 'ssh2';
import { UnreachableError } from '../errors.js';
import { type Connection, type ExecOptions, type ExecResult, guard, type HeldExec, type HoldOptions, prepareExec } from './connection.js';
import { hostKeyAlgorithms, judgeHostKey, readKnownHosts, type KnownHostsWrites } from './host-keys.js';
import { knownKeyTypes } from './known-hosts.js';
import { connectPacketSocket } from './packet-socket.js';
import type { Secrets } from './secrets.js';
import { authSteps, type KeyCache } from './ssh-auth.js';
import { channelTransport, HostSessions, type SessionTransport } from './session.js';
import { type ChannelHooks, runChannel, runSimple } from './ssh-channel.js';
import { targetAddress, type SshTarget } from './ssh-target.js';

const { Client } = ssh2;

/** State shared by every connection of a run. */
export interface SshRunState {
  secrets: Secrets;
  /** pause before the second connection attempt; doubles for each further one */
  retryDelayMs: number;
  /** decrypted private keys by path, so each passphrase is asked and each key decrypted once */
  keys: KeyCache;
  /** pending known_hosts appends by file, so parallel hosts record keys one at a time */
  knownHostsWrites: KnownHostsWrites;
  /** tells the operator something about a host outside any task (a changed host key let through) */
  warn: (host: string, msg: string) => void;
  /** hosts (and jump hosts) already warned about for a changed key, so retries and probes do not repeat it */
  warnedKeys: Set<string>;
}

export function createSshRunState(secrets: Secrets, opts: { retryDelayMs?: number; warn?: SshRunState['warn'] } = {}): SshRunState {
  return { secrets, retryDelayMs: opts.retryDelayMs ?? 1000, keys: new Map(), knownHostsWrites: new Map(), warn: opts.warn ?? (() => undefined), warnedKeys: new Set() };
}

/** Concurrent channels per connection; OpenSSH's sshd allows 10 sessions per connection by default. */
const MAX_CHANNELS = 8;
const CLOSE_WAIT_MS = 2_000;

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
  /** channels opened: sessions, held scripts, plain execs, probes */
  private count = 0;
  /** execs and holds run on a channel of their own (those in sessions are counted there) */
  private ownSteps = 0;
  private readonly sessions: HostSessions;
  /** why this connection must not be given secrets: a hop's host key changed (see changedKeys) */
  private untrusted: string | null = null;
  private chain: Ssh2Client[] | null = null;
  private connecting: Promise<void> | null = null;
  private lost: string | null = null;
  private closed = false;
  private readonly pending = new Set<(e: Error) => void>();
  /** at most MAX_CHANNELS channels at once */
  private readonly slots = pLimit(MAX_CHANNELS);

  /** what a channel may ask of this connection */
  private readonly hooks: ChannelHooks;

  constructor(
    private readonly target: SshTarget,
    private readonly run: SshRunState,
  ) {
    this.hooks = {
      host: target.name,
      watchLoss: (onLost) => {
        this.pending.add(onLost);
        return () => this.pending.delete(onLost);
      },
      lostReason: () => this.lost,
      timedOut: (message) => {
        this.lost = message;
        void this.close();
      },
    };
    this.sessions = new HostSessions({
      host: target.name,
      open: (command) => this.openChannel(command),
      plain: (script, opts) => this.onChannel(script, opts, null) as Promise<ExecResult>,
      lost: () => this.lost,
      warn: (msg) => run.warn(target.name, msg),
    });
  }

  get host(): string {
    return this.target.name;
  }

  get execs(): number {
    return this.count;
  }

  get steps(): number {
    return this.ownSteps + this.sessions.steps;
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

  async hold(script: string, marker: string, opts: HoldOptions = {}): Promise<HeldExec> {
    return this.start(script, opts, marker) as Promise<HeldExec>;
  }

  /** The one way a script reaches this host: exec and hold both come here. */
  private async start(script: string, opts: HoldOptions, marker: string | null): Promise<ExecResult | HeldExec> {
    if (this.untrusted && opts.become?.password !== undefined) {
      throw new UnreachableError(this.host, `not sending the become password: ${this.untrusted} (whoever answers may be an impostor)`);
    }
    if (marker === null) return this.sessions.exec(script, opts);
    const { sessionScript, ...execOpts } = opts;
    const onChannel = () => this.onChannel(script, execOpts, marker) as Promise<HeldExec>;
    return sessionScript === undefined ? onChannel() : this.sessions.hold(sessionScript, marker, execOpts, onChannel);
  }

  /** A script on a channel of its own: a held script, or an exec on a host that cannot run a session. */
  private onChannel(script: string, opts: ExecOptions, marker: string | null): Promise<ExecResult | HeldExec> {
    const { command, stdin, sudo } = prepareExec(script, opts, marker !== null);
    const client = this.requireClient();
    this.count++;
    this.ownSteps++;
    return this.slots(() => runChannel(this.requireClient(client), command, stdin, sudo, opts.timeoutMs, marker, this.hooks));
  }

  /** A channel for a session: it lasts the whole run, so it takes no slot from the channels of single scripts. */
  private openChannel(command: string): Promise<SessionTransport> {
    const client = this.requireClient();
    this.count++;
    return new Promise((resolve, reject) => {
      try {
        client.exec(command, (err, ch) => {
          if (err) reject(new UnreachableError(this.host, this.lost ?? `cannot open a channel: ${err.message}`));
          else resolve(channelTransport(ch));
        });
      } catch (e) {
        reject(new UnreachableError(this.host, this.lost ?? (e as Error).message));
      }
    });
  }

  private requireClient(expected?: Ssh2Client): Ssh2Client {
    const client = this.chain?.[this.chain.length - 1];
    if (!client || (expected && client !== expected)) {
      throw new UnreachableError(this.host, this.lost ?? (this.closed ? 'connection is closed' : 'not connected'));
    }
    return client;
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
    // Each session removes its private directory on the host when its stdin ends.
    await this.sessions.close();
    const chain = this.chain;
    this.chain = null;
    if (!this.lost) this.lost = 'connection is closed';
    for (const reject of this.pending) reject(new UnreachableError(this.host, 'connection closed'));
    this.pending.clear();
    if (chain) await endAll(chain);
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
      reject(new ConnectFailure(`cannot connect to ${targetAddress(hop)} through jump host ${through}: timed out after ${timeoutMs / 1000} s`, false));
    }, timeoutMs);
    jump.forwardOut('127.0.0.1', 0, hop.hostname, hop.port, (err, stream) => {
      clearTimeout(timer);
      if (err) {
        // Reason 2 (connect failed) is the jump host's own refused/unreachable: worth retrying like a direct one.
        const reason = (err as Error & { reason?: number }).reason;
        reject(new ConnectFailure(`cannot connect to ${targetAddress(hop)} through jump host ${through}: ${err.message.replace(/^\(SSH\) /, '')}`, reason === 2));
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
  const socket = sock ?? connectPacketSocket(t.hostname, t.port);
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
      finish(new ConnectFailure(`cannot connect to ${targetAddress(t)}: timed out after ${timeoutMs / 1000} s ${stage}`, false));
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
      const verdict = await judgeHostKey(t, key, run.knownHostsWrites, label);
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

    const steps = authSteps(t, run.secrets, run.keys, waitFor, tried, () => passwordAllowed);
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
        return finish(new ConnectFailure(`authentication failed for ${t.user}@${targetAddress(t)}${label === t.name ? '' : ` (${label})`}; tried: ${what}`, false));
      }
      finish(classify(e, t, label));
    });
    client.on('close', () => {
      if (hostKeyProblem) return finish(new ConnectFailure(hostKeyProblem, false));
      finish(new ConnectFailure(`cannot connect to ${targetAddress(t)}: connection closed during the SSH handshake`, true));
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
          hostKeyProblem = `cannot check the host key of ${label} (${targetAddress(t)}): ${e.message}`;
          callback(false);
        });
      },
      authHandler: authHandler as never,
    });
    ignoreHostKeyOffers(client);
  });
}

type GlobalRequestHandler = (proto: unknown, name: string, wantReply: boolean, data: unknown) => void;

/**
 * After authentication, OpenSSH's sshd offers every host key it has (the `hostkeys-00@openssh.com` request, for
 * the client's UpdateHostKeys). ssh2 answers each offer by asking the server to prove every key, so the host signs
 * once per key (an RSA signature costs it milliseconds) and this process checks each signature, for an event
 * nothing here listens to: provision never learns keys that way (known_hosts is written only by accept-new, for
 * the key the handshake checked). OpenSSH's own client ignores the offer whenever UpdateHostKeys is off, and so
 * does this one: the request, which asks no reply, is dropped, and every other global request goes on to ssh2.
 * Where ssh2 keeps its handlers elsewhere (another release), nothing changes but the cost.
 */
function ignoreHostKeyOffers(client: Ssh2Client): void {
  const handlers = (client as unknown as { _protocol?: { _handlers?: Record<string, unknown> } })._protocol?._handlers;
  const own = handlers?.GLOBAL_REQUEST;
  if (!handlers || typeof own !== 'function') return;
  const pass = own as GlobalRequestHandler;
  handlers.GLOBAL_REQUEST = ((proto, name, wantReply, data) => {
    if (name !== 'hostkeys-00@openssh.com') return pass(proto, name, wantReply, data);
    if (wantReply) (proto as { requestSuccess(): void }).requestSuccess();
  }) satisfies GlobalRequestHandler;
}

function classify(e: Error & { level?: string; code?: string }, t: SshTarget, label: string): ConnectFailure {
  const where = `cannot connect to ${targetAddress(t)}${label === t.name ? '' : ` (${label})`}`;
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

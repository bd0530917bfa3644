/**
 * One remote shell per host (per become spec) that runs every step sent to it, instead of a new `sh -s` per step:
 * each new channel pays the host's login cost again (a root .bashrc, PAM session modules, accounting).
 *
 * The controller starts `sh -s` once (through sudo once, with the password once), sends the loop of
 * session-remote.ts on its stdin, waits for the loop to say it runs, then sends one framed step at a time and reads
 * one framed result back. A step that outlives its timeout is killed on the host by the loop's watchdog and the
 * session goes on; a session whose step does not come back within a safety margin after that is considered dead.
 * When the session dies (channel closed, shell killed on the host), the step in flight and those queued reject
 * with SessionLostError; starting a new session is the owner's decision.
 */
import type { ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import type { Readable, Writable } from 'node:stream';
import type { ClientChannel } from 'ssh2';
import { UnreachableError } from '../errors.js';
import { type BecomeSpec, beforeMarker, type ExecOptions, type ExecResult, guard, type HeldExec, prepareExec } from './connection.js';
import { sessionProgram } from './session-remote.js';
import type { SudoHandshake } from './sudo.js';

/** A started `sh -s` (or sudo … sh -s) that a session runs over. */
export interface SessionTransport {
  /** the shell's standard input */
  stdin: Writable;
  /** the shell's standard output */
  stdout: Readable;
  /** the shell's standard error (sudo's prompt, the loop's own complaints) */
  stderr: Readable;
  /** call `cb` once when the process or channel is gone, with its exit status when there is one */
  onClose(cb: (code: number | null) => void): void;
  /** end it now: kill the process, close the channel */
  kill(): void;
}

/** The command to start and what the session sends once it runs. */
export interface SessionLaunch {
  /** the command line that starts the shell (sudo … when becoming another user) */
  command: string;
  /** random per session; every frame carries it */
  nonce: string;
  /** the loop, sent on stdin once (through `sudo` when there is a handshake) */
  bootstrap: Buffer;
  /** the sudo password handshake, when becoming with a password */
  sudo: SudoHandshake | null;
}

export interface StepOptions {
  /**
   * Kill the step (its process group) on the host after this long; the session survives. A persistent step
   * cannot be killed apart from the session: for it this is the time after which the session is given up.
   */
  timeoutMs?: number;
  /** run in the loop's own shell, so that what the step opens or sets (a lock's descriptor) lasts as long as the session */
  persistent?: boolean;
}

/** What a step printed and how it ended. */
export interface StepResult {
  stdout: Buffer;
  stderr: Buffer;
  /** exit status; null when the watchdog killed the step at its timeout */
  code: number | null;
  /** time the step took on the host (10 ms resolution on Linux) */
  elapsedMs: number;
  /** the step ran out of time and was killed */
  timedOut: boolean;
}

/** The session ended (or never ran) while steps were pending; they did not run, or their end is unknown. */
export class SessionLostError extends Error {
  constructor(
    message: string,
    /** the step had been sent to the host (it may have run, in part); false: it never left the controller */
    readonly sent = true,
  ) {
    super(message);
    this.name = 'SessionLostError';
  }
}

/** The session could not start: what the shell (or sudo) printed and how it ended. */
export class SessionStartError extends SessionLostError {
  constructor(
    message: string,
    /** output before the loop would have said it runs */
    readonly stdout: Buffer,
    readonly stderr: Buffer,
    /** exit status of the shell, or null (killed, timed out, or the loop refused to run) */
    readonly code: number | null,
    /**
     * `ended`: the shell (or sudo) ended first; `refused`: the loop ran but could not set itself up (no private
     * directory), so plain channels may still work; `timeout`: nothing came in time
     */
    readonly reason: 'ended' | 'refused' | 'timeout',
  ) {
    super(message);
    this.name = 'SessionStartError';
  }
}

/** How long after a step's own timeout the controller waits for its result before the session is given up. */
export const SESSION_MARGIN_MS = 10_000;
/** How long the shell (and sudo) may take to start the loop. */
export const SESSION_START_TIMEOUT_MS = 60_000;
/** Most of the loop's own stderr kept for messages. */
const DIAGNOSTIC_BYTES = 4096;
/** A result header is short; a longer line means the stream is not ours. */
const HEADER_MAX = 256;

/** The command and bootstrap that start a session, as `become` asks (see prepareExec for sudo). */
export function sessionLaunch(become?: BecomeSpec): SessionLaunch {
  const nonce = randomBytes(16).toString('hex');
  const { command, stdin, sudo } = prepareExec(sessionProgram(nonce, { detach: !!become }), become ? { become } : {}, true);
  return { command, nonce, bootstrap: stdin, sudo };
}

/** A local child process as a session transport. */
export function childTransport(child: ChildProcess): SessionTransport {
  const closed = new Promise<number | null>((resolve) => {
    child.once('close', (code) => resolve(code));
    child.once('error', () => resolve(null));
  });
  return {
    stdin: child.stdin!,
    stdout: child.stdout!,
    stderr: child.stderr!,
    onClose: (cb) => void closed.then(cb),
    kill: () => void child.kill('SIGKILL'),
  };
}

/** An ssh2 exec channel as a session transport. */
export function channelTransport(channel: ClientChannel): SessionTransport {
  let code: number | null = null;
  channel.on('exit', (c: number | null) => {
    code = typeof c === 'number' ? c : null;
  });
  channel.on('error', () => undefined);
  const closed = new Promise<number | null>((resolve) => channel.once('close', () => resolve(code)));
  return {
    stdin: channel,
    stdout: channel,
    stderr: channel.stderr,
    onClose: (cb) => void closed.then(cb),
    kill: () => void channel.close(),
  };
}

interface Pending {
  id: number;
  frame: Buffer;
  opts: StepOptions;
  resolve: (r: StepResult) => void;
  reject: (e: Error) => void;
}

/** A running remote session: send steps with `run`, end it with `close`. */
export class RemoteSession {
  /** steps that returned a result */
  steps = 0;
  /** why the session is gone, or null while it runs */
  dead: string | null = null;
  private nextId = 1;
  private readonly queue: Pending[] = [];
  private current: Pending | null = null;
  private timer: NodeJS.Timeout | undefined;
  private diagnostics = Buffer.alloc(0);
  private readonly closed: Promise<void>;
  // result parsing
  private header = Buffer.alloc(0);
  private want: { id: number; code: number; out: number; err: number; elapsed: number; timedOut: boolean } | null = null;
  private body: Buffer[] = [];
  private bodyLength = 0;

  private constructor(
    private readonly t: SessionTransport,
    private readonly nonce: string,
    closed: Promise<number | null>,
  ) {
    this.closed = closed.then((code) => this.die(`the remote shell ended${code === null ? '' : ` (exit ${code})`}`));
    t.stdout.on('data', (b: Buffer) => this.onData(b));
    t.stderr.on('data', (b: Buffer) => this.keepDiagnostic(b));
    t.stdin.on('error', () => undefined);
  }

  /**
   * Start the loop on a freshly started shell: send the bootstrap (after sudo's password when there is a
   * handshake) and wait until the loop says it runs. Rejects with SessionStartError when it does not.
   */
  static start(t: SessionTransport, launch: SessionLaunch, opts: { timeoutMs?: number } = {}): Promise<RemoteSession> {
    const timeoutMs = opts.timeoutMs ?? SESSION_START_TIMEOUT_MS;
    return new Promise((resolve, reject) => {
      const out: Buffer[] = [];
      const err: Buffer[] = [];
      const ready = Buffer.from(`${launch.nonce} ready\n`);
      const fail = Buffer.from(`${launch.nonce} fail `);
      let done = false;
      const finish = (f: () => void) => {
        if (done) return;
        done = true;
        clearTimeout(timer);
        t.stdout.off('data', onOut);
        t.stderr.off('data', onErr);
        f();
      };
      const failed = (message: string, code: number | null, reason: SessionStartError['reason']) =>
        finish(() => {
          const stderr = Buffer.concat([...err, launch.sudo?.flush() ?? Buffer.alloc(0)]);
          reject(new SessionStartError(message, Buffer.concat(out), stderr, code, reason));
        });
      const onOut = (b: Buffer) => {
        out.push(b);
        const all = Buffer.concat(out);
        const at = all.indexOf(ready);
        if (at >= 0) {
          const rest = all.subarray(at + ready.length);
          finish(() => {
            const closed = new Promise<number | null>((res) => t.onClose(res));
            const session = new RemoteSession(t, launch.nonce, closed);
            if (rest.length) session.onData(rest);
            resolve(session);
          });
          return;
        }
        const f = all.indexOf(fail);
        if (f >= 0 && all.indexOf(10, f) >= 0) {
          const why = all.subarray(f + fail.length, all.indexOf(10, f)).toString();
          t.stdin.end();
          failed(`the remote shell cannot run a session: ${why}`, null, 'refused');
        }
      };
      const onErr = (b: Buffer) => {
        if (!launch.sudo) return void err.push(b);
        const step = launch.sudo.push(b);
        if (step.stderr.length) err.push(step.stderr);
        if (step.send) t.stdin.write(step.send);
        // A second prompt means a wrong password: ending stdin makes sudo give up.
        if (step.end && !launch.sudo.started) t.stdin.end();
      };
      const timer = setTimeout(() => {
        t.kill();
        failed(`the remote shell did not start a session within ${timeoutMs} ms`, null, 'timeout');
      }, timeoutMs);
      t.stdout.on('data', onOut);
      t.stderr.on('data', onErr);
      t.stdin.on('error', () => undefined);
      t.onClose((code) => failed(`the remote shell ended before the session started${code === null ? '' : ` (exit ${code})`}`, code, 'ended'));
      if (!launch.sudo) t.stdin.write(launch.bootstrap);
    });
  }

  /** Run a step; rejects with SessionLostError when the session dies before its result is back. */
  run(script: string, opts: StepOptions = {}): Promise<StepResult> {
    if (this.dead) return Promise.reject(new SessionLostError(this.dead, false));
    const id = this.nextId++;
    // A step reads its script from the saved file, as `sh -s` reads a channel's stdin: the same guard applies.
    const body = Buffer.from(opts.persistent ? script : guard(script));
    const kind = opts.persistent ? 'p' : 's';
    const remoteTimeout = opts.persistent ? 0 : Math.max(0, Math.ceil(opts.timeoutMs ?? 0));
    const frame = Buffer.concat([
      Buffer.from(`${this.nonce} ${id} ${kind} ${body.length} ${remoteTimeout}\n`),
      body,
      Buffer.from(`${this.nonce} end\n`),
    ]);
    return new Promise((resolve, reject) => {
      this.queue.push({ id, frame, opts, resolve, reject });
      this.pump();
    });
  }

  /** End the session: its stdin closes, the loop removes its directory and exits. Safe to call twice. */
  async close(waitMs = 2000): Promise<void> {
    if (!this.dead) this.die('the session was closed');
    this.t.stdin.end();
    const timer = setTimeout(() => this.t.kill(), waitMs);
    await this.closed;
    clearTimeout(timer);
  }

  /** Kill the shell at once (the channel or process), as a lost connection would. */
  kill(): void {
    this.t.kill();
  }

  private pump(): void {
    if (this.current || this.dead) return;
    const next = this.queue.shift();
    if (!next) return;
    this.current = next;
    const { timeoutMs, persistent } = next.opts;
    if (timeoutMs) {
      const limit = persistent ? timeoutMs : timeoutMs + SESSION_MARGIN_MS;
      this.timer = setTimeout(() => {
        this.die(`step ${next.id} did not come back within ${limit} ms`);
        this.t.kill();
      }, limit);
    }
    this.t.stdin.write(next.frame);
  }

  private onData(chunk: Buffer): void {
    let b = chunk;
    while (b.length && !this.dead) {
      if (!this.want) {
        const nl = b.indexOf(10);
        if (nl < 0) {
          this.header = Buffer.concat([this.header, b]);
          if (this.header.length > HEADER_MAX) this.protocolError('an overlong result header');
          return;
        }
        const line = Buffer.concat([this.header, b.subarray(0, nl)]).toString('latin1');
        this.header = Buffer.alloc(0);
        b = b.subarray(nl + 1);
        const f = line.split(' ');
        const nums = f.slice(1).map(Number);
        if (f.length !== 7 || f[0] !== this.nonce || nums.some((n) => !Number.isSafeInteger(n) || n < 0) || nums[0] !== this.current?.id) {
          return this.protocolError(`an unexpected line from the remote shell: ${JSON.stringify(line.slice(0, 80))}`);
        }
        const [id, code, out, err, elapsed, timedOut] = nums as [number, number, number, number, number, number];
        this.want = { id, code, out, err, elapsed, timedOut: timedOut === 1 };
        this.body = [];
        this.bodyLength = 0;
      }
      const need = this.want.out + this.want.err - this.bodyLength;
      const take = b.subarray(0, need);
      if (take.length) this.body.push(take);
      this.bodyLength += take.length;
      b = b.subarray(take.length);
      if (this.bodyLength === this.want.out + this.want.err) this.complete();
    }
  }

  private complete(): void {
    const w = this.want!;
    const all = this.body.length === 1 ? this.body[0]! : Buffer.concat(this.body, this.bodyLength);
    this.want = null;
    this.body = [];
    this.bodyLength = 0;
    const p = this.current!;
    this.current = null;
    clearTimeout(this.timer);
    this.steps++;
    p.resolve({
      stdout: all.subarray(0, w.out),
      stderr: all.subarray(w.out),
      code: w.timedOut ? null : w.code,
      elapsedMs: w.elapsed,
      timedOut: w.timedOut,
    });
    this.pump();
  }

  private protocolError(what: string): void {
    this.die(`the session stream is out of step (${what})`);
    this.t.kill();
  }

  private keepDiagnostic(b: Buffer): void {
    this.diagnostics = Buffer.concat([this.diagnostics, b]);
    if (this.diagnostics.length > DIAGNOSTIC_BYTES) this.diagnostics = this.diagnostics.subarray(-DIAGNOSTIC_BYTES);
  }

  private die(reason: string): void {
    if (this.dead) return;
    const said = this.diagnostics.toString().trim().split('\n').pop();
    this.dead = said ? `${reason}: ${said}` : reason;
    clearTimeout(this.timer);
    this.current?.reject(new SessionLostError(this.dead, true));
    for (const p of this.queue.splice(0)) p.reject(new SessionLostError(this.dead, false));
    this.current = null;
  }
}

/** What HostSessions needs from the connection it serves. */
export interface SessionHost {
  /** inventory name of the host, for errors */
  readonly host: string;
  /** start `command` on a new channel (or process); throws UnreachableError when the host is gone */
  open(command: string): Promise<SessionTransport>;
  /** run a script on a channel of its own, as before sessions (hosts that cannot run the loop) */
  plain(script: string, opts: ExecOptions): Promise<ExecResult>;
  /** why the connection itself is gone, if it is: then a dead session is not restarted */
  lost(): string | null;
  /** tell the operator about a session outside any task (it died and was restarted, it cannot run) */
  warn(msg: string): void;
}

/** One session per become spec, its restart and the fallback to plain channels. */
interface SessionSlot {
  session: Promise<RemoteSession> | null;
  /** sessions that died after they started; one restart is allowed */
  deaths: number;
  /** the host cannot run the loop: plain channels from now on */
  plain: boolean;
  /** the session holds what a held step opened (the host lock): it must not be replaced by a new one */
  holds: boolean;
  /** why the session that held it ended: every later step of this slot fails with it */
  holdLost: string | null;
}

/**
 * The sessions of one connection: one per distinct become spec (none, root, another user), each opened on the
 * first exec that needs it. A session that dies is restarted once, with a warning; the step it was running when
 * it died is reported as killed (code null, the outcome on the host unknown), never run again. A session that
 * dies a second time makes the host unreachable. A host that cannot run the loop (no private temporary directory)
 * gets plain channels, with a warning. A session that holds what a held step opened (the host lock, see `hold`)
 * is not restarted when it dies: a new one would not hold it, so the steps of that session fail instead.
 */
export class HostSessions {
  /** sessions opened (each is one channel) */
  opened = 0;
  /** steps that came back from a session */
  steps = 0;
  private readonly slots = new Map<string, SessionSlot>();
  private closing = false;
  /** sessions ended by a release, which `close` waits for */
  private readonly ending = new Set<Promise<void>>();

  constructor(private readonly h: SessionHost) {}

  async exec(script: string, opts: ExecOptions = {}): Promise<ExecResult> {
    const slot = this.slot(opts);
    for (;;) {
      if (slot.plain) return this.h.plain(script, opts);
      if (this.closing) throw new UnreachableError(this.h.host, 'connection is closed');
      if (slot.holdLost) throw new UnreachableError(this.h.host, slot.holdLost);
      const starting = (slot.session ??= this.start(slot, opts));
      const opened = await this.running(slot, starting, opts);
      if (opened === 'plain') continue;
      if ('result' in opened) return opened.result;
      const { session } = opened;
      try {
        const r = await session.run(script, { timeoutMs: opts.timeoutMs });
        this.steps++;
        if (r.timedOut) throw new UnreachableError(this.h.host, `command timed out after ${opts.timeoutMs} ms`);
        return { stdout: r.stdout, stderr: r.stderr, code: r.code };
      } catch (e) {
        if (!(e instanceof SessionLostError)) throw e;
        if (slot.session === starting) {
          slot.session = null;
          slot.deaths++;
        }
        const lost = this.h.lost();
        if (lost || this.closing) throw new UnreachableError(this.h.host, lost ?? 'connection is closed');
        if (slot.holds) {
          slot.holdLost = `the remote session that held the host lock ended: ${e.message}`;
          throw new UnreachableError(this.h.host, slot.holdLost);
        }
        if (slot.deaths > 1) throw new UnreachableError(this.h.host, `the remote session died again: ${e.message}`);
        this.h.warn(`the remote session ended (${e.message}); the next step starts a new one`);
        if (!e.sent) continue;
        return { stdout: Buffer.alloc(0), stderr: Buffer.from(`provision: the remote session ended while this step ran: ${e.message}\n`), code: null };
      }
    }
  }

  /**
   * The slot's session once it runs; 'plain' when the host cannot run sessions (the slot then uses plain channels,
   * with a warning); or a result when the shell or sudo ended before the loop ran (a wrong become password, sudo -n
   * refused): that is the step's result, as it would have been on a channel of its own.
   */
  private async running(
    slot: SessionSlot,
    starting: Promise<RemoteSession>,
    opts: ExecOptions,
  ): Promise<{ session: RemoteSession } | { result: ExecResult } | 'plain'> {
    try {
      return { session: await starting };
    } catch (e) {
      if (!(e instanceof SessionStartError)) throw e;
      if (e.reason === 'refused') {
        slot.plain = true;
        this.h.warn(`${e.message}; running each step on a channel of its own`);
        return 'plain';
      }
      if (e.reason === 'ended' && e.code !== null) return { result: { stdout: e.stdout, stderr: e.stderr, code: e.code } };
      const timedOut = e.reason === 'timeout' && opts.timeoutMs;
      throw new UnreachableError(this.h.host, this.h.lost() ?? (timedOut ? `command timed out after ${opts.timeoutMs} ms` : e.message));
    }
  }

  /**
   * Run `script` as the first, persistent step of the session for `opts.become` (started here when it is not yet):
   * what it opens, the host lock's descriptor, stays open in the session's shell until the session ends. Held when
   * it printed a line `marker` (the result is what it printed before); `release` then ends that session, which
   * frees what it held (a later step of the same become spec starts a new session). On a host that cannot run
   * sessions, `fallback` runs the held script on a channel of its own.
   */
  async hold(script: string, marker: string, opts: ExecOptions, fallback: () => Promise<HeldExec>): Promise<HeldExec> {
    const slot = this.slot(opts);
    const notHeld = (r: ExecResult): HeldExec => ({ ...r, held: false, release: () => undefined });
    if (slot.plain) return fallback();
    if (this.closing) throw new UnreachableError(this.h.host, 'connection is closed');
    const starting = (slot.session ??= this.start(slot, opts));
    const opened = await this.running(slot, starting, opts);
    if (opened === 'plain') return fallback();
    if ('result' in opened) return notHeld(opened.result);
    const { session } = opened;
    let r: StepResult;
    try {
      r = await session.run(script, { persistent: true, timeoutMs: opts.timeoutMs });
    } catch (e) {
      if (!(e instanceof SessionLostError)) throw e;
      if (slot.session === starting) {
        slot.session = null;
        slot.deaths++;
      }
      throw new UnreachableError(this.h.host, this.h.lost() ?? (this.closing ? 'connection is closed' : `the remote session ended while it ran a held step: ${e.message}`));
    }
    this.steps++;
    const stdout = beforeMarker([r.stdout], marker);
    if (!stdout) return notHeld({ stdout: r.stdout, stderr: r.stderr, code: r.code });
    slot.holds = true;
    let released = false;
    const release = () => {
      if (released) return;
      released = true;
      slot.holds = false;
      if (slot.session === starting) slot.session = null;
      this.ending.add(session.close());
    };
    return { stdout, stderr: r.stderr, code: null, held: true, release };
  }

  /** End every session (each removes its private directory on the host). */
  async close(): Promise<void> {
    this.closing = true;
    const open = [...this.slots.values()].map((s) => s.session);
    this.slots.clear();
    await Promise.all([...open.map((p) => p?.then((s) => s.close(), () => undefined)), ...this.ending]);
  }

  private slot(opts: ExecOptions): SessionSlot {
    const key = opts.become ? `become:${opts.become.user || 'root'}` : 'login';
    let slot = this.slots.get(key);
    if (!slot) this.slots.set(key, (slot = { session: null, deaths: 0, plain: false, holds: false, holdLost: null }));
    return slot;
  }

  private async start(slot: SessionSlot, opts: ExecOptions): Promise<RemoteSession> {
    const launch = sessionLaunch(opts.become);
    const t = await this.h.open(launch.command);
    this.opened++;
    const startTimeout = opts.timeoutMs ? Math.min(opts.timeoutMs, SESSION_START_TIMEOUT_MS) : SESSION_START_TIMEOUT_MS;
    try {
      return await RemoteSession.start(t, launch, { timeoutMs: startTimeout });
    } catch (e) {
      slot.session = null;
      throw e;
    }
  }
}

/**
 * Runs scripts on the controller itself (`ansible_connection=local`), as SSH does: execs as steps of a local
 * session (one `sh -s` per become spec), held scripts as a persistent step of that session when they have a
 * session variant, else in an `sh -s` of their own.
 */
import { spawn } from 'node:child_process';
import { UnreachableError } from '../errors.js';
import { beforeMarker, type Connection, type ExecOptions, type ExecResult, type HeldExec, type HoldOptions, prepareExec } from './connection.js';
import { childTransport, HostSessions } from './session.js';

export class LocalConnection implements Connection {
  /** shells started: sessions, held scripts, plain execs */
  private count = 0;
  /** execs and holds run in a shell of their own */
  private ownSteps = 0;
  private readonly sessions: HostSessions;

  constructor(
    readonly host: string,
    warn: (host: string, msg: string) => void = () => undefined,
  ) {
    this.sessions = new HostSessions({
      host,
      open: async (command) => {
        this.count++;
        return childTransport(spawn('/bin/sh', ['-c', command], { stdio: ['pipe', 'pipe', 'pipe'] }));
      },
      plain: (script, opts) => this.run(script, opts, null) as Promise<ExecResult>,
      lost: () => null,
      warn: (msg) => warn(host, msg),
    });
  }

  get execs(): number {
    return this.count;
  }

  get steps(): number {
    return this.ownSteps + this.sessions.steps;
  }

  async connect(): Promise<void> {}

  exec(script: string, opts: ExecOptions = {}): Promise<ExecResult> {
    return this.sessions.exec(script, opts);
  }

  async hold(script: string, marker: string, opts: HoldOptions = {}): Promise<HeldExec> {
    const { sessionScript, ...execOpts } = opts;
    const onItsOwn = () => this.run(script, execOpts, marker) as Promise<HeldExec>;
    return sessionScript === undefined ? onItsOwn() : this.sessions.hold(sessionScript, marker, execOpts, onItsOwn);
  }

  private run(script: string, opts: ExecOptions, marker: string | null): Promise<ExecResult | HeldExec> {
    this.count++;
    this.ownSteps++;
    const { command, stdin, sudo } = prepareExec(script, opts, marker !== null);
    return new Promise((resolve, reject) => {
      const child = spawn('/bin/sh', ['-c', command], { stdio: ['pipe', 'pipe', 'pipe'] });
      const out: Buffer[] = [];
      const err: Buffer[] = [];
      let timer: NodeJS.Timeout | undefined;
      if (opts.timeoutMs) {
        timer = setTimeout(() => {
          child.kill('SIGKILL');
          reject(new UnreachableError(this.host, `command timed out after ${opts.timeoutMs} ms`));
        }, opts.timeoutMs);
      }
      let held = false;
      const release = () => child.stdin.end();
      child.stdout.on('data', (b: Buffer) => {
        out.push(b);
        if (marker === null || held) return;
        const stdout = beforeMarker(out, marker);
        if (!stdout) return;
        held = true;
        resolve({ stdout, stderr: Buffer.concat(err), code: null, held: true, release });
      });
      child.stderr.on('data', (b: Buffer) => {
        if (!sudo) return err.push(b);
        const step = sudo.push(b);
        err.push(step.stderr);
        if (step.send) child.stdin.write(step.send);
        if (step.end && (marker === null || !sudo.started)) child.stdin.end();
      });
      child.on('error', (e) => {
        if (timer) clearTimeout(timer);
        reject(new UnreachableError(this.host, `cannot run /bin/sh: ${e.message}`));
      });
      child.on('close', (code) => {
        if (timer) clearTimeout(timer);
        if (sudo) err.push(sudo.flush());
        const result = { stdout: Buffer.concat(out), stderr: Buffer.concat(err), code };
        resolve(marker === null ? result : { ...result, held: false, release: () => undefined });
      });
      // A script that exits before reading all of stdin closes the pipe; that is not an error.
      child.stdin.on('error', () => undefined);
      // With a sudo password, the handshake sends the password and the script when sudo is ready for them.
      if (!sudo) {
        if (marker === null) child.stdin.end(stdin);
        else child.stdin.write(stdin);
      }
    });
  }

  async probeNew(): Promise<void> {}

  async close(): Promise<void> {
    await this.sessions.close();
  }
}

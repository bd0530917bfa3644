/**
 * One command on one SSH channel: its script on stdin (after sudo's password exchange when there is one), its
 * output collected, a timeout, and held scripts that keep running until released.
 */
import type { Client as Ssh2Client, ClientChannel } from 'ssh2';
import { UnreachableError } from '../errors.js';
import { beforeMarker, type ExecResult, type HeldExec } from './connection.js';
import type { SudoHandshake } from './sudo.js';

/** How long sudo may take to ask for the password or start the shell before the exec is given up. */
const BECOME_TIMEOUT_MS = 60_000;

/** What a channel needs from the connection it runs on. */
export interface ChannelHooks {
  /** inventory name of the host, for errors */
  readonly host: string;
  /** call `onLost` if the connection is lost while the command runs; returns a function that stops watching */
  watchLoss(onLost: (e: Error) => void): () => void;
  /** why the connection is gone, if it is */
  lostReason(): string | null;
  /** the command ran past its timeout: drop the connection, which ends the remote command's session */
  timedOut(message: string): void;
}

/**
 * Run `command` on a new channel of `client`. With `marker`, resolve as soon as the script prints it (a held
 * script); otherwise when the channel closes.
 */
export function runChannel(
  client: Ssh2Client,
  command: string,
  stdin: Buffer,
  sudo: SudoHandshake | null,
  timeoutMs: number | undefined,
  marker: string | null,
  hooks: ChannelHooks,
): Promise<ExecResult | HeldExec> {
  return new Promise<ExecResult | HeldExec>((resolve, reject) => {
    let settled = false;
    let channel: ClientChannel | null = null;
    const timers: NodeJS.Timeout[] = [];
    const settle = (f: () => void) => {
      if (settled) return;
      settled = true;
      for (const t of timers) clearTimeout(t);
      unwatch();
      f();
    };
    const unwatch = hooks.watchLoss((e: Error) => settle(() => reject(e)));
    if (timeoutMs) {
      timers.push(
        setTimeout(() => {
          const message = `command timed out after ${timeoutMs} ms`;
          settle(() => reject(new UnreachableError(hooks.host, message)));
          // The remote command may still hold locks or files; dropping the connection ends its session.
          channel?.signal('KILL');
          hooks.timedOut(message);
        }, timeoutMs),
      );
    }
    try {
      client.exec(command, (err, ch) => {
        if (err) {
          settle(() => reject(new UnreachableError(hooks.host, `cannot open a channel: ${err.message}`)));
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
      settle(() => reject(new UnreachableError(hooks.host, hooks.lostReason() ?? (e as Error).message)));
    }
  });
}

/** Run one command on a channel and collect its output (for probes). */
export function runSimple(client: Ssh2Client, command: string, stdin: Buffer): Promise<ExecResult> {
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

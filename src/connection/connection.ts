import { SudoHandshake } from './sudo.js';

/**
 * What the runner needs from a way of reaching a host. Implementations: ssh.ts (ssh2) and local.ts.
 *
 * Every remote operation is a POSIX shell script: an exec is a step of the host's remote session (session.ts: one
 * `sh -s` per become spec for the whole run, through sudo when becoming another user), a held script is sent on
 * the standard input of an `sh -s` of its own. Nothing of a script's content appears in a process list, file
 * content travels inside the script as base64 here-documents, and a script cut short in transit is never run: a
 * session runs a step only once all of it arrived, and a script on its own channel is wrapped in a `{ …; }` group
 * that the shell must read to its end before running any of it. A held script with a `sessionScript` is that
 * script, run as a persistent step of the session instead (no channel of its own) where the host runs sessions.
 */

/** How to run a script as another user. */
export interface BecomeSpec {
  /** target user, default root */
  user: string;
  /** sudo password, sent on stdin before the script; never in argv */
  password?: string;
}

export interface ExecOptions {
  /** run through sudo */
  become?: BecomeSpec;
  /** give up after this long (the host becomes unreachable), default: no limit */
  timeoutMs?: number;
}

/** What a script printed and how it ended. */
export interface ExecResult {
  stdout: Buffer;
  stderr: Buffer;
  /** exit status; null when the remote process was killed by a signal */
  code: number | null;
}

export interface HoldOptions extends ExecOptions {
  /**
   * Where the host runs sessions, run this instead as a persistent step of the session (see session.ts): what it
   * opens (a lock's descriptor) stays open until the session ends, and it must neither wait on stdin nor `exit`.
   * It prints the same marker when it succeeds. Without sessions (a host that cannot run the loop), the held
   * script runs on a channel of its own as before.
   */
  sessionScript?: string;
}

/** A script still running on the host (it holds a lock, say) until `release` closes its stdin. */
export interface HeldExec extends ExecResult {
  /** false when the script ended before printing its ready marker (then `code` says how) */
  held: boolean;
  /** end the script's stdin so it can finish (or, held in a session, end that session); safe to call twice */
  release(): void;
}

export interface Connection {
  /** inventory name of the host */
  readonly host: string;
  /** channels opened so far: remote sessions (one per become spec), held scripts, probes, plain execs */
  readonly execs: number;
  /** remote operations run so far (facts, reads, writes, commands), each exec and hold once: the cost that matters */
  readonly steps: number;
  /** open the connection; throws UnreachableError when the host cannot be reached or authenticated */
  connect(): Promise<void>;
  /**
   * Run a shell script on the host. Throws UnreachableError when the connection is lost; a script that fails
   * is not an exception (look at `code`).
   */
  exec(script: string, opts?: ExecOptions): Promise<ExecResult>;
  /**
   * Run a script that keeps running after it printed a line `marker` on stdout, until `release` (or the end of
   * the connection) closes its stdin. Resolves when the marker arrives, with what was printed before it, or when
   * the script ends without printing it. Counts as an exec (a channel) when on a channel of its own, and as a
   * step either way. With `opts.sessionScript`, see HoldOptions.
   */
  hold(script: string, marker: string, opts?: HoldOptions): Promise<HeldExec>;
  /**
   * Prove that a brand-new connection to the host can be opened and authenticated right now (used after a
   * firewall restart). Throws UnreachableError when it cannot.
   */
  probeNew(timeoutMs: number): Promise<void>;
  /** close the connection; safe to call twice */
  close(): Promise<void>;
}

/**
 * The command line that runs a script read from stdin, and the bytes to send on stdin. With a sudo password, a
 * SudoHandshake decides when the password and the script are sent: sudo may not ask at all (NOPASSWD, cached
 * credentials), and a password sent blindly would then be read by the shell as a command.
 */
export function prepareExec(
  script: string,
  opts: ExecOptions = {},
  keepStdin = false,
): { command: string; stdin: Buffer; sudo: SudoHandshake | null } {
  const stdin = Buffer.from(keepStdin ? `{\n${script}\n}\n` : guard(script));
  const become = opts.become;
  if (!become) return { command: 'sh -s', stdin, sudo: null };
  const user = become.user || 'root';
  if (!/^[A-Za-z0-9._-]+$/.test(user)) throw new Error(`invalid become user "${user}"`);
  if (become.password === undefined) return { command: `sudo -n -u ${user} -- sh -s`, stdin, sudo: null };
  if (/[\n\0]/.test(become.password)) throw new Error('a sudo password cannot contain a newline or NUL');
  const sudo = new SudoHandshake(become.password, stdin);
  return { command: sudo.command(user), stdin, sudo };
}

/** What a held script printed before its line `marker` (see Connection.hold), or null while the marker has not come. */
export function beforeMarker(out: Buffer[], marker: string): Buffer | null {
  const all = Buffer.concat(out);
  const at = all.indexOf(`${marker}\n`, 0, 'latin1');
  return at < 0 ? null : all.subarray(0, at);
}

/**
 * Wrap a script so that the shell reads all of it before running any of it, and so that commands inside do not
 * read the rest of the script from stdin. (A held script keeps stdin: reading it is how it waits for release.)
 */
export function guard(script: string): string {
  return `{\n${script}\n} </dev/null\n`;
}

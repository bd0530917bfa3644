/**
 * Passwords and key passphrases, asked once per run on the controlling terminal (without echo) and shared by
 * every host: fifty hosts that need the same key's passphrase wait on the same question. Secret values never
 * appear in error messages.
 */
import { closeSync, openSync } from 'node:fs';
import tty from 'node:tty';
import { InputError } from '../errors.js';

/** Which password: the SSH login password (-k/--ask-pass) or the sudo password (--ask-become-pass). */
export type PasswordKind = 'ssh' | 'become';

/** Reads one line typed by the user after showing `prompt`, without echo. */
export type Prompter = (prompt: string) => Promise<string>;

export interface SecretsOptions {
  /** whether the user can be asked at all (a terminal is attended) */
  interactive: boolean;
  /** -k / --ask-pass was given: SSH logins may use a password */
  askPass?: boolean;
  /** --ask-become-pass was given: sudo is given a password */
  askBecomePass?: boolean;
  /** how to ask; default: the controlling terminal */
  prompter?: Prompter;
}

export interface Secrets {
  readonly askPass: boolean;
  readonly askBecomePass: boolean;
  /**
   * The passphrase of an encrypted private key. `accept` tells whether a typed passphrase is right; a wrong one
   * is asked again (three tries in all). Concurrent callers for the same key share one question.
   */
  passphrase(keyPath: string, accept: (passphrase: string) => boolean): Promise<string>;
  /** The SSH or sudo password, asked once per run. The sudo password defaults to the SSH password when empty. */
  password(kind: PasswordKind): Promise<string>;
}

const TRIES = 3;

export function createSecrets(opts: SecretsOptions): Secrets {
  const ask = opts.prompter ?? promptOnTerminal;
  const askPass = opts.askPass ?? false;
  const askBecomePass = opts.askBecomePass ?? false;
  const passphrases = new Map<string, Promise<string>>();
  const passwords = new Map<PasswordKind, Promise<string>>();
  // One question at a time: prompts of parallel hosts must not interleave on the terminal.
  let queue: Promise<unknown> = Promise.resolve();
  const serial = (what: string, prompt: string): Promise<string> => {
    const next = queue.then(() => {
      if (!opts.interactive) throw new InputError(`cannot ask for ${what}: not running interactively`);
      return ask(prompt);
    });
    queue = next.catch(() => undefined);
    return next;
  };

  const secrets: Secrets = {
    askPass,
    askBecomePass,
    passphrase(keyPath, accept) {
      let pending = passphrases.get(keyPath);
      if (!pending) {
        pending = (async () => {
          for (let i = 1; i <= TRIES; i++) {
            const prompt = i === 1 ? `Enter passphrase for key '${keyPath}': ` : `Bad passphrase, try again for '${keyPath}': `;
            const value = await serial(`the passphrase of ${keyPath}`, prompt);
            if (accept(value)) return value;
          }
          throw new InputError(`wrong passphrase for ${keyPath} (${TRIES} tries)`);
        })();
        passphrases.set(keyPath, pending);
      }
      return pending;
    },
    password(kind) {
      let pending = passwords.get(kind);
      if (!pending) {
        if (kind === 'ssh' && !askPass) return Promise.reject(new Error('no SSH password was asked for (use -k / --ask-pass)'));
        if (kind === 'become' && !askBecomePass) return Promise.reject(new Error('no become password was asked for (use --ask-become-pass)'));
        pending =
          kind === 'ssh'
            ? serial('the SSH password', 'SSH password: ')
            : serial('the become password', askPass ? 'BECOME password[defaults to SSH password]: ' : 'BECOME password: ').then(
                async (value) => (value === '' && askPass ? secrets.password('ssh') : value),
              );
        passwords.set(kind, pending);
      }
      return pending;
    },
  };
  return secrets;
}

/**
 * Ask on /dev/tty, so it works when stdin and stdout are pipes, with echo off. Backspace and Ctrl-U edit the
 * line; Ctrl-C and Ctrl-D on an empty line give up.
 */
export function promptOnTerminal(prompt: string): Promise<string> {
  let inFd: number;
  let outFd: number;
  try {
    inFd = openSync('/dev/tty', 'r');
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code ?? 'error';
    return Promise.reject(new InputError(`cannot ask "${prompt.trim()}": no terminal (${code})`));
  }
  try {
    outFd = openSync('/dev/tty', 'w');
  } catch (e) {
    closeSync(inFd);
    return Promise.reject(new InputError(`cannot ask "${prompt.trim()}": ${(e as Error).message}`));
  }
  // Separate descriptors: each stream closes its own when destroyed.
  const input = new tty.ReadStream(inFd);
  const output = new tty.WriteStream(outFd);
  return new Promise<string>((resolve, reject) => {
    const chars: string[] = [];
    let finished = false;
    const finish = (error: Error | null) => {
      if (finished) return;
      finished = true;
      input.setRawMode(false);
      input.removeListener('data', onData);
      input.pause();
      input.destroy();
      output.end('\n', () => output.destroy());
      if (error) reject(error);
      else resolve(chars.join(''));
    };
    const onData = (data: Buffer) => {
      for (const ch of data.toString('utf8')) {
        if (ch === '\r' || ch === '\n') return finish(null);
        if (ch === '\u0003') {
          // Raw mode turned Ctrl-C into a character: give the terminal back, then interrupt as the key meant to.
          finish(new InputError('interrupted while asking for a secret'));
          process.kill(process.pid, 'SIGINT');
          return;
        }
        if (ch === '\u0004') {
          if (chars.length === 0) return finish(new InputError('no input while asking for a secret'));
          continue;
        }
        if (ch === '\u007f' || ch === '\b') chars.pop();
        else if (ch === '\u0015') chars.length = 0;
        else if (ch >= ' ') chars.push(ch);
      }
    };
    try {
      input.setRawMode(true);
    } catch (e) {
      finish(new InputError(`cannot ask "${prompt.trim()}": cannot turn off echo (${(e as Error).message})`));
      return;
    }
    output.write(prompt);
    input.on('data', onData);
    input.resume();
  });
}

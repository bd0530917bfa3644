import { randomBytes } from 'node:crypto';
import { quote } from './shell-quote.js';

/**
 * sudo with a password, driven by what sudo prints: the password goes on stdin only after sudo's prompt (a
 * random string) appears on stderr, and the script only after the shell under sudo announced itself with a
 * random marker. A second prompt means the password was wrong: stdin is closed so sudo gives up.
 */
export class SudoHandshake {
  readonly prompt = `[provision-sudo-${randomBytes(6).toString('hex')}]`;
  readonly marker = `provision-become-${randomBytes(6).toString('hex')}`;
  /** the shell under sudo has started and the script was sent */
  started = false;
  private prompts = 0;
  private held = '';

  constructor(
    private readonly password: string,
    private readonly script: Buffer,
  ) {}

  command(user: string): string {
    const announce = `printf '%s\\n' ${this.marker} >&2; exec sh -s`;
    return `sudo -S -p ${quote(this.prompt)} -u ${quote(user)} -- sh -c ${quote(announce)}`;
  }

  /** Feed stderr; returns what to pass on as stderr and what to send on stdin. */
  push(chunk: Buffer): { stderr: Buffer; send?: Buffer; end?: boolean } {
    if (this.started) return { stderr: chunk };
    this.held += chunk.toString('latin1');
    let send: Buffer | undefined;
    let end = false;
    for (;;) {
      const at = this.held.indexOf(this.prompt);
      if (at < 0) break;
      this.held = this.held.slice(0, at) + this.held.slice(at + this.prompt.length);
      this.prompts++;
      if (this.prompts === 1) send = Buffer.from(`${this.password}\n`);
      else end = true;
    }
    const m = this.held.indexOf(`${this.marker}\n`);
    if (m >= 0) {
      this.started = true;
      const before = this.held.slice(0, m);
      const after = this.held.slice(m + this.marker.length + 1);
      this.held = '';
      return { stderr: Buffer.from(before + after, 'latin1'), send: send ? Buffer.concat([send, this.script]) : this.script, end: true };
    }
    const result: { stderr: Buffer; send?: Buffer; end?: boolean } = { stderr: Buffer.alloc(0) };
    if (send) result.send = send;
    if (end) result.end = true;
    return result;
  }

  /** What is still held back when the channel closes (sudo's own messages). */
  flush(): Buffer {
    const rest = Buffer.from(this.held, 'latin1');
    this.held = '';
    return rest;
  }
}

/**
 * The one place where a value becomes a shell word. Every argument that reaches a remote or local shell goes
 * through `quote`; file content never does (it travels on stdin).
 */

const SAFE = /^[A-Za-z0-9_@%+=:,./-]+$/;

/** Quote one value as a single POSIX shell word. NUL cannot be passed to a program, so it is refused. */
export function quote(value: string | number): string {
  const s = String(value);
  if (s.includes('\0')) throw new Error('a NUL byte cannot be passed to a shell command');
  if (s === '') return "''";
  if (SAFE.test(s)) return s;
  // Inside single quotes nothing is special except the quote itself: close, emit an escaped quote, reopen.
  return `'${s.replace(/'/g, `'\\''`)}'`;
}

/** Quote each value and join them into one command line. */
export function quoteArgs(args: ReadonlyArray<string | number>): string {
  return args.map(quote).join(' ');
}

/**
 * A here-document that carries `content` literally, whatever bytes it holds: the body is base64, so no line can
 * be mistaken for the terminator and no byte is interpreted by the shell. `target` is a shell word (already quoted);
 * `rest` continues the command line (more redirections, `|| …`).
 */
export function heredocTo(target: string, content: Buffer | string, rest = ''): string {
  const b64 = Buffer.from(content).toString('base64').replace(/.{1,76}/g, '$&\n');
  return `base64 -d > ${target} <<'PROVISION_EOF'${rest ? ` ${rest}` : ''}\n${b64}PROVISION_EOF\n`;
}

/** `script` run in a subshell whose standard input is `content` (through a pipe: nothing is written to disk). */
export function pipedInto(content: Buffer | string, script: string): string {
  const b64 = Buffer.from(content).toString('base64').replace(/.{1,76}/g, '$&\n');
  return `base64 -d <<'PROVISION_EOF' | (\n${b64}PROVISION_EOF\n${script}\n)`;
}

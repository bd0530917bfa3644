import path from 'node:path';

/** A place in a source file, 1-based like editors show it. */
export interface SourcePos {
  /** file as given by the user (relative paths stay relative) */
  file: string;
  /** 1-based line */
  line: number;
  /** 1-based column */
  col: number;
}

export function formatPos(pos: SourcePos): string {
  return `${pos.file}:${pos.line}:${pos.col}`;
}

/**
 * Bad input from the user: a playbook, an inventory, a flag. The CLI prints `message` as one line and exits 1.
 * `message` is already complete: "smtps.yaml:14:9: task "open 465": iptables has no argument …".
 */
export class InputError extends Error {
  override name = 'InputError';
  constructor(
    message: string,
    /** where the mistake is, when there is a source */
    readonly pos?: SourcePos,
    /** the thing being read ("task \"open 465\"") */
    readonly where?: string,
  ) {
    super(InputError.compose(message, pos, where));
    this.reason = message;
  }

  /** The bare message, without position and context. */
  readonly reason: string;

  static compose(message: string, pos?: SourcePos, where?: string): string {
    let m = message;
    if (where) m = `${where}: ${m}`;
    if (pos) m = `${formatPos(pos)}: ${m}`;
    return m;
  }
}

/** Several input errors found in one pass (the CLI prints each on its own line). */
export class InputErrors extends Error {
  override name = 'InputErrors';
  constructor(readonly errors: InputError[]) {
    super(errors.map((e) => e.message).join('\n'));
  }
}

/** A remote (or local) command that did not do what was asked. Carries everything needed to say why. */
export class CommandError extends Error {
  override name = 'CommandError';
  constructor(
    /** inventory name of the host */
    readonly host: string,
    /** what was run, in words or as a command line (never secrets) */
    readonly command: string,
    /** exit status, or null when killed by a signal */
    readonly exitCode: number | null,
    readonly stdout: string,
    readonly stderr: string,
    message?: string,
  ) {
    super(message ?? CommandError.describe(command, exitCode, stderr, stdout));
  }

  static describe(command: string, exitCode: number | null, stderr: string, stdout: string): string {
    const out = (stderr.trim() || stdout.trim()).split('\n').slice(-3).join(' | ');
    const status = exitCode === null ? 'was killed' : `exited ${exitCode}`;
    return out ? `${command} ${status}: ${out}` : `${command} ${status}`;
  }
}

/** The host cannot be reached or the connection was lost: the host is reported `unreachable`. */
export class UnreachableError extends Error {
  override name = 'UnreachableError';
  constructor(
    readonly host: string,
    message: string,
  ) {
    super(message);
  }
}

/** Where a file given by the user should be shown relative to the working directory. */
export function displayPath(file: string): string {
  const rel = path.relative(process.cwd(), file);
  return rel && !rel.startsWith('..') && !path.isAbsolute(rel) ? rel : file;
}

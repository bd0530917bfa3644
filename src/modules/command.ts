/**
 * command and shell. Neither can know what running would change, so check mode skips them unless `creates` or
 * `removes` decides that nothing needs to run.
 */
import { pipedInto, quote, quoteArgs } from '../connection/shell-quote.js';
import { splitWords } from '../util/words.js';
import { hostPathProblem } from './file-common.js';
import { type ArgsOf, type Module, ModuleError, type Outcome, type Plan, type TaskContext } from './module.js';

export type CommandArgs = ArgsOf<ReturnType<typeof schema>>;

const schema = (freeText: string) => ({
  additionalProperties: false,
  properties: {
    cmd: { type: 'string', minLength: 1, description: freeText },
    argv: { type: 'array', minItems: 1, items: { type: 'string' }, description: 'The command as a list of words (nothing is interpreted).' },
    chdir: { type: 'string', minLength: 1, description: 'Directory to run in.' },
    creates: { type: 'string', minLength: 1, description: 'Skip running when this path exists.' },
    removes: { type: 'string', minLength: 1, description: 'Skip running when this path does not exist.' },
    stdin: { type: 'string', description: 'Text to send to the command on its standard input.' },
  },
}) as const;

async function planCommand(ctx: TaskContext, args: CommandArgs, describe: string): Promise<Plan> {
  if ((args.cmd === undefined) === (args.argv === undefined)) throw new ModuleError('give the command as a string (cmd) or a list (argv), not both');
  if (args.creates) {
    const st = await ctx.statFile(args.creates);
    if (st.exists) return { changed: false, msg: `${args.creates} exists` };
  }
  if (args.removes) {
    const st = await ctx.statFile(args.removes);
    if (!st.exists) return { changed: false, msg: `${args.removes} does not exist` };
  }
  const predictable = args.creates !== undefined || args.removes !== undefined;
  return {
    changed: true,
    msg: `run ${describe}`,
    files: [],
    commands: [],
    unpredictable: predictable ? undefined : `${describe.split(' ')[0]} has no creates/removes, so check mode cannot tell what it would change`,
  };
}

async function runCommand(ctx: TaskContext, args: CommandArgs, script: string, shown: string): Promise<Outcome> {
  const body = args.chdir ? `cd -- ${quote(args.chdir)} || exit 1\n${script}` : script;
  // stdin arrives through a pipe from a here-document: no temporary file on the host to leave behind when the
  // command is killed.
  const full = args.stdin !== undefined ? pipedInto(args.stdin.endsWith('\n') ? args.stdin : `${args.stdin}\n`, body) : body;
  const start = new Date();
  // Its exit status alone decides whether the task succeeds.
  const r = await ctx.run(full, { last: true });
  const end = new Date();
  const stdout = r.stdout.toString('utf8').replace(/\n$/, '');
  const stderr = r.stderr.toString('utf8').replace(/\n$/, '');
  const rc = r.code ?? -1;
  const data = {
    cmd: shown,
    rc,
    stdout,
    stderr,
    stdout_lines: stdout ? stdout.split('\n') : [],
    stderr_lines: stderr ? stderr.split('\n') : [],
    start: start.toISOString(),
    end: end.toISOString(),
    delta: `${((end.getTime() - start.getTime()) / 1000).toFixed(3)}s`,
  };
  if (rc !== 0) {
    const why = (stderr || stdout).split('\n').slice(-3).join(' | ');
    return { changed: true, failed: true, msg: `${shown.split(' ')[0]} exited ${r.code === null ? 'on a signal' : rc}${why ? `: ${why}` : ''}`, data };
  }
  return { changed: true, msg: stdout.split('\n').slice(-1)[0] || `ran ${shown}`, data };
}

/** chdir, creates and removes are paths on the host: absolute (so never read as an option of `cd`). */
function pathsProblem(args: CommandArgs): string | null {
  return hostPathProblem('chdir', args.chdir) ?? hostPathProblem('creates', args.creates) ?? hostPathProblem('removes', args.removes);
}

export const commandModule: Module<CommandArgs> = {
  name: 'command',
  description: 'Run a program with arguments (no shell: pipes, redirections and $VARS are not interpreted).',
  schema: schema('The command line; words are split like a shell would, nothing is expanded.'),
  freeForm: 'cmd',
  check: pathsProblem,
  reads: (args) => ({ stats: [args.creates, args.removes].filter((p): p is string => !!p) }),
  plan: (ctx, args) => planCommand(ctx, args, args.cmd ?? quoteArgs(args.argv ?? [])),
  apply(ctx, _plan, args) {
    let words: string[];
    try {
      words = args.argv ?? splitWords(args.cmd!);
    } catch (e) {
      throw new ModuleError((e as Error).message);
    }
    if (words.length === 0) throw new ModuleError('empty command');
    return runCommand(ctx, args, `exec ${quoteArgs(words)}`, args.cmd ?? quoteArgs(words));
  },
};

export const shellModule: Module<CommandArgs> = {
  name: 'shell',
  description: 'Run a command line through /bin/sh on the host (pipes, redirections and variables work).',
  schema: schema('The shell command line, run by /bin/sh.'),
  freeForm: 'cmd',
  check: pathsProblem,
  reads: (args) => ({ stats: [args.creates, args.removes].filter((p): p is string => !!p) }),
  plan: (ctx, args) => planCommand(ctx, args, args.cmd ?? quoteArgs(args.argv ?? [])),
  apply(ctx, _plan, args) {
    const line = args.cmd ?? quoteArgs(args.argv ?? []);
    return runCommand(ctx, args, `/bin/sh -c ${quote(line)}`, line);
  },
};

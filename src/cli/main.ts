/**
 * The command line: flags to options, options to library calls, a RunReport to an exit code. This is the only
 * layer that prints usage, picks a reporter, or decides the exit status; errors are caught here, once.
 */
import { Command, CommanderError, Option } from 'commander';
import { CommandError, InputError, InputErrors, UnreachableError } from '../errors.js';
import { displaySafe } from '../report/display-safe.js';
import { ExitCode } from '../runner/results.js';
import type { CliIO, RunFlags } from './shared.js';
import { readVersion } from './version.js';

/** The commands and everything they pull in (ajv, ssh2, reporters) load only when a command runs, not for --version or --help. */
const commands = () => import('./commands.js');
/** validate, inventory and schema read files only: they load no SSH, reporters or runner. */
const inspect = () => import('./inspect.js');

const collect = (value: string, previous: string[] = []) => [...previous, value];
const commaList = (value: string, previous: string[] = []) => [...previous, ...value.split(',').map((s) => s.trim()).filter(Boolean)];
const positiveInt = (name: string) => (value: string) => {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1) throw new InputError(`${name} must be a whole number of at least 1, got "${value}"`);
  return n;
};
const nonNegativeInt = (name: string) => (value: string) => {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 0) throw new InputError(`${name} must be a whole number, got "${value}"`);
  return n;
};

function runOptions(cmd: Command, check: boolean): Command {
  cmd
    .requiredOption('-i, --inventory <path>', 'inventory file, directory, or comma-separated host list (repeatable)', collect)
    .option('-l, --limit <pattern>', 'further limit the hosts (pattern, or @file with one host per line)')
    .option('-f, --forks <n>', 'hosts to work on in parallel', positiveInt('--forks'), 50)
    .option('-e, --extra-vars <vars>', 'variables as key=value pairs, YAML/JSON, or @file.yaml (repeatable; highest precedence)', collect)
    .option('-t, --tags <tags>', 'only run tasks with these tags (comma-separated, repeatable)', commaList)
    .option('--skip-tags <tags>', 'skip tasks with these tags (comma-separated, repeatable)', commaList)
    .option('-D, --diff', 'show the diff of every file change')
    .option('-u, --user <user>', 'remote user when the inventory does not set one')
    .option('--private-key <file>', 'private key file when the inventory does not set one')
    .option('-k, --ask-pass', 'ask for the SSH password (once per run)')
    .option('-b, --become', 'run every task through sudo')
    .option('--become-user <user>', 'user to become (default root)')
    .option('-K, --ask-become-pass', 'ask for the sudo password (once per run)')
    .option('--ssh-config <file>', 'OpenSSH client config (default ~/.ssh/config when present)')
    .addOption(new Option('--host-key-checking <mode>', 'host key policy, overrides ssh_config').choices(['yes', 'accept-new', 'no']))
    .option('-T, --timeout <seconds>', 'SSH connect timeout', positiveInt('--timeout'))
    .option('--canary <n>', 'run the first N hosts of each play as a batch of their own and stop unless all succeed', nonNegativeInt('--canary'), 0)
    .option('--lock-timeout <seconds>', 'wait this long for another run to release a host (0: do not lock)', nonNegativeInt('--lock-timeout'), 60)
    .option('--retry-file <path>', 'where to list failed and unreachable hosts (default: PLAYBOOK.retry beside the playbook)')
    .option('--no-retry-file', 'do not write a retry file')
    .option('--json', 'print one JSON object per event (the last line is the recap)')
    .option('-v, --verbose', 'plain output: also print ok and skipped results')
    .option('--roles-path <paths>', 'also look for roles here (colon-separated, repeatable; before ANSIBLE_ROLES_PATH)', collect)
    .option('--vault-password-file <file>', 'vault password file, or an executable that prints it (repeatable)', collect)
    .option('--ask-vault-pass', 'ask for the vault password')
    .option('--vault-id <[label@]source>', 'a vault id and its password source: a file, an executable, or prompt (repeatable)', collect)
    .option('--debug', 'print stack traces of unexpected errors');
  if (!check) cmd.option('-C, --check', 'plan only: show what would change, change nothing (exit 8 when changes are pending)');
  return cmd;
}

export function buildProgram(io: CliIO): { program: Command; result: { code: number } } {
  const result = { code: 0 };
  const program = new Command('provision')
    .description('Agentless provisioning over SSH: idempotent edits of Postfix, iptables and files, with diffs, check mode and safe rollouts.')
    .version(io.version, '-V, --version')
    .showHelpAfterError('(add --help for usage)')
    .configureOutput({ writeOut: (s) => io.out(s), writeErr: (s) => io.err(s) })
    .exitOverride();

  runOptions(program.command('run').argument('<playbook>', 'playbook YAML file').description('apply a playbook to the hosts it targets'), false).action(
    async (playbook: string, flags: RunFlags) => {
      result.code = await (await commands()).commandRun(playbook, flags, io);
    },
  );
  runOptions(program.command('check').argument('<playbook>', 'playbook YAML file').description('show what a run would change, with diffs; nothing on any host changes'), true).action(
    async (playbook: string, flags: RunFlags) => {
      result.code = await (await commands()).commandCheck(playbook, flags, io);
    },
  );
  program
    .command('validate')
    .argument('<playbook>', 'playbook YAML file')
    .description('check a playbook (and inventory) without connecting to any host')
    .option('-i, --inventory <path>', 'also load this inventory and resolve every play\'s hosts (repeatable)', collect)
    .option('-l, --limit <pattern>', 'further limit the hosts')
    .option('-e, --extra-vars <vars>', 'variables (as for run)', collect)
    .option('--roles-path <paths>', 'also look for roles here (as for run)', collect)
    .option('--vault-password-file <file>', 'vault password file, or an executable that prints it (repeatable)', collect)
    .option('--ask-vault-pass', 'ask for the vault password')
    .option('--vault-id <[label@]source>', 'a vault id and its password source: a file, an executable, or prompt (repeatable)', collect)
    .option('--debug', 'print stack traces of unexpected errors')
    .action(async (playbook: string, flags: { inventory?: string[]; limit?: string; extraVars?: string[]; rolesPath?: string[]; vaultPasswordFile?: string[]; askVaultPass?: boolean; vaultId?: string[] }) => {
      result.code = await (await inspect()).commandValidate(playbook, flags, io);
    });
  program
    .command('inventory')
    .description('show an inventory: hosts, groups and merged variables')
    .requiredOption('-i, --inventory <path>', 'inventory file, directory, or comma-separated host list (repeatable)', collect)
    .option('--list', 'everything as JSON (Ansible\'s --list shape)')
    .option('--graph [pattern]', 'the group tree')
    .option('--host <name>', 'the merged variables of one host, as JSON')
    .option('--vault-password-file <file>', 'vault password file, or an executable that prints it (repeatable)', collect)
    .option('--ask-vault-pass', 'ask for the vault password')
    .option('--vault-id <[label@]source>', 'a vault id and its password source: a file, an executable, or prompt (repeatable)', collect)
    .option('--debug', 'print stack traces of unexpected errors')
    .action(async (flags: { inventory: string[]; list?: boolean; graph?: string | boolean; host?: string; vaultPasswordFile?: string[]; askVaultPass?: boolean; vaultId?: string[] }) => {
      result.code = await (await inspect()).commandInventory(flags, io);
    });
  program
    .command('schema')
    .description('print the JSON Schema of playbooks (for editors: see README)')
    .action(async () => {
      result.code = await (await inspect()).commandSchema(io);
    });
  return { program, result };
}

/** Run the CLI; resolves to the exit code. Never throws. */
export async function main(argv: string[], io: CliIO = defaultIO()): Promise<number> {
  const debug = argv.includes('--debug');
  const { program, result } = buildProgram(io);
  try {
    await program.parseAsync(argv);
    return result.code;
  } catch (e) {
    return report(e, io, debug);
  }
}

function report(e: unknown, io: CliIO, debug: boolean): number {
  if (e instanceof CommanderError) {
    // Help and version exit 0; usage mistakes were already printed by commander.
    return e.exitCode === 0 ? 0 : ExitCode.input;
  }
  if (e instanceof InputErrors) {
    for (const err of e.errors) io.err(`error: ${err.message}\n`);
    if (e.errors.length >= 50) io.err('error: (more errors not shown)\n');
    return ExitCode.input;
  }
  if (e instanceof InputError) {
    io.err(`error: ${e.message}\n`);
    if (debug && e.stack) io.err(`${e.stack}\n`);
    return ExitCode.input;
  }
  // A host's error text can carry terminal control sequences: shown escaped.
  if (e instanceof UnreachableError) {
    io.err(`error: ${e.host}: ${displaySafe(e.message)}\n`);
    return ExitCode.unreachable;
  }
  if (e instanceof CommandError) {
    io.err(`error: ${e.host}: ${displaySafe(e.message)}\n`);
    return ExitCode.failed;
  }
  const err = e instanceof Error ? e : new Error(String(e));
  io.err(`error: ${displaySafe(err.message)}${debug ? '' : ' (run with --debug for the stack trace)'}\n`);
  if (debug && err.stack) io.err(`${err.stack}\n`);
  return ExitCode.input;
}

/** The process's own terminal wiring: stdout and stderr, their TTY-ness, and Ctrl-C (SIGINT) as the graceful stop. */
export function defaultIO(): CliIO {
  return {
    out: (s) => process.stdout.write(s),
    err: (s) => process.stderr.write(s),
    isTTY: process.stdout.isTTY === true,
    stdinIsTTY: process.stdin.isTTY === true,
    version: readVersion(),
    onInterrupt: (fn) => {
      const handler = () => fn();
      process.on('SIGINT', handler);
      return () => process.off('SIGINT', handler);
    },
  };
}

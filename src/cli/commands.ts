/** `run` and `check`: each command as a function of its flags that returns an exit code; main.ts wires flags to these. */
import type { Connection } from '../connection/connection.js';
import { LocalConnection } from '../connection/local.js';
import { createSecrets } from '../connection/secrets.js';
import { createSshRunState, SshConnection } from '../connection/ssh.js';
import { defaultSshConfigPath, loadSshConfig } from '../connection/ssh-config.js';
import { resolveSshTarget } from '../connection/ssh-target.js';
import { InputError } from '../errors.js';
import { loadInventory } from '../inventory/load.js';
import { loadPlaybook } from '../playbook/validate.js';
import { JsonReporter } from '../report/json.js';
import { ListrReporter } from '../report/listr.js';
import { PlainReporter, type Reporter } from '../report/plain.js';
import { runPlaybook } from '../runner/run.js';
import { cacheDir } from '../util/cache-dir.js';
import { type CliIO, parseExtraVars, type RunFlags, warnUnmatched } from './shared.js';
import { setupVault } from './vault-secrets.js';

export type { CliIO, RunFlags } from './shared.js';
export { parseExtraVars } from './shared.js';

function pickReporter(flags: RunFlags, io: CliIO): Reporter {
  if (flags.json) return new JsonReporter(io.out);
  if (io.isTTY) return new ListrReporter(io.out, true);
  return new PlainReporter(io.out, false, flags.verbose === true);
}

export async function commandRun(playbookFile: string, flags: RunFlags, io: CliIO): Promise<number> {
  await setupVault(flags, io.stdinIsTTY);
  const extraVars = parseExtraVars(flags.extraVars ?? []);
  const playbook = loadPlaybook(playbookFile, { rolesPath: flags.rolesPath, extraVars });
  const inventory = loadInventory(flags.inventory);
  for (const w of inventory.warnings ?? []) io.err(`warning: ${w}\n`);
  warnUnmatched(inventory, playbook, flags.limit, io);
  const sshConfigFile = flags.sshConfig ?? defaultSshConfigPath();
  const sshConfig = sshConfigFile ? loadSshConfig(sshConfigFile) : null;
  const secrets = createSecrets({ interactive: io.stdinIsTTY, askPass: flags.askPass, askBecomePass: flags.askBecomePass });
  // Asked before anything runs, once: fifty hosts must not each prompt.
  const becomePassword = flags.askBecomePass ? await secrets.password('become') : undefined;
  // A warning about a host outside any task (a changed host key let through) goes to the run's reporter.
  const sshState = createSshRunState(secrets, { warn: (host, msg) => reporter.handle({ type: 'warning', host, msg }) });
  const cli = { user: flags.user, privateKey: flags.privateKey, hostKeyChecking: flags.hostKeyChecking, timeoutS: flags.timeout };

  const connectionFor = (host: string, vars: Record<string, unknown>): Connection => {
    const kind = vars.ansible_connection ?? 'ssh';
    if (kind === 'local') return new LocalConnection(host);
    if (kind !== 'ssh' && kind !== 'paramiko' && kind !== 'smart') {
      throw new InputError(`host "${host}": ansible_connection "${String(kind)}" is not supported (use ssh or local)`);
    }
    return new SshConnection(resolveSshTarget(host, vars, cli, sshConfig), sshState);
  };

  const reporter = pickReporter(flags, io);
  let interrupted = false;
  const stopListening = io.onInterrupt(() => {
    if (interrupted) {
      io.err('\nprovision: interrupted twice, exiting now\n');
      process.exit(130);
    }
    interrupted = true;
    io.err('\nprovision: stopping: no new tasks will start; tasks in flight finish (Ctrl-C again to quit now)\n');
  });
  try {
    const report = await runPlaybook({
      playbook,
      inventory,
      check: flags.check === true,
      diff: flags.diff === true,
      limit: flags.limit,
      forks: flags.forks,
      extraVars,
      tags: flags.tags ?? [],
      skipTags: flags.skipTags ?? [],
      become: flags.become === true,
      becomeUser: flags.becomeUser,
      becomePassword,
      canary: flags.canary,
      lockTimeoutS: flags.lockTimeout,
      retryFile: flags.retryFile === false ? null : flags.retryFile,
      cacheDir: cacheDir(),
      connectionFor,
      emit: (e) => reporter.handle(e),
      interrupted: () => interrupted,
    });
    return report.exitCode;
  } finally {
    // Also after an error: a terminal view left running would keep the process alive.
    await reporter.finish();
    stopListening();
  }
}

export function commandCheck(playbookFile: string, flags: RunFlags, io: CliIO): Promise<number> {
  return commandRun(playbookFile, { ...flags, check: true, diff: true }, io);
}


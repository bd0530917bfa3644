/** Run the provision CLI in-process, capturing what it prints, as a user would see it through a pipe. */
import { main } from '../../src/cli/main.js';
import type { RunEvent } from '../../src/report/events.js';
import type { LabState } from '../lab/lab.js';

export interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
  /** parsed lines of stdout when --json was given */
  events: RunEvent[];
}

export async function runCli(args: string[], opts: { tty?: boolean } = {}): Promise<CliResult> {
  let stdout = '';
  let stderr = '';
  const code = await main(['node', 'provision', ...args], {
    out: (s) => {
      stdout += s;
    },
    err: (s) => {
      stderr += s;
    },
    isTTY: opts.tty === true,
    stdinIsTTY: false,
    version: 'test',
    onInterrupt: () => () => undefined,
  });
  const events = args.includes('--json')
    ? stdout
        .split('\n')
        .filter((l) => l.startsWith('{'))
        .map((l) => JSON.parse(l) as RunEvent)
    : [];
  return { code, stdout, stderr, events };
}

/** The flags that point provision at a lab: its inventory and ssh_config. */
export function labArgs(lab: LabState): string[] {
  return ['-i', lab.inventory, '--ssh-config', lab.sshConfig];
}

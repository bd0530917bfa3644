/** Run a playbook in-process against local connections (one per inventory host), collecting events. */
import path from 'node:path';
import type { Connection } from '../../src/connection/connection.js';
import { LocalConnection } from '../../src/connection/local.js';
import { UnreachableError } from '../../src/errors.js';
import { parseInventoryText } from '../../src/inventory/load.js';
import { loadPlaybook } from '../../src/playbook/validate.js';
import type { RunEvent, TaskResultEvent } from '../../src/report/events.js';
import { type RunOptions, type RunReport, runPlaybook } from '../../src/runner/run.js';
import { writeFiles } from './tmp.js';

/** A connection that cannot be opened. */
export class DeadConnection implements Connection {
  execs = 0;
  steps = 0;
  constructor(readonly host: string) {}
  async connect(): Promise<void> {
    throw new UnreachableError(this.host, 'connect ETIMEDOUT (test)');
  }
  async exec(): Promise<never> {
    throw new UnreachableError(this.host, 'not connected');
  }
  async hold(): Promise<never> {
    throw new UnreachableError(this.host, 'not connected');
  }
  async probeNew(): Promise<void> {
    throw new UnreachableError(this.host, 'not connected');
  }
  async close(): Promise<void> {}
}

export interface LocalRun {
  report: RunReport;
  events: RunEvent[];
  results: TaskResultEvent[];
}

let counter = 0;

export async function runLocal(
  dir: string,
  playbook: string,
  inventory: string,
  opts: Partial<RunOptions> & { dead?: string[]; file?: string } = {},
): Promise<LocalRun> {
  const n = counter++;
  const pbFile = writeFiles(dir, { [opts.file ?? `play${n}.yaml`]: playbook });
  const events: RunEvent[] = [];
  const report = await runPlaybook({
    playbook: loadPlaybook(pbFile),
    inventory: parseInventoryText(inventory, path.join(dir, `hosts${n}`), 'ini'),
    check: false,
    diff: false,
    forks: 10,
    extraVars: {},
    tags: [],
    skipTags: [],
    become: false,
    canary: 0,
    retryFile: null,
    connectionFor: (host) => (opts.dead?.includes(host) ? new DeadConnection(host) : new LocalConnection(host)),
    emit: (e) => events.push(e),
    ...opts,
  });
  return { report, events, results: events.filter((e): e is TaskResultEvent => e.type === 'task_result') };
}

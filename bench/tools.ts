/**
 * The measured tools as command lines, and how each one's output tells whether the run did its job and how many
 * remote execs each host saw.
 */
import { fileURLToPath } from 'node:url';
import type { LabState } from '../test/lab/lab.js';
import { parseFloorOutput } from './floor-plan.js';

export type Tool = 'floor' | 'provision' | 'ansible';
export type RunKind = 'first' | 'second' | 'check';

export const TOOLS: readonly Tool[] = ['floor', 'provision', 'ansible'];
export const RUNS: readonly RunKind[] = ['first', 'second', 'check'];

export const RUN_LABEL: Readonly<Record<RunKind, string>> = {
  first: 'first run',
  second: 'no-change run',
  check: 'check',
};

const here = (p: string) => fileURLToPath(new URL(p, import.meta.url));
export const REPO = here('..');
export const FLOOR_SCRIPT = here('./floor.sh');
export const ANSIBLE_CFG = here('./ansible/ansible.cfg');
export const SSH_COUNTER = here('./ansible/ssh-count');
const PROVISION_BIN = here('../bin/provision.js');

export interface ToolCommand {
  command: string[];
  env: NodeJS.ProcessEnv;
}

export interface RunOutcome {
  /** the run did what it should: converged (first, second) or found nothing pending (check) */
  ok: boolean;
  /** why not, in a few words */
  problem?: string;
  /** remote execs by host */
  execs: Map<string, number>;
  /** steps by host, when the tool reports them apart from execs (provision's recap `steps`), else null */
  steps: Map<string, number> | null;
}

/** provision's command line for a run; `cacheDir` becomes its controller cache (PROVISION_CACHE_DIR). */
export function provisionCommand(lab: LabState, playbook: string, run: RunKind, forks: number, cacheDir: string): ToolCommand {
  const verb = run === 'check' ? 'check' : 'run';
  return {
    command: [process.execPath, PROVISION_BIN, verb, playbook, '-i', lab.inventory, '--ssh-config', lab.sshConfig, '--forks', String(forks), '--json', '--no-retry-file'],
    env: { ...process.env, NO_COLOR: '1', PROVISION_CACHE_DIR: cacheDir },
  };
}

interface Recap {
  type: 'recap';
  exit_code: number;
  hosts: Record<string, { changed: number; failed: number; unreachable: number; execs: number; steps?: number }>;
}

/** provision --json: the last line is the recap with every host's counters and execs. */
export function provisionOutcome(stdout: string, exitCode: number | null, run: RunKind, hosts: number): RunOutcome {
  const last = stdout.trim().split('\n').at(-1) ?? '';
  let recap: Recap | null = null;
  try {
    const parsed = JSON.parse(last) as { type?: string };
    if (parsed.type === 'recap') recap = parsed as Recap;
  } catch {
    recap = null;
  }
  if (!recap) return { ok: false, problem: `no recap (exit ${exitCode ?? 'killed'})`, execs: new Map(), steps: null };
  const entries = Object.entries(recap.hosts);
  const execs = new Map(entries.map(([h, c]) => [h, c.execs]));
  // Steps are shown only when every host's counter has them: a recap without them has no separate steps.
  const steps = entries.length > 0 && entries.every(([, c]) => typeof c.steps === 'number') ? new Map(entries.map(([h, c]) => [h, c.steps!])) : null;
  const counters = Object.values(recap.hosts);
  const failed = counters.filter((c) => c.failed > 0 || c.unreachable > 0).length;
  const changed = counters.filter((c) => c.changed > 0).length;
  if (exitCode !== 0) return { ok: false, problem: `exit ${exitCode ?? 'killed'}, ${failed} host(s) failed or unreachable`, execs, steps };
  if (counters.length !== hosts) return { ok: false, problem: `recap names ${counters.length} of ${hosts} hosts`, execs, steps };
  if (run === 'first' && changed !== hosts) return { ok: false, problem: `only ${changed} of ${hosts} hosts changed`, execs, steps };
  if (run !== 'first' && changed > 0) return { ok: false, problem: `${changed} host(s) changed on a run that should change nothing`, execs, steps };
  return { ok: true, execs, steps };
}

export function floorCommand(lab: LabState, planDir: string, run: RunKind, forks: number): ToolCommand {
  return {
    command: ['/bin/bash', FLOOR_SCRIPT, run === 'check' ? 'check' : 'run', lab.sshConfig, planDir, String(forks), ...lab.hosts.map((h) => h.short)],
    env: { ...process.env },
  };
}

/** floor.sh: a status line per host; execs counted by the script itself. */
export function floorOutcome(stdout: string, exitCode: number | null, run: RunKind, lab: LabState): RunOutcome {
  const res = parseFloorOutput(stdout);
  const execs = new Map([...res].map(([short, r]) => [lab.hosts.find((h) => h.short === short)?.name ?? short, r.execs]));
  const want = run === 'first' ? 'changed' : 'ok';
  const wrong = [...res.values()].filter((r) => r.status !== want).length;
  const steps = null;
  if (exitCode !== 0) return { ok: false, problem: `exit ${exitCode ?? 'killed'}`, execs, steps };
  if (res.size !== lab.hosts.length) return { ok: false, problem: `status of ${res.size} of ${lab.hosts.length} hosts`, execs, steps };
  if (wrong) return { ok: false, problem: `${wrong} host(s) not ${want}`, execs, steps };
  return { ok: true, execs, steps };
}

export function ansibleCommand(lab: LabState, playbook: string, run: RunKind, forks: number, controlDir: string, sshLog: string): ToolCommand {
  const extra = {
    ansible_ssh_common_args: `-F ${lab.sshConfig}`,
    ansible_control_path_dir: controlDir,
    ansible_ssh_executable: SSH_COUNTER,
  };
  return {
    command: ['ansible-playbook', '-i', lab.inventory, playbook, '-f', String(forks), '-e', JSON.stringify(extra), ...(run === 'check' ? ['--check', '--diff'] : [])],
    env: { ...process.env, ANSIBLE_CONFIG: ANSIBLE_CFG, ANSIBLE_NOCOLOR: '1', ANSIBLE_FORCE_COLOR: '0', PROVISION_BENCH_SSH_LOG: sshLog },
  };
}

/** The PLAY RECAP lines of ansible-playbook: host → counters. */
export function parseAnsibleRecap(stdout: string): Map<string, Record<string, number>> {
  const out = new Map<string, Record<string, number>>();
  const at = stdout.lastIndexOf('PLAY RECAP');
  if (at < 0) return out;
  for (const line of stdout.slice(at).split('\n').slice(1)) {
    const m = /^(\S+)\s+:\s+(.*)$/.exec(line.trim());
    if (!m) continue;
    const counters: Record<string, number> = {};
    for (const kv of m[2]!.trim().split(/\s+/)) {
      const [k, v] = kv.split('=');
      if (k && v !== undefined) counters[k] = Number(v);
    }
    out.set(m[1]!, counters);
  }
  return out;
}

/** Ansible's remote execs per host: the ssh invocations the counting wrapper logged, by the host's address. */
export function countSshInvocations(log: string, lab: LabState): Map<string, number> {
  const byIp = new Map(lab.hosts.map((h) => [h.ip, h.name]));
  const counts = new Map(lab.hosts.map((h) => [h.name, 0]));
  for (const line of log.split('\n')) {
    if (!line || / -O \w+/.test(` ${line}`)) continue;
    const host = line
      .split(' ')
      .map((w) => byIp.get(w))
      .find((n) => n !== undefined);
    if (host) counts.set(host, counts.get(host)! + 1);
  }
  return counts;
}

export function ansibleOutcome(stdout: string, exitCode: number | null, run: RunKind, lab: LabState, sshLog: string): RunOutcome {
  const execs = countSshInvocations(sshLog, lab);
  const recap = parseAnsibleRecap(stdout);
  const steps = null;
  if (exitCode !== 0) return { ok: false, problem: `exit ${exitCode ?? 'killed'}`, execs, steps };
  if (recap.size !== lab.hosts.length) return { ok: false, problem: `recap names ${recap.size} of ${lab.hosts.length} hosts`, execs, steps };
  const changed = [...recap.values()].filter((c) => (c.changed ?? 0) > 0).length;
  if (run === 'first' && changed !== lab.hosts.length) return { ok: false, problem: `only ${changed} of ${lab.hosts.length} hosts changed`, execs, steps };
  if (run !== 'first' && changed > 0) return { ok: false, problem: `${changed} host(s) changed on a run that should change nothing`, execs, steps };
  return { ok: true, execs, steps };
}

/**
 * `npm run bench -- --hosts 50` and `npm run bench -- --scale`: the fleet benchmark.
 *
 * For each host shape (bench/shapes.ts: the default login, and a login that costs CPU on every exec, each on a
 * lab of its own) and each tool (provision, the raw-OpenSSH floor, Ansible), starting from freshly reset lab
 * hosts, time three runs of the same job: the first run (changes and restarts), a second run (nothing to change)
 * and a check run. Each run is a child process measured from outside (bench/measure.ts). Lab start-up and resets
 * are not timed. Prints a table and the targets of the issue, and writes the same as JSON to
 * bench/results/<timestamp>.json.
 */
import { mkdirSync, mkdtempSync, readFileSync, rmdirSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { join } from 'node:path';
import { Command, InvalidArgumentError } from 'commander';
import { $ } from 'zx/core';
import { labDown, labExec, labExists, labReset, labUp, readLabState, type LabHost, type LabState } from '../test/lab/lab.js';
import { isRoot, pool, sleep } from '../test/lab/lab-system.js';
import { readScript, writeFloorPlan } from './floor-plan.js';
import { type Job, SCALE_JOB, SMTPS_JOB } from './jobs.js';
import { findCgroup2Root, measure } from './measure.js';
import { cpuSince, machineBusy, machineCpu, snapshot } from './remote-cpu.js';
import { execStats, ratios, renderTable, type RunRecord, targets } from './report.js';
import { labNameFor, labOptionsFor, LOGIN_TICKS_COMMAND, loginCostProblem, parseShapes, type Shape, SHAPE_LABEL, shapeOfLab } from './shapes.js';
import {
  ansibleCommand,
  ansibleOutcome,
  floorCommand,
  floorOutcome,
  provisionCommand,
  provisionOutcome,
  REPO,
  RUN_LABEL,
  RUNS,
  type RunKind,
  type RunOutcome,
  type Tool,
  type ToolCommand,
} from './tools.js';
import { hostsWithoutSmtps } from './verify.js';

interface Options {
  hosts: number;
  scale: boolean;
  forks: number;
  tools: Tool[];
  shapes: Shape[];
  /** the default shape's lab; the costly shape's is named after it (labNameFor) */
  lab: string;
  keepLab: boolean;
  build: boolean;
}

/**
 * A pause before each run, so one run's tail (closing connections, daemons settling) is not timed in the next;
 * how busy the machine is during it is recorded with the run.
 */
const SETTLE_MS = 2_000;

const log = (msg: string) => process.stderr.write(`bench: ${msg}\n`);

function positiveInt(v: string): number {
  if (!/^\d+$/.test(v) || Number(v) < 1) throw new InvalidArgumentError('must be a positive integer');
  return Number(v);
}

function toolList(v: string): Tool[] {
  const list = v.split(',').map((s) => s.trim());
  for (const t of list) if (t !== 'floor' && t !== 'provision' && t !== 'ansible') throw new InvalidArgumentError(`"${t}" is not a tool (floor, provision, ansible)`);
  return list as Tool[];
}

function shapeList(v: string): Shape[] {
  try {
    return parseShapes(v);
  } catch (e) {
    throw new InvalidArgumentError((e as Error).message);
  }
}

function parseOptions(argv: string[]): Options {
  const program = new Command('bench')
    .description('time provision against the raw-OpenSSH floor and Ansible on lab hosts (needs root)')
    .option('--hosts <n>', 'lab hosts (default 50, or 500 with --scale)', positiveInt)
    .option('--scale', 'sshd-only hosts and a file-editing playbook, floor and provision only (default 500 hosts)')
    .option('--forks <n>', 'hosts worked on in parallel, the same for every tool', positiveInt, 50)
    .option('--tools <list>', 'tools to measure (default floor,provision,ansible; floor,provision with --scale)', toolList)
    .option('--shapes <list>', 'host shapes: default (distribution login), costly (~150 ms of CPU per exec at login) (default default,costly)', shapeList)
    .option('--lab <name>', 'lab name (default bench, or bench-scale with --scale); the costly shape uses NAME-costly')
    .option('--keep-lab', 'leave the lab up afterwards (a lab of the same size, mode and shape that is already up is always reused)')
    .option('--no-build', 'do not compile provision first (bin/provision.js runs dist/)')
    .parse(argv);
  const o = program.opts<{ hosts?: number; scale?: boolean; forks: number; tools?: Tool[]; shapes?: Shape[]; lab?: string; keepLab?: boolean; build: boolean }>();
  const scale = o.scale === true;
  return {
    hosts: o.hosts ?? (scale ? 500 : 50),
    scale,
    forks: o.forks,
    tools: o.tools ?? (scale ? ['floor', 'provision'] : ['floor', 'provision', 'ansible']),
    shapes: o.shapes ?? ['default', 'costly'],
    lab: o.lab ?? (scale ? 'bench-scale' : 'bench'),
    keepLab: o.keepLab === true,
    build: o.build,
  };
}

/** Commands whose failure is a result: quiet, never thrown. */
const $q = $({ nothrow: true, quiet: true });

async function firstLine(cmd: string, args: string[]): Promise<string | null> {
  const r = await $q`${cmd} ${args}`;
  if (r.exitCode !== 0) return null;
  return `${r.stdout}${r.stderr}`.trim().split('\n')[0] ?? null;
}

/** The machine the figures come from; `ansible` is ansible-playbook's version line, null when it is not installed. */
async function machine(ansible: string | null) {
  const cpus = os.cpus();
  return {
    cores: cpus.length,
    cpu: cpus[0]?.model ?? 'unknown',
    memoryGiB: Number((os.totalmem() / 2 ** 30).toFixed(1)),
    kernel: `${os.type()} ${os.release()}`,
    node: process.version,
    openssh: await firstLine('ssh', ['-V']),
    ansible,
  };
}

/** A cgroup v2 hierarchy where this process may make a group of its own, or null. */
function usableCgroupRoot(): string | null {
  const root = findCgroup2Root();
  if (!root) return null;
  const probe = join(root, `provision-bench-probe-${process.pid}`);
  try {
    mkdirSync(probe);
  } catch {
    return null;
  }
  rmdirSync(probe);
  return root;
}

/** The lab for the job and shape: reused when one of the same size, mode and shape is up, made otherwise. `made` says who tears it down. */
async function openLab(o: Options, job: Job, shape: Shape): Promise<{ lab: LabState; made: boolean; upSeconds: number | null }> {
  const name = labNameFor(o.lab, shape);
  const what = `${o.hosts} ${job.labMode} hosts with the ${SHAPE_LABEL[shape]}`;
  const existing = readLabState(name);
  if (existing) {
    if (existing.hosts.length !== o.hosts || existing.mode !== job.labMode || shapeOfLab(existing) !== shape) {
      const has = `${existing.hosts.length} ${existing.mode} hosts with the ${SHAPE_LABEL[shapeOfLab(existing)]}`;
      throw new Error(`lab "${name}" is up with ${has}, not ${what}: run \`npm run lab -- down --name ${name}\` or pass --lab`);
    }
    log(`reusing lab "${name}" (${what})`);
    return { lab: existing, made: false, upSeconds: null };
  }
  if (labExists(name)) throw new Error(`lab "${name}" is half made or being made: run \`npm run lab -- down --name ${name}\``);
  log(`bringing up lab "${name}": ${what} (not timed)`);
  const started = Date.now();
  const lab = await labUp({ name, hosts: o.hosts, mode: job.labMode, ...labOptionsFor(shape), log: (m) => log(`lab: ${m}`) });
  const upSeconds = (Date.now() - started) / 1000;
  log(`lab up in ${upSeconds.toFixed(1)} s`);
  return { lab, made: true, upSeconds };
}

/** One SSH command to the first host proves what a login costs there, so figures never carry the wrong shape's name. */
async function checkShape(lab: LabState, shape: Shape): Promise<number> {
  const h = lab.hosts[0]!;
  const r = await $q({ timeout: 60_000 })`ssh -F ${lab.sshConfig} -o BatchMode=yes ${h.short} ${LOGIN_TICKS_COMMAND}`;
  const problem = r.exitCode === 0 ? loginCostProblem(shape, r.stdout) : `ssh exited ${r.exitCode ?? 'killed'}: ${r.stderr.trim()}`;
  if (problem) throw new Error(`lab "${lab.name}", ${h.name} (${SHAPE_LABEL[shape]}): ${problem}`);
  const ms = Number(r.stdout.trim()) * 10;
  log(`${SHAPE_LABEL[shape]}: a login's shell spends ${ms} ms of CPU on ${h.name}`);
  return ms;
}

async function resetLab(lab: LabState): Promise<void> {
  const started = Date.now();
  await labReset(lab);
  log(`reset ${lab.hosts.length} hosts in ${((Date.now() - started) / 1000).toFixed(1)} s (not timed)`);
  await sleep(SETTLE_MS);
}

/** What the read script prints on each (converged) host, through nsenter: the floor's wanted lines. */
async function captureWanted(lab: LabState, job: Job, planDir: string): Promise<void> {
  const plans = await pool(lab.hosts, 16, async (h: LabHost) => {
    const items = job.floorItems(h.flavour);
    const r = await labExec(h, readScript(items), { timeoutMs: 60_000 });
    if (r.code !== 0) throw new Error(`${h.name}: reading the converged files failed (exit ${r.code}): ${r.stderr.trim()}`);
    return { host: h.short, items, want: r.stdout.replace(/\n$/, '').split('\n'), tail: job.floorTail(h.flavour) };
  });
  writeFloorPlan(planDir, plans);
}

interface Context {
  o: Options;
  shape: Shape;
  job: Job;
  lab: LabState;
  work: string;
  planDir: string;
  cgroupRoot: string | null;
}

function commandFor(ctx: Context, tool: Tool, run: RunKind): { cmd: ToolCommand; outcome: (stdout: string, code: number | null) => RunOutcome } {
  const { lab, job, o } = ctx;
  if (tool === 'provision') {
    // A cache of its own, empty, for each run: every run starts as cold as Ansible's (fresh control sockets), and
    // what the user's cache holds cannot change the figures.
    const cache = mkdtempSync(join(ctx.work, `provision-cache-${run}-`));
    return { cmd: provisionCommand(lab, job.playbook, run, o.forks, cache), outcome: (s, c) => provisionOutcome(s, c, run, lab.hosts.length) };
  }
  if (tool === 'floor') {
    return { cmd: floorCommand(lab, ctx.planDir, run, o.forks), outcome: (s, c) => floorOutcome(s, c, run, lab) };
  }
  const controlDir = mkdtempSync(join(ctx.work, `ansible-cp-${run}-`));
  const sshLog = join(ctx.work, `ansible-ssh-${run}.log`);
  writeFileSync(sshLog, '');
  return {
    cmd: ansibleCommand(lab, job.ansiblePlaybook!, run, o.forks, controlDir, sshLog),
    outcome: (s, c) => ansibleOutcome(s, c, run, lab, readFileSync(sshLog, 'utf8')),
  };
}

async function measureRun(ctx: Context, tool: Tool, run: RunKind): Promise<RunRecord> {
  const { cmd, outcome } = commandFor(ctx, tool, run);
  const loadBefore = os.loadavg().map((n) => Number(n.toFixed(2)));
  const busyBefore = await machineBusy(SETTLE_MS);
  const base = join(ctx.work, `${tool}-${run}`);
  const hostCpuBefore = snapshot(ctx.lab.hosts);
  const machineBefore = machineCpu();
  const m = await measure({
    command: cmd.command,
    env: cmd.env,
    cwd: REPO,
    stdoutFile: `${base}.out`,
    stderrFile: `${base}.err`,
    timeoutMs: ctx.o.scale ? 40 * 60_000 : 20 * 60_000,
    cgroupRoot: ctx.cgroupRoot,
    label: `provision-bench-${process.pid}-${ctx.shape}-${tool}-${run}`,
  });
  const hostCpuS = cpuSince(ctx.lab.hosts, hostCpuBefore);
  const machineCpuS = machineCpu().busy - machineBefore.busy;
  const result = outcome(readFileSync(m.stdoutFile, 'utf8'), m.exitCode);
  const record: RunRecord = {
    shape: ctx.shape,
    tool,
    run,
    ok: result.ok,
    ...(result.problem ? { problem: result.problem } : {}),
    exitCode: m.exitCode,
    wallS: m.wallS,
    userS: m.userS,
    sysS: m.sysS,
    cpuSource: m.cpuSource,
    hostCpuS,
    machineCpuS,
    maxRssMb: m.maxRssMb,
    peakTreePssMb: m.peakTreePssMb,
    peakProcesses: m.peakProcesses,
    execs: execStats(result.execs),
    steps: result.steps ? execStats(result.steps) : null,
    loadBefore,
    busyBefore,
  };
  if (record.ok && run === 'first' && ctx.job.verifyTls) {
    const bad = await hostsWithoutSmtps(ctx.lab.hosts, ctx.o.forks);
    if (bad.length) {
      record.ok = false;
      record.problem = `${bad.length} host(s) do not serve SMTPS on 465 afterwards (${bad[0]!.host}: ${bad[0]!.why})`;
    }
  }
  const cpu = record.userS + record.sysS;
  log(
    `${ctx.shape.padEnd(7)} ${tool.padEnd(9)} ${RUN_LABEL[run].padEnd(13)} ${record.wallS.toFixed(2).padStart(7)} s wall, ${cpu.toFixed(2).padStart(6)} s CPU, ${hostCpuS.toFixed(2)} s on the hosts, ${machineCpuS.toFixed(2)} s machine, ` +
      `${record.maxRssMb.toFixed(0)} MB max RSS, ${record.execs.max} execs/host max${record.ok ? '' : ` — FAILED: ${record.problem} (output: ${base}.out)`}`,
  );
  return record;
}

/** Provision converges freshly reset hosts (untimed) so the floor can learn the bytes to write. */
async function prepareFloor(ctx: Context): Promise<void> {
  log('preparing the floor: an untimed provision run converges the hosts, then their files are read');
  await resetLab(ctx.lab);
  const { cmd } = commandFor(ctx, 'provision', 'first');
  const r = await $q({ cwd: REPO, env: cmd.env, timeout: 20 * 60_000 })`${cmd.command}`;
  const outcome = provisionOutcome(r.stdout, r.exitCode, 'first', ctx.lab.hosts.length);
  if (!outcome.ok) throw new Error(`the provision run that prepares the floor failed: ${outcome.problem}`);
  await captureWanted(ctx.lab, ctx.job, ctx.planDir);
}

async function main(): Promise<void> {
  const o = parseOptions(process.argv);
  if (!isRoot()) throw new Error('the benchmark needs root (the lab is network namespaces)');
  const job = o.scale ? SCALE_JOB : SMTPS_JOB;
  const notices: string[] = [];
  let tools = [...new Set(o.tools)];
  const ansible = await firstLine('ansible-playbook', ['--version']);
  if (tools.includes('ansible') && !job.ansiblePlaybook) {
    notices.push('Ansible is not measured in --scale mode');
    tools = tools.filter((t) => t !== 'ansible');
  }
  if (tools.includes('ansible') && ansible === null) {
    notices.push('Ansible skipped: ansible-playbook is not installed (apt-get install ansible-core)');
    tools = tools.filter((t) => t !== 'ansible');
  }
  notices.forEach((n) => log(`notice: ${n}`));
  // provision goes first: its converged hosts give the floor the bytes to write.
  const order = (['provision', 'floor', 'ansible'] as Tool[]).filter((t) => tools.includes(t));

  if (o.build) {
    log('compiling provision (npm run build)');
    const b = await $q({ cwd: REPO })`npm run --silent build`;
    if (b.exitCode !== 0) log(`warning: the build reported errors; dist/ holds what tsc emitted:\n${(b.stdout + b.stderr).trim().split('\n').slice(0, 5).join('\n')}`);
  }
  const cgroupRoot = usableCgroupRoot();
  if (!cgroupRoot) notices.push('no writable cgroup v2 hierarchy: CPU is GNU time\'s, which misses daemonized processes such as ControlPersist masters');

  let interrupted = false;
  let lab: LabState | null = null;
  process.on('SIGINT', () => {
    if (interrupted) {
      log(`interrupted twice: exiting now; the lab stays up (npm run lab -- down --name ${lab?.name ?? o.lab})`);
      process.exit(130);
    }
    interrupted = true;
    log('interrupted: finishing the current run, then cleaning up (Ctrl-C again to quit now)');
  });

  const startedAt = new Date();
  const work = mkdtempSync(join(os.tmpdir(), 'provision-bench-'));
  const records: RunRecord[] = [];
  const labs: { shape: Shape; lab: string; upSeconds: number | null; loginCpuMs: number }[] = [];
  let keepWork = false;
  try {
    // One shape at a time, each on a lab of its own, so only one lab's hosts share the machine with the tools.
    for (const shape of o.shapes) {
      if (interrupted) break;
      const opened = await openLab(o, job, shape);
      lab = opened.lab;
      labs.push({ shape, lab: lab.name, upSeconds: opened.upSeconds, loginCpuMs: await checkShape(lab, shape) });
      const shapeWork = mkdtempSync(join(work, `${shape}-`));
      const ctx: Context = { o, shape, job, lab, work: shapeWork, planDir: join(shapeWork, 'floor-plan'), cgroupRoot };
      try {
        for (const tool of order) {
          if (interrupted) break;
          if (tool === 'floor' && !tools.includes('provision')) await prepareFloor(ctx);
          log(`${SHAPE_LABEL[shape]}, ${tool}: fresh hosts`);
          await resetLab(lab);
          for (const run of RUNS) {
            if (interrupted) break;
            const rec = await measureRun(ctx, tool, run);
            records.push(rec);
            if (!rec.ok) keepWork = true;
            if (tool === 'provision' && run === 'first' && tools.includes('floor')) {
              if (!rec.ok) throw new Error(`provision's first run failed (${SHAPE_LABEL[shape]}), so the floor has no bytes to write; see the output above`);
              await captureWanted(lab, job, ctx.planDir);
            }
          }
        }
      } finally {
        if (opened.made && !o.keepLab) {
          log(`taking lab "${lab.name}" down`);
          await labDown(lab.name);
        }
      }
    }
  } finally {
    if (keepWork) log(`outputs of the runs kept in ${work}`);
    else rmSync(work, { recursive: true, force: true });
  }
  if (!lab) throw new Error('interrupted before any lab was up');

  const targetList = targets(job.name, records, o.hosts);
  const m = await machine(ansible);
  const flavours = { rhel: lab.hosts.filter((h) => h.flavour === 'rhel').length, debian: lab.hosts.filter((h) => h.flavour === 'debian').length };
  const command = `npm run bench -- ${process.argv.slice(2).join(' ')}`.trim();
  const result = {
    version: 2,
    startedAt: startedAt.toISOString(),
    command,
    job: { name: job.name, title: job.title, playbook: job.playbook, ansiblePlaybook: tools.includes('ansible') ? job.ansiblePlaybook : null },
    hosts: o.hosts,
    flavours,
    labMode: job.labMode,
    forks: o.forks,
    shapes: labs,
    machine: m,
    method: {
      wall: 'from spawning the tool to its exit, measured by bench/run.ts',
      cpu: cgroupRoot
        ? 'user + system CPU of every process the tool started (its own cgroup v2: cpu.stat), daemonized ssh masters included'
        : 'user + system CPU of the tool and the children it waited for (GNU time)',
      machineCpu: 'all CPU the machine spent during the run (tool, lab hosts, kernel, and anything else running)',
      busyBefore: `how busy the machine was over the ${SETTLE_MS / 1000} s before the run, 0 to 1: the previous run's tail, idle lab hosts, and anyone else's work`,
      hostCpu:
        "CPU spent on the lab hosts (which share this machine's cores): what each host's init and sshd listener account for the children they reaped during the run (SSH sessions and every command they ran); daemons still running at the end, such as Postfix's smtpd processes, are not in it",
      maxRss: 'largest peak RSS of one process of the tree (GNU time %M); for provision, the node process',
      treePss: 'peak of the summed PSS of all processes of the tree, sampled every 200 ms (shared pages shared out, not counted twice)',
      execs: 'provision: its JSON recap; floor: ssh commands per host (floor.sh); Ansible: ssh invocations per host through bench/ansible/ssh-count (pipelining: one per module run)',
      steps: "provision's JSON recap `steps` per host when it reports them apart from execs; null otherwise (the floor's and Ansible's execs are their steps)",
      shapes:
        "default: the hosts' login is the distribution's own; costly: root's and the sudo user's ~/.bashrc spend about 150 ms of CPU on every SSH command (test/lab/files/costly-login.bashrc), as where it initialises pyenv or conda; each shape runs on a lab of its own",
      fresh: 'every tool starts from freshly reset lab hosts; each run starts without SSH connections (masters left by a run are ended before the next)',
      floor: job.floorDescription,
    },
    notices,
    runs: records,
    ratios: ratios(records),
    targets: targetList,
  };
  const where = join(REPO, 'bench', 'results');
  mkdirSync(where, { recursive: true });
  const file = join(where, `${startedAt.toISOString().replace(/[:.]/g, '-')}.json`);
  writeFileSync(file, `${JSON.stringify(result, null, 2)}\n`);

  const busy = records.length ? records.map((r) => r.busyBefore * 100) : [0];
  console.log(
    [
      `${job.title}: ${o.hosts} hosts (${flavours.rhel} rhel, ${flavours.debian} debian, ${job.labMode}), forks ${o.forks}, shapes: ${labs.map((l) => SHAPE_LABEL[l.shape]).join(', ')}`,
      `machine: ${m.cores} cores (${m.cpu}), ${m.memoryGiB} GiB, ${m.kernel}, node ${m.node}; busy ${Math.min(...busy).toFixed(0)}-${Math.max(...busy).toFixed(0)}% in the ${SETTLE_MS / 1000} s before each run (a previous run's tail, anyone else's work)`,
      `floor: ${job.floorDescription}`,
      `CPU: ${result.method.cpu}; hosts CPU: ${result.method.hostCpu}`,
      `max RSS: ${result.method.maxRss}; tree PSS: ${result.method.treePss}`,
      `shapes: ${result.method.shapes}`,
      ...notices.map((n) => `notice: ${n}`),
      '',
      renderTable(records, targetList),
      '',
      `reproduce: ${command}`,
      `written: ${file}`,
    ].join('\n'),
  );
  if (records.some((r) => !r.ok)) process.exitCode = 2;
}

main().catch((e: unknown) => {
  log(`error: ${e instanceof Error ? e.message : String(e)}`);
  process.exitCode = 1;
});

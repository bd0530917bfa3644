/**
 * The benchmark's figures: one record per tool and run, the ratios the targets are stated in, the targets
 * themselves, and the table printed at the end (the same data goes to bench/results/<timestamp>.json).
 */
import { RUN_LABEL, RUNS, type RunKind, type Tool, TOOLS } from './tools.js';

export interface RunRecord {
  tool: Tool;
  run: RunKind;
  ok: boolean;
  problem?: string;
  exitCode: number | null;
  wallS: number;
  userS: number;
  sysS: number;
  cpuSource: 'cgroup' | 'gnu-time';
  /** CPU seconds spent on the lab hosts during the run (see bench/remote-cpu.ts) */
  hostCpuS: number;
  maxRssMb: number;
  peakTreePssMb: number;
  peakProcesses: number;
  /** remote execs per host: mean, min, max over the hosts */
  execs: { mean: number; min: number; max: number };
  /** all CPU seconds the machine spent during the run (others' work included) */
  machineCpuS: number;
  /** 1, 5 and 15 minute load averages just before the run */
  loadBefore: number[];
  /** share of the machine's CPU busy in the pause before the run (0 to 1) */
  busyBefore: number;
}

export interface Ratio {
  run: RunKind;
  provisionOverFloor: number | null;
  ansibleOverProvision: number | null;
}

export interface Target {
  name: string;
  value: number | null;
  limit: string;
  met: boolean | null;
}

export function execStats(execs: Map<string, number>): RunRecord['execs'] {
  const v = [...execs.values()];
  if (v.length === 0) return { mean: 0, min: 0, max: 0 };
  return { mean: v.reduce((a, b) => a + b, 0) / v.length, min: Math.min(...v), max: Math.max(...v) };
}

function find(records: RunRecord[], tool: Tool, run: RunKind): RunRecord | undefined {
  return records.find((r) => r.tool === tool && r.run === run && r.ok);
}

export function ratios(records: RunRecord[]): Ratio[] {
  return RUNS.map((run) => {
    const floor = find(records, 'floor', run);
    const prov = find(records, 'provision', run);
    const ans = find(records, 'ansible', run);
    return {
      run,
      provisionOverFloor: floor && prov ? prov.wallS / floor.wallS : null,
      ansibleOverProvision: prov && ans ? ans.wallS / prov.wallS : null,
    };
  });
}

const atMost = (name: string, value: number | null, limit: number): Target => ({ name, value, limit: `≤ ${limit}`, met: value === null ? null : value <= limit });
const atLeast = (name: string, value: number | null, limit: number): Target => ({ name, value, limit: `≥ ${limit}`, met: value === null ? null : value >= limit });

/** The targets, evaluated on this run's figures (null when a figure is missing). */
export function targets(job: 'smtps' | 'scale', records: RunRecord[], hosts: number): Target[] {
  const r = new Map(ratios(records).map((x) => [x.run, x]));
  const pof = (run: RunKind) => r.get(run)?.provisionOverFloor ?? null;
  const aop = (run: RunKind) => r.get(run)?.ansibleOverProvision ?? null;
  const maxExecs = (run: RunKind) => find(records, 'provision', run)?.execs.max ?? null;
  if (job === 'scale') {
    const rss = records.filter((x) => x.tool === 'provision' && x.ok).map((x) => x.maxRssMb);
    return [
      ...RUNS.map((run) => atMost(`${hosts} hosts, ${RUN_LABEL[run]}: provision / floor`, pof(run), 1.5)),
      atMost(`${hosts} hosts: provision peak RSS (MB)`, rss.length ? Math.max(...rss) : null, 300),
    ];
  }
  return [
    atMost(`${hosts} hosts, ${RUN_LABEL.second}: provision / floor`, pof('second'), 1.25),
    atMost(`${hosts} hosts, ${RUN_LABEL.check}: provision / floor`, pof('check'), 1.25),
    atMost(`${hosts} hosts, ${RUN_LABEL.second}: provision execs per host (max)`, maxExecs('second'), 2),
    atMost(`${hosts} hosts, ${RUN_LABEL.check}: provision execs per host (max)`, maxExecs('check'), 2),
    atMost(`${hosts} hosts, ${RUN_LABEL.first}: provision / floor`, pof('first'), 1.25),
    ...RUNS.map((run) => atLeast(`${hosts} hosts, ${RUN_LABEL[run]}: Ansible / provision`, aop(run), 8)),
  ];
}

const fixed = (n: number | null, digits: number) => (n === null ? '—' : n.toFixed(digits));

function pad(cells: string[], widths: number[], right: boolean[]): string {
  return cells.map((c, i) => (right[i] ? c.padStart(widths[i]!) : c.padEnd(widths[i]!))).join('  ').trimEnd();
}

function table(head: string[], rows: string[][], right: boolean[]): string[] {
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  return [pad(head, widths, right), widths.map((w) => '-'.repeat(w)).join('  '), ...rows.map((r) => pad(r, widths, right))];
}

/** The figures as the terminal shows them. */
export function renderTable(records: RunRecord[], targetList: Target[]): string {
  const rows: string[][] = [];
  for (const run of RUNS) {
    for (const tool of TOOLS) {
      const x = records.find((r) => r.tool === tool && r.run === run);
      if (!x) continue;
      const execs = x.execs.min === x.execs.max ? String(x.execs.max) : `${x.execs.mean.toFixed(1)} (${x.execs.min}-${x.execs.max})`;
      rows.push([
        RUN_LABEL[run],
        tool,
        x.ok ? fixed(x.wallS, 2) : `FAILED: ${x.problem ?? ''}`,
        fixed(x.userS + x.sysS, 2),
        fixed(x.hostCpuS, 2),
        fixed(x.machineCpuS, 2),
        fixed(x.maxRssMb, 0),
        fixed(x.peakTreePssMb, 0),
        execs,
      ]);
    }
  }
  const lines = table(
    ['run', 'tool', 'wall s', 'CPU s', 'hosts CPU s', 'machine CPU s', 'max RSS MB', 'tree PSS MB', 'execs/host'],
    rows,
    [false, false, true, true, true, true, true, true, true],
  );
  const ratioRows = ratios(records).map((r) => [RUN_LABEL[r.run], fixed(r.provisionOverFloor, 2), fixed(r.ansibleOverProvision, 1)]);
  lines.push('', ...table(['run', 'provision / floor', 'Ansible / provision'], ratioRows, [false, true, true]));
  lines.push('', 'targets:');
  for (const t of targetList) {
    const mark = t.met === null ? 'n/a ' : t.met ? 'met ' : 'MISS';
    lines.push(`  ${mark}  ${t.name}: ${fixed(t.value, 2)} (target ${t.limit})`);
  }
  return lines.join('\n');
}

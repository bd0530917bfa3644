/**
 * The benchmark's figures: one record per host shape, tool and run, the ratios the targets are stated in, the
 * targets themselves, and the table printed at the end (the same data goes to bench/results/<timestamp>.json).
 */
import { type Shape, SHAPE_LABEL, SHAPES } from './shapes.js';
import { RUN_LABEL, RUNS, type RunKind, type Tool, TOOLS } from './tools.js';

type Stats = { mean: number; min: number; max: number };

export interface RunRecord {
  /** the hosts' shape: default login, or a login that costs CPU on every exec */
  shape: Shape;
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
  execs: Stats;
  /** steps per host when the tool reports them apart from its execs, else null */
  steps: Stats | null;
  /** all CPU seconds the machine spent during the run (others' work included) */
  machineCpuS: number;
  /** 1, 5 and 15 minute load averages just before the run */
  loadBefore: number[];
  /** share of the machine's CPU busy in the pause before the run (0 to 1) */
  busyBefore: number;
}

export interface Ratio {
  shape: Shape;
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

/** What the costly login costs one tool on one run: its figures on costly-login hosts over those on default ones. */
export interface ShapeCost {
  tool: Tool;
  run: RunKind;
  wallRatio: number | null;
  hostCpuRatio: number | null;
}

export function execStats(execs: Map<string, number>): Stats {
  const v = [...execs.values()];
  if (v.length === 0) return { mean: 0, min: 0, max: 0 };
  return { mean: v.reduce((a, b) => a + b, 0) / v.length, min: Math.min(...v), max: Math.max(...v) };
}

/** The shapes the records cover, in the order of SHAPES. */
export function shapesOf(records: RunRecord[]): Shape[] {
  return SHAPES.filter((s) => records.some((r) => r.shape === s));
}

function find(records: RunRecord[], shape: Shape, tool: Tool, run: RunKind): RunRecord | undefined {
  return records.find((r) => r.shape === shape && r.tool === tool && r.run === run && r.ok);
}

export function ratios(records: RunRecord[]): Ratio[] {
  return shapesOf(records).flatMap((shape) =>
    RUNS.map((run) => {
      const floor = find(records, shape, 'floor', run);
      const prov = find(records, shape, 'provision', run);
      const ans = find(records, shape, 'ansible', run);
      return {
        shape,
        run,
        provisionOverFloor: floor && prov ? prov.wallS / floor.wallS : null,
        ansibleOverProvision: prov && ans ? ans.wallS / prov.wallS : null,
      };
    }),
  );
}

/** Each tool's costly-login figures over its default ones, run by run; empty unless both shapes were measured. */
export function shapeCosts(records: RunRecord[]): ShapeCost[] {
  if (shapesOf(records).length < 2) return [];
  return RUNS.flatMap((run) =>
    TOOLS.filter((tool) => records.some((r) => r.tool === tool && r.run === run)).map((tool) => {
      const plain = find(records, 'default', tool, run);
      const costly = find(records, 'costly', tool, run);
      return {
        tool,
        run,
        wallRatio: plain && costly ? costly.wallS / plain.wallS : null,
        hostCpuRatio: plain && costly && plain.hostCpuS > 0 ? costly.hostCpuS / plain.hostCpuS : null,
      };
    }),
  );
}

const atMost = (name: string, value: number | null, limit: number): Target => ({ name, value, limit: `≤ ${limit}`, met: value === null ? null : value <= limit });
const atLeast = (name: string, value: number | null, limit: number): Target => ({ name, value, limit: `≥ ${limit}`, met: value === null ? null : value >= limit });

/**
 * The issues' targets, on every shape measured, evaluated on this run's figures (null when a figure is missing):
 * provision within 1.2 times the floor at 50 hosts and 1.3 times in the scale job, on both shapes.
 */
export function targets(job: 'smtps' | 'scale', records: RunRecord[], hosts: number): Target[] {
  return shapesOf(records).flatMap((shape) => {
    const r = new Map(ratios(records.filter((x) => x.shape === shape)).map((x) => [x.run, x]));
    const pof = (run: RunKind) => r.get(run)?.provisionOverFloor ?? null;
    const aop = (run: RunKind) => r.get(run)?.ansibleOverProvision ?? null;
    const maxExecs = (run: RunKind) => find(records, shape, 'provision', run)?.execs.max ?? null;
    const at = `${hosts} hosts, ${SHAPE_LABEL[shape]}`;
    if (job === 'scale') {
      const rss = records.filter((x) => x.shape === shape && x.tool === 'provision' && x.ok).map((x) => x.maxRssMb);
      return [
        ...RUNS.map((run) => atMost(`${at}, ${RUN_LABEL[run]}: provision / floor`, pof(run), 1.3)),
        atMost(`${at}: provision peak RSS (MB)`, rss.length ? Math.max(...rss) : null, 300),
      ];
    }
    return [
      atMost(`${at}, ${RUN_LABEL.second}: provision / floor`, pof('second'), 1.2),
      atMost(`${at}, ${RUN_LABEL.check}: provision / floor`, pof('check'), 1.2),
      atMost(`${at}, ${RUN_LABEL.second}: provision execs per host (max)`, maxExecs('second'), 2),
      atMost(`${at}, ${RUN_LABEL.check}: provision execs per host (max)`, maxExecs('check'), 2),
      atMost(`${at}, ${RUN_LABEL.first}: provision / floor`, pof('first'), 1.2),
      ...RUNS.map((run) => atLeast(`${at}, ${RUN_LABEL[run]}: Ansible / provision`, aop(run), 8)),
    ];
  });
}

const fixed = (n: number | null, digits: number) => (n === null ? '—' : n.toFixed(digits));

function pad(cells: string[], widths: number[], right: boolean[]): string {
  return cells.map((c, i) => (right[i] ? c.padStart(widths[i]!) : c.padEnd(widths[i]!))).join('  ').trimEnd();
}

function table(head: string[], rows: string[][], right: boolean[]): string[] {
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  return [pad(head, widths, right), widths.map((w) => '-'.repeat(w)).join('  '), ...rows.map((r) => pad(r, widths, right))];
}

const perHost = (s: Stats | null) => (s === null ? '—' : s.min === s.max ? String(s.max) : `${s.mean.toFixed(1)} (${s.min}-${s.max})`);

/** The figures as the terminal shows them; a steps column only when some tool reported steps. */
export function renderTable(records: RunRecord[], targetList: Target[]): string {
  const withSteps = records.some((r) => r.steps !== null);
  const rows: string[][] = [];
  for (const shape of shapesOf(records)) {
    for (const run of RUNS) {
      for (const tool of TOOLS) {
        const x = records.find((r) => r.shape === shape && r.tool === tool && r.run === run);
        if (!x) continue;
        rows.push([
          SHAPE_LABEL[shape],
          RUN_LABEL[run],
          tool,
          x.ok ? fixed(x.wallS, 2) : `FAILED: ${x.problem ?? ''}`,
          fixed(x.userS + x.sysS, 2),
          fixed(x.hostCpuS, 2),
          fixed(x.machineCpuS, 2),
          fixed(x.maxRssMb, 0),
          fixed(x.peakTreePssMb, 0),
          perHost(x.execs),
          ...(withSteps ? [perHost(x.steps)] : []),
        ]);
      }
    }
  }
  const lines = table(
    ['shape', 'run', 'tool', 'wall s', 'CPU s', 'hosts CPU s', 'machine CPU s', 'max RSS MB', 'tree PSS MB', 'execs/host', ...(withSteps ? ['steps/host'] : [])],
    rows,
    [false, false, false, true, true, true, true, true, true, true, true],
  );
  const ratioRows = ratios(records).map((r) => [SHAPE_LABEL[r.shape], RUN_LABEL[r.run], fixed(r.provisionOverFloor, 2), fixed(r.ansibleOverProvision, 1)]);
  lines.push('', ...table(['shape', 'run', 'provision / floor', 'Ansible / provision'], ratioRows, [false, false, true, true]));
  const costs = shapeCosts(records);
  if (costs.length) {
    const costRows = costs.map((c) => [RUN_LABEL[c.run], c.tool, fixed(c.wallRatio, 2), fixed(c.hostCpuRatio, 2)]);
    lines.push('', 'costly login / default login:', ...table(['run', 'tool', 'wall', 'hosts CPU'], costRows, [false, false, true, true]));
  }
  lines.push('', 'targets:');
  for (const t of targetList) {
    const mark = t.met === null ? 'n/a ' : t.met ? 'met ' : 'MISS';
    lines.push(`  ${mark}  ${t.name}: ${fixed(t.value, 2)} (target ${t.limit})`);
  }
  return lines.join('\n');
}

/**
 * Line-oriented output for pipes and logs (and the summary the TTY reporter prints at the end): one line per
 * task result, then the changes grouped by identical diff across hosts, the batch summary and the recap.
 */
import { totals } from '../runner/results.js';
import { colourDiff } from './diff.js';
import { displaySafeDeep } from './display-safe.js';
import type { BatchEndEvent, FileDiff, HostCounters, RecapEvent, RunEvent, TaskResultEvent, TaskStatus } from './events.js';

export interface Reporter {
  handle(event: RunEvent): void;
  /** wait for the output to be complete (TTY renderers draw asynchronously) */
  finish(): Promise<void>;
}

export type Write = (text: string) => void;

const COLOURS: Record<TaskStatus, string> = {
  ok: '\x1b[32m',
  changed: '\x1b[33m',
  failed: '\x1b[31m',
  skipped: '\x1b[36m',
  unreachable: '\x1b[35m',
};
const RESET = '\x1b[0m';
export const BOLD = '\x1b[1m';
const DIM = '\x1b[2m';

export function paint(on: boolean, code: string, s: string): string {
  return on ? `${code}${s}${RESET}` : s;
}

/** A host name cut around its last number: "web" 007 ".example.com". */
interface Numbered {
  prefix: string;
  digits: string;
  suffix: string;
}

function numbered(host: string): Numbered | null {
  const m = /^(.*?)(\d+)(\D*)$/.exec(host);
  return m ? { prefix: m[1]!, digits: m[2]!, suffix: m[3]! } : null;
}

/**
 * Names of many hosts, short and exact: runs of three or more numbered names that differ only by a number going up
 * in equal steps are written as Ansible inventory ranges ("h[1:48].lab.test", odd ones "h[1:47:2].lab.test"); the
 * rest stay as they are, in the order given.
 */
export function hostRanges(hosts: string[]): string[] {
  // Zero-padded numbers only run with numbers of the same width, as Ansible expands "[01:10]".
  const family = (n: Numbered) => `${n.prefix}\0${n.suffix}\0${n.digits.length > 1 && n.digits.startsWith('0') ? n.digits.length : ''}`;
  const members = new Map<string, { n: Numbered; value: number }[]>();
  for (const h of new Set(hosts)) {
    const n = numbered(h);
    if (!n) continue;
    const key = family(n);
    if (!members.has(key)) members.set(key, []);
    members.get(key)!.push({ n, value: Number(n.digits) });
  }
  /** the range a host belongs to, keyed by its first host */
  const rangeOf = new Map<string, { first: string; text: string }>();
  for (const list of members.values()) {
    list.sort((a, b) => a.value - b.value);
    let i = 0;
    while (i < list.length) {
      let j = i + 1;
      const step = j < list.length ? list[j]!.value - list[i]!.value : 0;
      while (step > 0 && j < list.length && list[j]!.value - list[j - 1]!.value === step) j++;
      if (j - i >= 3) {
        const { prefix, suffix } = list[i]!.n;
        const first = `${prefix}${list[i]!.n.digits}${suffix}`;
        const text = `${prefix}[${list[i]!.n.digits}:${list[j - 1]!.n.digits}${step > 1 ? `:${step}` : ''}]${suffix}`;
        for (let k = i; k < j; k++) rangeOf.set(`${prefix}${list[k]!.n.digits}${suffix}`, { first, text });
        i = j;
      } else {
        i++;
      }
    }
  }
  const out: string[] = [];
  const shown = new Set<string>();
  for (const h of new Set(hosts)) {
    const r = rangeOf.get(h);
    if (!r) out.push(h);
    else if (!shown.has(r.first)) {
      shown.add(r.first);
      out.push(r.text);
    }
  }
  return out;
}

/** "h1, h4, h[6:9], … h48": at most `max` items (ranges count as one), so a list of 500 hosts stays one line. */
export function hostList(hosts: string[], max = 6): string {
  const items = hostRanges(hosts);
  if (items.length <= max) return items.join(', ');
  return `${items.slice(0, max - 1).join(', ')} … ${items.at(-1)}`;
}

export function seconds(ms: number): string {
  return ms < 10_000 ? `${(ms / 1000).toFixed(2)}s` : `${(ms / 1000).toFixed(1)}s`;
}

function plural(n: number, one: string, many = `${one}s`): string {
  return `${n} ${n === 1 ? one : many}`;
}

interface DiffGroup {
  task: string;
  diff: FileDiff;
  hosts: string[];
}

/**
 * Diffs collected during a run, grouped so the same change on many hosts prints once. Hosts are listed in the
 * order of their play, not in the order they happened to finish, so two runs print the same summary.
 */
export class DiffCollector {
  private readonly groups = new Map<string, DiffGroup>();
  private readonly hostRank = new Map<string, number>();
  private readonly taskRank = new Map<string, number>();

  /** The hosts of a play, in its order (from play_start). */
  addHosts(hosts: string[]): void {
    for (const h of hosts) if (!this.hostRank.has(h)) this.hostRank.set(h, this.hostRank.size);
  }

  add(e: TaskResultEvent): void {
    for (const d of e.diffs ?? []) {
      if (!this.taskRank.has(e.task)) this.taskRank.set(e.task, this.taskRank.size);
      const key = `${e.task}\0${d.path}\0${d.diff}`;
      const g = this.groups.get(key);
      if (g) g.hosts.push(e.host);
      else this.groups.set(key, { task: e.task, diff: d, hosts: [e.host] });
    }
  }

  get size(): number {
    return this.groups.size;
  }

  private rank(host: string): number {
    return this.hostRank.get(host) ?? Number.MAX_SAFE_INTEGER;
  }

  /** Groups in task order; within a task, by their first host. */
  private ordered(): DiffGroup[] {
    const groups = [...this.groups.values()].map((g) => ({ ...g, hosts: [...g.hosts].sort((a, b) => this.rank(a) - this.rank(b)) }));
    return groups.sort((a, b) => this.taskRank.get(a.task)! - this.taskRank.get(b.task)! || this.rank(a.hosts[0]!) - this.rank(b.hosts[0]!));
  }

  render(colour: boolean, check: boolean): string {
    if (this.groups.size === 0) return '';
    const out: string[] = [paint(colour, BOLD, check ? 'CHANGES (check mode: nothing was written)' : 'CHANGES')];
    for (const g of this.ordered()) {
      const who = g.hosts.length === 1 ? g.hosts[0]! : `same change on ${g.hosts.length} hosts: ${hostList(g.hosts, 8)}`;
      out.push(`${paint(colour, BOLD, `[${g.task}] ${g.diff.path}`)}${g.diff.created ? ' (new file)' : ''} — ${who}`);
      const d = g.diff.diff.replace(/\n$/, '');
      out.push(colour ? colourDiff(d) : d, '');
    }
    return out.join('\n');
  }
}

/**
 * The run summary per batch: hosts, what changed, what failed (by name) and the time taken; then the batches the
 * rollout never reached. `planned` holds each play's batches (from play_start); a run whose plays were not split
 * into batches has no batch summary.
 */
export function renderBatches(batches: Omit<BatchEndEvent, 'type'>[], planned: Map<string, string[][]>, colour: boolean): string {
  if (![...planned.values()].some((p) => p.length > 1)) return '';
  const lines = [paint(colour, BOLD, 'BATCHES')];
  const plays = [...planned.keys()];
  for (const play of plays) {
    const total = planned.get(play)!.length;
    const ran = batches.filter((b) => b.play === play);
    if (plays.length > 1) lines.push(`  ${play}`);
    const indent = plays.length > 1 ? '    ' : '  ';
    for (const b of ran) {
      const bad = (label: string, hosts: string[], code: string) =>
        hosts.length ? paint(colour, code, `${hosts.length} ${label} (${hostList(hosts, 4)})`) : `0 ${label}`;
      lines.push(
        `${indent}batch ${b.batch}/${total}: ${plural(b.hosts.length, 'host')}, ${b.changed.length} changed, ${bad('failed', b.failed, COLOURS.failed)}, ${bad('unreachable', b.unreachable, COLOURS.unreachable)}, ${seconds(b.duration_ms)}`,
      );
    }
    const last = ran.at(-1)?.batch ?? 0;
    if (last < total) {
      const left = planned.get(play)!.slice(last).flat().length;
      lines.push(`${indent}${last + 1 === total ? `batch ${total}` : `batches ${last + 1}-${total}`}/${total}: not run (${plural(left, 'host')})`);
    }
  }
  return lines.join('\n');
}

export function renderRecap(e: RecapEvent, colour: boolean): string {
  const names = Object.keys(e.hosts);
  const width = Math.min(40, Math.max(4, ...names.map((n) => n.length)));
  const lines = [paint(colour, BOLD, 'RECAP')];
  const row = (name: string, c: HostCounters) => {
    const status: TaskStatus = c.unreachable ? 'unreachable' : c.failed ? 'failed' : c.changed ? 'changed' : 'ok';
    const cell = (k: keyof HostCounters, s: TaskStatus) => (c[k] > 0 && k !== 'ok' && k !== 'execs' && k !== 'steps' ? paint(colour, COLOURS[s], `${k}=${c[k]}`) : `${k}=${c[k]}`);
    return `  ${paint(colour, COLOURS[status], name.padEnd(width))}  ${cell('ok', 'ok')}  ${cell('changed', 'changed')}  ${cell('failed', 'failed')}  ${cell('skipped', 'skipped')}  ${cell('unreachable', 'unreachable')}  ${cell('ignored', 'failed')}  execs=${c.execs}  steps=${c.steps}`;
  };
  if (names.length > 50) {
    // A fleet: the hosts that need attention by name, the rest as totals.
    const attention = names.filter((n) => e.hosts[n]!.failed || e.hosts[n]!.unreachable);
    for (const n of attention) lines.push(row(n, e.hosts[n]!));
    lines.push(row(`all ${names.length} hosts`, totals(e.hosts)));
  } else {
    for (const n of names) lines.push(row(n, e.hosts[n]!));
  }
  if (e.not_run.length) lines.push(`  not run (${plural(e.not_run.length, 'host')}): ${hostList(e.not_run)}`);
  if (e.stopped) lines.push(paint(colour, COLOURS.failed, `  rollout stopped: ${e.stopped}`));
  if (e.retry_file) lines.push(`  retry with: --limit @${e.retry_file}`);
  lines.push(`  ${seconds(e.duration_ms)}, exit code ${e.exit_code}`);
  return lines.join('\n');
}

export function resultLine(e: TaskResultEvent, colour: boolean): string {
  const status = e.ignored ? 'ignored' : e.check && e.status === 'changed' ? 'would change' : e.status;
  const tag = paint(colour, COLOURS[e.status], status.padEnd(12));
  const item = e.item !== undefined ? ` (${e.item})` : '';
  const handler = e.handler ? 'handler ' : '';
  return `${tag} ${e.host}  ${handler}${e.task}${item}: ${e.msg}`;
}

export class PlainReporter implements Reporter {
  private readonly diffs = new DiffCollector();
  /** each play's batches, for the batch summary */
  private readonly planned = new Map<string, string[][]>();
  private check = false;

  constructor(
    private readonly write: Write,
    private readonly colour = false,
    /** print `ok` and `skipped` results too (off: only what changed or failed, plus a line per play) */
    private readonly verbose = true,
  ) {}

  handle(event: RunEvent): void {
    // Messages, diffs and names carry text from hosts: never hand the terminal a control sequence.
    const e = displaySafeDeep(event);
    switch (e.type) {
      case 'run_start':
        this.check = e.check;
        if (e.check) this.write(paint(this.colour, DIM, 'check mode: nothing will be changed\n'));
        break;
      case 'play_start':
        this.diffs.addHosts(e.hosts);
        this.planned.set(e.play, e.batches);
        this.write(`${paint(this.colour, BOLD, `PLAY ${e.play}`)} — ${plural(e.hosts.length, 'host')}${e.batches.length > 1 ? ` in ${e.batches.length} batches` : ''}\n`);
        break;
      case 'batch_start':
        if (e.batches > 1) this.write(paint(this.colour, DIM, `batch ${e.batch}/${e.batches} (${plural(e.hosts.length, 'host')}): ${hostList(e.hosts)}\n`));
        break;
      case 'task_result':
        this.diffs.add(e);
        if (this.verbose || (e.status !== 'ok' && e.status !== 'skipped')) this.write(`${resultLine(e, this.colour)}\n`);
        break;
      case 'warning':
        this.write(`${paint(this.colour, COLOURS.changed, 'warning')}${e.host ? ` ${e.host}` : ''}: ${e.msg}\n`);
        break;
      case 'recap': {
        const parts = [this.diffs.render(this.colour, this.check), renderBatches(e.batches, this.planned, this.colour), renderRecap(e, this.colour)];
        this.write(`\n${parts.filter(Boolean).join('\n\n')}\n`);
        break;
      }
      default:
        break;
    }
  }

  async finish(): Promise<void> {}
}

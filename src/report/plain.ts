/**
 * Line-oriented output for pipes and logs (and the summary the TTY reporter prints at the end): one line per
 * task result, then the changes grouped by identical diff across hosts, the batch summary and the recap.
 */
import { totals } from '../runner/results.js';
import { colourDiff } from './diff.js';
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
const BOLD = '\x1b[1m';
const DIM = '\x1b[2m';

export function paint(on: boolean, code: string, s: string): string {
  return on ? `${code}${s}${RESET}` : s;
}

/** "h1, h2 … h48": first hosts and the last, so a list of 500 stays one line. */
export function hostList(hosts: string[], max = 6): string {
  if (hosts.length <= max) return hosts.join(', ');
  return `${hosts.slice(0, max - 1).join(', ')} … ${hosts.at(-1)} (${hosts.length} hosts)`;
}

export function seconds(ms: number): string {
  return ms < 10_000 ? `${(ms / 1000).toFixed(2)}s` : `${(ms / 1000).toFixed(1)}s`;
}

/** Diffs collected during a run, grouped so the same change on many hosts prints once. */
export class DiffCollector {
  private readonly groups = new Map<string, { task: string; diff: FileDiff; hosts: string[] }>();

  add(e: TaskResultEvent): void {
    for (const d of e.diffs ?? []) {
      const key = `${e.task}\0${d.path}\0${d.diff}`;
      const g = this.groups.get(key);
      if (g) g.hosts.push(e.host);
      else this.groups.set(key, { task: e.task, diff: d, hosts: [e.host] });
    }
  }

  get size(): number {
    return this.groups.size;
  }

  render(colour: boolean, check: boolean): string {
    if (this.groups.size === 0) return '';
    const out: string[] = [paint(colour, BOLD, check ? 'CHANGES (check mode: nothing was written)' : 'CHANGES')];
    for (const g of this.groups.values()) {
      const who = g.hosts.length === 1 ? g.hosts[0]! : `same change on ${g.hosts.length} hosts: ${hostList(g.hosts)}`;
      out.push(`${paint(colour, BOLD, `[${g.task}] ${g.diff.path}`)}${g.diff.created ? ' (new file)' : ''} — ${who}`);
      const d = g.diff.diff.replace(/\n$/, '');
      out.push(colour ? colourDiff(d) : d, '');
    }
    return out.join('\n');
  }
}

export function renderBatches(batches: Omit<BatchEndEvent, 'type'>[], colour: boolean): string {
  if (batches.length <= 1) return '';
  const lines = [paint(colour, BOLD, 'BATCHES')];
  for (const b of batches) {
    lines.push(
      `  ${b.play} batch ${b.batch}: ${b.hosts.length} hosts, ${b.changed.length} changed, ${b.failed.length} failed, ${b.unreachable.length} unreachable, ${seconds(b.duration_ms)}`,
    );
  }
  return lines.join('\n');
}

export function renderRecap(e: RecapEvent, colour: boolean): string {
  const names = Object.keys(e.hosts);
  const width = Math.min(40, Math.max(4, ...names.map((n) => n.length)));
  const lines = [paint(colour, BOLD, 'RECAP')];
  const row = (name: string, c: HostCounters) => {
    const status: TaskStatus = c.unreachable ? 'unreachable' : c.failed ? 'failed' : c.changed ? 'changed' : 'ok';
    const cell = (k: keyof HostCounters, s: TaskStatus) => (c[k] > 0 && k !== 'ok' && k !== 'execs' ? paint(colour, COLOURS[s], `${k}=${c[k]}`) : `${k}=${c[k]}`);
    return `  ${paint(colour, COLOURS[status], name.padEnd(width))}  ${cell('ok', 'ok')}  ${cell('changed', 'changed')}  ${cell('failed', 'failed')}  ${cell('skipped', 'skipped')}  ${cell('unreachable', 'unreachable')}  ${cell('ignored', 'failed')}  execs=${c.execs}`;
  };
  if (names.length > 50) {
    // A fleet: the hosts that need attention by name, the rest as totals.
    const attention = names.filter((n) => e.hosts[n]!.failed || e.hosts[n]!.unreachable);
    for (const n of attention) lines.push(row(n, e.hosts[n]!));
    lines.push(row(`all ${names.length} hosts`, totals(e.hosts)));
  } else {
    for (const n of names) lines.push(row(n, e.hosts[n]!));
  }
  if (e.not_run.length) lines.push(`  not run: ${hostList(e.not_run)}`);
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
  private check = false;

  constructor(
    private readonly write: Write,
    private readonly colour = false,
    /** print `ok` and `skipped` results too (off: only what changed or failed, plus a line per play) */
    private readonly verbose = true,
  ) {}

  handle(e: RunEvent): void {
    switch (e.type) {
      case 'run_start':
        this.check = e.check;
        if (e.check) this.write(paint(this.colour, DIM, 'check mode: nothing will be changed\n'));
        break;
      case 'play_start':
        this.write(`${paint(this.colour, BOLD, `PLAY ${e.play}`)} — ${e.hosts.length} host${e.hosts.length === 1 ? '' : 's'}${e.batches.length > 1 ? ` in ${e.batches.length} batches` : ''}\n`);
        break;
      case 'batch_start':
        if (e.batches > 1) this.write(paint(this.colour, DIM, `batch ${e.batch}/${e.batches}: ${hostList(e.hosts)}\n`));
        break;
      case 'task_result':
        this.diffs.add(e);
        if (this.verbose || (e.status !== 'ok' && e.status !== 'skipped')) this.write(`${resultLine(e, this.colour)}\n`);
        break;
      case 'warning':
        this.write(`${paint(this.colour, COLOURS.changed, 'warning')}${e.host ? ` ${e.host}` : ''}: ${e.msg}\n`);
        break;
      case 'recap': {
        const parts = [this.diffs.render(this.colour, this.check), renderBatches(e.batches, this.colour), renderRecap(e, this.colour)];
        this.write(`\n${parts.filter(Boolean).join('\n\n')}\n`);
        break;
      }
      default:
        break;
    }
  }

  async finish(): Promise<void> {}
}

/**
 * The terminal view (listr2): one row per host showing its current task, ending as ok/changed/failed. Large
 * fleets get a compact view instead: the current batch, counts of hosts done/changed/failed/unreachable and the
 * slowest hosts still running, redrawn at a bounded rate rather than per event. After the run it prints the
 * same change summary, batch summary and recap as the plain reporter.
 */
import { Listr } from 'listr2';
import type { RecapEvent, RunEvent, TaskStatus } from './events.js';
import { DiffCollector, hostList, type Reporter, renderBatches, renderRecap, seconds, type Write } from './plain.js';

/** Above this many hosts in a play, the compact view is used. */
export const COMPACT_THRESHOLD = 20;
/** The compact view redraws at most this often. */
export const COMPACT_REDRAW_MS = 500;

/** The part of a listr2 task wrapper we use. */
interface TaskHandle {
  title: string;
  output: string;
}

interface HostRow {
  task?: TaskHandle;
  current: string;
  changed: number;
  failed?: string;
  unreachable?: string;
  started?: number;
  done: boolean;
  resolve?: () => void;
}

interface FleetState {
  play: string;
  batch: number;
  batches: number;
  total: number;
  done: number;
  changed: Set<string>;
  failed: Set<string>;
  unreachable: Set<string>;
  running: Map<string, { since: number; task: string }>;
}

export class ListrReporter implements Reporter {
  private readonly rows = new Map<string, HostRow>();
  private readonly diffs = new DiffCollector();
  private readonly runs: Promise<unknown>[] = [];
  private recap?: RecapEvent;
  private check = false;
  private fleet?: FleetState;
  private fleetResolve?: () => void;
  private fleetTimer?: NodeJS.Timeout;
  private fleetTask?: TaskHandle;

  constructor(
    private readonly write: Write,
    private readonly colour = true,
  ) {}

  handle(e: RunEvent): void {
    switch (e.type) {
      case 'run_start':
        this.check = e.check;
        break;
      case 'play_start':
        if (e.hosts.length > COMPACT_THRESHOLD) this.startFleet(e.play, e.hosts.length, e.batches.length);
        else this.startRows(e.play, e.hosts, e.batches);
        break;
      case 'batch_start':
        if (this.fleet) {
          this.fleet.batch = e.batch;
          this.fleet.batches = e.batches;
        }
        for (const h of e.hosts) {
          const row = this.rows.get(h);
          if (row?.task) row.task.title = `${h}: starting`;
        }
        break;
      case 'task_start': {
        if (this.fleet) {
          this.fleet.running.set(e.host, { since: this.fleet.running.get(e.host)?.since ?? Date.now(), task: e.task });
          break;
        }
        const row = this.rows.get(e.host);
        if (row) {
          row.current = e.task;
          row.started ??= Date.now();
          if (row.task) row.task.title = `${e.host}: ${e.handler ? 'handler ' : ''}${e.task}`;
        }
        break;
      }
      case 'task_result': {
        this.diffs.add(e);
        this.track(e.host, e.status, e.msg, e.ignored === true);
        break;
      }
      case 'batch_end':
        if (this.fleet) {
          for (const h of e.hosts) this.fleet.running.delete(h);
          this.fleet.done += e.hosts.length;
        } else {
          for (const h of e.hosts) this.finishHost(h);
        }
        break;
      case 'recap':
        this.recap = e;
        for (const h of this.rows.keys()) this.finishHost(h);
        this.endFleet();
        break;
      default:
        break;
    }
  }

  private track(host: string, status: TaskStatus, msg: string, ignored: boolean): void {
    if (this.fleet) {
      if (status === 'changed') this.fleet.changed.add(host);
      if (status === 'failed' && !ignored) this.fleet.failed.add(host);
      if (status === 'unreachable') this.fleet.unreachable.add(host);
      return;
    }
    const row = this.rows.get(host);
    if (!row) return;
    if (status === 'changed') row.changed++;
    if (status === 'failed' && !ignored) row.failed = msg;
    if (status === 'unreachable') row.unreachable = msg;
  }

  private startRows(play: string, hosts: string[], batches: string[][]): void {
    const batchOf = new Map<string, number>();
    batches.forEach((b, i) => b.forEach((h) => batchOf.set(h, i + 1)));
    const tasks = hosts.map((h) => {
      const row: HostRow = { current: '', changed: 0, done: false };
      this.rows.set(h, row);
      return {
        title: batches.length > 1 && batchOf.get(h)! > 1 ? `${h}: waiting for batch ${batchOf.get(h)}` : `${h}: connecting`,
        task: (_ctx: unknown, task: TaskHandle) =>
          new Promise<void>((resolve, reject) => {
            row.task = task;
            row.resolve = () => {
              const took = row.started ? ` (${seconds(Date.now() - row.started)})` : '';
              if (row.unreachable) reject(new Error(`${h}: unreachable: ${row.unreachable}`));
              else if (row.failed) reject(new Error(`${h}: failed: ${row.failed}`));
              else {
                task.title = `${h}: ${row.changed ? `${row.changed} changed` : 'no change'}${took}`;
                resolve();
              }
            };
            if (row.done) row.resolve();
          }),
      };
    });
    const listr = new Listr(tasks, {
      concurrent: true,
      exitOnError: false,
      renderer: 'default',
      rendererOptions: { collapseSubtasks: false, showErrorMessage: true, formatOutput: 'truncate' },
    });
    this.write(`PLAY ${play}\n`);
    this.runs.push(listr.run().catch(() => undefined));
  }

  private finishHost(h: string): void {
    const row = this.rows.get(h);
    if (!row || row.done) return;
    row.done = true;
    row.resolve?.();
  }

  private fleetText(): string {
    const f = this.fleet!;
    const slow = [...f.running.entries()].sort((a, b) => a[1].since - b[1].since).slice(0, 3);
    const lines = [
      `batch ${f.batch}/${f.batches} · done ${f.done}/${f.total} · changed ${f.changed.size} · failed ${f.failed.size} · unreachable ${f.unreachable.size}`,
    ];
    if (slow.length) lines.push(`slowest: ${slow.map(([h, s]) => `${h} (${seconds(Date.now() - s.since)}, ${s.task})`).join('; ')}`);
    if (f.failed.size) lines.push(`failed: ${hostList([...f.failed], 4)}`);
    return lines.join('\n');
  }

  private startFleet(play: string, total: number, batches: number): void {
    this.endFleet();
    this.fleet = { play, batch: 1, batches, total, done: 0, changed: new Set(), failed: new Set(), unreachable: new Set(), running: new Map() };
    // Host rows are still tracked (for batch_end), but never drawn one by one.
    const listr = new Listr(
      [
        {
          title: `PLAY ${play}: ${total} hosts`,
          task: (_ctx: unknown, task: TaskHandle) =>
            new Promise<void>((resolve) => {
              this.fleetTask = task;
              this.fleetResolve = resolve;
              task.output = this.fleetText();
            }),
          rendererOptions: { persistentOutput: true, bottomBar: Infinity },
        },
      ],
      { renderer: 'default', rendererOptions: { lazy: true, formatOutput: 'truncate' } },
    );
    this.fleetTimer = setInterval(() => {
      if (this.fleetTask) this.fleetTask.output = this.fleetText();
    }, COMPACT_REDRAW_MS);
    this.runs.push(listr.run().catch(() => undefined));
  }

  private endFleet(): void {
    if (!this.fleet) return;
    if (this.fleetTimer) clearInterval(this.fleetTimer);
    if (this.fleetTask) {
      this.fleetTask.output = this.fleetText();
      this.fleetTask.title = `PLAY ${this.fleet.play}: ${this.fleet.total} hosts, ${this.fleet.changed.size} changed, ${this.fleet.failed.size} failed, ${this.fleet.unreachable.size} unreachable`;
    }
    this.fleetResolve?.();
    this.fleet = undefined;
  }

  async finish(): Promise<void> {
    await Promise.all(this.runs);
    if (this.recap) {
      const parts = [this.diffs.render(this.colour, this.check), renderBatches(this.recap.batches, this.colour), renderRecap(this.recap, this.colour)];
      this.write(`\n${parts.filter(Boolean).join('\n\n')}\n`);
    }
  }
}

/**
 * The terminal view (listr2): one row per host showing its current task, ending as changed / no change / failed.
 * Large fleets get a compact view instead: the current batch, how many hosts are done, changed, failed and
 * unreachable, and the slowest tasks in flight, redrawn on a timer rather than per event, so 500 hosts cost the
 * terminal a few lines a second. After the run it prints the warnings, the failures, the changes grouped across
 * hosts, the batch summary and the recap.
 */
import { Writable } from 'node:stream';
import { Listr, ListrLogger, ProcessOutput } from 'listr2';
import { displaySafeDeep } from './display-safe.js';
import type { RecapEvent, RunEvent } from './events.js';
import { BOLD, DiffCollector, hostList, paint, type Reporter, renderBatches, renderRecap, seconds, type Write } from './plain.js';

/** Above this many hosts in a play, the compact view is used. */
export const COMPACT_THRESHOLD = 20;
/** How often the compact view redraws: on this timer, never per event. */
export const COMPACT_REDRAW_MS = 500;
/** Tasks in flight the compact view names, longest first. */
const SLOWEST = 3;
/** Failure lines printed after the view; the rest are counted (the recap and --json have every host). */
const MAX_FAILURE_LINES = 50;

export interface ListrReporterOptions {
  /** where the live view is drawn (default process.stdout); listr2 holds back other writes to it while it draws */
  stdout?: NodeJS.WriteStream;
  /** how often the compact view redraws (default COMPACT_REDRAW_MS) */
  redrawMs?: number;
}

/** The part of a listr2 task wrapper we use. */
interface TaskHandle {
  title: string;
  output: string;
  skip(message?: string): void;
}

/**
 * The compact view's state and text, fed with run events. `now` is passed in so the text is a function of the
 * events and the clock alone.
 */
export class FleetView {
  private batch = 0;
  private batches: number;
  private batchHosts = 0;
  private readonly done = new Set<string>();
  private readonly changed = new Set<string>();
  private readonly failed = new Set<string>();
  private readonly unreachable = new Set<string>();
  /** hosts with a task in flight (or connecting): since when, and which */
  private readonly inFlight = new Map<string, { since: number; task: string }>();

  constructor(
    readonly play: string,
    readonly hosts: number,
    batches: number,
    private readonly check = false,
  ) {
    this.batches = batches;
  }

  handle(e: RunEvent, now: number): void {
    switch (e.type) {
      case 'batch_start':
        this.batch = e.batch;
        this.batches = e.batches;
        this.batchHosts = e.hosts.length;
        for (const h of e.hosts) this.inFlight.set(h, { since: now, task: 'connecting' });
        break;
      case 'task_start':
        this.inFlight.set(e.host, { since: now, task: `${e.handler ? 'handler ' : ''}${e.task}` });
        break;
      case 'task_result':
        this.inFlight.delete(e.host);
        if (e.status === 'changed') this.changed.add(e.host);
        // A host that failed runs nothing more in this play: it is done.
        if (e.status === 'failed' && !e.ignored) {
          this.failed.add(e.host);
          this.done.add(e.host);
        }
        if (e.status === 'unreachable') {
          this.unreachable.add(e.host);
          this.done.add(e.host);
        }
        break;
      case 'batch_end':
        for (const h of e.hosts) {
          this.done.add(h);
          this.inFlight.delete(h);
        }
        break;
      default:
        break;
    }
  }

  title(): string {
    return `PLAY ${this.play}: ${this.hosts} hosts${this.batches > 1 ? ` in ${this.batches} batches` : ''}`;
  }

  /** The title once the play is over: the totals. */
  finalTitle(durationMs: number): string {
    const notRun = this.hosts - this.done.size;
    return `PLAY ${this.play}: ${this.hosts} hosts, ${this.changed.size} ${this.check ? 'would change' : 'changed'}, ${this.failed.size} failed, ${this.unreachable.size} unreachable${notRun > 0 ? `, ${notRun} not run` : ''} (${seconds(durationMs)})`;
  }

  text(now: number): string {
    const lines = [
      `${this.batches > 1 ? `batch ${this.batch}/${this.batches} (${this.batchHosts} hosts) · ` : ''}${this.inFlight.size} in flight`,
      `done ${this.done.size}/${this.hosts} · ${this.check ? 'would change' : 'changed'} ${this.changed.size} · failed ${this.failed.size} · unreachable ${this.unreachable.size}`,
    ];
    const slowest = [...this.inFlight.entries()].sort((a, b) => a[1].since - b[1].since).slice(0, SLOWEST);
    const width = Math.max(0, ...slowest.map(([h]) => h.length));
    slowest.forEach(([h, s], i) => lines.push(`${i === 0 ? 'slowest: ' : '         '}${h.padEnd(width)}  ${seconds(now - s.since).padStart(6)}  ${s.task}`));
    if (this.failed.size) lines.push(`failed: ${hostList([...this.failed], 5)}`);
    if (this.unreachable.size) lines.push(`unreachable: ${hostList([...this.unreachable], 5)}`);
    return lines.join('\n');
  }
}

/** A stream that drops what it is given. */
function discard(): NodeJS.WriteStream {
  return new Writable({ write: (_chunk, _encoding, done) => done() }) as unknown as NodeJS.WriteStream;
}

interface HostRow {
  host: string;
  /** what the row says while the host works */
  title: string;
  task?: TaskHandle;
  /** the host's batch has started */
  ran: boolean;
  changed: number;
  failed?: string;
  unreachable?: string;
  started?: number;
  done: boolean;
  settle?: () => void;
}

interface FleetDraw {
  view: FleetView;
  started: number;
  task?: TaskHandle;
  timer?: NodeJS.Timeout;
  settle?: () => void;
  ended: boolean;
}

export class ListrReporter implements Reporter {
  private rows = new Map<string, HostRow>();
  private fleet?: FleetDraw;
  private readonly diffs = new DiffCollector();
  private readonly planned = new Map<string, string[][]>();
  private readonly warnings: string[] = [];
  private readonly failures: string[] = [];
  /** Views draw one after another: each holds the terminal until it has drawn its last frame. */
  private drawing: Promise<void> = Promise.resolve();
  private recap?: RecapEvent;
  private check = false;
  private readonly stdout: NodeJS.WriteStream;
  private readonly redrawMs: number;

  constructor(
    private readonly write: Write,
    private readonly colour = true,
    opts: ListrReporterOptions = {},
  ) {
    this.stdout = opts.stdout ?? process.stdout;
    this.redrawMs = opts.redrawMs ?? COMPACT_REDRAW_MS;
  }

  handle(event: RunEvent): void {
    // Messages, diffs and names carry text from hosts: never hand the terminal a control sequence.
    const e = displaySafeDeep(event);
    this.fleet?.view.handle(e, Date.now());
    switch (e.type) {
      case 'run_start':
        this.check = e.check;
        break;
      case 'play_start':
        this.endPlay();
        this.diffs.addHosts(e.hosts);
        this.planned.set(e.play, e.batches);
        if (e.hosts.length > COMPACT_THRESHOLD) this.startFleet(e.play, e.hosts.length, e.batches.length);
        else this.startRows(e.play, e.hosts, e.batches);
        break;
      case 'batch_start':
        for (const h of e.hosts) {
          const row = this.rows.get(h);
          if (row) {
            row.ran = true;
            this.retitle(row, `${h}: starting`);
          }
        }
        break;
      case 'task_start': {
        const row = this.rows.get(e.host);
        if (row) {
          row.started ??= Date.now();
          this.retitle(row, `${e.host}: ${e.handler ? 'handler ' : ''}${e.task}`);
        }
        break;
      }
      case 'task_result': {
        this.diffs.add(e);
        const failed = e.status === 'unreachable' || (e.status === 'failed' && !e.ignored);
        if (failed) this.failures.push(`  ${e.host}  ${e.handler ? 'handler ' : ''}${e.task}${e.item !== undefined ? ` (${e.item})` : ''}: ${e.status === 'unreachable' ? 'unreachable: ' : ''}${e.msg}`);
        const row = this.rows.get(e.host);
        if (row) {
          if (e.status === 'changed') row.changed++;
          if (e.status === 'failed' && !e.ignored) row.failed = e.msg;
          if (e.status === 'unreachable') row.unreachable = e.msg;
        }
        break;
      }
      case 'warning':
        this.warnings.push(`  ${e.host ? `${e.host}: ` : ''}${e.msg}`);
        break;
      case 'batch_end':
        for (const h of e.hosts) this.finishRow(h);
        break;
      case 'recap':
        this.recap = e;
        this.endPlay();
        break;
      default:
        break;
    }
  }

  /** listr2 options for one view: drawn on our terminal, never on another renderer, and Ctrl-C left to the CLI. */
  private listrOptions(lazy: boolean) {
    const rendererOptions = {
      lazy,
      collapseSubtasks: false,
      showErrorMessage: true,
      formatOutput: 'truncate' as const,
      // stderr is left alone (listr2 writes nothing there): Ctrl-C's notice and errors show at once.
      logger: new ListrLogger({ processOutput: new ProcessOutput(this.stdout, discard()) }),
    };
    return {
      concurrent: true,
      exitOnError: false,
      // listr2 would exit the process on SIGINT; the CLI stops the rollout gracefully instead.
      registerSignalListeners: false,
      renderer: 'default' as const,
      rendererOptions,
      // This reporter is only chosen for a terminal: draw the same view even if listr2 thinks otherwise.
      fallbackRenderer: 'default' as const,
      fallbackRendererOptions: rendererOptions,
    };
  }

  /** Queue a view: it starts drawing once the one before it has finished. */
  private show(draw: () => Promise<unknown>): void {
    this.drawing = this.drawing.then(draw).then(
      () => undefined,
      () => undefined,
    );
  }

  private retitle(row: HostRow, title: string): void {
    if (row.done) return;
    row.title = title;
    if (row.task) row.task.title = title;
  }

  private startRows(play: string, hosts: string[], batches: string[][]): void {
    const batchOf = new Map<string, number>();
    batches.forEach((b, i) => b.forEach((h) => batchOf.set(h, i + 1)));
    this.rows = new Map();
    const tasks = hosts.map((h) => {
      const later = batches.length > 1 && batchOf.get(h)! > 1;
      const row: HostRow = { host: h, title: later ? `${h}: waiting for batch ${batchOf.get(h)}` : `${h}: connecting`, ran: false, changed: 0, done: false };
      this.rows.set(h, row);
      return {
        title: row.title,
        task: (_ctx: unknown, task: TaskHandle) =>
          new Promise<void>((resolve, reject) => {
            row.task = task;
            // Events may have come while an earlier view was still drawing.
            task.title = row.title;
            row.settle = () => {
              if (row.unreachable) reject(new Error(`${h}: unreachable: ${row.unreachable}`));
              else if (row.failed) reject(new Error(`${h}: failed: ${row.failed}`));
              else if (!row.ran) {
                task.skip(`${h}: not run`);
                resolve();
              } else {
                const took = row.started ? ` (${seconds(Date.now() - row.started)})` : '';
                task.title = `${h}: ${row.changed ? `${row.changed} ${this.check ? 'would change' : 'changed'}` : 'no change'}${took}`;
                resolve();
              }
            };
            if (row.done) row.settle();
          }),
      };
    });
    const listr = new Listr<unknown, 'default', 'default'>(tasks, this.listrOptions(false));
    this.show(async () => {
      this.stdout.write(`PLAY ${play}\n`);
      await listr.run();
    });
  }

  private finishRow(h: string): void {
    const row = this.rows.get(h);
    if (!row || row.done) return;
    row.done = true;
    row.settle?.();
  }

  private startFleet(play: string, hosts: number, batches: number): void {
    const fleet: FleetDraw = { view: new FleetView(play, hosts, batches, this.check), started: Date.now(), ended: false };
    this.fleet = fleet;
    this.rows = new Map();
    const options = { outputBar: 1, persistentOutput: true };
    const listr = new Listr<unknown, 'default', 'default'>(
      [
        {
          title: fleet.view.title(),
          task: (_ctx: unknown, task: TaskHandle) =>
            new Promise<void>((resolve) => {
              fleet.task = task;
              fleet.settle = resolve;
              if (fleet.ended) {
                this.endFleet(fleet);
                return;
              }
              task.output = fleet.view.text(Date.now());
              // The only redraws while the play runs: events change the state, the timer shows it.
              fleet.timer = setInterval(() => {
                task.output = fleet.view.text(Date.now());
              }, this.redrawMs);
              fleet.timer.unref();
            }),
          rendererOptions: options,
          fallbackRendererOptions: options,
        },
      ],
      this.listrOptions(true),
    );
    this.show(() => listr.run());
  }

  private endFleet(fleet: FleetDraw): void {
    fleet.ended = true;
    if (!fleet.task) return;
    clearInterval(fleet.timer);
    fleet.task.output = fleet.view.text(Date.now());
    fleet.task.title = fleet.view.finalTitle(Date.now() - fleet.started);
    fleet.settle?.();
  }

  /** The play is over (or the run): settle every row and the fleet view so the views finish drawing. */
  private endPlay(): void {
    for (const h of this.rows.keys()) this.finishRow(h);
    if (this.fleet) this.endFleet(this.fleet);
    this.fleet = undefined;
  }

  async finish(): Promise<void> {
    this.endPlay();
    await this.drawing;
    if (!this.recap) return;
    const section = (title: string, lines: string[]) => (lines.length ? `${paint(this.colour, BOLD, title)}\n${lines.join('\n')}` : '');
    const failures =
      this.failures.length > MAX_FAILURE_LINES
        ? [...this.failures.slice(0, MAX_FAILURE_LINES), `  … ${this.failures.length - MAX_FAILURE_LINES} more (--json lists them all)`]
        : this.failures;
    const parts = [
      section('WARNINGS', this.warnings),
      section('FAILURES', failures),
      this.diffs.render(this.colour, this.check),
      renderBatches(this.recap.batches, this.planned, this.colour),
      renderRecap(this.recap, this.colour),
    ];
    this.write(`\n${parts.filter(Boolean).join('\n\n')}\n`);
  }
}

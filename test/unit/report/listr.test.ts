import { Writable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import type { HostCounters, RecapEvent, RunEvent, TaskStatus } from '../../../src/report/events.js';
import { COMPACT_THRESHOLD, FleetView, ListrReporter } from '../../../src/report/listr.js';
import { screen } from '../../support/terminal.js';

const hosts = (n: number) => Array.from({ length: n }, (_, i) => `h${i + 1}.lab.test`);
const counters = (c: Partial<HostCounters> = {}): HostCounters => ({ ok: 0, changed: 0, failed: 0, skipped: 0, unreachable: 0, ignored: 0, execs: 0, steps: 0, ...c });
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** A terminal as listr2 and log-update see it, recording every write with its time. */
function fakeTerminal() {
  const writes: { at: number; text: string }[] = [];
  const stream = new Writable({
    write(chunk: Buffer, _encoding, done) {
      writes.push({ at: Date.now(), text: chunk.toString() });
      done();
    },
  });
  Object.assign(stream, { isTTY: true, columns: 100, rows: 40 });
  return { stdout: stream as unknown as NodeJS.WriteStream, writes, text: () => writes.map((w) => w.text).join('') };
}


function result(host: string, task: string, status: TaskStatus, msg = 'done', extra: Partial<Extract<RunEvent, { type: 'task_result' }>> = {}): RunEvent {
  return { type: 'task_result', host, task, module: 'postconf', handler: false, status, msg, check: false, duration_ms: 3, ...extra };
}

function recap(names: string[], extra: Partial<RecapEvent> = {}): RecapEvent {
  return { type: 'recap', hosts: Object.fromEntries(names.map((h) => [h, counters({ ok: 2 })])), exit_code: 0, duration_ms: 1000, batches: [], not_run: [], ...extra };
}

describe('FleetView (the compact view of a large fleet)', () => {
  it('shows the batch, the hosts done, changed, failed and unreachable, and the tasks in flight longest', () => {
    const all = hosts(50);
    const v = new FleetView('smtps', 50, 2);
    v.handle({ type: 'batch_start', play: 'smtps', batch: 1, batches: 2, hosts: all.slice(0, 25) }, 0);
    all.slice(0, 25).forEach((h, i) => v.handle({ type: 'task_start', host: h, task: 'main.cf', handler: false }, 100 + i));
    for (const h of all.slice(0, 20)) v.handle(result(h, 'main.cf', 'changed'), 2_000);
    v.handle(result('h21.lab.test', 'main.cf', 'failed', 'boom'), 2_000);
    v.handle(result('h22.lab.test', 'main.cf', 'failed', 'ignored', { ignored: true }), 2_000);
    v.handle(result('h23.lab.test', 'connect', 'unreachable', 'timeout'), 2_000);
    v.handle({ type: 'task_start', host: 'h1.lab.test', task: 'restart postfix', handler: true }, 2_500);
    expect(v.title()).toBe('PLAY smtps: 50 hosts in 2 batches');
    expect(v.text(4_000).split('\n')).toEqual([
      'batch 1/2 (25 hosts) · 3 in flight',
      'done 2/50 · changed 20 · failed 1 · unreachable 1',
      'slowest: h24.lab.test   3.88s  main.cf',
      '         h25.lab.test   3.88s  main.cf',
      '         h1.lab.test    1.50s  handler restart postfix',
      'failed: h21.lab.test',
      'unreachable: h23.lab.test',
    ]);
  });

  it('names hosts still connecting, counts a batch done at its end, and ends with the totals and the hosts never run', () => {
    const v = new FleetView('smtps', 30, 3, true);
    const all = hosts(30);
    v.handle({ type: 'batch_start', play: 'smtps', batch: 1, batches: 3, hosts: all.slice(0, 10) }, 0);
    // Connecting and gathering facts count as in flight: a host that hangs there is named.
    expect(v.text(500).split('\n').slice(0, 3)).toEqual([
      'batch 1/3 (10 hosts) · 10 in flight',
      'done 0/30 · would change 0 · failed 0 · unreachable 0',
      'slowest: h1.lab.test   0.50s  connecting',
    ]);
    for (const h of all.slice(0, 10)) v.handle({ type: 'task_start', host: h, task: 't', handler: false }, 0);
    v.handle(result('h1.lab.test', 't', 'changed'), 10);
    v.handle({ type: 'batch_end', play: 'smtps', batch: 1, hosts: all.slice(0, 10), changed: ['h1.lab.test'], failed: [], unreachable: [], duration_ms: 10 }, 20);
    expect(v.text(30).split('\n')).toEqual(['batch 1/3 (10 hosts) · 0 in flight', 'done 10/30 · would change 1 · failed 0 · unreachable 0']);
    expect(v.finalTitle(61_000)).toBe('PLAY smtps: 30 hosts, 1 would change, 0 failed, 0 unreachable, 20 not run (61.0s)');
  });
});

describe('ListrReporter', () => {
  it('draws a large fleet on a timer, not per event: a bounded number of frames and lines whatever the event rate', async () => {
    const term = fakeTerminal();
    let summary = '';
    const redrawMs = 25;
    const r = new ListrReporter((s) => (summary += s), false, { stdout: term.stdout, redrawMs });
    const all = hosts(50);
    const batches = [all.slice(0, 25), all.slice(25)];
    const t0 = Date.now();
    r.handle({ type: 'run_start', version: 1, playbook: 'smtps.yaml', check: false, diff: false });
    r.handle({ type: 'play_start', play: 'smtps', hosts: all, batches });
    let events = 0;
    for (const [b, batch] of batches.entries()) {
      r.handle({ type: 'batch_start', play: 'smtps', batch: b + 1, batches: 2, hosts: batch });
      for (let t = 0; t < 12; t++) {
        for (const h of batch) {
          r.handle({ type: 'task_start', host: h, task: `task ${t}`, handler: false });
          r.handle(result(h, `task ${t}`, h === 'h7.lab.test' && t === 3 ? 'failed' : 'changed', 'msg'));
          events += 2;
        }
        await sleep(10);
      }
      r.handle({ type: 'batch_end', play: 'smtps', batch: b + 1, hosts: batch, changed: batch, failed: b === 0 ? ['h7.lab.test'] : [], unreachable: [], duration_ms: 100 });
    }
    r.handle(recap(all, { exit_code: 2 }));
    await r.finish();
    const elapsed = Date.now() - t0;

    // Frames: the timer's, plus a few for the task starting and ending. One per event would be `events` frames.
    const frames = term.writes.filter((w) => w.text.includes('\x1b[2K')).length;
    expect(events).toBe(1200);
    expect(frames).toBeGreaterThanOrEqual(3);
    expect(frames).toBeLessThanOrEqual(Math.ceil(elapsed / redrawMs) + 6);
    const lines = term.text().split('\n').length - 1;
    expect(lines).toBeLessThanOrEqual((frames + 2) * 8);

    // What stays on the terminal: the totals, not fifty rows.
    const [title, ...view] = screen(term.text());
    expect(title).toMatch(/^✔ PLAY smtps: 50 hosts, 50 changed, 1 failed, 0 unreachable \(\d+\.\d\ds\)$/);
    expect(view).toEqual(['  › batch 2/2 (25 hosts) · 0 in flight', '    done 50/50 · changed 50 · failed 1 · unreachable 0', '    failed: h7.lab.test']);
    expect(summary).toContain('FAILURES\n  h7.lab.test  task 3: msg\n');
    expect(summary).toContain('BATCHES\n');
    expect(summary).toContain('RECAP\n');
  });

  it(`draws one row per host up to ${COMPACT_THRESHOLD} hosts, ending changed, no change, failed or not run`, async () => {
    const term = fakeTerminal();
    let summary = '';
    const r = new ListrReporter((s) => (summary += s), false, { stdout: term.stdout });
    const all = hosts(6);
    const batches = [all.slice(0, 3), all.slice(3)];
    r.handle({ type: 'run_start', version: 1, playbook: 'smtps.yaml', check: false, diff: false });
    r.handle({ type: 'play_start', play: 'smtps', hosts: all, batches });
    r.handle({ type: 'batch_start', play: 'smtps', batch: 1, batches: 2, hosts: batches[0]! });
    for (const h of batches[0]!) r.handle({ type: 'task_start', host: h, task: 'main.cf', handler: false });
    r.handle(result('h1.lab.test', 'main.cf', 'changed'));
    r.handle(result('h2.lab.test', 'main.cf', 'ok'));
    r.handle(result('h3.lab.test', 'main.cf', 'failed', 'certificate missing'));
    r.handle({ type: 'warning', host: 'h3.lab.test', msg: 'handlers not run because the host failed, recorded for the next run: restart postfix' });
    r.handle({ type: 'batch_end', play: 'smtps', batch: 1, hosts: batches[0]!, changed: ['h1.lab.test'], failed: ['h3.lab.test'], unreachable: [], duration_ms: 1500 });
    const batch = { play: 'smtps', batch: 1, hosts: batches[0]!, changed: ['h1.lab.test'], failed: ['h3.lab.test'], unreachable: [], duration_ms: 1500 };
    r.handle(recap(all, { exit_code: 2, batches: [batch], not_run: batches[1]!, stopped: 'max_fail_percentage' }));
    await r.finish();

    const rows = screen(term.text());
    expect(rows[0]).toBe('PLAY smtps');
    expect(rows[1]).toMatch(/^✔ h1\.lab\.test: 1 changed \(\d+\.\d\ds\)$/);
    expect(rows[2]).toMatch(/^✔ h2\.lab\.test: no change \(\d+\.\d\ds\)$/);
    expect(rows.slice(3)).toEqual(['✖ h3.lab.test: failed: certificate missing', '↓ h4.lab.test: not run', '↓ h5.lab.test: not run', '↓ h6.lab.test: not run']);
    expect(summary.split('\n')).toEqual(
      expect.arrayContaining([
        'WARNINGS',
        '  h3.lab.test: handlers not run because the host failed, recorded for the next run: restart postfix',
        'FAILURES',
        '  h3.lab.test  main.cf: certificate missing',
        '  batch 1/2: 3 hosts, 1 changed, 1 failed (h3.lab.test), 0 unreachable, 1.50s',
        '  batch 2/2: not run (3 hosts)',
      ]),
    );
  });

  it('leaves Ctrl-C to the CLI: no SIGINT listener of its own while it draws', async () => {
    const term = fakeTerminal();
    const r = new ListrReporter(() => undefined, false, { stdout: term.stdout });
    const before = process.listenerCount('SIGINT');
    r.handle({ type: 'run_start', version: 1, playbook: 'p.yaml', check: false, diff: false });
    r.handle({ type: 'play_start', play: 'p', hosts: ['a'], batches: [['a']] });
    r.handle({ type: 'play_start', play: 'q', hosts: hosts(30), batches: [hosts(30)] });
    await sleep(20);
    expect(process.listenerCount('SIGINT')).toBe(before);
    r.handle(recap(['a']));
    await r.finish();
  });
});

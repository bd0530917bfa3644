import { describe, expect, it } from 'vitest';
import type { BatchEndEvent, FileDiff, HostCounters, RecapEvent, RunEvent, TaskResultEvent } from '../../../src/report/events.js';
import { DiffCollector, hostList, hostRanges, PlainReporter, renderBatches } from '../../../src/report/plain.js';

const hosts = (n: number, from = 1, step = 1) => Array.from({ length: n }, (_, i) => `h${from + i * step}.lab.test`);
const zero = (): HostCounters => ({ ok: 0, changed: 0, failed: 0, skipped: 0, unreachable: 0, ignored: 0, execs: 0, steps: 0 });

function result(host: string, task: string, diffs: FileDiff[] = [], extra: Partial<TaskResultEvent> = {}): TaskResultEvent {
  return { type: 'task_result', host, task, module: 'copy', handler: false, status: diffs.length ? 'changed' : 'ok', msg: 'msg', check: true, duration_ms: 5, ...(diffs.length ? { diffs } : {}), ...extra };
}

const diff = (path: string, body: string, created = false): FileDiff => ({ path, created, diff: `--- ${path} (before)\n+++ ${path} (after)\n${body}\n` });

describe('hostRanges', () => {
  it.each<[string, string[], string[]]>([
    ['a consecutive run', hosts(48), ['h[1:48].lab.test']],
    ['every other host (one flavour of the lab)', hosts(6, 1, 2), ['h[1:11:2].lab.test']],
    ['two names are not worth a range', ['h1', 'h2'], ['h1', 'h2']],
    ['names without numbers stay, in the order given', ['db', 'web1', 'web2', 'web3', 'mail'], ['db', 'web[1:3]', 'mail']],
    ['a range stands where its first given member stood', ['h3', 'x', 'h1', 'h2'], ['h[1:3]', 'x']],
    ['zero-padded numbers keep their width and only run with their own width', ['web01', 'web02', 'web03', 'web10'], ['web[01:03]', 'web10']],
    ['runs of different steps', ['h1', 'h2', 'h3', 'h5', 'h7', 'h9'], ['h[1:3]', 'h[5:9:2]']],
    ['different suffixes are different families', ['a1.x', 'a2.x', 'a3.x', 'a1.y'], ['a[1:3].x', 'a1.y']],
    ['duplicates count once', ['h1', 'h1', 'h2', 'h3'], ['h[1:3]']],
    ['no hosts', [], []],
  ])('%s', (_name, input, expected) => {
    expect(hostRanges(input)).toEqual(expected);
  });

  it('hostList keeps a long irregular list to one line: the first items, an ellipsis, the last', () => {
    const names = ['a', 'b', 'c', 'd', 'e', 'f', 'g', 'h'];
    expect(hostList(names, 6)).toBe('a, b, c, d, e … h');
    expect(hostList(names.slice(0, 6), 6)).toBe('a, b, c, d, e, f');
    expect(hostList([...hosts(500), 'db'], 6)).toBe('h[1:500].lab.test, db');
  });
});

describe('DiffCollector', () => {
  const all = hosts(12);
  const odd = all.filter((_, i) => i % 2 === 0);
  // Hosts finish in whatever order they happen to: the summary must not depend on it.
  const finishing = [...all].sort((a, b) => (a.length - b.length) * 7 + a.localeCompare(b)).reverse();

  function collect(order: string[]): DiffCollector {
    const c = new DiffCollector();
    c.addHosts(all);
    for (const h of order) {
      c.add(result(h, 'sasl config', [diff('/etc/postfix/sasl/smtpd.conf', '+mech_list: PLAIN LOGIN', true)]));
      c.add(result(h, 'main.cf', [diff('/etc/postfix/main.cf', `+smtpd_tls_cert_file = /etc/certs/${h}.crt`)]));
      c.add(result(h, 'master.cf', [diff('/etc/postfix/master.cf', odd.includes(h) ? '+smtps inet n - n - - smtpd' : '+submissions inet n - y - - smtpd')]));
      c.add(result(h, 'a task that changed nothing'));
    }
    return c;
  }

  it('prints an identical diff once with its hosts, and different diffs per host, in task and inventory order', () => {
    const text = collect(finishing).render(false, true);
    const headers = text.split('\n').filter((l) => l.startsWith('['));
    expect(headers).toEqual([
      '[sasl config] /etc/postfix/sasl/smtpd.conf (new file) — same change on 12 hosts: h[1:12].lab.test',
      ...all.map((h) => `[main.cf] /etc/postfix/main.cf — ${h}`),
      '[master.cf] /etc/postfix/master.cf — same change on 6 hosts: h[1:11:2].lab.test',
      '[master.cf] /etc/postfix/master.cf — same change on 6 hosts: h[2:12:2].lab.test',
    ]);
    expect(text.startsWith('CHANGES (check mode: nothing was written)\n')).toBe(true);
    expect(text).toContain(
      '[master.cf] /etc/postfix/master.cf — same change on 6 hosts: h[2:12:2].lab.test\n--- /etc/postfix/master.cf (before)\n+++ /etc/postfix/master.cf (after)\n+submissions inet n - y - - smtpd\n',
    );
    expect(text.split('+mech_list: PLAIN LOGIN')).toHaveLength(2);
    expect(collect([...all]).render(false, true)).toBe(text);
  });

  it('names a scattered set of hosts, abbreviated when long', () => {
    const c = new DiffCollector();
    const scattered = ['mx7', 'relay', 'mx2', 'edge-a', 'edge-b', 'gw', 'mx9', 'backup', 'smarthost'];
    c.addHosts(scattered);
    for (const h of scattered) c.add(result(h, 't', [diff('/f', '+x')]));
    expect(c.render(false, false).split('\n').slice(0, 2)).toEqual([
      'CHANGES',
      '[t] /f — same change on 9 hosts: mx7, relay, mx2, edge-a, edge-b, gw, mx9 … smarthost',
    ]);
  });

  it('renders nothing without diffs', () => {
    const c = new DiffCollector();
    c.add(result('h1', 'nothing'));
    expect(c.render(false, false)).toBe('');
    expect(c.size).toBe(0);
  });
});

describe('renderBatches', () => {
  const planned = [hosts(3), hosts(3, 4), hosts(3, 7), hosts(3, 10)];
  const first: Omit<BatchEndEvent, 'type'> = {
    play: 'smtps',
    batch: 1,
    hosts: planned[0]!,
    changed: ['h1.lab.test', 'h3.lab.test'],
    failed: ['h2.lab.test'],
    unreachable: [],
    duration_ms: 12_345,
  };

  it('gives each batch that ran its hosts, changes, failures by name and time, then the batches never reached', () => {
    expect(renderBatches([first], new Map([['smtps', planned]]), false)).toBe(
      [
        'BATCHES',
        '  batch 1/4: 3 hosts, 2 changed, 1 failed (h2.lab.test), 0 unreachable, 12.3s',
        '  batches 2-4/4: not run (9 hosts)',
      ].join('\n'),
    );
  });

  it('names the play when several plays ran in batches, and the one batch left when only one is', () => {
    const second = { ...first, play: 'relay', batch: 1, hosts: ['r1', 'r2'], changed: [], failed: [], unreachable: ['r2'], duration_ms: 800 };
    const text = renderBatches([first, { ...first, batch: 2, hosts: planned[1]!, failed: [], changed: [] }, { ...first, batch: 3, hosts: planned[2]!, failed: [], changed: [] }, second], new Map([['smtps', planned], ['relay', [['r1', 'r2'], ['r3']]]]), false);
    expect(text.split('\n')).toEqual([
      'BATCHES',
      '  smtps',
      '    batch 1/4: 3 hosts, 2 changed, 1 failed (h2.lab.test), 0 unreachable, 12.3s',
      '    batch 2/4: 3 hosts, 0 changed, 0 failed, 0 unreachable, 12.3s',
      '    batch 3/4: 3 hosts, 0 changed, 0 failed, 0 unreachable, 12.3s',
      '    batch 4/4: not run (3 hosts)',
      '  relay',
      '    batch 1/2: 2 hosts, 0 changed, 0 failed, 1 unreachable (r2), 0.80s',
      '    batch 2/2: not run (1 host)',
    ]);
  });

  it('is empty when no play was split into batches', () => {
    expect(renderBatches([{ ...first, hosts: hosts(12) }], new Map([['smtps', [hosts(12)]]]), false)).toBe('');
  });
});

describe('PlainReporter', () => {
  it('prints the batches as they start, each result, and at the end the changes, the batch summary and the recap', () => {
    let out = '';
    const r = new PlainReporter((s) => (out += s), false, false);
    const all = hosts(12);
    const batches = [all.slice(0, 3), all.slice(3, 6), all.slice(6, 9), all.slice(9)];
    const events: RunEvent[] = [
      { type: 'run_start', version: 1, playbook: 'smtps.yaml', check: false, diff: true },
      { type: 'play_start', play: 'smtps', hosts: all, batches },
      { type: 'batch_start', play: 'smtps', batch: 1, batches: 4, hosts: batches[0]! },
      result('h2.lab.test', 'read the certificate', [], { status: 'failed', msg: 'certificate /etc/ssl/certs/h2.lab.test.crt does not exist', check: false }),
      result('h1.lab.test', 'main.cf', [diff('/etc/postfix/main.cf', '+smtpd_tls_loglevel = 1')], { check: false }),
      result('h3.lab.test', 'main.cf', [diff('/etc/postfix/main.cf', '+smtpd_tls_loglevel = 1')], { check: false }),
      result('h1.lab.test', 'unchanged', [], { check: false }),
      { type: 'batch_end', play: 'smtps', batch: 1, hosts: batches[0]!, changed: ['h1.lab.test', 'h3.lab.test'], failed: ['h2.lab.test'], unreachable: [], duration_ms: 4_200 },
    ];
    const recap: RecapEvent = {
      type: 'recap',
      hosts: Object.fromEntries(all.map((h) => [h, zero()])),
      exit_code: 2,
      duration_ms: 4_300,
      batches: [{ play: 'smtps', batch: 1, hosts: batches[0]!, changed: ['h1.lab.test', 'h3.lab.test'], failed: ['h2.lab.test'], unreachable: [], duration_ms: 4_200 }],
      not_run: all.slice(3),
      stopped: '1 of 3 hosts failed in batch 1 (33% > max_fail_percentage 0%)',
      retry_file: '/tmp/smtps.retry',
    };
    for (const e of [...events, recap]) r.handle(e);
    const lines = out.split('\n');
    expect(lines.slice(0, 6)).toEqual([
      'PLAY smtps — 12 hosts in 4 batches',
      'batch 1/4 (3 hosts): h[1:3].lab.test',
      'failed       h2.lab.test  read the certificate: certificate /etc/ssl/certs/h2.lab.test.crt does not exist',
      'changed      h1.lab.test  main.cf: msg',
      'changed      h3.lab.test  main.cf: msg',
      '',
    ]);
    expect(out).toContain('[main.cf] /etc/postfix/main.cf — same change on 2 hosts: h1.lab.test, h3.lab.test\n');
    expect(out).toContain('BATCHES\n  batch 1/4: 3 hosts, 2 changed, 1 failed (h2.lab.test), 0 unreachable, 4.20s\n  batches 2-4/4: not run (9 hosts)\n');
    expect(out).toContain('  not run (9 hosts): h[4:12].lab.test\n');
    expect(out).toContain('  rollout stopped: 1 of 3 hosts failed in batch 1 (33% > max_fail_percentage 0%)\n  retry with: --limit @/tmp/smtps.retry\n  4.30s, exit code 2\n');
  });
});

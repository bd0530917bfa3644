/**
 * Fleet rollouts on labs of their own: serial batches stopped by max_fail_percentage with later hosts untouched,
 * the retry file and a rerun with `--limit @file`, handlers that survive a failed run, the diff summary across
 * hosts, and the terminal's compact view of a 50-host run drawn at a bounded rate.
 * Run: PROVISION_REQUIRE_LAB=1 npx vitest run --project lab test/integration/fleet.test.ts
 */
import { spawn } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { afterAll, afterEach, beforeAll, describe, expect, inject, it } from 'vitest';
import { quote } from '../../src/connection/shell-quote.js';
import type { BatchEndEvent, PlayStartEvent, RecapEvent, RunEvent, TaskResultEvent, WarningEvent } from '../../src/report/events.js';
import { labDown, labExec, LabExistsError, labExists, labOwnership, labReset, labUp, type LabHost, type LabState, type LabUpOptions } from '../lab/lab.js';
import { labArgs, runCli } from '../support/cli.js';
import { tempDir } from '../support/tmp.js';
import { screen } from '../support/terminal.js';

const lab = inject('lab');
const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const SMTPS = path.join(ROOT, 'playbooks/smtps.yaml');

/** A lab of our own: the first free name of base, base2, …; one left behind by a dead test run is cleared. */
async function upOwnLab(base: string, opts: Omit<LabUpOptions, 'name' | 'owner'>): Promise<LabState> {
  for (const name of [base, `${base}2`, `${base}3`, `${base}4`]) {
    if (labExists(name)) {
      if (labOwnership(name) !== 'dead') continue;
      await labDown(name);
    }
    try {
      return await labUp({ ...opts, name, owner: true });
    } catch (e) {
      if (e instanceof LabExistsError) continue;
      throw e;
    }
  }
  throw new Error(`every lab name from ${base} to ${base}4 is in use`);
}

async function sh(host: LabHost, script: string, stdin?: string): Promise<string> {
  const r = await labExec(host, script, { timeoutMs: 30_000, stdin });
  if (r.code !== 0) throw new Error(`${host.name}: ${script} exited ${r.code}: ${r.stderr}`);
  return r.stdout;
}

const certPath = (h: LabHost) => `${h.flavour === 'rhel' ? '/etc/pki/tls/certs' : '/etc/ssl/certs'}/${h.name}.crt`;
const rulesPath = (h: LabHost) => (h.flavour === 'rhel' ? '/etc/sysconfig/iptables' : '/etc/iptables/rules.v4');

/** What the SMTPS playbook may touch on a host: its files and the live firewall. */
function fingerprint(h: LabHost): Promise<string> {
  return sh(
    h,
    `sha256sum /etc/postfix/main.cf /etc/postfix/master.cf ${rulesPath(h)} ${certPath(h)}
     iptables -S | sha256sum
     ls -lA /etc/postfix/sasl /etc/sasldb2 2>&1 || true`,
  );
}

/** The smtps playbook with play keywords added after `hosts: mail`. */
function smtpsWith(dir: string, name: string, keywords: string): string {
  const text = readFileSync(SMTPS, 'utf8');
  if (!text.includes('\n  hosts: mail\n')) throw new Error(`${SMTPS} no longer has "  hosts: mail": update this test`);
  const file = path.join(dir, name);
  writeFileSync(file, text.replace('\n  hosts: mail\n', `\n  hosts: mail\n${keywords}`));
  return file;
}

const ofType = <T extends RunEvent['type']>(events: RunEvent[], type: T) => events.filter((e): e is Extract<RunEvent, { type: T }> => e.type === type);
const recapOf = (events: RunEvent[]) => ofType(events, 'recap')[0] as RecapEvent;

describe.skipIf(!lab)('fleet rollouts on a 12-host lab', () => {
  let fleet: LabState;
  const host = (short: string) => fleet.hosts.find((h) => h.short === short)!;
  const dir = tempDir('provision-fleet-');
  const dirty = new Set<LabHost>();

  beforeAll(async () => {
    fleet = await upOwnLab('fleet', { hosts: 12 });
  });
  afterEach(async () => {
    if (dirty.size) await labReset(fleet, [...dirty]);
    dirty.clear();
  });
  afterAll(async () => {
    if (fleet) await labDown(fleet.name);
  });

  it('serial 25% with max_fail_percentage 0: stops after the failing batch, later hosts untouched; --limit @retry converges', async () => {
    const pb = smtpsWith(dir, 'rollout.yaml', '  serial: "25%"\n  max_fail_percentage: 0\n  order: sorted\n');
    const sorted = fleet.hosts.map((h) => h.name).sort();
    const batches = [sorted.slice(0, 3), sorted.slice(3, 6), sorted.slice(6, 9), sorted.slice(9)];
    // In sorted order the first batch is h1, h10, h11: break h10 there.
    const victim = host('h10');
    expect(batches[0]).toContain(victim.name);
    const later = fleet.hosts.filter((h) => !batches[0]!.includes(h.name));
    const before = new Map(await Promise.all(later.map(async (h) => [h.name, await fingerprint(h)] as const)));
    const cert = await sh(victim, `cat ${certPath(victim)}`);
    await sh(victim, `rm ${certPath(victim)}`);
    fleet.hosts.filter((h) => batches[0]!.includes(h.name)).forEach((h) => dirty.add(h));

    const first = await runCli(['run', pb, ...labArgs(fleet), '--json']);
    expect(first.code, first.stderr).toBe(2);
    const play = ofType(first.events, 'play_start')[0] as PlayStartEvent;
    expect(play.batches).toEqual(batches);
    expect(ofType(first.events, 'batch_start').map((b) => b.batch)).toEqual([1]);
    const ran = ofType(first.events, 'batch_end') as BatchEndEvent[];
    expect(ran.map((b) => [b.batch, b.failed, [...b.changed].sort()])).toEqual([[1, [victim.name], batches[0]!.filter((h) => h !== victim.name).sort()]]);
    const recap = recapOf(first.events);
    expect(recap.stopped).toBe('1 of 3 hosts failed in batch 1 (33% > max_fail_percentage 0%)');
    expect(recap.not_run).toEqual(batches.slice(1).flat());
    expect(recap.batches).toHaveLength(1);
    const failure = (first.events as TaskResultEvent[]).find((e) => e.type === 'task_result' && e.status === 'failed');
    expect(failure).toMatchObject({ host: victim.name, task: 'read the TLS certificate' });
    expect(failure!.msg).toContain(`${certPath(victim)} does not exist`);

    // Later batches were never touched: no connection, no exec, the same bytes and live rules.
    for (const h of later) {
      expect(recap.hosts[h.name]).toMatchObject({ ok: 0, changed: 0, failed: 0, execs: 0 });
      expect(await fingerprint(h)).toBe(before.get(h.name));
    }

    // The retry file sits beside the playbook and names the failed host only.
    const retry = path.join(dir, 'rollout.retry');
    expect(recap.retry_file).toBe(retry);
    expect(readFileSync(retry, 'utf8')).toBe(`${victim.name}\n`);

    await sh(victim, `cat > ${certPath(victim)} && chmod 644 ${certPath(victim)}`, cert);
    const rerun = await runCli(['run', pb, ...labArgs(fleet), '--limit', `@${retry}`, '--json']);
    expect(rerun.code, rerun.stderr).toBe(0);
    expect((ofType(rerun.events, 'play_start')[0] as PlayStartEvent).hosts).toEqual([victim.name]);
    const again = recapOf(rerun.events);
    expect(Object.keys(again.hosts)).toEqual([victim.name]);
    expect(again.hosts[victim.name]!.changed).toBeGreaterThan(0);
    const probe = (rerun.events as TaskResultEvent[]).find((e) => e.type === 'task_result' && e.module === 'smtp_probe');
    expect(probe?.status).toBe('ok');

    // Converged: a check of the same hosts finds nothing to do.
    const check = await runCli(['check', pb, ...labArgs(fleet), '--limit', `@${retry}`, '--json']);
    expect(check.code, check.stdout).toBe(0);
    expect(recapOf(check.events).hosts[victim.name]!.changed).toBe(0);
  });

  it('--canary 2 in reverse_sorted order: a failed canary stops the rollout; a good one lets the batches follow', async () => {
    const pb = path.join(dir, 'canary.yaml');
    writeFileSync(
      pb,
      `- name: release marker
  hosts: mail
  serial: "50%"
  order: reverse_sorted
  tasks:
    - name: the release marker
      copy:
        dest: /etc/provision-release
        content: "r1\\n"
    - name: the host is healthy
      command: test ! -e /etc/provision-broken
      changed_when: false
`,
    );
    const order = fleet.hosts.map((h) => h.name).sort().reverse();
    const [first, second] = [host(order[0]!.split('.')[0]!), host(order[1]!.split('.')[0]!)];
    await sh(second, 'touch /etc/provision-broken');
    fleet.hosts.forEach((h) => dirty.add(h));
    const marked = async () => (await Promise.all(fleet.hosts.map(async (h) => ((await sh(h, 'cat /etc/provision-release 2>/dev/null || true')) ? h.name : null)))).filter(Boolean);

    const stopped = await runCli(['run', pb, ...labArgs(fleet), '--canary', '2', '--no-retry-file']);
    expect(stopped.code, stopped.stdout).toBe(2);
    const lines = stopped.stdout.split('\n');
    expect(lines).toContain(`PLAY release marker — 12 hosts in 3 batches`);
    expect(lines).toContain(`batch 1/3 (2 hosts): ${first.name}, ${second.name}`);
    expect(lines.filter((l) => l.startsWith('batch '))).toHaveLength(1);
    expect(stopped.stdout).toMatch(new RegExp(`\\nBATCHES\\n  batch 1/3: 2 hosts, 2 changed, 1 failed \\(${second.name.replace(/\./g, '\\.')}\\), 0 unreachable, [\\d.]+s\\n  batches 2-3/3: not run \\(10 hosts\\)\\n`));
    expect(lines).toContain(`  rollout stopped: canary batch failed on ${second.name}`);
    expect((await marked()).sort()).toEqual([first.name, second.name].sort());

    await sh(second, 'rm /etc/provision-broken');
    const rolled = await runCli(['run', pb, ...labArgs(fleet), '--canary', '2', '--no-retry-file', '--json']);
    expect(rolled.code, rolled.stdout).toBe(0);
    expect((ofType(rolled.events, 'play_start')[0] as PlayStartEvent).batches).toEqual([order.slice(0, 2), order.slice(2, 7), order.slice(7)]);
    expect(recapOf(rolled.events).batches.map((b) => [b.batch, b.changed.length, b.failed.length])).toEqual([
      [1, 0, 0],
      [2, 5, 0],
      [3, 5, 0],
    ]);
    expect((await marked()).sort()).toEqual(fleet.hosts.map((h) => h.name).sort());
  });

  it('a handler notified before a failure runs on the next run, although nothing changes then', async () => {
    const target = host('h3');
    dirty.add(target);
    const pb = path.join(dir, 'pending.yaml');
    // A play name of its own: the record is found by it, whatever else provision keeps on the host.
    const playName = `TLS logging, then a step that fails (${process.pid})`;
    const records = async () => (await sh(target, `grep -lF ${quote(`"play": ${JSON.stringify(playName)}`)} /var/lib/provision/pending/*.json 2>/dev/null || true`)).split('\n').filter(Boolean);
    writeFileSync(
      pb,
      `- name: ${playName}
  hosts: mail
  tasks:
    - name: main.cf logs TLS sessions
      postconf:
        settings:
          smtpd_tls_loglevel: 1
      notify: restart postfix
    - name: the deploy marker exists
      command: test -e /etc/provision-go
      changed_when: false
  handlers:
    - name: restart postfix
      service:
        name: postfix
        state: restarted
`,
    );
    const args = ['run', pb, ...labArgs(fleet), '--limit', target.name, '--no-retry-file', '--json'];
    const masterPid = async () => (await sh(target, 'cat /var/spool/postfix/pid/master.pid')).trim();
    const pid0 = await masterPid();

    const failed = await runCli(args);
    expect(failed.code).toBe(2);
    expect((failed.events as TaskResultEvent[]).filter((e) => e.type === 'task_result').map((e) => [e.task, e.status])).toEqual([
      ['main.cf logs TLS sessions', 'changed'],
      ['the deploy marker exists', 'failed'],
    ]);
    expect(await sh(target, 'postconf -h smtpd_tls_loglevel')).toBe('1\n');
    expect(await masterPid()).toBe(pid0);
    const recorded = await records();
    expect(recorded).toHaveLength(1);
    expect(JSON.parse(await sh(target, `cat ${quote(recorded[0]!)}`))).toMatchObject({ playbook: 'pending.yaml', play: playName, handlers: ['restart postfix'] });
    expect((ofType(failed.events, 'warning') as WarningEvent[]).map((w) => w.msg)).toContain('handlers not run because the host failed, recorded for the next run: restart postfix');

    await sh(target, 'touch /etc/provision-go');
    const mainCf = await sh(target, 'sha256sum /etc/postfix/main.cf');
    const next = await runCli(args);
    expect(next.code, next.stdout).toBe(0);
    const results = (next.events as TaskResultEvent[]).filter((e) => e.type === 'task_result');
    expect(results.filter((e) => !e.handler).map((e) => e.status)).toEqual(['ok', 'ok']);
    expect(results.filter((e) => e.handler).map((e) => [e.task, e.status])).toEqual([['restart postfix', 'changed']]);
    expect(await sh(target, 'sha256sum /etc/postfix/main.cf')).toBe(mainCf);
    const pid1 = await masterPid();
    expect(pid1).not.toBe(pid0);
    expect(await records()).toEqual([]);

    // Done once: the run after that restarts nothing.
    const quiet = await runCli(args);
    expect(quiet.code).toBe(0);
    expect((quiet.events as TaskResultEvent[]).filter((e) => e.type === 'task_result' && e.handler)).toEqual([]);
    expect(await masterPid()).toBe(pid1);
  });

  it('check prints an identical diff once with its hosts and different diffs per host', async () => {
    const before = await Promise.all(fleet.hosts.map(fingerprint));
    const r = await runCli(['check', SMTPS, ...labArgs(fleet)]);
    expect(r.code, r.stdout).toBe(8);
    const headers = r.stdout.split('\n').filter((l) => l.startsWith('['));
    const count = (prefix: string) => headers.filter((l) => l.startsWith(prefix));
    expect(count('[Cyrus SASL checks passwords against sasldb]')).toEqual([
      '[Cyrus SASL checks passwords against sasldb] /etc/postfix/sasl/smtpd.conf (new file) — same change on 12 hosts: h[1:12].lab.test',
    ]);
    // main.cf names each host's own certificate: one diff per host, in inventory order.
    const inventoryOrder = [...fleet.hosts.filter((h) => h.flavour === 'rhel'), ...fleet.hosts.filter((h) => h.flavour === 'debian')].map((h) => h.name);
    expect(count('[main.cf offers TLS')).toEqual(inventoryOrder.map((h) => `[main.cf offers TLS and points SASL at its configuration] /etc/postfix/main.cf — ${h}`));
    // master.cf and the firewall differ by flavour only: one diff for each.
    expect(count('[master.cf runs smtpd')).toEqual([
      '[master.cf runs smtpd on 465 with implicit TLS and SASL] /etc/postfix/master.cf — same change on 6 hosts: h[1:11:2].lab.test',
      '[master.cf runs smtpd on 465 with implicit TLS and SASL] /etc/postfix/master.cf — same change on 6 hosts: h[2:12:2].lab.test',
    ]);
    // Lab hosts have IPv6 rules files too: 465 is opened in both families (issue 13).
    expect(count('[the firewall accepts').sort()).toEqual(
      [
        '[the firewall accepts new connections to 465/tcp] /etc/sysconfig/iptables — same change on 6 hosts: h[1:11:2].lab.test',
        '[the firewall accepts new connections to 465/tcp] /etc/sysconfig/ip6tables — same change on 6 hosts: h[1:11:2].lab.test',
        '[the firewall accepts new connections to 465/tcp] /etc/iptables/rules.v4 — same change on 6 hosts: h[2:12:2].lab.test',
        '[the firewall accepts new connections to 465/tcp] /etc/iptables/rules.v6 — same change on 6 hosts: h[2:12:2].lab.test',
      ].sort(),
    );
    expect(r.stdout.split('+-A INPUT -p tcp -m conntrack --ctstate NEW -m tcp --dport 465 -j ACCEPT\n')).toHaveLength(5);
    expect(await Promise.all(fleet.hosts.map(fingerprint))).toEqual(before);
  });
});

interface Chunk {
  at: number;
  text: string;
}

/** Run the CLI (from source) in a pseudo-terminal of the given size, recording what it draws and when. */
function runInTerminal(args: string[], dir: string, timeoutMs: number): Promise<{ code: number | null; chunks: Chunk[] }> {
  const entry = path.join(dir, 'provision-entry.mts');
  writeFileSync(entry, `import { main } from ${JSON.stringify(pathToFileURL(path.join(ROOT, 'src/cli/main.ts')).href)};\nprocess.exitCode = await main(process.argv);\n`);
  const quoted = ['node', '--import', 'tsx', entry, ...args].map((a) => `'${a.replace(/'/g, "'\\''")}'`).join(' ');
  return new Promise((resolve, reject) => {
    const child = spawn('script', ['-qfec', `stty cols 120 rows 50; exec ${quoted}`, '/dev/null'], { cwd: ROOT, detached: true, stdio: ['pipe', 'pipe', 'inherit'] });
    const chunks: Chunk[] = [];
    const timer = setTimeout(() => process.kill(-child.pid!, 'SIGKILL'), timeoutMs);
    child.stdout.on('data', (b: Buffer) => chunks.push({ at: Date.now(), text: b.toString() }));
    child.on('error', (e) => {
      clearTimeout(timer);
      reject(e);
    });
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, chunks });
    });
  });
}


/** The most lines and bytes written in any one-second window. */
function peakPerSecond(chunks: Chunk[]): { lines: number; bytes: number } {
  let lines = 0;
  let bytes = 0;
  for (let i = 0; i < chunks.length; i++) {
    let l = 0;
    let b = 0;
    for (let j = i; j < chunks.length && chunks[j]!.at - chunks[i]!.at < 1000; j++) {
      l += chunks[j]!.text.split('\n').length - 1;
      b += Buffer.byteLength(chunks[j]!.text);
    }
    lines = Math.max(lines, l);
    bytes = Math.max(bytes, b);
  }
  return { lines, bytes };
}

describe.skipIf(!lab)('the terminal view of a 50-host rollout', () => {
  let fleet: LabState;
  const dir = tempDir('provision-fleet50-');

  beforeAll(async () => {
    fleet = await upOwnLab('fleetbig', { hosts: 50 });
  }, 600_000);
  afterAll(async () => {
    if (fleet) await labDown(fleet.name);
  });

  it('draws a compact view at a bounded number of lines per second, then the summary per batch', async () => {
    const pb = smtpsWith(dir, 'fleet.yaml', '  serial: ["10%", "40%", "50%"]\n');
    const victim = fleet.hosts.find((h) => h.short === 'h7')!;
    await sh(victim, `rm ${certPath(victim)}`);

    const { code, chunks } = await runInTerminal(['run', pb, ...labArgs(fleet), '--no-retry-file'], dir, 540_000);
    const all = chunks.map((c) => c.text).join('');
    expect(code, all.slice(-3000)).toBe(2);

    // The live view ends where the summary starts (its first section heading, in bold).
    const cut = Math.min(...['WARNINGS', 'FAILURES', 'CHANGES', 'BATCHES', 'RECAP'].map((m) => all.indexOf(`\x1b[1m${m}`)).filter((i) => i >= 0));
    expect(cut).toBeLessThan(all.length);
    const live: Chunk[] = [];
    for (let at = 0, i = 0; i < chunks.length && at + chunks[i]!.text.length <= cut; at += chunks[i]!.text.length, i++) live.push(chunks[i]!);
    const duration = live.at(-1)!.at - live[0]!.at;
    expect(duration).toBeGreaterThan(5_000);
    // One frame of the compact view is at most 7 lines, drawn about twice a second. Rows for 50 hosts, or a
    // redraw per event, would put hundreds of lines a second on the terminal.
    const peak = peakPerSecond(live);
    expect(peak.lines).toBeLessThanOrEqual(40);
    expect(peak.bytes).toBeLessThanOrEqual(8_000);
    const frames = live.map((c) => c.text).join('').split('PLAY SMTPS on 465/tcp').length - 1;
    expect(frames).toBeLessThanOrEqual(Math.ceil(duration / 500) + 10);

    const view = screen(all.slice(0, cut));
    expect(view[0]).toMatch(/^✔ PLAY SMTPS on 465\/tcp with TLS and SASL: 50 hosts, 49 changed, 1 failed, 0 unreachable \(\d+(\.\d+)?s\)$/);
    expect(view).toContain('    failed: h7.lab.test');
    expect(view.length).toBeLessThanOrEqual(8);

    const summary = screen(all.slice(cut));
    expect(summary).toContain('FAILURES');
    expect(summary.find((l) => l.startsWith('  h7.lab.test  read the TLS certificate: '))).toContain(`${certPath(victim)} does not exist`);
    const batches = summary.slice(summary.indexOf('BATCHES') + 1, summary.indexOf('BATCHES') + 4);
    expect(batches.map((l) => l.replace(/, [\d.]+s$/, ''))).toEqual([
      '  batch 1/3: 5 hosts, 4 changed, 1 failed (h7.lab.test), 0 unreachable',
      '  batch 2/3: 20 hosts, 20 changed, 0 failed, 0 unreachable',
      '  batch 3/3: 25 hosts, 25 changed, 0 failed, 0 unreachable',
    ]);
    expect(summary).toContain('RECAP');
  }, 600_000);
});

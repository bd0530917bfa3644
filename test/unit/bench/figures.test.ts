import { describe, expect, it } from 'vitest';
import { parseCpuStat, parseGnuTime } from '../../../bench/measure.js';
import { execStats, ratios, renderTable, type RunRecord, targets } from '../../../bench/report.js';
import { countSshInvocations, parseAnsibleRecap, provisionOutcome, type RunKind, type Tool } from '../../../bench/tools.js';
import type { LabState } from '../../../test/lab/lab.js';

const record = (tool: Tool, run: RunKind, wallS: number, extra: Partial<RunRecord> = {}): RunRecord => ({
  tool,
  run,
  ok: true,
  exitCode: 0,
  wallS,
  userS: 1,
  sysS: 0.5,
  cpuSource: 'cgroup',
  hostCpuS: 2,
  machineCpuS: 4,
  maxRssMb: 120,
  peakTreePssMb: 90,
  peakProcesses: 3,
  execs: { mean: 2, min: 2, max: 2 },
  loadBefore: [0.1, 0.2, 0.3],
  busyBefore: 0.02,
  ...extra,
});

describe('benchmark figures', () => {
  it('reads GNU time and cgroup cpu.stat', () => {
    expect(parseGnuTime('Command exited with non-zero status 2\n12.34 1.50 0.25 131072\n')).toEqual({ wallS: 12.34, userS: 1.5, sysS: 0.25, maxRssKb: 131072 });
    expect(parseGnuTime('garbage\n')).toBeNull();
    expect(parseCpuStat('usage_usec 3500000\nuser_usec 2500000\nsystem_usec 1000000\nnr_periods 0\n')).toEqual({ userS: 2.5, sysS: 1 });
  });

  it('takes execs and success from the provision recap', () => {
    const recap = { type: 'recap', exit_code: 0, hosts: { h1: { changed: 0, failed: 0, unreachable: 0, execs: 2 }, h2: { changed: 0, failed: 0, unreachable: 0, execs: 3 } } };
    const ok = provisionOutcome(`{"type":"run_start"}\n${JSON.stringify(recap)}\n`, 0, 'second', 2);
    expect(ok).toEqual({ ok: true, execs: new Map([['h1', 2], ['h2', 3]]) });
    expect(execStats(ok.execs)).toEqual({ mean: 2.5, min: 2, max: 3 });
    expect(provisionOutcome(`${JSON.stringify(recap)}\n`, 0, 'first', 2)).toMatchObject({ ok: false, problem: 'only 0 of 2 hosts changed' });
    expect(provisionOutcome('not json\n', 1, 'first', 2)).toMatchObject({ ok: false, problem: 'no recap (exit 1)' });
  });

  it("counts Ansible's ssh invocations per host by address, leaving out control commands", () => {
    const lab = { hosts: [{ name: 'h1.lab.test', ip: '198.19.0.1' }, { name: 'h2.lab.test', ip: '198.19.0.2' }] } as LabState;
    const log = [
      "-o ControlMaster=auto -o ControlPersist=60s 198.19.0.1 /bin/sh -c '/usr/bin/python3 && sleep 0'",
      "-o ControlMaster=auto 198.19.0.1 /bin/sh -c '/usr/bin/python3 && sleep 0'",
      '-O stop 198.19.0.1',
      "-o ControlMaster=auto 198.19.0.2 /bin/sh -c 'echo ~ && sleep 0'",
      "-o ControlMaster=auto 198.19.0.10 /bin/sh -c 'true'",
    ].join('\n');
    expect(countSshInvocations(log, lab)).toEqual(new Map([['h1.lab.test', 2], ['h2.lab.test', 1]]));
    expect(
      parseAnsibleRecap('PLAY RECAP ****\nh1.lab.test                : ok=14   changed=7    unreachable=0    failed=0    skipped=0    rescued=0    ignored=0\n'),
    ).toEqual(new Map([['h1.lab.test', { ok: 14, changed: 7, unreachable: 0, failed: 0, skipped: 0, rescued: 0, ignored: 0 }]]));
  });

  it('states the ratios and the targets, and prints them', () => {
    const records = [
      record('floor', 'first', 10),
      record('provision', 'first', 12),
      record('ansible', 'first', 120),
      record('floor', 'second', 2),
      record('provision', 'second', 3, { execs: { mean: 2, min: 2, max: 2 } }),
      record('ansible', 'second', 30),
      record('floor', 'check', 2),
      record('provision', 'check', 2.4),
      record('ansible', 'check', 10, { ok: false, problem: 'exit 2' }),
    ];
    expect(ratios(records)).toEqual([
      { run: 'first', provisionOverFloor: 1.2, ansibleOverProvision: 10 },
      { run: 'second', provisionOverFloor: 1.5, ansibleOverProvision: 10 },
      { run: 'check', provisionOverFloor: 1.2, ansibleOverProvision: null },
    ]);
    const t = targets('smtps', records, 50);
    expect(t.map((x) => [x.name, x.met])).toEqual([
      ['50 hosts, no-change run: provision / floor', false],
      ['50 hosts, check: provision / floor', true],
      ['50 hosts, no-change run: provision execs per host (max)', true],
      ['50 hosts, check: provision execs per host (max)', true],
      ['50 hosts, first run: provision / floor', true],
      ['50 hosts, first run: Ansible / provision', true],
      ['50 hosts, no-change run: Ansible / provision', true],
      ['50 hosts, check: Ansible / provision', null],
    ]);
    const table = renderTable(records, t);
    expect(table).toContain('check          ansible    FAILED: exit 2');
    expect(table).toContain('MISS  50 hosts, no-change run: provision / floor: 1.50 (target ≤ 1.25)');
    expect(table).toContain('n/a   50 hosts, check: Ansible / provision: — (target ≥ 8)');
    expect(targets('scale', [record('provision', 'first', 1, { maxRssMb: 310 })], 500).at(-1)).toMatchObject({ name: '500 hosts: provision peak RSS (MB)', value: 310, met: false });
  });
});

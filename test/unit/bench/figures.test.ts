import { describe, expect, it } from 'vitest';
import { parseCpuStat, parseGnuTime } from '../../../bench/measure.js';
import { execStats, ratios, renderTable, type RunRecord, shapeCosts, targets } from '../../../bench/report.js';
import { labNameFor, labOptionsFor, loginCostProblem, parseShapes, type Shape, shapeOfLab } from '../../../bench/shapes.js';
import { countSshInvocations, parseAnsibleRecap, provisionOutcome, type RunKind, type Tool } from '../../../bench/tools.js';
import type { LabState } from '../../../test/lab/lab.js';

const record = (tool: Tool, run: RunKind, wallS: number, extra: Partial<RunRecord> = {}): RunRecord => ({
  shape: 'default',
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
  steps: null,
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
    expect(ok).toEqual({ ok: true, execs: new Map([['h1', 2], ['h2', 3]]), steps: null });
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
      record('provision', 'check', 2.3),
      record('ansible', 'check', 10, { ok: false, problem: 'exit 2' }),
    ];
    expect(ratios(records)).toEqual([
      { shape: 'default', run: 'first', provisionOverFloor: 1.2, ansibleOverProvision: 10 },
      { shape: 'default', run: 'second', provisionOverFloor: 1.5, ansibleOverProvision: 10 },
      { shape: 'default', run: 'check', provisionOverFloor: 1.15, ansibleOverProvision: null },
    ]);
    const t = targets('smtps', records, 50);
    expect(t.map((x) => [x.name, x.met])).toEqual([
      ['50 hosts, default login, no-change run: provision / floor', false],
      ['50 hosts, default login, check: provision / floor', true],
      ['50 hosts, default login, no-change run: provision execs per host (max)', true],
      ['50 hosts, default login, check: provision execs per host (max)', true],
      ['50 hosts, default login, first run: provision / floor', true],
      ['50 hosts, default login, first run: Ansible / provision', true],
      ['50 hosts, default login, no-change run: Ansible / provision', true],
      ['50 hosts, default login, check: Ansible / provision', null],
    ]);
    const table = renderTable(records, t);
    expect(table).toContain('default login  check          ansible    FAILED: exit 2');
    expect(table).toContain('MISS  50 hosts, default login, no-change run: provision / floor: 1.50 (target ≤ 1.2)');
    expect(table).toContain('n/a   50 hosts, default login, check: Ansible / provision: — (target ≥ 8)');
    expect(table).not.toContain('steps/host');
    expect(table).not.toContain('costly login / default login');
    expect(targets('scale', [record('provision', 'first', 1, { maxRssMb: 310 })], 500).at(-1)).toMatchObject({
      name: '500 hosts, default login: provision peak RSS (MB)',
      value: 310,
      met: false,
    });
  });

  it('gives every shape its own ratios and targets, and what the costly login costs each tool', () => {
    const on = (shape: Shape, tool: Tool, run: RunKind, wallS: number, hostCpuS: number) => record(tool, run, wallS, { shape, hostCpuS });
    const records = [
      on('default', 'provision', 'first', 20, 30),
      on('default', 'floor', 'first', 16, 20),
      on('costly', 'provision', 'first', 60, 120),
      on('costly', 'floor', 'first', 20, 35),
      on('costly', 'provision', 'check', 5, 10),
    ];
    expect(ratios(records).filter((r) => r.run === 'first')).toEqual([
      { shape: 'default', run: 'first', provisionOverFloor: 1.25, ansibleOverProvision: null },
      { shape: 'costly', run: 'first', provisionOverFloor: 3, ansibleOverProvision: null },
    ]);
    expect(shapeCosts(records)).toEqual([
      { tool: 'floor', run: 'first', wallRatio: 1.25, hostCpuRatio: 1.75 },
      { tool: 'provision', run: 'first', wallRatio: 3, hostCpuRatio: 4 },
      { tool: 'provision', run: 'check', wallRatio: null, hostCpuRatio: null },
    ]);
    expect(shapeCosts(records.filter((r) => r.shape === 'costly'))).toEqual([]);
    const t = targets('scale', records, 500);
    expect(t.filter((x) => x.name.includes('first run')).map((x) => [x.name, x.met])).toEqual([
      ['500 hosts, default login, first run: provision / floor', true],
      ['500 hosts, costly login, first run: provision / floor', false],
    ]);
    const table = renderTable(records, t).split('\n');
    // Rows of the default shape come first, then the costly one's, each in run and tool order.
    const runRows = table.map((l) => l.split(/\s{2,}/)).filter((c) => c[1] === 'first run' && (c[2] === 'floor' || c[2] === 'provision'));
    expect(runRows.map((c) => c.slice(0, 4))).toEqual([
      ['default login', 'first run', 'floor', '16.00'],
      ['default login', 'first run', 'provision', '20.00'],
      ['costly login', 'first run', 'floor', '20.00'],
      ['costly login', 'first run', 'provision', '60.00'],
    ]);
    expect(table).toContain('costly login / default login:');
    expect(table.slice(table.indexOf('costly login / default login:')).find((l) => /^first run\s+provision/.test(l))?.split(/\s+/).slice(-2)).toEqual(['3.00', '4.00']);
  });

  it('shows steps per host only where the tool reports them apart from execs', () => {
    const host = (execs: number, steps?: number) => ({ changed: 0, failed: 0, unreachable: 0, execs, ...(steps === undefined ? {} : { steps }) });
    const recap = (hosts: Record<string, object>) => `${JSON.stringify({ type: 'recap', exit_code: 0, hosts })}\n`;
    const both = provisionOutcome(recap({ h1: host(2, 1), h2: host(2, 3) }), 0, 'check', 2);
    expect(both.steps).toEqual(new Map([['h1', 1], ['h2', 3]]));
    expect(provisionOutcome(recap({ h1: host(2, 1), h2: host(2) }), 0, 'check', 2).steps).toBeNull();
    const withSteps = renderTable([record('provision', 'check', 2, { steps: execStats(both.steps!) }), record('floor', 'check', 2)], []).split('\n');
    expect(withSteps[0]).toMatch(/execs\/host  steps\/host$/);
    expect(withSteps.find((l) => l.includes('provision'))).toMatch(/\s2\s+2\.0 \(1-3\)$/);
    expect(withSteps.find((l) => l.includes('floor'))).toMatch(/\s2\s+—$/);
  });
});

describe('host shapes', () => {
  it('reads --shapes in the order given, once each, and refuses unknown ones', () => {
    expect(parseShapes('default,costly')).toEqual(['default', 'costly']);
    expect(parseShapes(' costly , default,costly')).toEqual(['costly', 'default']);
    expect(() => parseShapes('default,slow')).toThrow('"slow" is not a host shape (default, costly)');
    expect(() => parseShapes(',')).toThrow('name at least one shape');
  });

  it('runs the costly shape on a lab of its own that has costlyLogin, and knows a lab by its shape', () => {
    expect([labNameFor('bench', 'default'), labNameFor('bench', 'costly'), labNameFor('bench-scale', 'costly')]).toEqual(['bench', 'bench-costly', 'bench-scale-costly']);
    expect(labOptionsFor('costly')).toEqual({ costlyLogin: true });
    expect(labOptionsFor('default')).toEqual({ costlyLogin: false });
    expect(shapeOfLab({ costlyLogin: true })).toBe('costly');
    expect(shapeOfLab({})).toBe('default');
  });

  it("refuses to time a lab whose login cost does not match the shape's name", () => {
    expect(loginCostProblem('costly', '15\n')).toBeNull();
    expect(loginCostProblem('default', '0\n')).toBeNull();
    expect(loginCostProblem('costly', '1\n')).toBe("a login costs 10 ms of CPU, not about 150 ms: the lab's hosts are not costly-login ones");
    expect(loginCostProblem('default', '16\n')).toBe("a login costs 160 ms of CPU: root's ~/.bashrc on the lab's hosts is not the distribution's");
    expect(loginCostProblem('default', 'bash: /proc/1/stat: No such file\n')).toMatch(/^could not read the login's CPU/);
  });
});

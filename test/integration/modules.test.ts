/**
 * Modules that real roles need, on a lab host over real SSH: check mode predicts the run, the run converges, a
 * second run and check change nothing.
 * Run: PROVISION_REQUIRE_LAB=1 npx vitest run --project lab test/integration/modules.test.ts
 */
import { afterAll, describe, expect, inject, it } from 'vitest';
import type { TaskResultEvent } from '../../src/report/events.js';
import type { LabHost } from '../lab/lab.js';
import { provision, sh, writePlaybook } from './faults/support.js';
import { labArgs, runCli } from '../support/cli.js';
import { tempDir } from '../support/tmp.js';

const lab = inject('lab');

const results = (events: unknown[], host: LabHost) =>
  (events as TaskResultEvent[]).filter((e) => e.type === 'task_result' && e.host === host.name && !e.handler).map((e) => [e.task, e.status, e.msg]);

describe.skipIf(!lab)('modules on a lab host', () => {
  const state = lab!;
  const h = (state?.hosts ?? [])[0] as LabHost;
  // net.ipv4.ip_forward belongs to the host's own network namespace: setting it touches no other host.
  const FILE = '/etc/sysctl.d/90-provision-test.conf';

  afterAll(async () => {
    if (state) await sh(h, `rm -f ${FILE}; sysctl -q -w net.ipv4.ip_forward=0`);
  });

  it('sysctl: check predicts, the run writes the file and the kernel, a second run and check are ok', async () => {
    await sh(h, `rm -f ${FILE}; sysctl -q -w net.ipv4.ip_forward=0`);
    const pb = writePlaybook(
      tempDir('provision-modules-'),
      'sysctl.yml',
      `- hosts: all
  gather_facts: false
  tasks:
    - name: forward
      ansible.posix.sysctl: { name: net.ipv4.ip_forward, value: "1", sysctl_file: ${FILE}, sysctl_set: true }
`,
    );
    const want = [['forward', 'changed', `set net.ipv4.ip_forward in ${FILE} to 1; set the running net.ipv4.ip_forward to 1 (is 0); reload ${FILE}`]];
    const check = await runCli(['check', pb, ...labArgs(state), '--json', '--no-retry-file', '--limit', h.name]);
    expect(check.code, check.stderr).toBe(8);
    expect(results(check.events, h)).toEqual(want);
    expect(await sh(h, `sysctl -n net.ipv4.ip_forward; test -e ${FILE} || echo absent`)).toBe('0\nabsent\n');

    const run = await provision(state, pb, ['--limit', h.name]);
    expect(run.code, run.stderr).toBe(0);
    expect(results(run.events, h)).toEqual(want);
    expect(await sh(h, `sysctl -n net.ipv4.ip_forward; cat ${FILE}; stat -c %a ${FILE}`)).toBe('1\nnet.ipv4.ip_forward=1\n644\n');

    const again = await provision(state, pb, ['--limit', h.name]);
    expect(again.code, again.stderr).toBe(0);
    expect(results(again.events, h)).toEqual([['forward', 'ok', `net.ipv4.ip_forward in ${FILE} is 1, and the running kernel has it`]]);
    const recheck = await runCli(['check', pb, ...labArgs(state), '--json', '--no-retry-file', '--limit', h.name]);
    expect(recheck.code, recheck.stderr).toBe(0);

    // The kernel drifted: the file is right, so only a reload runs.
    await sh(h, 'sysctl -q -w net.ipv4.ip_forward=0');
    const drift = await provision(state, pb, ['--limit', h.name]);
    expect(results(drift.events, h)).toEqual([['forward', 'changed', `set the running net.ipv4.ip_forward to 1 (is 0); reload ${FILE}`]]);
    expect(await sh(h, 'sysctl -n net.ipv4.ip_forward')).toBe('1\n');
  }, 120_000);
});

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
  const CRON = '/etc/cron.d/provision-test';

  afterAll(async () => {
    if (state) await sh(h, `rm -f ${FILE} ${CRON}; sysctl -q -w net.ipv4.ip_forward=0; groupdel provision-test 2>/dev/null; true`);
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

  it('cron with cron_file: check predicts, the run writes the marked job, a second run is ok, absent removes the file', async () => {
    await sh(h, `mkdir -p /etc/cron.d; rm -f ${CRON}`);
    const dir = tempDir('provision-modules-');
    const pb = writePlaybook(
      dir,
      'cron.yml',
      `- hosts: all
  gather_facts: false
  tasks:
    - name: renew
      cron: name="renew certificates" special_time=daily user=root cron_file=provision-test job="/usr/bin/true renew"
    - name: nightly
      ansible.builtin.cron: { name: nightly, minute: 30, hour: 2, user: root, cron_file: provision-test, job: /usr/bin/true nightly }
`,
    );
    const want = [
      ['renew', 'changed', `set cron job "renew certificates" in ${CRON}`],
      ['nightly', 'changed', `set cron job "nightly" in ${CRON}`],
    ];
    const check = await runCli(['check', pb, ...labArgs(state), '--json', '--no-retry-file', '--limit', h.name]);
    expect(check.code, check.stderr).toBe(8);
    expect(results(check.events, h)).toEqual(want);
    expect(await sh(h, `test -e ${CRON} || echo absent`)).toBe('absent\n');

    const run = await provision(state, pb, ['--limit', h.name]);
    expect(run.code, run.stderr).toBe(0);
    expect(results(run.events, h)).toEqual(want);
    expect(await sh(h, `cat ${CRON}; stat -c %a ${CRON}`)).toBe('#Ansible: renew certificates\n@daily root /usr/bin/true renew\n#Ansible: nightly\n30 2 * * * root /usr/bin/true nightly\n644\n');

    const again = await provision(state, pb, ['--limit', h.name]);
    expect(again.code, again.stderr).toBe(0);
    expect(results(again.events, h).map((r) => r[1])).toEqual(['ok', 'ok']);
    const recheck = await runCli(['check', pb, ...labArgs(state), '--json', '--no-retry-file', '--limit', h.name]);
    expect(recheck.code, recheck.stderr).toBe(0);

    const rm = writePlaybook(
      dir,
      'cron-absent.yml',
      `- hosts: all
  gather_facts: false
  tasks:
    - cron: { name: "renew certificates", state: absent, cron_file: provision-test }
    - cron: { name: nightly, state: absent, cron_file: provision-test }
`,
    );
    const gone = await provision(state, rm, ['--limit', h.name]);
    expect(gone.code, gone.stderr).toBe(0);
    expect(results(gone.events, h).map((r) => r[2])).toEqual([`remove cron job "renew certificates" in ${CRON}`, `remove cron job "nightly" and the file ${CRON}, now empty`]);
    expect(await sh(h, `test -e ${CRON} || echo absent`)).toBe('absent\n');
  }, 120_000);

  it('group: check predicts, the run adds it (the lab host\'s own /etc/group), a second run is ok, gid and absent', async () => {
    await sh(h, 'groupdel provision-test 2>/dev/null; true');
    const dir = tempDir('provision-modules-');
    const pb = (gid: number, st = 'present') =>
      writePlaybook(dir, `group-${gid}-${st}.yml`, `- hosts: all\n  gather_facts: false\n  tasks:\n    - name: g\n      group: name=provision-test gid=${gid} state=${st}\n`);
    const want = [['g', 'changed', 'add group provision-test with gid 4242']];
    const check = await runCli(['check', pb(4242), ...labArgs(state), '--json', '--no-retry-file', '--limit', h.name]);
    expect(check.code, check.stderr).toBe(8);
    expect(results(check.events, h)).toEqual(want);
    expect(await sh(h, 'getent group provision-test || echo absent')).toBe('absent\n');

    const run = await provision(state, pb(4242), ['--limit', h.name]);
    expect(run.code, run.stderr).toBe(0);
    expect(results(run.events, h)).toEqual([['g', 'changed', 'added group provision-test with gid 4242']]);
    expect(await sh(h, 'getent group provision-test')).toBe('provision-test:x:4242:\n');
    const again = await provision(state, pb(4242), ['--limit', h.name]);
    expect(results(again.events, h)).toEqual([['g', 'ok', 'group provision-test exists (gid 4242)']]);

    const mod = await provision(state, pb(4243), ['--limit', h.name]);
    expect(results(mod.events, h)).toEqual([['g', 'changed', 'changed the gid of group provision-test from 4242 to 4243']]);
    const del = await provision(state, pb(4243, 'absent'), ['--limit', h.name]);
    expect(results(del.events, h)).toEqual([['g', 'changed', 'removed group provision-test (gid 4243)']]);
    expect(await sh(h, 'getent group provision-test || echo absent')).toBe('absent\n');
    // The machine's own group database is not the lab host's.
    expect((await import('node:child_process')).spawnSync('getent', ['group', 'provision-test']).status).toBe(2);
  }, 120_000);
});

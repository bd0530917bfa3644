/**
 * Issue 16: a role that picks its files by operating-system family, as geerlingguy.postfix-style Galaxy roles do
 * (test/fixtures/roles-os): templated include_vars and include_tasks names, first_found as a lookup and as
 * with_first_found, and handlers that are an include_tasks, a block and a listen topic. It runs unchanged on a
 * Debian-family and a Red Hat-family lab host over real SSH: check predicts the run, the run converges with each
 * host's family files, a second run and check change nothing.
 * Run: PROVISION_REQUIRE_LAB=1 npx vitest run --project lab test/integration/roles-os.test.ts
 */
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, inject, it } from 'vitest';
import type { TaskResultEvent } from '../../src/report/events.js';
import { labReset, type LabHost } from '../lab/lab.js';
import { provision, sh } from './faults/support.js';
import { labArgs, runCli } from '../support/cli.js';

const lab = inject('lab');
const SITE = fileURLToPath(new URL('../fixtures/roles-os/site.yml', import.meta.url));

const results = (events: unknown[], host: LabHost, handler: boolean) =>
  (events as TaskResultEvent[]).filter((e) => e.type === 'task_result' && e.host === host.name && e.handler === handler);
const changed = (events: unknown[], host: LabHost, handler = false) =>
  results(events, host, handler)
    .filter((e) => e.status === 'changed')
    .map((e) => e.task);

describe.skipIf(!lab)('a role that chooses its files by OS family, on the lab', () => {
  const state = lab!;
  const hosts = (state?.hosts ?? []).slice(0, 2) as LabHost[];
  const limit = hosts.map((h) => h.name).join(':');

  afterAll(async () => {
    if (state) {
      for (const h of hosts) await sh(h, 'rm -f /root/postfix-os-setup /root/postfix-os-banner /root/postfix-os-handled /root/postfix-os-restarted').catch(() => undefined);
      await labReset(state, hosts);
    }
  });

  it('Debian and Red Hat hosts each load their family files; check predicts the run; a second run changes nothing', async () => {
    expect(new Set(hosts.map((h) => h.flavour))).toEqual(new Set(['rhel', 'debian']));
    const check = await runCli(['check', SITE, ...labArgs(state), '--json', '--no-retry-file', '--limit', limit]);
    expect(check.code, check.stderr).toBe(8);

    const run = await provision(state, SITE, ['--limit', limit]);
    expect(run.code, run.stderr + run.stdout.slice(-2000)).toBe(0);
    for (const h of hosts) {
      const family = h.flavour === 'debian' ? 'Debian' : 'RedHat';
      const label = h.flavour === 'debian' ? 'Debian family' : 'Red Hat family';
      // What check said would change is exactly what the run changed, handlers included.
      expect(changed(run.events, h), h.name).toEqual(changed(check.events, h));
      expect(changed(run.events, h, true), h.name).toEqual(changed(check.events, h, true));
      expect(changed(run.events, h)).toEqual([
        `Record the ${family} setup.`,
        'Configure the delay warning time.',
        'Configure the bounce size limit.',
        'Write the banner of this family.',
      ]);
      // The include_tasks handler ran every task of its file; the block's handler answered its listen topic.
      expect(results(run.events, h, true).map((e) => [e.task, e.status])).toEqual([
        ['service', 'changed'],
        ['copy', 'changed'],
        ['record the banner change', 'changed'],
      ]);
      // limits-Debian.yml exists, limits-RedHat.yml does not: first_found falls back to limits-default.yml;
      // with_first_found the same for the banner template.
      const limit = h.flavour === 'debian' ? '50001' : '50002';
      const banner = h.flavour === 'debian' ? 'banner-Debian.j2' : 'banner-default.j2';
      expect(await sh(h, 'postconf -h delay_warning_time bounce_size_limit')).toBe(`4h\n${limit}\n`);
      expect(await sh(h, 'cat /root/postfix-os-setup /root/postfix-os-banner /root/postfix-os-handled /root/postfix-os-restarted')).toBe(
        `setup-${family}.yml ran for ${label}\n${h.name}: ${label} (${banner})\nbanner handler ran\nrestart handler ran\n`,
      );
    }

    const again = await provision(state, SITE, ['--limit', limit]);
    expect(again.code, again.stderr).toBe(0);
    for (const h of hosts) {
      expect(changed(again.events, h), h.name).toEqual([]);
      expect(results(again.events, h, true), h.name).toEqual([]);
    }
    const recheck = await runCli(['check', SITE, ...labArgs(state), '--json', '--no-retry-file', '--limit', limit]);
    expect(recheck.code, recheck.stderr).toBe(0);
  });
});

/**
 * Issue 16: a Postfix role in the shape of public Galaxy roles (test/fixtures/roles) runs unchanged on the lab's
 * hosts of both flavours over real SSH: check mode predicts what the run changes, the run converges, a second run
 * changes nothing; packages already on the host are "ok" with no install, a missing one is "would install" in
 * check mode (the lab shares the machine's dpkg database: nothing is installed for real, no network is needed).
 * Run: PROVISION_REQUIRE_LAB=1 npx vitest run --project lab test/integration/roles.test.ts
 */
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, inject, it } from 'vitest';
import type { TaskResultEvent } from '../../src/report/events.js';
import { labReset, type LabHost } from '../lab/lab.js';
import { provision, sh, writePlaybook } from './faults/support.js';
import { runCli, labArgs } from '../support/cli.js';
import { tempDir } from '../support/tmp.js';

const lab = inject('lab');
const SITE = fileURLToPath(new URL('../fixtures/roles/site.yml', import.meta.url));

const taskResults = (events: unknown[], host: LabHost) =>
  (events as TaskResultEvent[]).filter((e) => e.type === 'task_result' && e.host === host.name && !e.handler);
const changed = (events: unknown[], host: LabHost) =>
  taskResults(events, host)
    .filter((e) => e.status === 'changed')
    .map((e) => `${e.task}${e.item ? ` [${e.item}]` : ''}`);

describe.skipIf(!lab)('a Galaxy-shaped Postfix role on the lab', () => {
  const state = lab!;
  const hosts = (state?.hosts ?? []).slice(0, 2) as LabHost[];
  const limit = hosts.map((h) => h.name).join(':');

  afterAll(async () => {
    if (state) await labReset(state, hosts);
  });

  it('check predicts the run; the run converges (main.cf, aliases, mailname, restart); a second run and check change nothing', async () => {
    expect(new Set(hosts.map((h) => h.flavour))).toEqual(new Set(['rhel', 'debian']));
    const check = await runCli(['check', SITE, ...labArgs(state), '--json', '--no-retry-file', '--limit', limit]);
    expect(check.code, check.stderr).toBe(8);

    const run = await provision(state, SITE, ['--limit', limit]);
    expect(run.code, run.stderr + run.stdout.slice(-2000)).toBe(0);
    for (const h of hosts) {
      // What check said would change is exactly what the run changed.
      expect(changed(run.events, h), h.name).toEqual(changed(check.events, h));
      expect(changed(run.events, h)).toEqual(
        expect.arrayContaining(['Set the message of the day', 'Configure main.cf [inet_protocols]', 'Configure main.cf [smtpd_banner]', 'Alias for abuse']),
      );
      const statuses = new Map(taskResults(run.events, h).map((e) => [`${e.task}${e.item ? ` [${e.item}]` : ''}`, e.status]));
      // Packages already on the host: ok, nothing installed.
      expect(statuses.get('Install Postfix')).toBe('ok');
      expect(statuses.get('Ensure common packages are installed [ca-certificates]')).toBe('ok');
      expect(statuses.get('postfix check')).toBe('ok');
      const handlers = (run.events as TaskResultEvent[]).filter((e) => e.type === 'task_result' && e.host === h.name && e.handler);
      expect(handlers.map((e) => [e.task, e.status])).toEqual([
        ['restart postfix', 'changed'],
        ['new aliases', 'changed'],
      ]);
      expect(await sh(h, 'postconf -h myhostname smtpd_banner inet_protocols message_size_limit')).toBe(`${h.name}\n$myhostname ESMTP lab\nipv4\n20480000\n`);
      expect(await sh(h, 'cat /etc/mailname; grep -E "^(postmaster|abuse):" /etc/aliases; cat /root/provisioned-by-role')).toBe(
        `${h.name}\npostmaster: root\nabuse: root\n${h.name} /etc/postfix\n`,
      );
      expect(await sh(h, 'ls /etc/rc2.d | grep -c "^S[0-9]*postfix$"')).toBe('1\n');
    }

    const again = await provision(state, SITE, ['--limit', limit]);
    expect(again.code, again.stderr).toBe(0);
    for (const h of hosts) expect(changed(again.events, h), h.name).toEqual([]);
    const recheck = await runCli(['check', SITE, ...labArgs(state), '--json', '--no-retry-file', '--limit', limit]);
    expect(recheck.code, recheck.stderr).toBe(0);
  });

  it('package: check mode says it would install a missing package and installs nothing', async () => {
    const dir = tempDir('provision-roles-');
    const pb = writePlaybook(
      dir,
      'pkg.yml',
      `- hosts: all
  tasks:
    - name: present and missing
      apt: { name: [postfix, provision-test-absent-package], state: present, update_cache: true }
`,
    );
    const h = hosts[0]!;
    const r = await runCli(['check', pb, ...labArgs(state), '--json', '--no-retry-file', '--limit', h.name]);
    expect(r.code, r.stderr).toBe(8);
    expect(taskResults(r.events, h).map((e) => [e.status, e.msg])).toEqual([['changed', 'install provision-test-absent-package']]);
    expect(path.basename(pb)).toBe('pkg.yml');
  });
});

/**
 * Plays over real SSH that take paths the SMTPS playbook does not: a play without gather_facts (the host is still
 * connected, its facts are gathered when a task needs them) and a play whose command empties the read cache before
 * a write that notifies a handler (the handler is on record with the write all the same).
 * Run: PROVISION_REQUIRE_LAB=1 npx vitest run --project lab test/integration/plays.test.ts
 */
import { afterAll, describe, expect, inject, it } from 'vitest';
import { labReset, type LabHost } from '../lab/lab.js';
import { provision, results, sh, writePlaybook } from './faults/support.js';
import { tempDir } from '../support/tmp.js';

const lab = inject('lab');

describe.skipIf(!lab)('plays over SSH', () => {
  const state = lab!;
  const hosts = (state?.hosts ?? []).slice(0, 2) as LabHost[];
  const dir = tempDir('provision-plays-');

  afterAll(async () => {
    if (state) await labReset(state, hosts);
  });

  it('runs a play without gather_facts on every host, and facts still answer where a task uses them', async () => {
    const pb = writePlaybook(
      dir,
      'no-facts.yaml',
      `- hosts: all
  gather_facts: false
  tasks:
    - name: a file
      copy:
        dest: /root/plays/no-facts.txt
        content: "written without gather_facts\\n"
    - name: a file naming the rules file
      copy:
        dest: /root/plays/rules-file.txt
        content: "{{ facts.iptables_rules_file }}\\n"
`,
    );
    const limit = hosts.map((h) => h.name).join(':');
    await Promise.all(hosts.map((h) => sh(h, 'mkdir -p /root/plays')));
    const first = await provision(state, pb, ['--limit', limit]);
    expect(first.code, first.stderr).toBe(0);
    for (const h of hosts) {
      expect(results(first.events, h).map((e) => e.status)).toEqual(['changed', 'changed']);
      expect(await sh(h, 'cat /root/plays/no-facts.txt')).toBe('written without gather_facts\n');
      const rules = h.flavour === 'rhel' ? '/etc/sysconfig/iptables' : '/etc/iptables/rules.v4';
      expect(await sh(h, 'cat /root/plays/rules-file.txt')).toBe(`${rules}\n`);
    }
    const again = await provision(state, pb, ['--limit', limit]);
    expect(again.code, again.stderr).toBe(0);
    for (const h of hosts) expect(results(again.events, h).map((e) => e.status)).toEqual(['ok', 'ok']);
  });

  it('records the handler with a write that follows a command, and runs it once', async () => {
    const host = hosts[0]!;
    const pb = writePlaybook(
      dir,
      'after-command.yaml',
      `- hosts: all
  tasks:
    - name: a command first
      command: "true"
    - name: a file
      copy:
        dest: /root/plays/after-command.txt
        content: "x\\n"
      notify: count
  handlers:
    - name: count
      shell: "ls -A /var/lib/provision/pending | wc -l >> /root/plays/records-seen"
`,
    );
    await sh(host, 'mkdir -p /root/plays && rm -f /root/plays/records-seen /root/plays/after-command.txt');
    const records = async () => Number((await sh(host, 'ls -A /var/lib/provision/pending 2>/dev/null | wc -l')).trim());
    const before = await records();
    const r = await provision(state, pb, ['--limit', host.name]);
    expect(r.code, r.stderr).toBe(0);
    expect(results(r.events, host).map((e) => [e.task, e.status])).toEqual([
      ['a command first', 'changed'],
      ['a file', 'changed'],
      ['count', 'changed'],
    ]);
    // While the handler ran, its record was on the host; once it ran, the record is gone.
    expect(Number((await sh(host, 'cat /root/plays/records-seen')).trim())).toBe(before + 1);
    expect(await records()).toBe(before);
  });
});

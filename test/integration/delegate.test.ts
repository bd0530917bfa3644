/**
 * delegate_to an inventory host over real SSH: a play limited to one lab host delegates a file task and a command
 * to a second lab host (in no play of the run), as an Ansible role does to write on a database or relay host.
 * Check predicts the run, the run writes on the target only, with the delegating host's variables, and a second
 * run changes nothing. Then two hosts delegate to each other in one run (each target's one session is shared), and
 * two runs, each holding its own host's lock, delegate to each other's host: neither waits for ever.
 * Run: PROVISION_REQUIRE_LAB=1 npx vitest run --project lab test/integration/delegate.test.ts
 */
import { afterAll, describe, expect, inject, it } from 'vitest';
import { labReset, type LabHost } from '../lab/lab.js';
import { poll, provision, results, sh, writePlaybook } from './faults/support.js';
import { tempDir } from '../support/tmp.js';

const lab = inject('lab');

describe.skipIf(!lab)('delegate_to over SSH', () => {
  const state = lab!;
  const [from, to] = (state?.hosts ?? []).slice(0, 2) as LabHost[];
  const dir = tempDir('provision-delegate-');

  afterAll(async () => {
    if (state) await labReset(state, [from!, to!]);
  });

  it('check predicts the delegated changes, run makes them on the target only, a second run is ok', async () => {
    const pb = writePlaybook(
      dir,
      'delegate.yaml',
      `- hosts: all
  vars:
    other: ${to!.name}
  tasks:
    - name: a file on the other host
      copy:
        dest: /root/delegate/from-{{ inventory_hostname }}.txt
        content: "written for {{ inventory_hostname }}\\n"
      delegate_to: ${to!.name}
    - name: a command on the other host
      command: cp /root/delegate/from-{{ inventory_hostname }}.txt /root/delegate/copied.txt
      args:
        creates: /root/delegate/copied.txt
      delegate_to: "{{ other }}"
    - name: a file here
      copy:
        dest: /root/delegate/here.txt
        content: "here\\n"
`,
    );
    await Promise.all([from!, to!].map((h) => sh(h, 'rm -rf /root/delegate && mkdir -p /root/delegate')));
    // The target is in no play of the run: --limit leaves it out.
    const args = ['--limit', from!.name];

    const check = await provision(state, pb, [...args, '--check']);
    expect(check.code, check.stderr).toBe(8);
    expect(results(check.events, from!).map((e) => [e.task, e.status])).toEqual([
      ['a file on the other host', 'changed'],
      // creates: names a path that is not there on the target, so the command would run.
      ['a command on the other host', 'changed'],
      ['a file here', 'changed'],
    ]);
    expect(results(check.events, to!)).toEqual([]);
    expect(await sh(to!, 'ls -A /root/delegate')).toBe('');

    const run = await provision(state, pb, args);
    expect(run.code, run.stderr).toBe(0);
    expect(results(run.events, from!).map((e) => [e.task, e.status])).toEqual([
      ['a file on the other host', 'changed'],
      ['a command on the other host', 'changed'],
      ['a file here', 'changed'],
    ]);
    expect(await sh(to!, `cat /root/delegate/from-${from!.name}.txt`)).toBe(`written for ${from!.name}\n`);
    expect(await sh(to!, 'cat /root/delegate/copied.txt')).toBe(`written for ${from!.name}\n`);
    expect(await sh(to!, 'ls -A /root/delegate')).toBe(`copied.txt\nfrom-${from!.name}.txt\n`);
    expect(await sh(from!, 'ls -A /root/delegate')).toBe('here.txt\n');
    // Only the play's host is in the recap, as in Ansible's.
    const recap = run.events.find((e) => e.type === 'recap') as { hosts: Record<string, unknown> } | undefined;
    expect(Object.keys(recap!.hosts)).toEqual([from!.name]);

    const again = await provision(state, pb, args);
    expect(again.code, again.stderr).toBe(0);
    expect(results(again.events, from!).map((e) => e.status)).toEqual(['ok', 'ok', 'ok']);
    const recheck = await provision(state, pb, [...args, '--check']);
    expect(recheck.code, recheck.stderr).toBe(0);
  });

  it('two hosts that delegate to each other in one run: each writes on the other, with its own variables', async () => {
    const pb = writePlaybook(
      dir,
      'cross.yaml',
      `- hosts: all
  tasks:
    - name: a file on the other host
      copy:
        dest: /root/delegate/cross-from-{{ inventory_hostname }}.txt
        content: "{{ inventory_hostname }}\\n"
      delegate_to: "{{ '${to!.name}' if inventory_hostname == '${from!.name}' else '${from!.name}' }}"
`,
    );
    const r = await provision(state, pb, ['--limit', `${from!.name}:${to!.name}`]);
    expect(r.code, r.stderr).toBe(0);
    for (const h of [from!, to!]) expect(results(r.events, h).map((e) => e.status)).toEqual(['changed']);
    expect(await sh(to!, `cat /root/delegate/cross-from-${from!.name}.txt`)).toBe(`${from!.name}\n`);
    expect(await sh(from!, `cat /root/delegate/cross-from-${to!.name}.txt`)).toBe(`${to!.name}\n`);
    const again = await provision(state, pb, ['--limit', `${from!.name}:${to!.name}`]);
    expect(again.code, again.stderr).toBe(0);
    for (const h of [from!, to!]) expect(results(again.events, h).map((e) => e.status)).toEqual(['ok']);
  });

  it('two runs that delegate to each other\'s locked host: no deadlock; a run that waits --lock-timeout fails naming the holder', async () => {
    const crossing = (me: LabHost, other: LabHost) => `- hosts: all
  tasks:
    - name: hold this host
      shell: echo started > /root/delegate/started-${me.name}; sleep 3
    - name: write on the other host
      copy:
        dest: /root/delegate/locked-from-${me.name}.txt
        content: "x\\n"
      delegate_to: ${other.name}
`;
    await Promise.all([from!, to!].map((h) => sh(h, 'mkdir -p /root/delegate && rm -f /root/delegate/started-* /root/delegate/locked-from-*')));
    const t0 = Date.now();
    const a = provision(state, writePlaybook(dir, 'cross-a.yaml', crossing(from!, to!)), ['--limit', from!.name, '--lock-timeout', '2']);
    const b = provision(state, writePlaybook(dir, 'cross-b.yaml', crossing(to!, from!)), ['--limit', to!.name, '--lock-timeout', '2']);
    // Both runs hold their own host before either delegates.
    expect(await poll(async () => ((await sh(to!, 'ls /root/delegate')).includes(`started-${to!.name}`) ? true : null), 60_000, 100)).toBe(true);
    const [ra, rb] = await Promise.all([a, b]);
    expect(Date.now() - t0).toBeLessThan(60_000);
    // Each waits for the other's host. The first to give up ends its run and frees its own host, which the other
    // may then get within its own wait (the two waits end within milliseconds of each other): at least one run
    // fails naming the holder, and a run that did not fail wrote on the other host after that release.
    let failures = 0;
    for (const [r, me, other, book] of [[ra, from!, to!, 'cross-b.yaml'], [rb, to!, from!, 'cross-a.yaml']] as const) {
      const result = results(r.events, me).find((e) => e.task === 'write on the other host');
      if (r.code === 2) {
        failures++;
        expect(result?.status).toBe('failed');
        expect(result?.msg).toMatch(new RegExp(`^on \\S+: another provision run has held /var/lib/provision/lock for over 2s: provision run of ${book.replace('.', '\\.')} by `));
        expect(await sh(other, 'ls /root/delegate')).not.toContain(`locked-from-${me.name}`);
      } else {
        expect(r.code, r.stderr).toBe(0);
        expect(result?.status).toBe('changed');
        expect(await sh(other, 'ls /root/delegate')).toContain(`locked-from-${me.name}`);
      }
    }
    expect(failures).toBeGreaterThanOrEqual(1);
  });
});

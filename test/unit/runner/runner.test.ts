import { createHash } from 'node:crypto';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { runLocal } from '../../support/run.js';
import { tempDir } from '../../support/tmp.js';

const dir = tempDir();
const hosts = (names: string[]) => `[web]\n${names.map((n) => `${n} ansible_connection=local`).join('\n')}\n`;
const sha = (p: string) => createHash('sha256').update(readFileSync(p)).digest('hex');

describe('runner', () => {
  it('runs handlers once, at the end, in the order they are defined (not notified), and only when notified', async () => {
    const f = path.join(dir, 'h.txt');
    const { results } = await runLocal(
      dir,
      `- hosts: all
  gather_facts: false
  tasks:
    - name: change
      copy: { dest: ${f}, content: "x" }
      notify: [second, first]
    - name: change again
      copy: { dest: ${f}, content: "y" }
      notify: first
    - name: no change
      debug: { msg: hi }
      notify: third
  handlers:
    - name: first
      debug: { msg: one }
    - name: second
      debug: { msg: two }
    - name: by topic
      listen: second
      debug: { msg: topic }
    - name: third
      debug: { msg: never }
`,
      hosts(['h1']),
    );
    const order = results.map((r) => `${r.handler ? 'H:' : ''}${r.task}`);
    expect(order).toEqual(['change', 'change again', 'no change', 'H:first', 'H:second', 'H:by topic']);
  });

  it('meta: flush_handlers runs notified handlers at that point', async () => {
    const f = path.join(dir, 'flush.txt');
    const { results } = await runLocal(
      dir,
      `- hosts: all
  gather_facts: false
  tasks:
    - copy: { dest: ${f}, content: "x" }
      notify: h
    - meta: flush_handlers
    - name: after
      debug: { msg: after }
  handlers:
    - name: h
      debug: { msg: handler }
`,
      hosts(['h1']),
    );
    expect(results.map((r) => r.task)).toEqual(['copy', 'h', 'after']);
  });

  it('check mode writes nothing, reports the diff, and exits 8; after a run it exits 0', async () => {
    const f = path.join(dir, 'check.conf');
    writeFileSync(f, 'a = 1\n');
    const before = sha(f);
    const pb = `- hosts: all
  tasks:
    - lineinfile: { path: ${f}, regexp: '^a =', line: 'a = 2' }
    - copy: { dest: ${f}.new, content: "new\\n" }
    - command: touch ${f}.touched
`;
    const check = await runLocal(dir, pb, hosts(['h1']), { check: true, diff: true });
    expect(check.report.exitCode).toBe(8);
    expect(sha(f)).toBe(before);
    expect(existsSync(`${f}.new`)).toBe(false);
    expect(existsSync(`${f}.touched`)).toBe(false);
    expect(check.results.map((r) => r.status)).toEqual(['changed', 'changed', 'skipped']);
    expect(check.results[0]!.diffs![0]!.diff).toContain('-a = 1\n+a = 2');
    expect(check.results[2]!.msg).toContain('cannot tell');
    const run = await runLocal(dir, pb, hosts(['h1']));
    expect(run.report.exitCode).toBe(0);
    expect(readFileSync(f, 'utf8')).toBe('a = 2\n');
    const pbNoCommand = pb.split('\n').slice(0, 4).join('\n') + '\n';
    const again = await runLocal(dir, pbNoCommand, hosts(['h1']), { check: true });
    expect(again.report.exitCode).toBe(0);
    expect(again.report.hosts.h1!.changed).toBe(0);
  });

  it('a failed host stops its own tasks; the others finish; exit code 2', async () => {
    const { report, results } = await runLocal(
      dir,
      `- hosts: all
  gather_facts: false
  tasks:
    - fail: { msg: broken on purpose }
      when: inventory_hostname == 'h2'
    - debug: { msg: "{{ inventory_hostname }} continues" }
`,
      hosts(['h1', 'h2', 'h3']),
    );
    expect(report.exitCode).toBe(2);
    expect(report.hosts.h2!.failed).toBe(1);
    expect(results.filter((r) => r.module === 'debug').map((r) => r.host).sort()).toEqual(['h1', 'h3']);
  });

  it('an unreachable host is reported, the others finish: exit code 4 (| 2 when one also fails)', async () => {
    const pb = `- hosts: all
  tasks:
    - debug: { msg: ok }
`;
    const { report } = await runLocal(dir, pb, hosts(['h1', 'h2']), { dead: ['h2'] });
    expect(report.exitCode).toBe(4);
    expect(report.hosts.h2!.unreachable).toBe(1);
    expect(report.hosts.h1!.ok).toBe(1);
  });

  it('serial batches with max_fail_percentage 0 stop after the failing batch; later hosts are untouched', async () => {
    const marker = path.join(dir, 'serial');
    const { report, events } = await runLocal(
      dir,
      `- hosts: all
  gather_facts: false
  serial: 2
  max_fail_percentage: 0
  tasks:
    - fail: { msg: no }
      when: inventory_hostname == 'h2'
    - copy: { dest: "${marker}-{{ inventory_hostname }}", content: x }
`,
      hosts(['h1', 'h2', 'h3', 'h4', 'h5']),
    );
    expect(report.batches.map((b) => b.hosts)).toEqual([['h1', 'h2']]);
    expect(report.notRun).toEqual(['h3', 'h4', 'h5']);
    expect(report.stopped).toMatch(/max_fail_percentage/);
    expect(existsSync(`${marker}-h1`)).toBe(true);
    expect(existsSync(`${marker}-h3`)).toBe(false);
    expect(events.find((e) => e.type === 'play_start')).toMatchObject({ batches: [['h1', 'h2'], ['h3', 'h4'], ['h5']] });
  });

  it('without a threshold, a failure in one batch does not stop the next', async () => {
    const { report } = await runLocal(
      dir,
      `- hosts: all
  gather_facts: false
  serial: [1, "50%"]
  tasks:
    - fail: { msg: no }
      when: inventory_hostname == 'h2'
`,
      hosts(['h1', 'h2', 'h3', 'h4', 'h5']),
    );
    expect(report.batches.map((b) => b.hosts.length)).toEqual([1, 2, 2]);
    expect(report.notRun).toEqual([]);
  });

  it('any_errors_fatal stops the rollout', async () => {
    const { report } = await runLocal(
      dir,
      `- hosts: all
  gather_facts: false
  serial: 1
  any_errors_fatal: true
  tasks:
    - fail: { msg: no }
      when: inventory_hostname == 'h1'
`,
      hosts(['h1', 'h2']),
    );
    expect(report.notRun).toEqual(['h2']);
    expect(report.stopped).toMatch(/any_errors_fatal/);
  });

  it('variable precedence: group < host < play < registered < extra vars', async () => {
    const inv = `[web]
h1 ansible_connection=local from_host=host shared=host
[web:vars]
from_group=group
shared=group
`;
    const { results } = await runLocal(
      dir,
      `- hosts: all
  gather_facts: false
  vars:
    shared: play
    overridden: play
  tasks:
    - set_fact: { registered_here: fact }
    - debug: { msg: "{{ from_group }} {{ from_host }} {{ shared }} {{ registered_here }} {{ overridden }}" }
`,
      inv,
      { extraVars: { overridden: 'extra' } },
    );
    expect(results[1]!.msg).toBe('group host play fact extra');
  });

  it('tags select tasks; always runs; skip-tags wins', async () => {
    const pb = `- hosts: all
  gather_facts: false
  tasks:
    - { name: a, debug: { msg: a }, tags: [one] }
    - { name: b, debug: { msg: b }, tags: [two] }
    - { name: c, debug: { msg: c }, tags: [always] }
    - { name: d, debug: { msg: d } }
`;
    const only = await runLocal(dir, pb, hosts(['h1']), { tags: ['one'] });
    expect(only.results.map((r) => r.task)).toEqual(['a', 'c']);
    const skip = await runLocal(dir, pb, hosts(['h1']), { skipTags: ['one'] });
    expect(skip.results.map((r) => r.task)).toEqual(['b', 'c', 'd']);
  });

  it('loops run per item and register the list of results', async () => {
    const { results } = await runLocal(
      dir,
      `- hosts: all
  gather_facts: false
  tasks:
    - command: "echo {{ item }}"
      loop: [a, b]
      register: out
      changed_when: false
    - debug: { msg: "{{ out.results | map(attribute='stdout') | join(',') }}" }
`,
      hosts(['h1']),
    );
    expect(results.map((r) => r.item ?? r.msg)).toEqual(['a', 'b', 'a,b']);
  });

  it('a variable undefined on one host fails the task there with its name and the task position', async () => {
    const { results, report } = await runLocal(
      dir,
      `- hosts: all
  gather_facts: false
  tasks:
    - debug: { msg: "{{ nope }}" }
`,
      `[web]\nh1 ansible_connection=local\nh2 ansible_connection=local nope=here\n`,
    );
    expect(report.exitCode).toBe(2);
    const byHost = new Map(results.map((r) => [r.host, r]));
    expect([byHost.get('h1')?.status, byHost.get('h2')?.status]).toEqual(['failed', 'ok']);
    expect(byHost.get('h1')!.msg).toMatch(/play\d+\.yaml:4:7: undefined variable "nope"/);
  });

  it('a variable nothing in the run defines is bad input, refused before any task runs', async () => {
    const run = runLocal(
      dir,
      `- hosts: all
  gather_facts: false
  tasks:
    - debug: { msg: "{{ nope }}" }
`,
      hosts(['h1']),
    );
    await expect(run).rejects.toThrow(/play\d+\.yaml:4:21: task "debug": undefined variable "nope": nothing in this run defines it/);
  });

  it("another host's registered variable read through hostvars is refused before any task runs (Ansible gives it at a moment of its lockstep run)", async () => {
    // A real role's shape: the first host registers a value, the others read it with a default as a fallback.
    const run = runLocal(
      dir,
      `- hosts: all
  gather_facts: false
  tasks:
    - command: echo token
      register: relay
    - debug: { msg: "{{ hostvars['h1']['relay'].stdout | default('none') }}" }
    - debug: { msg: "{{ hostvars['h1'].role_name_here | default('inventory var: fine') }}" }
`,
      hosts(['h1', 'h2']),
    );
    await expect(run).rejects.toThrow(/play\d+\.yaml:6:21: task "debug": hostvars\[…\]\.relay: "relay" is registered or set with set_fact in this playbook/);
  });

  it('no_log hides messages and diffs', async () => {
    const f = path.join(dir, 'secret.txt');
    const { results } = await runLocal(
      dir,
      `- hosts: all
  gather_facts: false
  tasks:
    - copy: { dest: ${f}, content: "password=hunter2" }
      no_log: true
`,
      hosts(['h1']),
      { diff: true },
    );
    expect(JSON.stringify(results)).not.toContain('hunter2');
    expect(results[0]!.msg).toBe('output hidden (no_log)');
  });

  it('a second run of a file-editing playbook changes nothing and needs one exec: facts and reads together', async () => {
    const f = path.join(dir, 'idem.conf');
    writeFileSync(f, 'a = 1\n');
    const pb = `- hosts: all
  tasks:
    - lineinfile: { path: ${f}, regexp: '^a =', line: 'a = 2' }
    - blockinfile: { path: ${f}, block: "x = 1" }
    - copy: { dest: ${f}.copy, content: "c\\n", mode: "0600" }
`;
    const first = await runLocal(dir, pb, hosts(['h1']));
    expect(first.report.hosts.h1!.changed).toBe(3);
    const second = await runLocal(dir, pb, hosts(['h1']));
    expect(second.report.hosts.h1).toMatchObject({ changed: 0, ok: 3, steps: 1 });
  });
});

describe('the per-host run lock', () => {
  const pb = (seconds: number) => `- hosts: all
  tasks:
    - command: sleep ${seconds}
`;
  it('a second run waits for the first, or fails clearly after its timeout', async () => {
    const first = runLocal(dir, pb(2), hosts(['h1']), { lockTimeoutS: 10 });
    await new Promise((r) => setTimeout(r, 500));
    const impatient = await runLocal(dir, pb(0), hosts(['h1']), { lockTimeoutS: 1 });
    expect(impatient.report.exitCode).toBe(2);
    expect(impatient.results[0]!.msg).toMatch(/another provision run has held \/var\/lib\/provision\/lock for over 1s: provision run of play\d+\.yaml by /);
    const patient = await runLocal(dir, pb(0), hosts(['h1']), { lockTimeoutS: 10 });
    expect((await first).report.exitCode).toBe(0);
    expect(patient.report.exitCode).toBe(0);
  });

  it('check mode takes no lock', async () => {
    const first = runLocal(dir, pb(2), hosts(['h1']), { lockTimeoutS: 10 });
    await new Promise((r) => setTimeout(r, 500));
    // With a lock, this would fail after 1 s while the first run still holds the host.
    const check = await runLocal(dir, pb(0), hosts(['h1']), { check: true, lockTimeoutS: 1 });
    expect(check.report.hosts.h1!.failed).toBe(0);
    await first;
  });
});

describe('validate: of file modules', () => {
  it('runs in check mode too, on a copy, and a rejected candidate fails the task without writing', async () => {
    const f = path.join(dir, 'validated.conf');
    writeFileSync(f, 'good\n');
    const pb = `- hosts: all
  tasks:
    - lineinfile: { path: ${f}, line: 'bad', validate: "! grep -q bad %s" }
`;
    for (const check of [true, false]) {
      const r = await runLocal(dir, pb, hosts(['h1']), { check });
      expect(r.report.exitCode & 2, `check=${check}`).toBe(2);
      expect(r.results[0]!.msg).toContain('validation failed (! grep -q bad %s)');
      expect(readFileSync(f, 'utf8')).toBe('good\n');
    }
  });
});

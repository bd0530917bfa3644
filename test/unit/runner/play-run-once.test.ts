/**
 * run_once as Ansible 2.14's linear strategy does it: the first host of the batch (still running) that reaches the
 * task runs it, whichever host gets there first here; its registered result and set_fact variables go to every
 * host of the batch, its notifications stay its own, and its failure fails the batch's other hosts.
 * The behaviours named "ansible-playbook 2.14.18 …" were observed with ansible-core 2.14.18 on a play over four
 * `ansible_connection=local` hosts.
 */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { runLocal } from '../../support/run.js';
import { subDirs, tempDir, writeFiles } from '../../support/tmp.js';

const fresh = subDirs(tempDir());
const text = (p: string) => readFileSync(p, 'utf8');
/** Every host is this machine: without the run lock they run side by side, as separate hosts would. */
const NO_LOCK = { lockTimeoutS: 0 };
const THREE = '[web]\nh1 ansible_connection=local\nh2 ansible_connection=local\nh3 ansible_connection=local\n';

describe('run_once', { timeout: 30_000 }, () => {
  it('runs on the batch\'s first host even when a later host reaches the task first; every host gets the result', async () => {
    const dir = fresh('first');
    const { report, results } = await runLocal(
      dir,
      `- hosts: all
  gather_facts: false
  tasks:
    - name: h1 is slow
      shell: sleep 0.6
      when: inventory_hostname == 'h1'
    - name: once
      shell: echo {{ inventory_hostname }} >> ${dir}/ran; echo {{ inventory_hostname }}
      register: shared
      run_once: true
    - name: fact once
      set_fact: { chosen: "{{ inventory_hostname }}" }
      run_once: true
    - copy: content="{{ shared.stdout }} {{ chosen }}" dest=${dir}/{{ inventory_hostname }}
`,
      THREE,
      NO_LOCK,
    );
    expect(report.exitCode).toBe(0);
    expect(text(`${dir}/ran`)).toBe('h1\n');
    for (const h of ['h1', 'h2', 'h3']) expect(text(`${dir}/${h}`)).toBe('h1 h1');
    // Only the host that ran it reports the task, as Ansible prints it for that host alone.
    expect(results.filter((r) => r.task === 'once').map((r) => r.host)).toEqual(['h1']);
  });

  it('a host that failed before the task does not run it: the next host of the batch does', async () => {
    const dir = fresh('failed-first');
    const { report } = await runLocal(
      dir,
      `- hosts: all
  gather_facts: false
  tasks:
    - fail: msg=down
      when: inventory_hostname == 'h1'
    - shell: echo {{ inventory_hostname }} >> ${dir}/ran
      run_once: true
`,
      THREE,
      NO_LOCK,
    );
    expect(report.exitCode).toBe(2);
    expect(text(`${dir}/ran`)).toBe('h2\n');
  });

  it('serial batches: each batch runs it once, on its own first host', async () => {
    const dir = fresh('serial');
    await runLocal(
      dir,
      `- hosts: all
  gather_facts: false
  serial: 2
  tasks:
    - shell: echo {{ inventory_hostname }} >> ${dir}/ran
      run_once: true
`,
      THREE,
      NO_LOCK,
    );
    expect(text(`${dir}/ran`)).toBe('h1\nh3\n');
  });

  it('forks: 1 (one host at a time) still runs it once, on the first host', async () => {
    const dir = fresh('forks');
    const { report } = await runLocal(
      dir,
      `- hosts: all
  gather_facts: false
  tasks:
    - shell: echo {{ inventory_hostname }} >> ${dir}/ran
      register: r
      run_once: true
    - copy: content="{{ r.rc }}" dest=${dir}/{{ inventory_hostname }}
`,
      THREE,
      { ...NO_LOCK, forks: 1 },
    );
    expect(report.exitCode).toBe(0);
    expect(text(`${dir}/ran`)).toBe('h1\n');
    expect(text(`${dir}/h3`)).toBe('0');
  });

  it('a change notifies handlers on the host that ran it only', async () => {
    const dir = fresh('notify');
    await runLocal(
      dir,
      `- hosts: all
  gather_facts: false
  tasks:
    - shell: "true"
      run_once: true
      notify: h
  handlers:
    - name: h
      shell: echo {{ inventory_hostname }} >> ${dir}/handled
`,
      THREE,
      NO_LOCK,
    );
    expect(text(`${dir}/handled`)).toBe('h1\n');
  });

  it('ansible-playbook 2.14.18 fails every host of the batch when it fails: later plays skip them, the retry file lists them, the recap counts the failure once', async () => {
    const dir = fresh('fail');
    const { report, events } = await runLocal(
      dir,
      `- hosts: all
  gather_facts: false
  tasks:
    - shell: exit 3
      run_once: true
    - shell: echo {{ inventory_hostname }} >> ${dir}/after
- hosts: all
  gather_facts: false
  tasks:
    - shell: echo {{ inventory_hostname }} >> ${dir}/play2
`,
      THREE,
      { ...NO_LOCK, retryFile: `${dir}/retry` },
    );
    expect(report.exitCode).toBe(2);
    expect(() => text(`${dir}/after`)).toThrow();
    expect(() => text(`${dir}/play2`)).toThrow();
    expect(text(`${dir}/retry`)).toBe('h1\nh2\nh3\n');
    // Ansible's recap: failed=1 on the host that ran it, failed=0 on the others.
    expect(report.hosts.h1).toMatchObject({ failed: 1 });
    expect(report.hosts.h2).toMatchObject({ failed: 0, ok: 0 });
    expect(report.batches[0]!.failed).toEqual(['h1', 'h2', 'h3']);
    const warned = events.filter((e) => e.type === 'warning').map((e) => (e as { host?: string }).host);
    expect(warned.sort()).toEqual(['h2', 'h3']);
  });

  it('ansible-playbook 2.14.18 runs the rescue of every host of the batch when it fails in a block; only the host that ran it counts the rescue', async () => {
    const dir = fresh('fail-rescue');
    const { report } = await runLocal(
      dir,
      `- hosts: all
  gather_facts: false
  tasks:
    - block:
        - shell: exit 3
          run_once: true
        - shell: echo {{ inventory_hostname }} >> ${dir}/block
      rescue:
        - shell: echo {{ inventory_hostname }} >> ${dir}/rescued
    - shell: echo {{ inventory_hostname }} >> ${dir}/after
`,
      THREE,
      NO_LOCK,
    );
    expect(report.exitCode).toBe(0);
    expect(() => text(`${dir}/block`)).toThrow();
    expect(text(`${dir}/rescued`).split('\n').filter(Boolean).sort()).toEqual(['h1', 'h2', 'h3']);
    expect(text(`${dir}/after`).split('\n').filter(Boolean).sort()).toEqual(['h1', 'h2', 'h3']);
    // provision counts a rescued failure as ignored, on the host that failed only.
    expect(report.hosts.h1).toMatchObject({ failed: 0, ignored: 1 });
    expect(report.hosts.h2).toMatchObject({ failed: 0, ignored: 0 });
  });

  it('ansible-playbook 2.14.18 with any_errors_fatal: every host fails, no later play runs, exit 2', async () => {
    const dir = fresh('fatal');
    const { report } = await runLocal(
      dir,
      `- hosts: all
  gather_facts: false
  any_errors_fatal: true
  tasks:
    - shell: exit 3
      run_once: true
    - shell: echo {{ inventory_hostname }} >> ${dir}/after
- hosts: all
  gather_facts: false
  tasks:
    - shell: echo {{ inventory_hostname }} >> ${dir}/play2
`,
      THREE,
      NO_LOCK,
    );
    expect(report.exitCode).toBe(2);
    expect(() => text(`${dir}/after`)).toThrow();
    expect(() => text(`${dir}/play2`)).toThrow();
    expect(report.hosts.h1).toMatchObject({ failed: 1 });
    expect(report.hosts.h3).toMatchObject({ failed: 0 });
  });

  it('ansible-playbook 2.14.18 with serial: a failure in the second batch fails that batch only', async () => {
    const dir = fresh('serial-fail');
    const { report } = await runLocal(
      dir,
      `- hosts: all
  gather_facts: false
  serial: 2
  tasks:
    - shell: echo {{ inventory_hostname }}
      register: who
      run_once: true
    - shell: echo {{ inventory_hostname }} {{ who.stdout }} >> ${dir}/who
    - shell: exit 3
      run_once: true
      when: "'h3' in ansible_play_batch"
`,
      '[web]\nh1 ansible_connection=local\nh2 ansible_connection=local\nh3 ansible_connection=local\nh4 ansible_connection=local\n',
      { ...NO_LOCK, retryFile: `${dir}/retry` },
    );
    expect(report.exitCode).toBe(2);
    expect(text(`${dir}/who`).split('\n').filter(Boolean).sort()).toEqual(['h1 h1', 'h2 h1', 'h3 h3', 'h4 h3']);
    expect(text(`${dir}/retry`)).toBe('h3\nh4\n');
    expect(report.batches.map((b) => b.failed)).toEqual([[], ['h3', 'h4']]);
  });

  it('ansible-playbook 2.14.18 gives the result to hosts that never reach the task: the rest of a block they failed in, a rescue they skip, an include they skip', async () => {
    const dir = fresh('never-reached');
    writeFiles(dir, { 'inc.yml': '- shell: echo ininclude\n  register: r3\n  run_once: true\n' });
    const { report } = await runLocal(
      dir,
      `- hosts: all
  gather_facts: false
  tasks:
    - block:
        - shell: exit 1
          when: inventory_hostname == 'h2'
        - shell: echo hi
          register: r1
          run_once: true
        - set_fact: { f1: x }
          run_once: true
      rescue:
        - shell: echo inrescue
          register: r2
          run_once: true
    - include_tasks: inc.yml
      when: inventory_hostname != 'h3'
    - copy:
        dest: ${dir}/{{ inventory_hostname }}
        content: "r1={{ r1.stdout | default('UNDEF') }} f1={{ f1 | default('UNDEF') }} r2={{ r2.stdout | default('UNDEF') }} r3={{ r3.stdout | default('UNDEF') }}"
`,
      THREE,
      NO_LOCK,
    );
    expect(report.exitCode).toBe(0);
    // h2 failed in the block: it never reaches r1 and f1 (run by h1, before it) but takes them; it runs the rescue.
    expect(text(`${dir}/h2`)).toBe('r1=hi f1=x r2=inrescue r3=ininclude');
    // h3 skips the include that h1 runs; it takes r2 from h2, which comes before it.
    expect(text(`${dir}/h3`)).toBe('r1=hi f1=x r2=inrescue r3=ininclude');
    // Ansible gives h1 r2 too (run by h2 in its rescue); here h1 would have to wait on a later host: left out.
    expect(text(`${dir}/h1`)).toBe('r1=hi f1=x r2=UNDEF r3=ininclude');
  });

  it('with ignore_errors the failure stops no host', async () => {
    const dir = fresh('ignored');
    const { report } = await runLocal(
      dir,
      `- hosts: all
  gather_facts: false
  tasks:
    - shell: exit 3
      run_once: true
      ignore_errors: true
      register: r
    - shell: echo {{ inventory_hostname }} {{ r.rc }} >> ${dir}/after
`,
      THREE,
      NO_LOCK,
    );
    expect(report.exitCode).toBe(0);
    expect(text(`${dir}/after`).split('\n').filter(Boolean).sort()).toEqual(['h1 3', 'h2 3', 'h3 3']);
  });

  it('an include with a loop: each pass runs once, on the first host', async () => {
    const dir = fresh('loop');
    writeFiles(dir, { 'inc.yml': `- shell: echo {{ inventory_hostname }} {{ item }} >> ${dir}/ran\n  run_once: true\n` });
    const { report } = await runLocal(
      dir,
      `- hosts: all
  gather_facts: false
  tasks:
    - include_tasks: inc.yml
      loop: [a, b]
`,
      THREE,
      NO_LOCK,
    );
    expect(report.exitCode).toBe(0);
    expect(text(`${dir}/ran`)).toBe('h1 a\nh1 b\n');
  });
});

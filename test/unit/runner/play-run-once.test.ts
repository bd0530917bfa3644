/**
 * run_once as Ansible 2.14's linear strategy does it: the first host of the batch (still running) that reaches the
 * task runs it, whichever host gets there first here; its registered result and set_fact variables go to every
 * host of the batch, its notifications stay its own, and its failure stops the batch's other hosts.
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

  it('a failure on the host that ran it stops every host of the batch', async () => {
    const dir = fresh('fail');
    const { report } = await runLocal(
      dir,
      `- hosts: all
  gather_facts: false
  tasks:
    - shell: exit 3
      run_once: true
    - shell: echo {{ inventory_hostname }} >> ${dir}/after
`,
      THREE,
      NO_LOCK,
    );
    expect(report.exitCode).toBe(2);
    expect(() => text(`${dir}/after`)).toThrow();
    expect(report.hosts.h1).toMatchObject({ failed: 1 });
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

/**
 * Ansible content run unchanged on local connections: roles (defaults, vars, meta dependencies, handlers,
 * templates), blocks with rescue/always, includes with loops, with_* loops, until, precedence.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { runLocal } from '../../support/run.js';
import { subDirs, tempDir, writeFiles } from '../../support/tmp.js';

const fresh = subDirs(tempDir());
const HOSTS = '[web]\nh1 ansible_connection=local\n';
const text = (p: string) => readFileSync(p, 'utf8');
/** These tests are not about the host lock: without it, runs of other test files on this machine do not hold them up. */
const NO_LOCK = { lockTimeoutS: 0 };

describe('roles, blocks and includes', { timeout: 30_000 }, () => {
  it("variable precedence as Ansible's: role defaults < inventory < play vars < role vars < role params < task vars < extra vars", async () => {
    const dir = fresh('prec');
    writeFiles(dir, {
      'roles/r/defaults/main.yml': 'd_only: from-defaults\nd_inv: from-defaults\nd_play: from-defaults\n',
      'roles/r/vars/main.yml': 'v_over_play: from-role-vars\nv_under_param: from-role-vars\nv_under_task: from-role-vars\nv_under_extra: from-role-vars\n',
      'roles/r/tasks/main.yml': `- name: show
  vars: { v_under_task: from-task }
  copy:
    dest: ${dir}/out
    content: "{{ [d_only, d_inv, d_play, v_over_play, v_under_param, v_under_task, v_under_extra, role_name] | join(' ') }}"
`,
    });
    const { report } = await runLocal(
      dir,
      `- hosts: all
  gather_facts: false
  vars: { d_play: from-play, v_over_play: from-play }
  roles:
    - role: r
      v_under_param: from-param
`,
      '[web]\nh1 ansible_connection=local d_inv=from-inventory\n',
      { ...NO_LOCK, extraVars: { v_under_extra: 'from-extra' } },
    );
    expect(report.exitCode).toBe(0);
    expect(text(`${dir}/out`)).toBe('from-defaults from-inventory from-play from-role-vars from-param from-task from-extra r');
  });

  it('a role with a meta dependency, handlers, a template from its templates/, and .yaml files; each role once per play', async () => {
    const dir = fresh('role');
    writeFiles(dir, {
      'roles/common/tasks/main.yaml': `- copy: content="common ran\\n" dest=${dir}/common\n- shell: echo ran >> ${dir}/count\n`,
      'roles/app/meta/main.yml': 'galaxy_info: { author: test }\ndependencies:\n  - role: common\n',
      'roles/app/defaults/main.yml': 'app_port: 25\n',
      'roles/app/templates/app.conf.j2': 'port={{ app_port }} path={{ role_path | basename }}\n',
      'roles/app/handlers/main.yml': `- name: restart app\n  copy: content="restarted\\n" dest=${dir}/restarted\n`,
      'roles/app/tasks/main.yml': `- template: src=app.conf.j2 dest=${dir}/app.conf\n  notify: restart app\n`,
    });
    const play = `- hosts: all
  gather_facts: false
  roles: [common, app]
`;
    const first = await runLocal(dir, play, HOSTS, NO_LOCK);
    expect(first.results.filter((r) => r.status === 'failed')).toEqual([]);
    expect(first.report.exitCode).toBe(0);
    expect(text(`${dir}/app.conf`)).toBe('port=25 path=app\n');
    expect(text(`${dir}/restarted`)).toBe('restarted\n');
    // common is a dependency of app and listed itself: it runs once.
    expect(text(`${dir}/count`)).toBe('ran\n');
    const again = await runLocal(dir, play.replace('[common, app]', '[app]'), HOSTS, NO_LOCK);
    expect(again.results.filter((r) => r.status === 'changed').map((r) => r.task)).toEqual(['shell']);
    expect(text(`${dir}/count`)).toBe('ran\nran\n');
  });

  it('block: a failure runs rescue and is rescued; always runs; block when/vars pass down', async () => {
    const dir = fresh('block');
    const { report, results } = await runLocal(
      dir,
      `- hosts: all
  gather_facts: false
  tasks:
    - name: guarded
      when: run_it
      vars: { word: from-block }
      block:
        - copy: content="{{ word }}" dest=${dir}/block
        - command: /bin/false
        - copy: content="never" dest=${dir}/never
      rescue:
        - copy: content="rescued {{ word }}" dest=${dir}/rescue
      always:
        - copy: content="always" dest=${dir}/always
    - name: skipped block
      when: not run_it
      block:
        - copy: content="x" dest=${dir}/skipped
    - copy: content="after" dest=${dir}/after
  vars: { run_it: true }
`,
      HOSTS,
      NO_LOCK,
    );
    expect(report.exitCode).toBe(0);
    expect(text(`${dir}/block`)).toBe('from-block');
    expect(text(`${dir}/rescue`)).toBe('rescued from-block');
    expect(text(`${dir}/always`)).toBe('always');
    expect(text(`${dir}/after`)).toBe('after');
    expect(() => text(`${dir}/never`)).toThrow();
    expect(results.find((r) => r.task === 'copy' && r.status === 'skipped')).toBeDefined();
    expect(report.hosts.h1).toMatchObject({ failed: 0, ignored: 1 });
  });

  it('a failure with no rescue still fails the host after always ran', async () => {
    const dir = fresh('always');
    const { report } = await runLocal(
      dir,
      `- hosts: all
  gather_facts: false
  tasks:
    - block:
        - command: /bin/false
      always:
        - copy: content="always" dest=${dir}/always
    - copy: content="after" dest=${dir}/after
`,
      HOSTS,
      NO_LOCK,
    );
    expect(report.exitCode).toBe(2);
    expect(text(`${dir}/always`)).toBe('always');
    expect(() => text(`${dir}/after`)).toThrow();
  });

  it('include_tasks with a loop, vars and when; import_tasks passes its when down; include_vars', async () => {
    const dir = fresh('incl');
    writeFiles(dir, {
      'tasks/one.yml': `- copy: content="{{ prefix }}-{{ svc.name }}-{{ idx }}" dest=${dir}/svc-{{ svc.name }}\n`,
      'tasks/imported.yml': `- copy: content="imported" dest=${dir}/imported\n`,
      'vars/extra.yml': 'from_file: "{{ prefix }}-loaded"\n',
    });
    const { report } = await runLocal(
      dir,
      `- hosts: all
  gather_facts: false
  tasks:
    - include_tasks: tasks/one.yml
      vars: { prefix: p }
      loop: [{ name: smtp }, { name: smtps }]
      loop_control: { loop_var: svc, index_var: idx }
    - include_tasks: tasks/one.yml
      when: false
    - import_tasks: tasks/imported.yml
      when: true
    - include_vars: extra.yml
      vars: { prefix: q }
    - copy: content="{{ from_file }}" dest=${dir}/from-file
      vars: { prefix: r }
`,
      HOSTS,
      NO_LOCK,
    );
    expect(report.exitCode).toBe(0);
    expect(text(`${dir}/svc-smtp`)).toBe('p-smtp-0');
    expect(text(`${dir}/svc-smtps`)).toBe('p-smtps-1');
    expect(text(`${dir}/imported`)).toBe('imported');
    expect(text(`${dir}/from-file`)).toBe('r-loaded');
  });

  it('with_items, loop_control label, until/retries/delay with attempts, environment', async () => {
    const dir = fresh('loops');
    const { report, results } = await runLocal(
      dir,
      `- hosts: all
  gather_facts: false
  tasks:
    - lineinfile: path=${dir}/items line={{ item.n }} create=yes
      with_items:
        - [{ n: a }, { n: b }]
        - { n: c }
      loop_control: { label: "{{ item.n }}" }
    - shell: echo x >> ${dir}/tries; test $(wc -l < ${dir}/tries) -ge 2
      register: r
      until: r.rc == 0
      retries: 3
      delay: 0
    - shell: printf %s "$GREETING" > ${dir}/env
      environment: { GREETING: "hi {{ 'there' }}" }
`,
      HOSTS,
      NO_LOCK,
    );
    expect(report.exitCode).toBe(0);
    expect(text(`${dir}/items`)).toBe('a\nb\nc\n');
    expect(results.filter((r) => r.task === 'lineinfile').map((r) => r.item)).toEqual(['a', 'b', 'c']);
    expect(text(`${dir}/tries`)).toBe('x\nx\n');
    expect(text(`${dir}/env`)).toBe('hi there');
  });

  it('until that never holds fails after retries + 1 attempts', async () => {
    const dir = fresh('until');
    const { report, results } = await runLocal(
      dir,
      `- hosts: all
  gather_facts: false
  tasks:
    - shell: echo x >> ${dir}/tries; exit 1
      register: r
      until: r.rc == 0
      retries: 2
      delay: 0
`,
      HOSTS,
      NO_LOCK,
    );
    expect(report.exitCode).toBe(2);
    expect(text(`${dir}/tries`)).toBe('x\nx\nx\n');
    expect(results.at(-1)?.msg).toMatch(/until did not hold after 3 attempts/);
  });

  it('command: creates= in the shorthand is an option, not an argument of the program', async () => {
    const dir = fresh('creates');
    writeFiles(dir, { exists: '' });
    const { results } = await runLocal(
      dir,
      `- hosts: all
  gather_facts: false
  tasks:
    - command: touch ${dir}/made creates=${dir}/exists
`,
      HOSTS,
      NO_LOCK,
    );
    expect(results[0]).toMatchObject({ status: 'ok' });
    expect(() => text(path.join(dir, 'made'))).toThrow();
  });

  it('run_once: one host runs the task, every host gets the registered result', async () => {
    const dir = fresh('once');
    const { report } = await runLocal(
      dir,
      `- hosts: all
  gather_facts: false
  tasks:
    - shell: echo run >> ${dir}/once; echo value
      register: shared
      run_once: true
    - copy: content="{{ shared.stdout }}" dest=${dir}/{{ inventory_hostname }}
`,
      '[web]\nh1 ansible_connection=local\nh2 ansible_connection=local\n',
      // Both hosts are this machine: its run lock would make the second wait for the first.
      NO_LOCK,
    );
    expect(report.exitCode).toBe(0);
    expect(text(`${dir}/once`)).toBe('run\n');
    expect(text(`${dir}/h1`)).toBe('value');
    expect(text(`${dir}/h2`)).toBe('value');
  });

  it('delegate_to: localhost runs the task on the controller; its result is the host\'s', async () => {
    const dir = fresh('deleg');
    const { report, results } = await runLocal(
      dir,
      `- hosts: all
  gather_facts: false
  tasks:
    - shell: echo "from {{ inventory_hostname }}" > ${dir}/delegated
      delegate_to: localhost
      register: d
    - copy: content="{{ d.rc }}" dest=${dir}/rc
`,
      HOSTS,
      NO_LOCK,
    );
    expect(report.exitCode).toBe(0);
    expect(text(`${dir}/delegated`)).toBe('from h1\n');
    expect(text(`${dir}/rc`)).toBe('0');
    expect(results.map((r) => [r.host, r.status])).toEqual([
      ['h1', 'changed'],
      ['h1', 'changed'],
    ]);
    expect(report.hosts.h1).toMatchObject({ changed: 2, failed: 0 });
  });
});

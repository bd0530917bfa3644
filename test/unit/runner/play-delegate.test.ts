/**
 * delegate_to an inventory host, as ansible-playbook 2.14.18 does it: the module runs over the target's connection
 * with the variables of the host the task runs for (inventory_hostname is that host); the result, the registered
 * variable, counts and notifications are that host's. Every host here is this machine; each connection marks the
 * commands it runs with its host's name, so a test sees which connection ran a command.
 */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import type { ExecOptions, ExecResult } from '../../../src/connection/connection.js';
import { LocalConnection } from '../../../src/connection/local.js';
import { loadPlaybook } from '../../../src/playbook/validate.js';
import { runCli } from '../../support/cli.js';
import { DeadConnection, runLocal } from '../../support/run.js';
import { subDirs, tempDir, writeFiles } from '../../support/tmp.js';

const fresh = subDirs(tempDir());
const text = (p: string) => readFileSync(p, 'utf8');
const NO_LOCK = { lockTimeoutS: 0 };
const INV = '[web]\nh1 ansible_connection=local\nh2 ansible_connection=local\n[db]\nd1 ansible_connection=local\n';

/** A local connection whose commands see PV_VIA=<its host>. */
class Marked extends LocalConnection {
  override exec(script: string, opts?: ExecOptions): Promise<ExecResult> {
    return super.exec(`PV_VIA=${this.host}; export PV_VIA\n${script}`, opts);
  }
}

const marked = (dead: string[] = []) => ({
  ...NO_LOCK,
  connectionFor: (host: string) => (dead.includes(host) ? new DeadConnection(host) : new Marked(host)),
});

describe('delegate_to an inventory host', { timeout: 30_000 }, () => {
  it('runs the command over the target\'s connection with the delegating host\'s variables; the result is the delegating host\'s', async () => {
    const dir = fresh('command');
    const { report, results } = await runLocal(
      dir,
      `- hosts: web
  gather_facts: false
  tasks:
    - shell: echo "$PV_VIA {{ inventory_hostname }}" >> ${dir}/ran; echo "$PV_VIA"
      delegate_to: d1
      register: r
    - copy: content="{{ r.stdout }}" dest=${dir}/{{ inventory_hostname }}
`,
      INV,
      marked(),
    );
    expect(report.exitCode).toBe(0);
    expect(text(`${dir}/ran`).split('\n').filter(Boolean).sort()).toEqual(['d1 h1', 'd1 h2']);
    expect(text(`${dir}/h1`)).toBe('d1');
    // The delegating hosts report the task and count it; the target, in no play, is not in the recap.
    expect(results.filter((r) => r.module === 'shell').map((r) => r.host).sort()).toEqual(['h1', 'h2']);
    expect(report.hosts.h1).toMatchObject({ changed: 2 });
    expect(report.hosts.d1).toBeUndefined();
  });

  it('a file task: check predicts the change on the target, run makes it, a second run is ok', async () => {
    const dir = fresh('file');
    const play = `- hosts: h1
  gather_facts: false
  tasks:
    - copy: content="written for {{ inventory_hostname }}\\n" dest=${dir}/target.txt
      delegate_to: "{{ groups['db'][0] }}"
      notify: done
  handlers:
    - name: done
      shell: echo "$PV_VIA {{ inventory_hostname }}" >> ${dir}/handled
`;
    const check = await runLocal(dir, play, INV, { ...marked(), check: true, file: 'p.yaml' });
    expect(check.report.exitCode).toBe(8);
    expect(check.report.hosts.h1).toMatchObject({ changed: 1 });
    expect(() => text(`${dir}/target.txt`)).toThrow();
    const run = await runLocal(dir, play, INV, { ...marked(), file: 'p.yaml' });
    expect(run.report.exitCode).toBe(0);
    expect(text(`${dir}/target.txt`)).toBe('written for h1\n');
    // Ansible runs the notified handler on the delegating host, over its own connection.
    expect(text(`${dir}/handled`)).toBe('h1 h1\n');
    const again = await runLocal(dir, play, INV, { ...marked(), file: 'p.yaml' });
    expect(again.report.hosts.h1).toMatchObject({ changed: 0, ok: 1 });
  });

  it('run_once with delegate_to: runs once, on the target, with the first host\'s variables; every host gets the result', async () => {
    const dir = fresh('once');
    const { report } = await runLocal(
      dir,
      `- hosts: web
  gather_facts: false
  tasks:
    - shell: echo "$PV_VIA {{ inventory_hostname }}" >> ${dir}/ran; echo "$PV_VIA {{ inventory_hostname }}"
      delegate_to: d1
      run_once: true
      register: r
    - copy: content="{{ r.stdout }}" dest=${dir}/{{ inventory_hostname }}
`,
      INV,
      marked(),
    );
    expect(report.exitCode).toBe(0);
    expect(text(`${dir}/ran`)).toBe('d1 h1\n');
    expect(text(`${dir}/h2`)).toBe('d1 h1');
  });

  it("two hosts of the play that delegate to each other: each one's task runs over the other's connection", async () => {
    const dir = fresh('cross');
    const { report } = await runLocal(
      dir,
      `- hosts: web
  gather_facts: false
  tasks:
    - shell: echo "$PV_VIA {{ inventory_hostname }}" >> ${dir}/ran
      delegate_to: "{{ 'h2' if inventory_hostname == 'h1' else 'h1' }}"
`,
      INV,
      marked(),
    );
    expect(report.exitCode).toBe(0);
    expect(text(`${dir}/ran`).split('\n').filter(Boolean).sort()).toEqual(['h1 h2', 'h2 h1']);
  });

  it('delegate_to the host itself runs the task there as usual', async () => {
    const dir = fresh('self');
    await runLocal(
      dir,
      `- hosts: h1
  gather_facts: false
  tasks:
    - shell: echo "$PV_VIA" >> ${dir}/ran
      delegate_to: "{{ inventory_hostname }}"
`,
      INV,
      marked(),
    );
    expect(text(`${dir}/ran`)).toBe('h1\n');
  });

  it('an unreachable target makes the task unreachable for the delegating host (exit 4), as ansible-playbook 2.14.18 reports it (the target is not in its recap)', async () => {
    const dir = fresh('dead');
    const { report, results } = await runLocal(
      dir,
      `- hosts: h1
  gather_facts: false
  tasks:
    - shell: "true"
      delegate_to: d1
`,
      INV,
      marked(['d1']),
    );
    expect(report.exitCode).toBe(4);
    expect(report.hosts.h1).toMatchObject({ unreachable: 1, failed: 0 });
    expect(report.hosts.d1).toBeUndefined();
    expect(results.find((r) => r.module === 'shell')?.msg).toMatch(/^on d1: /);
  });

  it('a name that is not an inventory host is bad input, found before any host is touched', async () => {
    const dir = fresh('unknown');
    await expect(
      runLocal(
        dir,
        `- hosts: h1
  gather_facts: false
  tasks:
    - shell: echo touched >> ${dir}/ran
    - name: elsewhere
      shell: "true"
      delegate_to: mail.example.test
`,
        INV,
        marked(),
      ),
    ).rejects.toThrow(/:7:\d+: .*delegate_to: "mail\.example\.test" is not a host of the inventory/);
    expect(() => text(`${dir}/ran`)).toThrow();
  });

  it('a template that renders to a name outside the inventory fails the task, naming it', async () => {
    const dir = fresh('templated-unknown');
    const { report, results } = await runLocal(
      dir,
      `- hosts: h1
  gather_facts: false
  vars: { other: nowhere.test }
  tasks:
    - shell: "true"
      delegate_to: "{{ other }}"
`,
      INV,
      marked(),
    );
    expect(report.exitCode).toBe(2);
    expect(results.find((r) => r.module === 'shell')?.msg).toMatch(/"nowhere\.test" is not a host of the inventory/);
  });

  it('a block\'s delegate_to passes to its tasks; a task\'s own delegate_to: localhost wins', async () => {
    const dir = fresh('block');
    await runLocal(
      dir,
      `- hosts: h1
  gather_facts: false
  tasks:
    - block:
        - shell: echo "b $PV_VIA" >> ${dir}/ran
        - shell: echo "l $PV_VIA" >> ${dir}/ran
          delegate_to: localhost
      delegate_to: d1
`,
      INV,
      marked(),
    );
    // The controller's own connection (not a Marked one) leaves PV_VIA empty.
    expect(text(`${dir}/ran`)).toBe('b d1\nl \n');
  });
});

describe('validate: delegate_to', () => {
  const load = (yaml: string) => {
    const dir = fresh('validate');
    writeFiles(dir, { 'p.yaml': yaml });
    return () => loadPlaybook(`${dir}/p.yaml`);
  };

  it('accepts delegate_to an inventory host name or template, and delegate_facts: false (Ansible\'s default)', () => {
    expect(load(`- hosts: all\n  tasks:\n    - command: uptime\n      delegate_to: db1\n      delegate_facts: false\n    - command: uptime\n      delegate_to: "{{ groups.db[0] }}"\n`)).not.toThrow();
  });

  it('refuses delegate_facts: true by name', () => {
    expect(load(`- hosts: all\n  tasks:\n    - setup:\n      delegate_to: db1\n      delegate_facts: true\n`)).toThrow(/delegate_facts.*true is not supported yet/);
  });

  it('refuses delegate_to per loop item', () => {
    expect(load(`- hosts: all\n  tasks:\n    - command: uptime\n      delegate_to: "{{ item }}"\n      loop: [a, b]\n`)).toThrow(/delegate_to per loop item \("item" in delegate_to\) is not supported yet/);
  });
});

describe('provision validate -i: delegate_to', () => {
  it('names a delegate_to host outside the inventory at file:line:col, and accepts an inventory host', async () => {
    const dir = fresh('cli');
    const inv = writeFiles(dir, { hosts: INV });
    const pb = writeFiles(dir, {
      'p.yaml': '- hosts: web\n  tasks:\n    - command: uptime\n      delegate_to: d1\n    - command: uptime\n      delegate_to: db.example.test\n',
    });
    const r = await runCli(['validate', pb, '-i', inv]);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain(`${pb}:6:7: task "command": delegate_to:`);
    expect(r.stderr).toContain('delegate_to: "db.example.test" is not a host of the inventory');
    expect(r.stderr).not.toContain('"d1"');
    const ok = writeFiles(dir, { 'ok.yaml': '- hosts: web\n  tasks:\n    - command: uptime\n      delegate_to: d1\n' });
    expect((await runCli(['validate', ok, '-i', inv])).code).toBe(0);
  });
});

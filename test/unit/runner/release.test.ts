import { describe, expect, it } from 'vitest';
import { LocalConnection } from '../../../src/connection/local.js';
import type { RunEvent, TaskResultEvent } from '../../../src/report/events.js';
import { loadPlaybook } from '../../../src/playbook/validate.js';
import { lastPlays } from '../../../src/runner/run.js';
import { runLocal } from '../../support/run.js';
import { tempDir, writeFiles } from '../../support/tmp.js';

const dir = tempDir();
let n = 0;
const load = (text: string) => loadPlaybook(writeFiles(dir, { [`release${n++}.yaml`]: text }));

describe('when the run is done with a host', () => {
  it('after the last play that names it; a host named by delegate_to only at the end of the run', () => {
    const pb = load(`- hosts: web
  gather_facts: false
  tasks:
    - debug: { msg: one }
- hosts: db
  gather_facts: false
  tasks:
    - command: "true"
      delegate_to: w2
`);
    const last = lastPlays(pb, [['w1', 'w2', 'd1'], ['d1']]);
    expect([...last.entries()].sort()).toEqual([
      ['d1', 1],
      ['w1', 0],
    ]);
  });

  it('never before the end when a delegate_to is templated (any host may be its target)', () => {
    const pb = load(`- hosts: all
  gather_facts: false
  tasks:
    - command: "true"
      delegate_to: "{{ groups.db[0] }}"
`);
    expect(lastPlays(pb, [['w1', 'd1']]).size).toBe(0);
  });

  it('closes a host after its last play, and a later play still reads its facts through hostvars (Ansible 2.14 keeps them for the run)', async () => {
    const order: string[] = [];
    const seen: RunEvent[] = [];
    const { report } = await runLocal(
      dir,
      `- hosts: web
  tasks:
    - command: echo from-{{ inventory_hostname }}
- hosts: db
  tasks:
    - assert:
        that:
          - hostvars['w1'].facts.hostname == facts.hostname
          - hostvars['w1'].ansible_hostname == facts.hostname
`,
      '[web]\nw1 ansible_connection=local\n[db]\nd1 ansible_connection=local\n',
      {
        connectionFor: (host) =>
          new (class extends LocalConnection {
            override async close(): Promise<void> {
              order.push(`closed ${host}`);
              await super.close();
            }
          })(host),
        emit: (e) => {
          seen.push(e);
          if (e.type === 'play_start') order.push(`play ${e.hosts.join(',')}`);
        },
      },
    );
    const results = seen.filter((e): e is TaskResultEvent => e.type === 'task_result');
    expect(results.map((r) => [r.task, r.status, r.msg ?? ''])).toEqual([
      ['command', 'changed', 'from-w1'],
      ['assert', 'ok', 'all assertions hold'],
    ]);
    expect(report.exitCode).toBe(0);
    // w1 is closed before the second play starts, once: not again when the run ends.
    expect(order).toEqual(['play w1', 'closed w1', 'play d1', 'closed d1']);
  });

  it('closes a host that failed at once, though a later play names it (later plays skip it, as Ansible does)', async () => {
    const order: string[] = [];
    const { report } = await runLocal(
      dir,
      `- hosts: all
  gather_facts: false
  tasks:
    - fail: { msg: broken }
      when: inventory_hostname == 'w1'
- hosts: all
  gather_facts: false
  tasks:
    - debug: { msg: second }
`,
      '[web]\nw1 ansible_connection=local\nw2 ansible_connection=local\n',
      {
        connectionFor: (host) =>
          new (class extends LocalConnection {
            override async close(): Promise<void> {
              order.push(`closed ${host}`);
              await super.close();
            }
          })(host),
        emit: (e) => {
          if (e.type === 'play_start') order.push(`play ${e.hosts.join(',')}`);
        },
      },
    );
    expect(report.hosts.w1!.failed).toBe(1);
    expect(order).toEqual(['play w1,w2', 'closed w1', 'play w2', 'closed w2']);
  });
});

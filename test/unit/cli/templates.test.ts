import { readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { runCli } from '../../support/cli.js';
import { tempDir, writeFiles } from '../../support/tmp.js';

const dir = tempDir();
const inventory = writeFiles(dir, {
  hosts: '[mail]\nmx1.example.org ansible_connection=local role=primary\nmx2.example.org ansible_connection=local role=backup\n[web]\nwww.example.org ansible_connection=local\n',
});

describe('templates in playbooks', () => {
  it('validate reports an unknown filter and an unknown test at file:line:col with a did-you-mean', async () => {
    const pb = writeFiles(dir, {
      'typo.yaml': `- hosts: mail
  gather_facts: false
  tasks:
    - name: a typo in a filter
      debug: { msg: "{{ role | uper }}" }
    - name: a typo in a test
      debug: { msg: hi }
      when: role is defind
`,
    });
    const r = await runCli(['validate', pb]);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain(`${pb}:5:21`);
    expect(r.stderr).toContain('unknown filter "uper" (did you mean "upper"?)');
    expect(r.stderr).toContain(`${pb}:8:13`);
    expect(r.stderr).toContain('unknown test "defind" (did you mean "defined"?)');
  });

  it('a filter name that is a JavaScript property is an unknown filter, never JavaScript', async () => {
    const pb = writeFiles(dir, { 'proto.yaml': '- hosts: mail\n  gather_facts: false\n  tasks:\n    - debug: { msg: "{{ \'a\' | constructor }}" }\n' });
    const r = await runCli(['validate', pb]);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('unknown filter "constructor"');
  });

  it('validate does not refuse a when: guard that names an ansible_* fact', async () => {
    const pb = writeFiles(dir, {
      'facts.yaml': "- hosts: mail\n  gather_facts: false\n  tasks:\n    - debug: { msg: hi }\n      when: ansible_os_family == 'Debian' and ansible_distribution_major_version | int >= 11\n",
    });
    const r = await runCli(['validate', pb, '-i', inventory]);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
  });

  it('groups, hostvars, group_names, play_hosts, ansible_play_batch, omit and ansible_version render on a run', async () => {
    const out = path.join(dir, 'magic.txt');
    const pb = writeFiles(dir, {
      // One host of the play: local-connection hosts share this machine's host lock.
      'magic.yaml': `- hosts: mx1.example.org
  gather_facts: false
  tasks:
    - name: magic variables
      copy:
        dest: "${out}-{{ inventory_hostname_short }}"
        content: |
          groups={{ groups['mail'] | join(',') }} in_when={{ inventory_hostname in groups['mail'] }}
          other={{ hostvars['mx2.example.org']['role'] }} mine={{ hostvars[inventory_hostname].role }}
          names={{ group_names }} play={{ ansible_play_hosts | join(',') }} batch={{ ansible_play_batch | join(',') }}
          version={{ ansible_version.full is version('2.9', '>=') }} check={{ ansible_check_mode }}
        mode: "{{ omit }}"
`,
    });
    const r = await runCli(['run', pb, '-i', inventory]);
    expect(r.stdout).not.toContain('failed ');
    expect(r.code).toBe(0);
    expect(readFileSync(`${out}-mx1`, 'utf8')).toBe(
      'groups=mx1.example.org,mx2.example.org in_when=True\nother=backup mine=primary\n' +
        "names=['mail'] play=mx1.example.org batch=mx1.example.org\nversion=True check=False\n",
    );
  });

  it("a fact of a host whose facts are not gathered is undefined, and the message names it", async () => {
    const pb = writeFiles(dir, {
      'other-facts.yaml': "- hosts: mx1.example.org\n  tasks:\n    - debug: { msg: \"{{ hostvars['www.example.org'].ansible_hostname }}\" }\n",
    });
    const r = await runCli(['run', pb, '-i', inventory]);
    expect(r.code).toBe(2);
    expect(r.stdout).toContain(`undefined variable "hostvars['www.example.org'].ansible_hostname"`);
  });

  it('ansible_* fact names come from the gathered facts', async () => {
    const pb = writeFiles(dir, {
      'ansible-facts.yaml': "- hosts: mx1.example.org\n  tasks:\n    - debug: { msg: \"{{ ansible_os_family == facts.os_family }} {{ ansible_facts['hostname'] == facts.hostname }} {{ ansible_service_mgr }}\" }\n",
    });
    const r = await runCli(['run', pb, '-i', inventory, '-v', '--json']);
    expect(r.code).toBe(0);
    const result = r.events.find((e) => e.type === 'task_result');
    expect(result).toMatchObject({ status: 'ok' });
    expect(String((result as { msg?: string }).msg)).toMatch(/^True True (systemd|sysvinit|upstart)$/);
  });
});

import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { InputError, InputErrors } from '../../../src/errors.js';
import { findRole, rolesPathFor, rolesPathFromCfg } from '../../../src/playbook/roles.js';
import { allTasks } from '../../../src/playbook/types.js';
import { loadPlaybook } from '../../../src/playbook/validate.js';
import { subDirs, tempDir, writeFiles } from '../../support/tmp.js';

const fresh = subDirs(tempDir());

function errorsOf(dir: string, yaml: string, opts = {}): string[] {
  const file = writeFiles(dir, { 'site.yml': yaml });
  try {
    loadPlaybook(file, opts);
  } catch (e) {
    const list = e instanceof InputErrors ? e.errors : e instanceof InputError ? [e] : [];
    if (!list.length) throw e;
    return list.map((x) => x.message.replace(`${dir}/`, ''));
  }
  throw new Error('expected the playbook to be rejected');
}

const play = (tasks: string) => `- hosts: all\n  tasks:\n${tasks}`;

describe('validate names what provision does not support yet, by name', () => {
  const cases: { name: string; yaml: string; expect: RegExp }[] = [
    { name: 'an Ansible module provision lacks', yaml: play('    - authorized_key: user=bob key=x\n'), expect: /site\.yml:3:7: task "authorized_key": module "authorized_key" is not supported yet/ },
    { name: 'a user module option provision refuses (Ansible would make an SSH key)', yaml: play('    - user: name=bob ssh_key_bits=4096\n'), expect: /site\.yml:3:\d+: task "user": user has no argument "ssh_key_bits"/ },
    { name: 'a collection module provision lacks', yaml: play('    - ansible.posix.mount: { path: /mnt, state: mounted }\n'), expect: /module "ansible\.posix\.mount" is not supported yet/ },
    { name: 'a with_ lookup provision lacks suggests loop', yaml: play('    - debug: msg=x\n      with_random_choice: [a]\n'), expect: /"with_random_choice" is not supported yet; write the loop with "loop:"/ },
    { name: 'a task keyword provision lacks', yaml: play('    - command: sleep 1\n      async: 10\n'), expect: /"async": async tasks are not supported yet/ },
    { name: 'a play keyword provision lacks', yaml: '- hosts: all\n  strategy: free\n  tasks: []\n', expect: /"strategy": strategy is not supported yet/ },
    { name: 'a malformed serial list element (the issue\'s example)', yaml: '- hosts: all\n  serial: [1, "x%y"]\n  tasks: []\n', expect: /site\.yml:2:\d+: play 1: item 2 of "serial" has an invalid value "x%y"/ },
    { name: 'rescue outside a block', yaml: play('    - debug: msg=x\n      rescue: []\n'), expect: /"rescue" belongs to a block/ },
    { name: 'two loops on one task', yaml: play('    - debug: msg=x\n      loop: [1]\n      with_items: [2]\n'), expect: /a task takes one loop, found "loop" and "with_items"/ },
    { name: 'free text given to a module that only takes key=value', yaml: play('    - lineinfile: dest=/etc/x hello\n'), expect: /lineinfile takes key=value arguments; "hello" is not one/ },
    { name: 'a shorthand argument the module does not have', yaml: play('    - service: name=postfix state=restarted sleep=3\n'), expect: /service has no argument "sleep"/ },
    { name: 'delegate_facts: true (facts of a delegated task go to the host it runs for)', yaml: play('    - command: uptime\n      delegate_to: db1\n      delegate_facts: true\n'), expect: /site\.yml:5:\d+: .*"delegate_facts": true is not supported yet/ },
    { name: 'run_once on include_vars (Ansible shares the variables with the whole batch)', yaml: play('    - include_vars: { file: x.yaml }\n      run_once: true\n'), expect: /run_once with include_vars is not supported yet/ },
    { name: 'a role that is not there', yaml: '- hosts: all\n  roles: [postfixx]\n', expect: /role "postfixx" not found \(looked in .*roles/ },
    { name: 'an import whose name needs a fact (Ansible 2.14 refuses it too)', yaml: play('    - import_tasks: "setup-{{ ansible_os_family }}.yml"\n'), expect: /import_tasks "setup-\{\{ ansible_os_family \}\}\.yml": undefined variable "ansible_os_family"\. An import is resolved before the run.*use include_tasks/ },
    { name: 'a task file that is not there', yaml: play('    - import_tasks: nope.yml\n'), expect: /task file nope\.yml not found/ },
    { name: 'dest and path both given to lineinfile', yaml: play('    - lineinfile: { path: /a, dest: /b, line: x }\n'), expect: /"dest" and "path" name the same argument of lineinfile/ },
  ];
  for (const c of cases) {
    it(c.name, () => {
      expect(errorsOf(fresh('v'), c.yaml).join('\n')).toMatch(c.expect);
    });
  }

  it('an error in a role file points into that file', () => {
    const dir = fresh('rolefile');
    writeFiles(dir, { 'roles/r/tasks/main.yml': '- copy: { dest: /x, content: y, mod: "0644" }\n' });
    expect(errorsOf(dir, '- hosts: all\n  roles: [r]\n')).toEqual([`roles/r/tasks/main.yml:1:33: task "copy": copy has no argument "mod" (did you mean "mode"?)`]);
  });
});

describe('shorthand and aliases become the arguments Ansible would pass', () => {
  it('service/command/lineinfile shorthand, args:, yes/no booleans, dest → path', () => {
    const dir = fresh('kv');
    const file = writeFiles(dir, {
      'site.yml': play(`    - service: name=postfix state=restarted
    - command: echo hi creates=/etc/x
    - lineinfile: dest=/etc/postfix/main.cf line="a = b" create=yes
    - command: /usr/sbin/postmap hash:/etc/postfix/x
      args: { chdir: /etc/postfix, creates: /etc/postfix/x.db }
    - file: name=/tmp/d state=directory
`),
    });
    const tasks = allTasks(loadPlaybook(file).plays[0]!);
    expect(tasks.map((t) => t.args)).toEqual([
      { name: 'postfix', state: 'restarted' },
      { cmd: 'echo hi', creates: '/etc/x' },
      { path: '/etc/postfix/main.cf', line: 'a = b', create: true },
      { chdir: '/etc/postfix', creates: '/etc/postfix/x.db', cmd: '/usr/sbin/postmap hash:/etc/postfix/x' },
      { path: '/tmp/d', state: 'directory' },
    ]);
  });
});

describe('role resolution', () => {
  it('roles/ beside the playbook, then --roles-path, ANSIBLE_ROLES_PATH, ansible.cfg roles_path, then the playbook directory', () => {
    const dir = fresh('rp');
    writeFiles(dir, { 'ansible.cfg': '[defaults]\n# comment\nroles_path = ./cfgroles:/nonexistent\n\n[ssh_connection]\nroles_path = wrong\n' });
    expect(rolesPathFromCfg(path.join(dir, 'ansible.cfg'))).toEqual([path.join(dir, 'cfgroles'), '/nonexistent']);
    const p = rolesPathFor(dir, ['/cli/a:/cli/b'], { ANSIBLE_ROLES_PATH: '/env/x' });
    expect(p.slice(0, 6)).toEqual([path.join(dir, 'roles'), '/cli/a', '/cli/b', '/env/x', path.join(dir, 'cfgroles'), '/nonexistent']);
    expect(p.at(-1)).toBe(dir);
  });

  it('finds a role in the first directory that has it; a name with a slash is a path', () => {
    const dir = fresh('find');
    writeFiles(dir, { 'a/r/tasks/main.yml': '[]\n', 'b/r/tasks/main.yml': '[]\n', 'b/only/tasks/main.yml': '[]\n', 'x/y/tasks/main.yml': '[]\n' });
    const rp = [path.join(dir, 'a'), path.join(dir, 'b')];
    expect(findRole('r', rp, dir)).toBe(path.join(dir, 'a/r'));
    expect(findRole('only', rp, dir)).toBe(path.join(dir, 'b/only'));
    expect(findRole('x/y', rp, dir)).toBe(path.join(dir, 'x/y'));
    expect(findRole('none', rp, dir)).toBeNull();
  });

  it('roles from an ansible.cfg roles_path, with meta dependencies first and role handlers before the play\'s', () => {
    const dir = fresh('cfg');
    writeFiles(dir, {
      'ansible.cfg': '[defaults]\nroles_path = galaxy\n',
      'galaxy/acme.postfix/meta/main.yml': 'dependencies: [common]\n',
      'galaxy/acme.postfix/tasks/main.yml': '- name: postfix task\n  debug: msg=p\n',
      'galaxy/acme.postfix/handlers/main.yml': '- name: restart postfix\n  debug: msg=r\n',
      'galaxy/common/tasks/main.yml': '- name: common task\n  debug: msg=c\n',
    });
    const file = writeFiles(dir, { 'site.yml': '- hosts: all\n  roles: [acme.postfix]\n  tasks:\n    - name: play task\n      debug: msg=t\n      notify: restart postfix\n  handlers:\n    - name: play handler\n      debug: msg=h\n' });
    const pl = loadPlaybook(file).plays[0]!;
    expect(pl.tasks.map((t) => t.name)).toEqual(['common task', 'postfix task', 'play task']);
    expect(pl.handlers.map((t) => t.name)).toEqual(['restart postfix', 'play handler']);
    expect(pl.tasks[1]!.role?.name).toBe('acme.postfix');
  });

  it('import_playbook brings the plays of another file, with its vars', () => {
    const dir = fresh('imp');
    writeFiles(dir, { 'other.yml': '- hosts: db\n  tasks: []\n' });
    const file = writeFiles(dir, { 'site.yml': '- import_playbook: other.yml\n  vars: { a: 1 }\n- hosts: web\n  tasks: []\n' });
    const pb = loadPlaybook(file);
    expect(pb.plays.map((p) => [p.hosts, p.vars])).toEqual([
      ['db', { a: 1 }],
      ['web', {}],
    ]);
  });
});

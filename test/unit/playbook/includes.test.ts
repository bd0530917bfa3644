import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { InputError, InputErrors } from '../../../src/errors.js';
import { firstFoundNames, runLookup, searchCandidates, searchPathOf } from '../../../src/playbook/lookups.js';
import { namePattern } from '../../../src/playbook/includes.js';
import { allTasks, type Task } from '../../../src/playbook/types.js';
import { loadPlaybook } from '../../../src/playbook/validate.js';
import { loopOf } from '../../../src/runner/task-loops.js';
import { subDirs, tempDir, writeFiles } from '../../support/tmp.js';

const fresh = subDirs(tempDir());

function errorsOf(file: string, opts = {}): string[] {
  try {
    loadPlaybook(file, opts);
  } catch (e) {
    const list = e instanceof InputErrors ? e.errors : e instanceof InputError ? [e] : [];
    if (!list.length) throw e;
    return list.map((x) => x.message.replace(`${path.dirname(file)}/`, ''));
  }
  throw new Error('expected the playbook to be rejected');
}

/** A role laid out as geerlingguy.postfix-style roles are: family vars files, family setup files. */
function familyRole(dir: string, main: string, extra: Record<string, string> = {}): string {
  return writeFiles(dir, {
    'site.yml': '- hosts: all\n  roles: [pf]\n',
    'roles/pf/tasks/main.yml': main,
    'roles/pf/tasks/setup-Debian.yml': '- name: debian setup\n  debug: msg=d\n',
    'roles/pf/tasks/setup-RedHat.yml': '- name: redhat setup\n  debug: msg=r\n',
    'roles/pf/vars/Debian.yml': 'fam: debian\n',
    'roles/pf/vars/RedHat.yml': 'fam: redhat\n',
    ...extra,
  });
}

describe('templated include names (Ansible 2.14 semantics)', () => {
  it('geerlingguy.postfix shape: include_tasks "setup-{{ ansible_os_family }}.yml" checks both family files before the run and notes the per-host choice', () => {
    const dir = fresh('geerling');
    const file = familyRole(dir, '- include_vars: "{{ ansible_os_family }}.yml"\n- include_tasks: "setup-{{ ansible_os_family }}.yml"\n');
    const pb = loadPlaybook(file);
    const inc = pb.plays[0]!.tasks[1]!;
    expect(inc.include?.dynamic?.name).toBe('setup-{{ ansible_os_family }}.yml');
    expect(inc.include!.dynamic!.checked.map((f) => path.relative(dir, f))).toEqual(['roles/pf/tasks/setup-Debian.yml', 'roles/pf/tasks/setup-RedHat.yml']);
    expect(allTasks(pb.plays[0]!).map((t) => t.name)).toEqual(['include_vars', 'debian setup', 'redhat setup']);
    expect(pb.notes.join('\n')).toMatch(/main\.yml:2:3: task "include_tasks": include_tasks "setup-\{\{ ansible_os_family \}\}\.yml" is resolved per host at run time; checked the 2 files it can name now/);
    // At run time: a family with a file gets its tasks, one without names the rendered path.
    const debian = inc.include!.dynamic!.resolve('setup-Debian.yml');
    expect(typeof debian === 'string' ? debian : debian.tasks.map((t) => t.name)).toEqual(['debian setup']);
    expect(inc.include!.dynamic!.resolve('setup-Suse.yml')).toMatch(/^task file setup-Suse\.yml not found \(looked in .*roles\/pf\/tasks/);
  });

  it('a problem in a file the name could match is a validate error, with its own file:line:col', () => {
    const dir = fresh('bad-candidate');
    const file = familyRole(dir, '- include_tasks: "setup-{{ ansible_os_family }}.yml"\n', { 'roles/pf/tasks/setup-Suse.yml': '- name: x\n  copy: { nope: 1 }\n' });
    expect(errorsOf(file).join('\n')).toMatch(/roles\/pf\/tasks\/setup-Suse\.yml:2:\d+: task "x": copy/);
  });

  it('a name that play vars decide must name an existing file (validate fails, as the run would on every host)', () => {
    const dir = fresh('play-var');
    const file = writeFiles(dir, { 'site.yml': '- hosts: all\n  vars: { flavour: nope }\n  tasks:\n    - include_tasks: "t-{{ flavour }}.yml"\n', 't-x.yml': '- debug: msg=x\n' });
    expect(errorsOf(file).join('\n')).toMatch(/site\.yml:4:22: include_tasks "t-\{\{ flavour \}\}\.yml" renders to "t-nope\.yml" from play variables: task file t-nope\.yml not found/);
  });

  it('a file found only at run time (the name had no fixed text to match) is loaded then; a problem in it fails that host', () => {
    const dir = fresh('late');
    const file = writeFiles(dir, { 'site.yml': '- hosts: all\n  tasks:\n    - include_tasks: "{{ which }}"\n', 'ok.yml': '- name: fine\n  debug: msg=x\n', 'bad.yml': '- name: broken\n  copy: { nope: 1 }\n' });
    const pb = loadPlaybook(file);
    const d = pb.plays[0]!.tasks[0]!.include!.dynamic!;
    expect(d.checked).toEqual([]);
    expect(pb.notes.join('\n')).toMatch(/no file could be checked before the run/);
    const ok = d.resolve('ok.yml');
    expect(typeof ok === 'string' ? ok : ok.tasks.map((t) => t.name)).toEqual(['fine']);
    expect(d.resolve('bad.yml')).toMatch(/bad\.yml:2:\d+: task "broken": copy has no argument "nope"/);
  });

  it('import_tasks and import_role take play vars and --extra-vars in their names, as Ansible resolves imports statically', () => {
    const dir = fresh('imports');
    const file = writeFiles(dir, {
      'site.yml': '- hosts: all\n  vars: { part: a }\n  tasks:\n    - import_tasks: "t-{{ part }}.yml"\n    - import_role: { name: "{{ role_choice }}" }\n',
      't-a.yml': '- name: from a\n  debug: msg=a\n',
      'roles/mail/tasks/main.yml': '- name: from role\n  debug: msg=r\n',
    });
    expect(loadPlaybook(file, { extraVars: { role_choice: 'mail' } }).plays[0]!.tasks.map((t) => t.name)).toEqual(['from a', 'from role']);
    // Without the extra var, the role name is refused as Ansible refuses it: not per host.
    expect(errorsOf(file).join('\n')).toMatch(/site\.yml:5:20: role "\{\{ role_choice \}\}": undefined variable "role_choice"\. An import is resolved before the run/);
  });

  it('an import name may use a variable of a vars_files file named literally (Ansible 2.14 allows vars_files there)', () => {
    const dir = fresh('vars-files');
    const file = writeFiles(dir, {
      'site.yml': '- hosts: all\n  vars: { part: a }\n  vars_files: [choice.yml]\n  tasks:\n    - import_tasks: "t-{{ part }}.yml"\n',
      'choice.yml': 'part: b\n',
      't-b.yml': '- name: from b\n  debug: msg=b\n',
    });
    expect(loadPlaybook(file).plays[0]!.tasks.map((t) => t.name)).toEqual(['from b']);
  });

  it('include_role with a templated name: roles the name can match are loaded before the run, one chosen per host', () => {
    const dir = fresh('include-role');
    const file = writeFiles(dir, {
      'site.yml': '- hosts: all\n  tasks:\n    - include_role: { name: "os_{{ ansible_os_family }}" }\n',
      'roles/os_Debian/tasks/main.yml': '- name: debian role\n  debug: msg=d\n',
      'roles/os_Debian/handlers/main.yml': '- name: debian handler\n  debug: msg=h\n',
      'roles/os_RedHat/tasks/main.yml': '- name: redhat role\n  debug: msg=r\n',
    });
    const d = loadPlaybook(file).plays[0]!.tasks[0]!.include!.dynamic!;
    expect(d.checked.map((c) => path.basename(c))).toEqual(['os_Debian', 'os_RedHat']);
    const r = d.resolve('os_Debian');
    expect(typeof r === 'string' ? r : [r.tasks.map((t) => t.name), r.handlers.map((t) => t.name)]).toEqual([['debian role'], ['debian handler']]);
    expect(d.resolve('os_Suse')).toMatch(/^role "os_Suse" not found/);
  });

  it('include_role tasks_from from play vars is chosen at load; one that needs a fact is refused by name', () => {
    const dir = fresh('tasks-from');
    const file = writeFiles(dir, {
      'site.yml': '- hosts: all\n  vars: { part: a }\n  tasks:\n    - include_role: { name: r, tasks_from: "{{ part }}" }\n    - include_role: { name: r, tasks_from: "{{ ansible_os_family }}" }\n',
      'roles/r/tasks/a.yml': '- name: from a\n  debug: msg=a\n',
    });
    const errs = errorsOf(file);
    expect(errs).toHaveLength(1);
    expect(errs[0]).toMatch(/site\.yml:5:\d+: task "include_role": include_role's "tasks_from" "\{\{ ansible_os_family \}\}" must be known before the run .*a tasks_from chosen per host is not supported yet/);
  });

  it('a name pattern matches within one directory, and only when the name has fixed text', () => {
    expect(namePattern('setup-{{ ansible_os_family }}.yml')!.re.test('setup-Debian.yml')).toBe(true);
    expect(namePattern('setup-{{ ansible_os_family }}.yml')!.re.test('setup-a/b.yml')).toBe(false);
    expect(namePattern('{{ x }}.yml')).toBeNull();
    expect(namePattern('{{ dir }}/main.yml')).toBeNull();
    expect(namePattern('os/{{ x }}-tasks.yml')).toMatchObject({ dir: 'os' });
  });
});

describe('handlers that are blocks and includes (Ansible 2.14)', () => {
  const handlers = (dir: string, h: string, extra: Record<string, string> = {}) =>
    writeFiles(dir, { 'site.yml': `- hosts: all\n  tasks:\n    - name: t\n      command: /bin/true\n      notify: [hh, b2, topic]\n  handlers:\n${h}`, ...extra });

  it('a block in handlers gives each of its tasks as a handler (with the block\'s keywords); include_tasks is one handler; import_tasks gives its tasks', () => {
    const dir = fresh('handlers');
    const file = handlers(
      dir,
      '    - name: hh\n      include_tasks: hh.yml\n    - name: blk\n      when: true\n      block:\n        - name: b1\n          debug: msg=1\n          listen: topic\n        - name: b2\n          debug: msg=2\n    - import_tasks: imp.yml\n',
      { 'hh.yml': '- debug: msg=hh1\n- debug: msg=hh2\n', 'imp.yml': '- name: i1\n  debug: msg=i1\n  listen: topic\n' },
    );
    const hs = loadPlaybook(file).plays[0]!.handlers;
    expect(hs.map((t) => [t.name, t.listen])).toEqual([
      ['hh', []],
      ['b1', ['topic']],
      ['b2', []],
      ['i1', ['topic']],
    ]);
    expect(hs[0]!.include!.tasks.map((t) => t.module)).toEqual(['debug', 'debug']);
    expect(hs[1]!.when).toEqual([true]);
  });

  it('notifying the name of a block or of an import_tasks handler is an error, as in Ansible ("not found")', () => {
    const dir = fresh('handler-names');
    const file = writeFiles(dir, {
      'site.yml': '- hosts: all\n  tasks:\n    - command: /bin/true\n      notify: blk\n  handlers:\n    - name: blk\n      block:\n        - name: b1\n          debug: msg=1\n',
    });
    expect(errorsOf(file).join('\n')).toMatch(/notifies "blk", but no handler has that name or listen topic/);
  });

  it('rescue and always in a handlers block, and listen on the block itself, are refused by name', () => {
    const dir = fresh('handler-rescue');
    const file = writeFiles(dir, {
      'site.yml': '- hosts: all\n  handlers:\n    - name: blk\n      listen: x\n      block:\n        - name: b1\n          debug: msg=1\n      rescue:\n        - name: r\n          debug: msg=r\n',
    });
    const errs = errorsOf(file).join('\n');
    expect(errs).toMatch(/site\.yml:8:7: handler: "rescue" in a block of handlers is not supported yet/);
    expect(errs).toMatch(/"listen" is not a keyword of a block \(put it on the handlers inside\)/);
  });
});

describe('first_found (Ansible 2.14 search order, recorded with ansible-playbook -vvvvv)', () => {
  it('a role task: the role\'s <subdir>/ and directory, the task file\'s directory with and without <subdir>/, then the playbook\'s', () => {
    const dir = fresh('ff-order');
    writeFiles(dir, { 'roles/r/tasks/main.yml': '[]\n' });
    const role = path.join(dir, 'roles/r');
    const got = searchCandidates([role, path.join(role, 'tasks'), dir], dir, 'vars', 'zz.yml').map((p) => path.relative(dir, p));
    expect(got).toEqual(['roles/r/vars/zz.yml', 'roles/r/zz.yml', 'roles/r/tasks/vars/zz.yml', 'roles/r/tasks/zz.yml', 'vars/zz.yml', 'zz.yml']);
    // A name that starts with the subdir is not given it twice.
    expect(searchCandidates([dir], dir, 'vars', 'vars/a.yml').map((p) => path.relative(dir, p))).toEqual(['vars/a.yml']);
  });

  it('a meta dependency searches its own directory, then the role that depends on it (Ansible 2.14 -vvvvv order)', () => {
    const dir = fresh('ff-deps');
    const file = writeFiles(dir, {
      'site.yml': '- hosts: all\n  roles: [r]\n',
      'roles/r/meta/main.yml': 'dependencies: [c]\n',
      'roles/r/tasks/main.yml': '- debug: msg=r\n',
      'roles/c/tasks/main.yml': '- debug: msg=c\n',
    });
    const c = loadPlaybook(file).plays[0]!.tasks[0]!;
    const sp = searchPathOf(c, dir);
    expect(searchCandidates(sp, dir, 'files', 'zz.yml').map((p) => path.relative(dir, p))).toEqual([
      'roles/c/files/zz.yml',
      'roles/c/zz.yml',
      'roles/r/files/zz.yml',
      'roles/r/zz.yml',
      'roles/c/tasks/files/zz.yml',
      'roles/c/tasks/zz.yml',
      'files/zz.yml',
      'zz.yml',
    ]);
  });

  it('terms: files joined under paths; a mapping\'s files alone; a list read term by term; skip', () => {
    expect(firstFoundNames([{ files: ['a.yml', 'b.yml'], paths: ['vars'] }], {})).toEqual({ names: ['vars/a.yml', 'vars/b.yml'], skip: false });
    expect(firstFoundNames([['x.yml', 'y.yml']], {})).toEqual({ names: ['x.yml', 'y.yml'], skip: false });
    expect(firstFoundNames([{ files: 'a.yml,b.yml', skip: true }], {})).toEqual({ names: ['a.yml', 'b.yml'], skip: true });
    // A name with paths= but no files= gives nothing to try, as in Ansible 2.14.
    expect(firstFoundNames(['a.yml'], { paths: ['vars'] }).names).toEqual([]);
  });

  it('lookup gives the path, query a list; nothing found fails unless skip (no value) or errors=ignore', () => {
    const dir = fresh('ff-lookup');
    writeFiles(dir, { 'roles/r/tasks/main.yml': '[]\n', 'roles/r/vars/default.yml': 'a: 1\n', 'files/here.txt': 'x\n' });
    const ctx = { playbookDir: dir, searchPath: [path.join(dir, 'roles/r'), path.join(dir, 'roles/r/tasks'), dir], render: (t: string) => t };
    expect(runLookup(ctx, 'first_found', [{ files: ['nope.yml', 'default.yml'], paths: ['vars'] }], {}, false)).toBe(path.join(dir, 'roles/r/vars/default.yml'));
    expect(runLookup(ctx, 'first_found', ['nope.txt', 'here.txt'], {}, true)).toEqual([path.join(dir, 'files/here.txt')]);
    // In a template the folder is files/: a role's vars/ file is not found without paths (Ansible 2.14 does the same).
    expect(() => runLookup(ctx, 'first_found', ['default.yml'], {}, false)).toThrow(/no file was found \(tried "default\.yml" in files\//);
    expect(runLookup(ctx, 'first_found', ['nope.yml'], { skip: true }, false)).toEqual([]);
    expect(runLookup(ctx, 'first_found', ['nope.yml'], { errors: 'ignore' }, false)).toBe('');
    expect(runLookup(ctx, 'first_found', ['nope.yml'], { errors: 'ignore' }, true)).toEqual([]);
  });

  it('with_first_found searches the module\'s folder (templates/ for template) and passes over a name with an undefined variable', () => {
    const dir = fresh('ff-loop');
    const file = writeFiles(dir, {
      'site.yml': '- hosts: all\n  roles: [r]\n',
      'roles/r/tasks/main.yml': '- template: { src: "{{ item }}", dest: /tmp/x }\n  with_first_found: ["{{ nope }}.j2", "b-{{ fam }}.j2", default.j2]\n',
      'roles/r/templates/default.j2': 'd\n',
      'roles/r/templates/b-x.j2': 'x\n',
      'roles/r/files/b-y.j2': 'y\n',
    });
    const task = loadPlaybook(file).plays[0]!.tasks[0]! as Task;
    expect(loopOf(task, { fam: 'x' }, dir)).toEqual([path.join(dir, 'roles/r/templates/b-x.j2')]);
    // b-y.j2 is in files/, not templates/: the default is the first found.
    expect(loopOf(task, { fam: 'y' }, dir)).toEqual([path.join(dir, 'roles/r/templates/default.j2')]);
  });
});

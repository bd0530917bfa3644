/**
 * Whose variables a role's defaults and vars are, as in Ansible 2.14: `roles:` and import_role expose them to the
 * whole play from its start (they are read with the playbook); include_role keeps them to the role's own tasks
 * unless `public: true`, which gives them to the play once the include has run.
 */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { runLocal } from '../../support/run.js';
import { subDirs, tempDir, writeFiles } from '../../support/tmp.js';

const fresh = subDirs(tempDir());
const HOSTS = '[web]\nh1 ansible_connection=local\n';
const text = (p: string) => readFileSync(p, 'utf8');
const NO_LOCK = { lockTimeoutS: 0 };

/** A role `r` with a default, a var above play vars, and a meta dependency `base` with its own default. */
function roles(dir: string): void {
  writeFiles(dir, {
    'roles/base/defaults/main.yml': 'base_default: from-base\n',
    'roles/r/meta/main.yml': 'dependencies: [base]\n',
    'roles/r/defaults/main.yml': 'r_default: from-r-defaults\n',
    'roles/r/vars/main.yml': 'r_var: from-r-vars\n',
    'roles/r/tasks/main.yml': `- shell: echo "inside {{ r_default }} {{ r_var }} {{ base_default }}" >> ${dir}/out\n`,
  });
}

const show = (dir: string, label: string) =>
  `    - shell: echo "${label} {{ r_default | default('unset') }} {{ r_var | default('unset') }} {{ base_default | default('unset') }}" >> ${dir}/out\n`;

describe('include_role public, import_role and roles: variable exposure', { timeout: 30_000 }, () => {
  it('include_role (public: false, the default): only the role\'s tasks see its defaults, vars and its dependencies\' defaults', async () => {
    const dir = fresh('private');
    roles(dir);
    const { report } = await runLocal(dir, `- hosts: all\n  gather_facts: false\n  tasks:\n${show(dir, 'before')}    - include_role: { name: r }\n${show(dir, 'after')}`, HOSTS, NO_LOCK);
    expect(report.exitCode).toBe(0);
    expect(text(`${dir}/out`)).toBe('before unset unset unset\ninside from-r-defaults from-r-vars from-base\nafter unset unset unset\n');
  });

  it('include_role public: true: tasks after the include see them (role vars above play vars); tasks before do not', async () => {
    const dir = fresh('public');
    roles(dir);
    const { report } = await runLocal(
      dir,
      `- hosts: all\n  gather_facts: false\n  vars: { r_var: from-play }\n  tasks:\n${show(dir, 'before')}    - include_role: name=r public=yes\n${show(dir, 'after')}`,
      HOSTS,
      NO_LOCK,
    );
    expect(report.exitCode).toBe(0);
    expect(text(`${dir}/out`)).toBe('before unset from-play unset\ninside from-r-defaults from-r-vars from-base\nafter from-r-defaults from-r-vars from-base\n');
  });

  it('include_role public: true under a false when publishes nothing', async () => {
    const dir = fresh('public-skipped');
    roles(dir);
    const { report } = await runLocal(
      dir,
      `- hosts: all\n  gather_facts: false\n  tasks:\n    - include_role: { name: r, public: true }\n      when: false\n${show(dir, 'after')}`,
      HOSTS,
      NO_LOCK,
    );
    expect(report.exitCode).toBe(0);
    expect(text(`${dir}/out`)).toBe('after unset unset unset\n');
  });

  it('import_role: the play sees them from its start, as Ansible exposes them when it reads the playbook', async () => {
    const dir = fresh('import');
    roles(dir);
    const { report } = await runLocal(dir, `- hosts: all\n  gather_facts: false\n  tasks:\n${show(dir, 'before')}    - import_role: { name: r }\n`, HOSTS, NO_LOCK);
    expect(report.exitCode).toBe(0);
    expect(text(`${dir}/out`)).toBe('before from-r-defaults from-r-vars from-base\ninside from-r-defaults from-r-vars from-base\n');
  });

  it('public must be a boolean', async () => {
    const dir = fresh('bad');
    roles(dir);
    await expect(runLocal(dir, `- hosts: all\n  gather_facts: false\n  tasks:\n    - include_role: { name: r, public: sometimes }\n`, HOSTS, NO_LOCK)).rejects.toThrow(
      /include_role's "public" must be true or false, got "sometimes"/,
    );
  });
});

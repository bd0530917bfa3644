import { spawnSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { dnfModule, packageModule, parseState, stateCommand, yumModule } from '../../../src/modules/package.js';
import { runLocal } from '../../support/run.js';
import { subDirs, tempDir } from '../../support/tmp.js';

const fresh = subDirs(tempDir());
const HOSTS = '[h]\nh1 ansible_connection=local\n';

describe('package, apt, yum, dnf', () => {
  it('reads dpkg-query and apt-cache policy output as Debian 12 prints it', () => {
    const out = [
      'manager apt',
      'installed\tpostfix\tinstall ok installed\t3.7.11-0+deb12u1',
      'installed\tsasl2-bin\tdeinstall ok config-files\t2.1.28+dfsg-10',
      'installed\tlibc6:amd64\tinstall ok installed\t2.36-9+deb12u9',
      'candidate\tpostfix\t3.7.11-0+deb12u1',
      'candidate\tswaks\t(none)',
    ].join('\n');
    const st = parseState(out);
    expect(st.manager).toBe('apt');
    expect([...st.installed]).toEqual([
      ['postfix', '3.7.11-0+deb12u1'],
      ['libc6', '2.36-9+deb12u9'],
    ]);
    expect([...st.candidate]).toEqual([['postfix', '3.7.11-0+deb12u1']]);
  });

  it('reads rpm -q output (missing packages print nothing after the grep) and picks dnf or yum', () => {
    const st = parseState('manager yum\ninstalled\tpostfix\tinstall ok installed\t2.6.6-8.el6\n');
    expect(st.manager).toBe('yum');
    expect(st.installed.get('postfix')).toBe('2.6.6-8.el6');
  });

  it('yum and dnf refuse state latest before any host is touched, saying why; package says so on an rpm host', () => {
    expect(yumModule.check!({ name: 'postfix', state: 'latest' })).toBe(
      'yum: state latest is not supported with yum yet (provision cannot tell which version yum would install, so check mode could not predict it); use state: present',
    );
    expect(dnfModule.check!({ name: 'postfix', state: 'latest' })).toMatch(/^dnf: state latest is not supported with dnf yet/);
    expect(dnfModule.check!({ name: 'postfix', state: 'present' })).toBeNull();
    expect(packageModule.check!({ name: 'postfix', state: 'latest' })).toBeNull();
  });

  it('the read names every package after --, quoted', () => {
    const c = stateCommand(['postfix', 'libsasl2-modules'], true);
    expect(c.script).toContain("-- postfix libsasl2-modules 2>/dev/null");
    expect(c.script).toContain('apt-cache policy');
    expect(stateCommand(['postfix'], false).script).not.toContain('apt-cache');
  });

  it('on this machine: installed packages are ok with one read; check mode says what it would install; yum refuses a dpkg host', async () => {
    const dir = fresh('pkg');
    const { results, report } = await runLocal(
      dir,
      `- hosts: all
  gather_facts: false
  tasks:
    - name: present
      package: name=dpkg,coreutils state=present
    - name: list form with pkg alias
      apt: { pkg: [dpkg], state: latest }
    - name: missing
      package: { name: [dpkg, provision-no-such-package], update_cache: true }
    - name: absent already
      apt: name=provision-no-such-package state=absent
    - name: wrong manager
      yum: name=dpkg
      ignore_errors: true
`,
      HOSTS,
      { check: true },
    );
    const by = (n: string) => results.find((r) => r.task === n)!;
    expect(by('present')).toMatchObject({ status: 'ok' });
    expect(by('present').msg).toMatch(/^installed: dpkg \S+, coreutils \S+$/);
    // latest compares with apt's candidate, as apt-cache policy shows it on this machine.
    const policy = spawnSync('apt-cache', ['policy', '--', 'dpkg'], { encoding: 'utf8', env: { ...process.env, LC_ALL: 'C' } }).stdout;
    const [installed, candidate] = [/Installed: (\S+)/.exec(policy)![1], /Candidate: (\S+)/.exec(policy)![1]];
    expect(by('list form with pkg alias')).toMatchObject(
      installed === candidate ? { status: 'ok', msg: `up to date: dpkg ${installed}` } : { status: 'changed', msg: `upgrade dpkg ${installed} → ${candidate}` },
    );
    expect(by('missing')).toMatchObject({ status: 'changed', msg: 'install provision-no-such-package' });
    expect(by('absent already')).toMatchObject({ status: 'ok', msg: 'provision-no-such-package is not installed' });
    expect(by('wrong manager')).toMatchObject({ status: 'failed', msg: 'yum: this host\'s packages are managed by apt, not yum/dnf (use package)' });
    expect(report.exitCode).toBe(8);
  }, 30_000);
});

import { execFileSync } from 'node:child_process';
import { copyFileSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { runLocal } from '../../support/run.js';
import { tempDir } from '../../support/tmp.js';

const hasPostconf = (() => {
  try {
    execFileSync('postconf', ['-h', 'mail_version'], { stdio: 'ignore', env: { PATH: '/usr/sbin:/usr/bin:/sbin:/bin' } });
    return true;
  } catch {
    return false;
  }
})();

const dir = tempDir();
const inventory = '[mail]\nh1 ansible_connection=local\n';
const playbook = (confDir: string, settings: string) => `- hosts: all
  tasks:
    - postconf:
        config_dir: ${confDir}
        settings: ${settings}
        allow_unknown: [provision_test_unknown]
`;

function freshConfig(name: string): string {
  const d = path.join(dir, name);
  execFileSync('mkdir', ['-p', d]);
  copyFileSync('test/fixtures/postfix/debian-12-master.cf', path.join(d, 'master.cf'));
  execFileSync('sh', ['-c', `printf 'myhostname = h1.example\\n' > ${d}/main.cf`]);
  return d;
}

describe.skipIf(!hasPostconf)('validation of a change (with the host\'s postconf)', () => {
  it('a run validates in the write exec itself: facts with the reads, then the write — no separate validation exec', async () => {
    const conf = freshConfig('run');
    const { report } = await runLocal(dir, playbook(conf, '{ smtpd_tls_loglevel: 1 }'), inventory);
    expect(report.hosts.h1).toMatchObject({ changed: 1, failed: 0, steps: 2 });
    expect(readFileSync(path.join(conf, 'main.cf'), 'utf8')).toBe('myhostname = h1.example\nsmtpd_tls_loglevel = 1\n');
  });

  it('a run still refuses a change the validation rejects, and leaves the file as it was', async () => {
    const conf = freshConfig('refused');
    const { report, results } = await runLocal(dir, playbook(conf, '{ provision_test_unknown: 1 }'), inventory);
    expect(report.hosts.h1).toMatchObject({ changed: 0, failed: 1 });
    expect(results.at(-1)!.msg).toMatch(/^validation failed \(postconf -n\): .*unused parameter: provision_test_unknown=1/);
    expect(readFileSync(path.join(conf, 'main.cf'), 'utf8')).toBe('myhostname = h1.example\n');
  });

  it('check mode validates the candidate in an exec of its own and writes nothing', async () => {
    const conf = freshConfig('check');
    const ok = await runLocal(dir, playbook(conf, '{ smtpd_tls_loglevel: 1 }'), inventory, { check: true });
    expect(ok.report.hosts.h1).toMatchObject({ changed: 1, failed: 0, steps: 2 });
    const refused = await runLocal(dir, playbook(conf, '{ provision_test_unknown: 1 }'), inventory, { check: true });
    expect(refused.results.at(-1)!.msg).toMatch(/^validation failed \(postconf -n\): .*unused parameter/);
    expect(readFileSync(path.join(conf, 'main.cf'), 'utf8')).toBe('myhostname = h1.example\n');
  });
});

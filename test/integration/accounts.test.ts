/**
 * user and debconf on lab hosts over real SSH: check mode predicts the run, the run converges (in the host's own
 * account databases and debconf database), a second run and check change nothing.
 * Run: PROVISION_REQUIRE_LAB=1 npx vitest run --project lab test/integration/accounts.test.ts
 */
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import type { TaskResultEvent } from '../../src/report/events.js';
import type { LabHost } from '../lab/lab.js';
import { provision, sh, writePlaybook } from './faults/support.js';
import { labArgs, runCli } from '../support/cli.js';
import { tempDir } from '../support/tmp.js';

const lab = inject('lab');

const results = (events: unknown[], host: LabHost) =>
  (events as TaskResultEvent[]).filter((e) => e.type === 'task_result' && e.host === host.name && !e.handler).map((e) => [e.task, e.status, e.msg]);

const execs = (events: unknown[], host: LabHost) =>
  (events as { type: string; hosts?: Record<string, { execs: number }> }[]).find((e) => e.type === 'recap')?.hosts?.[host.name]?.execs;

const USER = 'provision-mail';
/** SHA-512 crypt of a word that is no secret, made for this test. */
const HASH = '$6$Wq3kZ0uPzYt8aLmN$gGm.b2bCnJ4endihnNpIl1l2DbvXuckfv.GmODX/8vX6VxCVAM8b9gfXdPCW.4hbZm5HJskasxdiZ5fUOP5M..';
const CLEAN = `userdel -r ${USER} 2>/dev/null; groupdel ${USER} 2>/dev/null; true`;

const check = (pb: string, host: LabHost) => runCli(['check', pb, ...labArgs(lab!), '--json', '--no-retry-file', '--limit', host.name]);

describe.skipIf(!lab)('user and debconf on lab hosts', () => {
  const state = lab!;
  const hosts = state?.hosts ?? [];
  const debian = hosts.find((x) => x.flavour === 'debian') as LabHost;
  const rhel = hosts.find((x) => x.flavour === 'rhel') as LabHost;
  const dir = tempDir('provision-accounts-');

  afterAll(async () => {
    if (!state) return;
    for (const h of [debian, rhel]) if (h) await sh(h, CLEAN);
  });

  for (const flavour of ['debian', 'rhel'] as const) {
    it(`user on ${flavour}: check predicts, the run creates the account, a second run is ok; change, then remove`, async () => {
      const h = flavour === 'debian' ? debian : rhel;
      expect(h, `the lab has a ${flavour} host`).toBeDefined();
      await sh(h, CLEAN);
      const create = writePlaybook(
        dir,
        `user-${flavour}.yml`,
        `- hosts: all
  gather_facts: false
  tasks:
    - name: group
      group: { name: ${USER}, gid: 4300 }
    - name: account
      user:
        name: ${USER}
        uid: 4300
        group: ${USER}
        groups: [mail]
        comment: Provision mail
        home: /home/${USER}
        shell: /usr/sbin/nologin
        password: "${HASH}"
`,
      );
      const planned = [
        ['group', 'changed', `add group ${USER} with gid 4300`],
        ['account', 'changed', `add user ${USER} (uid 4300, group ${USER}, groups mail, home /home/${USER}, shell /usr/sbin/nologin, password set)`],
      ];
      const c1 = await check(create, h);
      expect(c1.code, c1.stderr).toBe(8);
      expect(results(c1.events, h)).toEqual(planned);
      expect(await sh(h, `getent passwd ${USER} || echo absent`)).toBe('absent\n');

      const run = await provision(state, create, ['--limit', h.name]);
      expect(run.code, run.stderr).toBe(0);
      expect(results(run.events, h)).toEqual(planned.map(([t, s, m]) => [t, s, m!.replace(/^add /, 'added ')]));
      expect(run.stdout).not.toContain(HASH);
      expect(await sh(h, `getent passwd ${USER}; getent group mail | grep -c ${USER}; getent shadow ${USER} | cut -d: -f2; stat -c '%U:%G' /home/${USER}`)).toBe(
        `${USER}:x:4300:4300:Provision mail:/home/${USER}:/usr/sbin/nologin\n1\n${HASH}\n${USER}:${USER}\n`,
      );
      const again = await provision(state, create, ['--limit', h.name]);
      expect(results(again.events, h)).toEqual([
        ['group', 'ok', `group ${USER} exists (gid 4300)`],
        ['account', 'ok', `user ${USER} is as asked (uid 4300)`],
      ]);
      // Nothing to change: the account's read came with the host's first exec.
      expect(execs(again.events, h)).toBe(1);
      const c2 = await check(create, h);
      expect(c2.code, c2.stderr).toBe(0);

      // groups "" takes the account out of every supplementary group, as Ansible 2.14 does.
      const change = writePlaybook(dir, `user-change-${flavour}.yml`, `- hosts: all\n  gather_facts: false\n  tasks:\n    - name: account\n      user: name=${USER} shell=/bin/sh groups="" password_lock=yes\n`);
      const wantChange = `change user ${USER}: groups -mail, shell /usr/sbin/nologin → /bin/sh, password locked`;
      const c3 = await check(change, h);
      expect(c3.code, c3.stderr).toBe(8);
      expect(results(c3.events, h)).toEqual([['account', 'changed', wantChange]]);
      const run2 = await provision(state, change, ['--limit', h.name]);
      expect(results(run2.events, h)).toEqual([['account', 'changed', wantChange.replace(/^change /, 'changed ')]]);
      expect(await sh(h, `getent passwd ${USER} | cut -d: -f7; getent group mail | grep -c ${USER}; getent shadow ${USER} | cut -c1-${USER.length + 2}`)).toBe(`/bin/sh\n0\n${USER}:!\n`);
      const again2 = await provision(state, change, ['--limit', h.name]);
      expect(results(again2.events, h)).toEqual([['account', 'ok', `user ${USER} is as asked (uid 4300)`]]);

      const remove = writePlaybook(dir, `user-remove-${flavour}.yml`, `- hosts: all\n  gather_facts: false\n  tasks:\n    - name: account\n      user: name=${USER} state=absent remove=yes\n`);
      const run3 = await provision(state, remove, ['--limit', h.name]);
      expect(results(run3.events, h)).toEqual([['account', 'changed', `removed user ${USER} (uid 4300) with its home /home/${USER} and mail spool`]]);
      expect(await sh(h, `getent passwd ${USER} || echo absent; test -e /home/${USER} || echo gone`)).toBe('absent\ngone\n');
      const again3 = await provision(state, remove, ['--limit', h.name]);
      expect(results(again3.events, h)).toEqual([['account', 'ok', `user ${USER} does not exist`]]);
      // The machine's own account database is not the lab host's.
      expect((await import('node:child_process')).spawnSync('getent', ['passwd', USER]).status).toBe(2);
    }, 180_000);
  }

  describe('debconf', () => {
    // The lab shares the machine's /var/cache/debconf: the Debian host gets databases of its own under /root
    // (its own overlay), named in its own /etc/debconf.conf, seeded with a copy of the machine's.
    const DB = '/root/provision-debconf';
    beforeAll(async () => {
      if (!debian) return;
      await sh(
        debian,
        `set -e; mkdir -p ${DB}; cp /var/cache/debconf/config.dat /var/cache/debconf/templates.dat ${DB}/; : > ${DB}/passwords.dat; chmod 600 ${DB}/passwords.dat
cp -p /etc/debconf.conf /root/debconf.conf.provision-test
cat > /etc/debconf.conf <<'EOF'
Config: configdb
Templates: templatedb

Name: config
Driver: File
Mode: 644
Reject-Type: password
Filename: ${DB}/config.dat

Name: passwords
Driver: File
Mode: 600
Backup: false
Required: false
Accept-Type: password
Filename: ${DB}/passwords.dat

Name: configdb
Driver: Stack
Stack: config, passwords

Name: templatedb
Driver: File
Mode: 644
Filename: ${DB}/templates.dat
EOF`,
      );
    });
    afterAll(async () => {
      if (debian) await sh(debian, `if [ -e /root/debconf.conf.provision-test ]; then mv /root/debconf.conf.provision-test /etc/debconf.conf; fi; rm -rf ${DB}`);
    });

    it('debian: check predicts, the run answers, a second run is ok; a password is compared and never shown', async () => {
      const machineBefore = (await import('node:child_process')).spawnSync('sha256sum', ['/var/cache/debconf/config.dat']).stdout.toString();
      const pb = writePlaybook(
        dir,
        'debconf.yml',
        `- hosts: all
  gather_facts: false
  tasks:
    - name: mailname
      debconf: { name: postfix, question: postfix/mailname, vtype: string, value: mx.provision.test }
    - name: preseed
      debconf: { name: provision-test, question: provision-test/enable, vtype: boolean, value: true }
    - name: secret
      debconf: { name: provision-test, question: provision-test/secret, vtype: password, value: s3cret-word }
`,
      );
      const c1 = await check(pb, debian);
      expect(c1.code, c1.stderr).toBe(8);
      const planned = results(c1.events, debian);
      expect(planned).toEqual([
        ['mailname', 'changed', expect.stringMatching(/^set postfix\/mailname \(string\) to "mx\.provision\.test"( \(was ".*"\))?$/)],
        ['preseed', 'changed', 'set provision-test/enable (boolean) to "true"'],
        ['secret', 'changed', 'set provision-test/secret (password) to ********'],
      ]);
      const run = await provision(state, pb, ['--limit', debian.name]);
      expect(run.code, run.stderr).toBe(0);
      expect(results(run.events, debian)).toEqual(planned);
      expect(run.stdout).not.toContain('s3cret-word');
      expect(await sh(debian, 'debconf-show postfix provision-test')).toMatch(/^\* postfix\/mailname: mx\.provision\.test$/m);
      expect(await sh(debian, `grep -c s3cret-word ${DB}/passwords.dat`)).toBe('1\n');
      const again = await provision(state, pb, ['--limit', debian.name]);
      expect(results(again.events, debian)).toEqual([
        ['mailname', 'ok', 'postfix/mailname is "mx.provision.test"'],
        ['preseed', 'ok', 'provision-test/enable is "true"'],
        ['secret', 'ok', 'provision-test/secret is ********'],
      ]);
      expect(again.stdout).not.toContain('s3cret-word');
      expect(execs(again.events, debian)).toBe(1);
      const c2 = await check(pb, debian);
      expect(c2.code, c2.stderr).toBe(0);
      // The machine's own debconf database was not touched.
      expect((await import('node:child_process')).spawnSync('sha256sum', ['/var/cache/debconf/config.dat']).stdout.toString()).toBe(machineBefore);
    }, 180_000);

    it('rhel: the task fails, naming the host\'s family', async () => {
      const pb = writePlaybook(dir, 'debconf-rhel.yml', '- hosts: all\n  gather_facts: false\n  tasks:\n    - name: mailname\n      debconf: name=postfix question=postfix/mailname vtype=string value=x\n');
      const run = await provision(state, pb, ['--limit', rhel.name]);
      expect(run.code).toBe(2);
      expect(results(run.events, rhel)).toEqual([['mailname', 'failed', `debconf: ${rhel.name} is not a Debian-family host (os family RedHat): it has no debconf database`]]);
    }, 120_000);
  });
});

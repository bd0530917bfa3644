/**
 * Changes that would break the host are rolled back by the restart that reveals them:
 * - a certificate cut short in transfer makes smtpd on 465 die at each connection: the Postfix restart fails its
 *   health check, every file of the run is put back (the new certificate removed), Postfix restarted on them;
 * - a firewall rule that drops the controller's own SSH packets (the open connection's too, not only new ones):
 *   the rollback job restores the rules, the rules file is put back, and SSH works again.
 * The SMTPS and iptables suites cover the playbook's own failure modes; these are the faults around them.
 * Run: PROVISION_REQUIRE_LAB=1 npx vitest run --project lab test/integration/faults/rollback.test.ts
 */
import { afterAll, describe, expect, inject, it } from 'vitest';
import { labReset, type LabHost } from '../../lab/lab.js';
import { hostSha, leftovers, provision, results, sh, warnings, writePlaybook } from './support.js';
import { banner } from '../../support/net.js';
import { tempDir } from '../../support/tmp.js';
import { LOCKOUT_MESSAGE } from '../../../src/modules/service.js';

const lab = inject('lab');


/** The first half of a real-looking certificate: what a transfer cut short leaves. */
const TRUNCATED_CERT = `-----BEGIN CERTIFICATE-----
MIIDGTCCAgGgAwIBAgIUY2Fyc3RvcHBlZGhlcmVhbmRuZXZlcmNhbWViYWNrMA0GCSqGSIb3DQEB
CwUAMBwxGjAYBgNVBAMMEWgyLmxhYi50ZXN0MB4XDTI2MTEyODA3MDkwMFoXDTM2MTEyNTA3MDkw
`;

describe.skipIf(!lab)('changes a restart proves wrong are rolled back', () => {
  const state = lab!;
  const debian = state?.hosts.filter((h) => h.flavour === 'debian').at(-1) as LabHost;
  const rhel = state?.hosts.filter((h) => h.flavour === 'rhel').at(-1) as LabHost;
  const dir = tempDir('provision-faults-rollback-');

  afterAll(async () => {
    if (state) await labReset(state, [debian, rhel]);
  });

  it('a truncated certificate: Postfix fails its health check, the run is undone, Postfix serves 25 again', async () => {
    const host = debian;
    const files = ['/etc/postfix/main.cf', '/etc/postfix/master.cf'];
    const before = await Promise.all(files.map((f) => hostSha(host, f)));
    const pb = writePlaybook(
      dir,
      'cert.yaml',
      `- hosts: all
  tasks:
    - name: the certificate, cut short in transfer
      copy:
        dest: /etc/postfix/broken.crt
        src: broken.crt
      notify: restart postfix
    - name: main.cf uses it
      postconf:
        settings:
          smtpd_tls_security_level: may
          smtpd_tls_cert_file: /etc/postfix/broken.crt
          smtpd_tls_key_file: "/etc/ssl/private/{{ inventory_hostname }}.key"
      notify: restart postfix
    - name: implicit TLS on 465
      master_cf:
        service: smtps
        type: inet
        private: n
        unpriv: "-"
        chroot: n
        wakeup: "-"
        maxproc: "-"
        command: smtpd
        options:
          smtpd_tls_wrappermode: "yes"
      notify: restart postfix
  handlers:
    - name: restart postfix
      service:
        name: postfix
        state: restarted
`,
      { 'files/broken.crt': TRUNCATED_CERT },
    );

    const r = await provision(state, pb, ['--limit', host.name]);

    expect(r.code).toBe(2);
    const got = results(r.events, host);
    expect(got.map((e) => [e.task, e.status])).toEqual([
      ['the certificate, cut short in transfer', 'changed'],
      ['main.cf uses it', 'changed'],
      ['implicit TLS on 465', 'changed'],
      ['restart postfix', 'failed'],
    ]);
    const failure = got[3]!.msg;
    expect(failure).toMatch(/^postfix failed after .*465\) closed the connection without a greeting/);
    expect(failure).toMatch(/ — mail log: .*(certificate|PEM|x509|cannot load)/i);
    expect(failure).toMatch(/restored \/etc\/postfix\/main\.cf, \/etc\/postfix\/master\.cf, \/etc\/postfix\/broken\.crt \(removed\) and restarted postfix: it runs again with the previous configuration$/);

    expect(await Promise.all(files.map((f) => hostSha(host, f)))).toEqual(before);
    expect(await hostSha(host, '/etc/postfix/broken.crt')).toBe('absent');
    expect(await leftovers(host, '/etc/postfix')).toEqual([]);
    expect((await sh(host, 'postfix status >/dev/null 2>&1 && echo up || echo down')).trim()).toBe('up');
    expect(await banner(host.ip, 25)).toMatch(new RegExp(`^220 ${host.name.replace(/\./g, '\\.')} ESMTP`));
  }, 300_000);

  it('an init script that exits 0 but leaves no master, its pid file naming another live program: "postfix is not running", rolled back', async () => {
    const host = debian;
    const before = await hostSha(host, '/etc/postfix/main.cf');
    // Postfix stopped, and the pid file left naming a live process that is not the master (the host's init, pid 1):
    // what a stale pid file looks like once its number is reused. `postfix status` says the master is down; the
    // health check's quick test must not be fooled by the live pid.
    await sh(
      host,
      `cp -p /etc/init.d/postfix /etc/init.d/postfix.pv-orig
cat > /etc/init.d/postfix <<'EOF'
#!/bin/sh
postfix stop >/dev/null 2>&1
printf '%30s\\n' 1 > /var/spool/postfix/pid/master.pid
exit 0
EOF`,
    );
    try {
      const pb = writePlaybook(
        dir,
        'no-master.yaml',
        `- hosts: all
  tasks:
    - name: main.cf gets a new banner
      postconf:
        settings:
          smtpd_banner: "$myhostname ESMTP provision-test"
      notify: restart postfix
  handlers:
    - name: restart postfix
      service:
        name: postfix
        state: restarted
`,
      );
      const r = await provision(state, pb, ['--limit', host.name]);
      expect(r.code).toBe(2);
      const got = results(r.events, host);
      expect(got.map((e) => [e.task, e.status])).toEqual([
        ['main.cf gets a new banner', 'changed'],
        ['restart postfix', 'failed'],
      ]);
      expect(got[1]!.msg).toMatch(/^postfix failed after it was restarted: postfix is not running(; | — )/);
      expect(got[1]!.msg).toMatch(/restored \/etc\/postfix\/main\.cf and restarted postfix: it is still unhealthy \(postfix is not running\)$/);
      expect(await hostSha(host, '/etc/postfix/main.cf')).toBe(before);
    } finally {
      await sh(host, 'mv -f /etc/init.d/postfix.pv-orig /etc/init.d/postfix && rm -f /var/spool/postfix/pid/master.pid && postfix start >/dev/null 2>&1; postfix status >/dev/null 2>&1 && echo up');
    }
    expect((await sh(host, 'postfix status >/dev/null 2>&1 && echo up || echo down')).trim()).toBe('up');
  }, 300_000);

  it('a rule that drops even the open SSH connection: rolled back in the rules file and live, SSH works again', async () => {
    const host = rhel;
    const rulesFile = '/etc/sysconfig/iptables';
    const before = { file: await hostSha(host, rulesFile), live: await sh(host, 'iptables -S') };
    const pb = writePlaybook(
      dir,
      'drop.yaml',
      `- hosts: all
  tasks:
    - name: drop the controller's SSH packets
      iptables:
        chain: INPUT
        source: "${state.controllerIp}"
        protocol: tcp
        dport: 22
        jump: DROP
        position: top
      notify: restart firewall
  handlers:
    - name: restart firewall
      service:
        name: "{{ facts.firewall_service }}"
        state: restarted
        rollback_timeout: 10
`,
    );

    const r = await provision(state, pb, ['--limit', host.name]);

    expect(r.code).toBe(2);
    expect(results(r.events, host).map((e) => [e.task, e.status, e.status === 'failed' ? e.msg : ''])).toEqual([
      ["drop the controller's SSH packets", 'changed', ''],
      ['restart firewall', 'failed', LOCKOUT_MESSAGE],
    ]);
    expect(warnings(r.events, host)).toContain(`${rulesFile} put back as before this run, so the refused rules are not loaded again`);
    expect(await hostSha(host, rulesFile)).toBe(before.file);
    expect(await sh(host, 'iptables -S')).toBe(before.live);
    expect(await sh(host, "pgrep -f 'provision-rollbac[k]' || true")).toBe('');

    // SSH works again: a new run connects, and finds the rule absent from the file as the rollback left it.
    const check = await provision(state, pb, ['--limit', host.name, '--check']);
    expect(check.code).toBe(8);
    expect(results(check.events, host).find((e) => e.task === "drop the controller's SSH packets")?.status).toBe('changed');
  }, 300_000);
});

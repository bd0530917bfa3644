/**
 * A hostile host: an ordinary local user on a managed host (here `nobody`, through setpriv) plants symbolic links
 * and holds locks in every world-writable place provision used to touch, and writes terminal escape sequences into
 * a managed file and into the mail log; an impostor sshd answers with another host key. Each case asserts the safe
 * outcome: no file outside the intended ones changed (every file under /etc and the planted targets hashed before
 * and after), no secret sent, no escape byte on the terminal, a clear message.
 * Run: PROVISION_REQUIRE_LAB=1 npx vitest run --project lab test/integration/faults/hostile.test.ts
 */
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, describe, expect, inject, it } from 'vitest';
import { createSecrets } from '../../../src/connection/secrets.js';
import { createSshRunState, SshConnection } from '../../../src/connection/ssh.js';
import { loadSshConfig } from '../../../src/connection/ssh-config.js';
import { resolveSshTarget } from '../../../src/connection/ssh-target.js';
import { parseInventoryText } from '../../../src/inventory/load.js';
import { loadPlaybook } from '../../../src/playbook/validate.js';
import type { RunEvent } from '../../../src/report/events.js';
import { runPlaybook } from '../../../src/runner/run.js';
import { labReset, type LabHost } from '../../lab/lab.js';
import { labArgs, runCli } from '../../support/cli.js';
import { tempDir } from '../../support/tmp.js';
import { provision, results, sh, warnings, writePlaybook } from './support.js';

const lab = inject('lab');

/** Run a script on the host as the unprivileged local user (the script on stdin). */
const asNobody = (host: LabHost, script: string) => sh(host, 'setpriv --reuid=65534 --regid=65534 --clear-groups -- /bin/sh -s', script);

/** Every byte a terminal acts on, but tab and newline (ESC, BEL, CR, DEL, C1 as UTF-8). */
const CONTROL = /[\u0000-\u0008\u000b-\u001f\u007f-\u009f]/;

/** OSC 52 (write the clipboard), then cursor up and erase line: what hides a line of a diff on a terminal. */
const ESCAPES = '\\033]52;c;cm0gLXJmIH4K\\007\\033[1A\\033[2K';

describe.skipIf(!lab)('a hostile local user on a managed host', () => {
  const state = lab!;
  const host = state?.hosts.find((h) => h.flavour === 'debian') as LabHost;
  const dir = tempDir('provision-faults-hostile-');

  afterAll(async () => {
    if (state) await labReset(state, [host]);
  });

  /** sha256 of every regular file under /etc and of the given paths, one `hash  path` line each, sorted. */
  const hashes = async (extra: string[] = []) =>
    (await sh(host, `{ find /etc -xdev -type f -print0 | xargs -0 sha256sum; for f in ${extra.join(' ')}; do sha256sum "$f"; done; } 2>/dev/null | sort -k2`))
      .split('\n')
      .filter(Boolean);
  const changedPaths = (before: string[], after: string[]) => {
    const was = new Map(before.map((l) => [l.slice(66), l.slice(0, 64)]));
    const now = new Map(after.map((l) => [l.slice(66), l.slice(0, 64)]));
    return [...new Set([...was.keys(), ...now.keys()])].filter((p) => was.get(p) !== now.get(p)).sort();
  };

  it('planted links and held locks in /tmp and /run/lock neither redirect nor block a run, and nothing but the managed file changes', async () => {
    // The victims a root-owned write through a planted link would create or clobber.
    await sh(host, 'printf "victim\\n" > /etc/hostile-victim && mkdir -p /run/lock && chmod 1777 /run/lock');
    const victims = ['/etc/ld.so.preload', '/etc/hostile-victim'];
    await asNobody(
      host,
        [
          'for d in /tmp /run/lock /var/lock; do [ -w "$d" ] || continue',
          '  ln -sf /etc/ld.so.preload "$d/provision.lock"; ln -sf /etc/hostile-victim "$d/provision.lock.busy"',
          'done',
          // The Postfix health check's old stderr file, for every pid the host's small pid namespace will hand out.
          'i=1; while [ $i -le 3000 ]; do ln -s /etc/hostile-victim /tmp/.provision-health.$i; i=$((i + 1)); done',
        ].join('\n'),
    );
    // And holds them: the old busy lock (flock -s without a timeout) made runs hang forever.
    await asNobody(host, 'for f in /tmp/provision.lock /tmp/provision.lock.busy; do (flock -x "$f" sleep 600 </dev/null >/dev/null 2>&1 &); done; true');
    try {
      await plantedRun(victims);
    } finally {
      await sh(host, 'pkill -u nobody flock; pkill -u nobody sleep; rm -f /tmp/provision.lock* /tmp/.provision-health.* /run/lock/provision.lock* /etc/hostile-victim; true');
    }
  }, 300_000);

  /** The run of the planted-links case, with the links and lock holders in place. */
  async function plantedRun(victims: string[]): Promise<void> {
    const before = await hashes(victims);

    const pb = writePlaybook(
      dir,
      'links.yaml',
      `- hosts: all
  tasks:
    - name: set a parameter
      postconf: { settings: { smtpd_tls_loglevel: "1" } }
      notify: restart postfix
  handlers:
    - name: restart postfix
      service: { name: postfix, state: restarted }
`,
    );
    const r = await provision(state, pb, ['--limit', host.name, '--lock-timeout', '20']);
    expect(r.code, r.stdout + r.stderr).toBe(0);
    expect(results(r.events, host).map((e) => [e.task, e.status])).toEqual([
      ['set a parameter', 'changed'],
      ['restart postfix', 'changed'],
    ]);
    const after = await hashes(victims);
    expect(changedPaths(before, after)).toEqual(['/etc/postfix/main.cf']);
    expect(await sh(host, 'ls -ld /etc/ld.so.preload 2>&1 || true')).toMatch(/No such file/);
    // Provision's own state lives in its private directory.
    expect((await sh(host, 'stat -c "%a %U" /var/lib/provision /var/lib/provision/lock')).trim().split('\n')).toEqual(['700 root', '600 root']);
  }

  it('a state directory swapped for a link to a directory of the local user is refused clearly, before anything changes', async () => {
    // Lab hosts share the machine's /var/lib (only some of its directories are their own), so the swap happens on a
    // tmpfs laid over /var/lib in this host's mount namespace: the machine's own /var/lib/provision is never touched.
    await sh(host, `mkdir -p /tmp/mallory && chown nobody /tmp/mallory && mount -t tmpfs -o mode=0755 tmpfs /var/lib && ln -s /tmp/mallory /var/lib/provision`);
    try {
      const before = await hashes();
      const pb = writePlaybook(dir, 'swapped.yaml', '- hosts: all\n  tasks:\n    - postconf: { settings: { smtpd_tls_loglevel: "2" } }\n');
      const r = await provision(state, pb, ['--limit', host.name]);
      expect(r.code & 2).toBe(2);
      const [refused] = results(r.events, host);
      expect(refused?.msg).toBe("refusing provision's state directory /var/lib/provision on this host: it is a symbolic link");
      expect(changedPaths(before, await hashes())).toEqual([]);
      expect(await sh(host, 'ls -A /tmp/mallory')).toBe('');
    } finally {
      await sh(host, 'umount /var/lib');
    }
  }, 300_000);

  it('escape sequences in a managed file and in the mail log reach the terminal escaped, and --json keeps them exact', async () => {
    // Whoever controls the file's content (the local user through an application that writes it, say).
    await sh(host, `printf 'smtpd_banner = hello${ESCAPES}\\n' >> /etc/postfix/main.cf`);
    // And the mail log's (rsyslog escapes control characters it receives, but not every logger does: Postfix's own
    // postlogd, or a log another program writes, carries them as they came).
    await sh(host, `printf 'Dec  2 06:00:00 h postfix/smtpd[1]: error: ${ESCAPES} cleared\\n' >> /var/log/mail.log`);
    const pb = writePlaybook(
      dir,
      'escapes.yaml',
      `- hosts: all
  tasks:
    - name: set the banner
      postconf: { settings: { smtpd_banner: "$myhostname ESMTP" } }
    - name: read the mail log
      shell: sleep 1; grep -a cleared /var/log/mail.log | tail -n 1
`,
    );
    const plain = await runCli(['check', pb, ...labArgs(state), '--limit', host.name, '-v', '--no-retry-file']);
    expect(plain.code & 2, plain.stdout + plain.stderr).toBe(0);
    expect(plain.stdout).toContain('\\x1b]52;c;');
    expect(plain.stdout + plain.stderr).not.toMatch(CONTROL);

    const run = await runCli(['run', pb, ...labArgs(state), '--limit', host.name, '-v', '--no-retry-file']);
    expect(run.code, run.stdout + run.stderr).toBe(0);
    expect(run.stdout).toMatch(/read the mail log: .*error: \\x1b\]52;c;cm0gLXJmIH4K\\x07\\x1b\[1A\\x1b\[2K cleared/);
    expect(run.stdout + run.stderr).not.toMatch(CONTROL);

    const json = await provision(state, pb, ['--limit', host.name]);
    expect(json.code, json.stdout + json.stderr).toBe(0);
    expect(json.stdout).not.toMatch(CONTROL);
    const log = results(json.events, host).find((e) => e.task === 'read the mail log');
    expect(log?.msg).toContain('\x1b]52;c;cm0gLXJmIH4K\x07\x1b[1A\x1b[2K cleared');
  }, 300_000);

  it('an impostor sshd with another key and --host-key-checking no gets no password, and the operator is warned', async () => {
    // The impostor: a second sshd on the host with a key of its own; known_hosts has the real key for its address.
    const realKey = readFileSync(state.knownHosts, 'utf8')
      .split('\n')
      .find((l) => l.split(' ')[0]!.split(',').includes(host.ip))!
      .split(' ')
      .slice(1)
      .join(' ');
    const knownHosts = path.join(dir, 'known_hosts_impostor');
    writeFileSync(knownHosts, `[${host.ip}]:2222 ${realKey}\n`);
    await sh(
      host,
      'rm -f /root/impostor_key* /root/impostor.log && ssh-keygen -q -t ed25519 -N "" -f /root/impostor_key && ' +
        'iptables -I INPUT -p tcp --dport 2222 -j ACCEPT && /usr/sbin/sshd -p 2222 -h /root/impostor_key -o PidFile=/run/impostor.pid -E /root/impostor.log -o LogLevel=VERBOSE -o PasswordAuthentication=yes',
    );
    try {
      const config = path.join(dir, 'ssh_config_impostor');
      writeFileSync(config, `Host ${host.name}\n  HostName ${host.ip}\n  Port 2222\n  User ${state.sudoUser.name}\n  IdentityFile ${state.key}\n  IdentitiesOnly yes\n  UserKnownHostsFile ${knownHosts}\n`);
      const pb = '- hosts: all\n  become: true\n  tasks:\n    - copy: { dest: /root/impostor-wrote, content: "x\\n" }\n';

      // With the lab key and the sudo password (what --ask-become-pass gives a run).
      const events: RunEvent[] = [];
      const ssh = createSshRunState(createSecrets({ interactive: false }), { retryDelayMs: 200, warn: (h, msg) => events.push({ type: 'warning', host: h, msg }) });
      const report = await runPlaybook({
        playbook: loadPlaybook(writePlaybook(dir, 'impostor.yaml', pb)),
        inventory: parseInventoryText(`${host.name}\n`, path.join(dir, 'impostor-hosts'), 'ini'),
        check: false,
        diff: false,
        forks: 1,
        extraVars: {},
        tags: [],
        skipTags: [],
        become: false,
        becomePassword: state.sudoUser.password,
        canary: 0,
        retryFile: null,
        connectionFor: (name, vars) => new SshConnection(resolveSshTarget(name, vars, { hostKeyChecking: 'no' }, loadSshConfig(config)), ssh),
        emit: (e) => events.push(e),
      });
      expect(report.exitCode & 4, JSON.stringify(results(events, host))).toBe(4);
      expect(warnings(events)).toEqual([
        expect.stringMatching(/^REMOTE HOST KEY CHANGED for .*; connecting anyway because of --host-key-checking no, but sending no password or become password to it$/),
      ]);
      expect(results(events, host).map((e) => e.msg)).toEqual([expect.stringMatching(/not sending the become password: REMOTE HOST KEY CHANGED/)]);
      expect(JSON.stringify(events)).not.toContain(state.sudoUser.password);
      expect(await sh(host, 'ls /root/impostor-wrote 2>&1 || true')).toMatch(/No such file/);

      // With the SSH password only (ansible_password): it is never offered either.
      const noKey = path.join(dir, 'ssh_config_impostor_password');
      writeFileSync(noKey, `Host ${host.name}\n  HostName ${host.ip}\n  Port 2222\n  User ${state.sudoUser.name}\n  IdentityFile ${path.join(dir, 'no-such-key')}\n  IdentitiesOnly yes\n  IdentityAgent none\n  UserKnownHostsFile ${knownHosts}\n`);
      const inventory = path.join(dir, 'impostor-password-hosts');
      writeFileSync(inventory, `${host.name} ansible_password=${state.sudoUser.password}\n`);
      const pw = await runCli(['run', writePlaybook(dir, 'impostor.yaml', pb), '-i', inventory, '--ssh-config', noKey, '--host-key-checking', 'no', '--json', '--no-retry-file']);
      expect(pw.code & 4, pw.stdout + pw.stderr).toBe(4);
      expect(results(pw.events, host)[0]?.msg).toMatch(/^authentication failed for /);
      expect(warnings(pw.events).some((w) => w.startsWith('REMOTE HOST KEY CHANGED'))).toBe(true);
      expect(pw.stdout + pw.stderr).not.toContain(state.sudoUser.password);
      // sshd logs every password it is offered (LogLevel VERBOSE): none was.
      expect(await sh(host, 'cat /root/impostor.log')).not.toMatch(/password/i);
    } finally {
      await sh(host, 'kill "$(cat /run/impostor.pid)" 2>/dev/null; iptables -D INPUT -p tcp --dport 2222 -j ACCEPT 2>/dev/null; rm -f /root/impostor_key* /run/impostor.pid; true');
    }
  }, 300_000);
});

/**
 * The lab itself: real sshd, postfix and iptables in namespaces, reachable the way the product reaches hosts.
 * Run: PROVISION_REQUIRE_LAB=1 npx vitest run --project lab test/integration/lab.test.ts
 */
import { execFile } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { describe, expect, inject, it } from 'vitest';
import { hostCpu } from '../../bench/remote-cpu.js';
import { LOGIN_TICKS_COMMAND } from '../../bench/shapes.js';
import { labDown, labExec, labReset, labUp, type LabHost, type LabState } from '../lab/lab.js';
import { controllerAddress, controllerAddress6, defaultSubnets, formatSubnet, hostAddress, hostAddress6, hostCapacity, parseLabSubnet } from '../lab/lab-net.js';
import { netInode } from '../lab/lab-system.js';
import { banner } from '../support/net.js';

const lab = inject('lab');

interface Ran {
  code: number | null;
  stdout: string;
  stderr: string;
}

function run(cmd: string, args: string[], input?: string): Promise<Ran> {
  return new Promise((resolve) => {
    const child = execFile(cmd, args, { timeout: 30_000 }, (error, stdout, stderr) => {
      const code = error ? (typeof error.code === 'number' ? error.code : null) : 0;
      resolve({ code, stdout, stderr });
    });
    child.stdin?.end(input);
  });
}

function ssh(target: string, command: string, extra: string[] = [], input?: string): Promise<Ran> {
  return run('ssh', ['-F', lab!.sshConfig, '-o', 'BatchMode=yes', ...extra, target, command], input);
}


async function sh(host: LabHost, script: string): Promise<string> {
  const r = await labExec(host, script, { timeoutMs: 30_000 });
  if (r.code !== 0) throw new Error(`${host.name}: ${script} exited ${r.code}: ${r.stderr}`);
  return r.stdout;
}

const childPids = (pid: number) => readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').trim().split(/\s+/).filter(Boolean).map(Number);

/**
 * Wait (at most 10 s) until the host's sshd listener has reaped every session: only then is a session's CPU in
 * what the listener accounts for its children (hostCpu).
 */
async function sessionsReaped(host: LabHost): Promise<void> {
  const listener = childPids(host.pid).find((p) => readFileSync(`/proc/${p}/comm`, 'utf8').trim() === 'sshd');
  for (let i = 0; i < 100 && listener && childPids(listener).length > 0; i++) await new Promise((r) => setTimeout(r, 100));
}

/** What one SSH command costs a host: its shell's own CPU, and all the host accounts for the session (seconds). */
async function loginCost(state: LabState, host: LabHost, user: string): Promise<{ shellS: number; sessionS: number }> {
  const target = `${user}@${host.short}`;
  const r = await run('ssh', ['-F', state.sshConfig, '-o', 'BatchMode=yes', target, LOGIN_TICKS_COMMAND]);
  expect(r.stderr).toBe('');
  await sessionsReaped(host);
  const before = hostCpu(host);
  for (let i = 0; i < 3; i++) expect((await run('ssh', ['-F', state.sshConfig, '-o', 'BatchMode=yes', target, 'true'])).code).toBe(0);
  await sessionsReaped(host);
  return { shellS: Number(r.stdout.trim()) / 100, sessionS: (hostCpu(host) - before) / 3 };
}

describe('lab subnets (no root needed)', () => {
  it.each([
    ['198.19.4.0/22', '198.19.4.1', '198.19.7.254', 1021],
    ['198.19.200.0/24', '198.19.200.1', '198.19.200.254', 253],
    ['198.19.0.0/29', '198.19.0.1', '198.19.0.6', 5],
  ])('%s: h1 is %s, the controller %s, room for %i hosts', (cidr, h1, controller, capacity) => {
    const s = parseLabSubnet(cidr);
    expect(hostAddress(s, 1)).toBe(h1);
    expect(controllerAddress(s)).toBe(controller);
    expect(hostCapacity(s)).toBe(capacity);
  });

  it.each([
    ['198.19.4.0/22', 1, '2001:2:0:1304::1', '2001:2:0:1304::fffe'],
    ['198.19.252.0/22', 1021, '2001:2:0:13fc::3fd', '2001:2:0:13fc::fffe'],
    ['198.19.0.0/16', 65533, '2001:2:0:1300::fffd', '2001:2:0:1300::fffe'],
  ])('%s: IPv6 of host %i is %s inside 2001:2::/48, the controller %s', (cidr, index, host, controller) => {
    const s = parseLabSubnet(cidr);
    expect(hostAddress6(s, index)).toBe(host);
    expect(controllerAddress6(s)).toBe(controller);
    expect(host.startsWith('2001:2:0:')).toBe(true);
  });

  it.each([
    ['10.1.0.0/24', 'outside 198.19.0.0/16'],
    ['198.18.0.0/24', 'outside 198.19.0.0/16'],
    ['198.19.4.7/22', 'did you mean 198.19.4.0/22?'],
    ['198.19.4.0/30', 'too small'],
    ['198.19.4.0', 'not an IPv4 CIDR'],
  ])('refuses %s (%s)', (cidr, message) => {
    expect(() => parseLabSubnet(cidr)).toThrow(message);
  });

  it('gives differently named labs different default /22s that fit the 500-host benchmark', () => {
    const a = defaultSubnets('test')[0]!;
    const b = defaultSubnets('bench')[0]!;
    expect(formatSubnet(a)).not.toBe(formatSubnet(b));
    expect(hostCapacity(a)).toBeGreaterThanOrEqual(500);
    expect(defaultSubnets('test')).toHaveLength(64);
  });
});

describe.skipIf(!lab)('lab hosts', () => {
  const state = lab!;
  const hosts = state?.hosts ?? [];
  const rhel = hosts.find((h) => h.flavour === 'rhel')!;
  const debian = hosts.find((h) => h.flavour === 'debian')!;

  it('has both flavours', () => {
    expect(rhel).toBeDefined();
    expect(debian).toBeDefined();
  });

  it('answers `hostname` over ssh with the lab key, ssh_config and strict known_hosts', async () => {
    for (const h of hosts) {
      for (const target of [h.short, h.name]) {
        const r = await ssh(target, 'hostname');
        expect(r.stderr).toBe('');
        expect(r.stdout.trim()).toBe(h.name);
      }
    }
  });

  it('refuses an unknown host key', async () => {
    const r = await ssh(rhel.short, 'true', ['-o', 'UserKnownHostsFile=/dev/null']);
    expect(r.code).toBe(255);
    expect(r.stderr).toContain('Host key verification failed');
  });

  it('offers password login only to the sudo user', async () => {
    const noKey = ['-o', 'IdentityFile=/dev/null', '-o', 'PubkeyAuthentication=no'];
    const root = await ssh(`root@${rhel.short}`, 'true', noKey);
    expect(root.stderr).toMatch(/Permission denied \(publickey\)/);
    const user = await ssh(`${state.sudoUser.name}@${rhel.short}`, 'true', noKey);
    expect(user.stderr).toMatch(/Permission denied \(publickey,password\)/);
  });

  it('lets the sudo user in with the lab key and wants its password for sudo', async () => {
    const user = `${state.sudoUser.name}@${debian.short}`;
    const denied = await ssh(user, 'sudo -n id -u');
    expect(denied.code).not.toBe(0);
    expect(denied.stderr).toContain('a password is required');
    const ok = await ssh(user, "sudo -S -p '' id -u", [], `${state.sudoUser.password}\n`);
    expect(ok.stdout.trim()).toBe('0');
  });

  it('runs postfix answering 220 with the host name on :25', async () => {
    for (const h of hosts) {
      expect(await banner(h.ip, 25)).toMatch(new RegExp(`^220 ${h.name.replace(/\./g, '\\.')} ESMTP Postfix`));
    }
  });

  it('refuses :465 with "no route to host" (icmp-host-prohibited)', async () => {
    for (const h of hosts) expect(await banner(h.ip, 465)).toBe('EHOSTUNREACH');
  });

  it('loads the initial ruleset with the flavour service, ending INPUT with the REJECT', async () => {
    for (const h of hosts) {
      const rules = (await sh(h, 'iptables -S INPUT')).trim().split('\n');
      expect(rules).toContain('-A INPUT -p tcp -m state --state NEW -m tcp --dport 22 -j ACCEPT');
      expect(rules).toContain('-A INPUT -p tcp -m state --state NEW -m tcp --dport 25 -j ACCEPT');
      expect(rules.at(-1)).toBe('-A INPUT -j REJECT --reject-with icmp-host-prohibited');
    }
    expect(await sh(rhel, 'service iptables status >/dev/null; echo $?')).toBe('0\n');
  });

  it('has the rhel flavour files and none of the debian ones', async () => {
    const out = await sh(
      rhel,
      `. /etc/os-release; echo "$ID|$ID_LIKE"
       cat /etc/redhat-release
       for f in /etc/sysconfig/iptables /etc/init.d/iptables /etc/iptables/rules.v4 /etc/init.d/netfilter-persistent /etc/debian_version; do
         [ -e "$f" ] && echo "yes $f" || echo "no $f"; done
       stat -c '%a %U:%G' /etc/sysconfig/iptables /etc/pki/tls/certs/${rhel.name}.crt /etc/pki/tls/private/${rhel.name}.key.nopasswd`,
    );
    expect(out.split('\n')).toEqual([
      'centos|rhel fedora',
      'CentOS release 6.10 (Final)',
      'yes /etc/sysconfig/iptables',
      'yes /etc/init.d/iptables',
      'no /etc/iptables/rules.v4',
      'no /etc/init.d/netfilter-persistent',
      'no /etc/debian_version',
      '600 root:root',
      '644 root:root',
      '600 root:root',
      '',
    ]);
  });

  it('has the debian flavour files and none of the rhel ones', async () => {
    const out = await sh(
      debian,
      `. /etc/os-release; echo "$ID"
       for f in /etc/iptables/rules.v4 /etc/init.d/netfilter-persistent /etc/sysconfig/iptables /etc/init.d/iptables /etc/redhat-release; do
         [ -e "$f" ] && echo "yes $f" || echo "no $f"; done
       stat -c '%a %U:%G' /etc/ssl/certs/${debian.name}.crt /etc/ssl/private/${debian.name}.key`,
    );
    expect(out.split('\n')).toEqual([
      'debian',
      'yes /etc/iptables/rules.v4',
      'yes /etc/init.d/netfilter-persistent',
      'no /etc/sysconfig/iptables',
      'no /etc/init.d/iptables',
      'no /etc/redhat-release',
      '644 root:root',
      '640 root:ssl-cert',
      '',
    ]);
    expect(await sh(debian, 'head -1 /etc/iptables/rules.v4')).toMatch(/^# Generated by iptables-save v1\.8\.9/);
  });

  it("gives rhel a CentOS 6 master.cf (commented smtps template, chroot n) and debian Debian's own", async () => {
    const rhelMaster = await sh(rhel, 'cat /etc/postfix/master.cf');
    expect(rhelMaster).toContain('\n#smtps     inet  n       -       n       -       -       smtpd\n#  -o smtpd_tls_wrappermode=yes\n');
    const chroots = rhelMaster
      .split('\n')
      .filter((l) => /^[a-z0-9]/.test(l))
      .map((l) => l.split(/\s+/)[4]);
    expect(new Set(chroots)).toEqual(new Set(['n']));
    expect(await sh(debian, 'cat /etc/postfix/master.cf')).toBe(readFileSync('/usr/share/postfix/master.cf.dist', 'utf8'));
    for (const h of [rhel, debian]) {
      expect(await sh(h, 'postconf -h myhostname; postconf -n 2>&1 >/dev/null; postconf -M 2>&1 >/dev/null')).toBe(`${h.name}\n`);
    }
  });

  it('serves a self-signed certificate for the FQDN (CN and subjectAltName)', async () => {
    for (const h of [rhel, debian]) {
      const dir = h.flavour === 'rhel' ? '/etc/pki/tls/certs' : '/etc/ssl/certs';
      const out = await sh(h, `openssl x509 -in ${dir}/${h.name}.crt -noout -subject -ext subjectAltName`);
      expect(out).toContain(`subject=CN = ${h.name}`);
      expect(out).toContain(`DNS:${h.name}`);
    }
  });

  it("logs postfix to the flavour's mail log", async () => {
    for (const h of [rhel, debian]) {
      const logFile = h.flavour === 'rhel' ? '/var/log/maillog' : '/var/log/mail.log';
      await banner(h.ip, 25);
      let found = '';
      for (let i = 0; i < 50 && !found; i++) {
        found = (await labExec(h, `grep 'connect from unknown\\[${state.controllerIp}\\]' ${logFile}`)).stdout;
        if (!found) await new Promise((r) => setTimeout(r, 100));
      }
      expect(found).toContain('postfix/smtpd');
    }
  });

  it('resolves every lab FQDN through /etc/hosts, with a private /dev/log and PID 1', async () => {
    const out = await sh(debian, `getent hosts ${rhel.name} | awk '{print $1}'; hostname -f; test -S /dev/log && echo log; ps -o args= -p 1`);
    expect(out).toMatch(new RegExp(`^${rhel.ip.replace(/\./g, '\\.')}\n${debian.name.replace(/\./g, '\\.')}\nlog\n/bin/bash \\S+/boot\\.sh\n$`));
    expect(await sh(debian, 'ls /run/netns 2>&1 || true')).toContain('No such file or directory');
  });

  it('has a working sasldb (saslpasswd2 inside a host), which a reset forgets', async () => {
    const out = await sh(debian, `echo secret | saslpasswd2 -p -c -u ${debian.name} alice && sasldblistusers2`);
    expect(out).toContain(`alice@${debian.name}`);
    await labReset(state, [debian]);
    expect(await sh(debian, 'sasldblistusers2 2>&1 || true')).not.toContain('alice');
  });

  it('passes stdin and the exit code through labExec, and stops a script at its timeout', async () => {
    const r = await labExec(rhel, 'cat; exit 3', { stdin: 'bytes in\n' });
    expect(r).toEqual({ code: 3, stdout: 'bytes in\n', stderr: '' });
    const slow = await labExec(rhel, 'sleep 20', { timeoutMs: 300 });
    expect(slow.code).toBeNull();
    expect(slow.stderr).toContain('timed out after 300 ms');
    expect(await sh(rhel, 'pgrep -x sleep -a | grep -c "sleep 20" || true')).toBe('0\n');
  });

  it('writes an inventory with flavour groups and mail over both', () => {
    const ini = readFileSync(state.inventory, 'utf8');
    expect(ini).toContain(`[rhel]\n${rhel.name} ansible_host=${rhel.ip} ansible_user=root ansible_ssh_private_key_file=${state.key}\n`);
    expect(ini).toContain('[mail:children]\nrhel\ndebian\n');
    expect(ini).not.toContain('[all:vars]');
    const known = readFileSync(state.knownHosts, 'utf8');
    for (const h of hosts) expect(known).toMatch(new RegExp(`^${h.name},${h.short},${h.ip} ssh-ed25519 `, 'm'));
  });

  it('runs a second lab beside this one and takes it down without a trace', async () => {
    const name = `${state.name}-extra`;
    await labDown(name);
    const extra = await labUp({ name, hosts: 1, mode: 'sshd', flavours: ['debian'], owner: true });
    const [h] = extra.hosts;
    expect(extra.subnet).not.toBe(state.subnet);
    expect(extra.bridge).not.toBe(state.bridge);
    const r = await run('ssh', ['-F', extra.sshConfig, '-o', 'BatchMode=yes', h!.short, 'hostname; pgrep -c master || true']);
    expect(r.stdout).toBe(`${h!.name}\n0\n`);

    await labDown(name);
    expect(existsSync(`/run/netns/${h!.netns}`)).toBe(false);
    expect(existsSync(`/sys/class/net/${extra.bridge}`)).toBe(false);
    expect((await run('ip', ['-j', 'link', 'show'])).stdout).not.toContain(`provision-lab:${name}"`);
    // Gone, or a zombie waiting for its parent: either way it no longer lives in any namespace.
    expect(netInode(h!.pid)).toBeNull();
    expect(existsSync(extra.dir)).toBe(false);
    expect(await banner(rhel.ip, 25)).toMatch(/^220 /);
  });

  it('spends no CPU at login by default, and about 150 ms per SSH command with costlyLogin, for root and the sudo user', async () => {
    const plain = await loginCost(state, debian, 'root');
    expect(plain.shellS).toBeLessThan(0.05);
    const name = `${state.name}-costly`;
    await labDown(name);
    const costly = await labUp({ name, hosts: 1, mode: 'sshd', flavours: ['debian'], costlyLogin: true, owner: true });
    try {
      expect(costly.costlyLogin).toBe(true);
      const [h] = costly.hosts;
      for (const user of ['root', costly.sudoUser.name]) {
        const paid = await loginCost(costly, h!, user);
        // The shell's own CPU: 15 ticks spent in ~/.bashrc, plus its start; the session's adds sshd's share.
        expect(paid.shellS).toBeGreaterThanOrEqual(0.15);
        expect(paid.shellS).toBeLessThan(0.3);
        expect(paid.sessionS - plain.sessionS).toBeGreaterThan(0.12);
      }
      // A login that prints nothing: commands' output stays theirs.
      const r = await run('ssh', ['-F', costly.sshConfig, '-o', 'BatchMode=yes', h!.short, 'hostname']);
      expect(r).toEqual({ code: 0, stdout: `${h!.name}\n`, stderr: '' });
    } finally {
      await labDown(name);
    }
  });

  it('resets a host: changed files, live rules and added files are gone, its identity stays', async () => {
    const before = await sh(rhel, 'sha256sum /etc/postfix/main.cf /etc/sysconfig/iptables');
    const oldPid = rhel.pid;
    await sh(
      rhel,
      `echo 'smtpd_tls_loglevel = 1' >> /etc/postfix/main.cf
       sed -i '/--dport 25/a -A INPUT -m state --state NEW -m tcp -p tcp --dport 465 -j ACCEPT' /etc/sysconfig/iptables
       service iptables restart >/dev/null
       echo dirty > /root/marker`,
    );
    expect(await banner(rhel.ip, 465)).toBe('ECONNREFUSED');

    await labReset(state, [rhel]);

    expect(rhel.pid).not.toBe(oldPid);
    expect(await sh(rhel, 'sha256sum /etc/postfix/main.cf /etc/sysconfig/iptables')).toBe(before);
    expect(await sh(rhel, 'test -e /root/marker && echo present || echo absent')).toBe('absent\n');
    expect(await banner(rhel.ip, 465)).toBe('EHOSTUNREACH');
    const r = await ssh(rhel.short, 'hostname');
    expect(r.stdout.trim()).toBe(rhel.name);
  });
});

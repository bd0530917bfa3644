/**
 * The flagship job end to end (issue 6): playbooks/smtps.yaml run through the CLI over real SSH against lab hosts
 * of both flavours, then proven the way a mail client sees it — swaks authenticating over implicit TLS on 465,
 * openssl showing the host's certificate and banner. Also: a second run that changes nothing, check mode that
 * writes nothing, a host refused before any write, and a host whose Postfix breaks after the change and is rolled
 * back. Checks on the hosts go through labExec (nsenter), not through the connection under test.
 *
 * Run: PROVISION_REQUIRE_LAB=1 npx vitest run --project lab test/integration/smtps.test.ts
 */
import { execFile, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import type { RecapEvent, RunEvent, TaskResultEvent } from '../../src/report/events.js';
import { labExec, labReset, type LabHost } from '../lab/lab.js';
import { labArgs, runCli, type CliResult } from '../support/cli.js';
import { tempDir } from '../support/tmp.js';
import { banner } from '../support/net.js';

const lab = inject('lab');

const PLAYBOOK = fileURLToPath(new URL('../../playbooks/smtps.yaml', import.meta.url));
const SASL_USER = 'alice';
const SASL_DOMAIN = 'lab.test';
// A letter first: swaks would take a password that starts with '-' for an option.
const SASL_PASSWORD = `p${randomBytes(12).toString('base64url')}`;

const esc = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

async function sh(host: LabHost, script: string, stdin?: string): Promise<string> {
  const r = await labExec(host, script, { timeoutMs: 60_000, ...(stdin === undefined ? {} : { stdin }) });
  if (r.code !== 0) throw new Error(`${host.name}: ${script} exited ${r.code}: ${r.stderr}`);
  return r.stdout;
}

/** The mail user the tests log in as; saslpasswd2 reads the password from stdin with -p. */
function addSaslUser(host: LabHost): Promise<string> {
  return sh(host, `saslpasswd2 -c -p -u ${SASL_DOMAIN} ${SASL_USER}`, `${SASL_PASSWORD}\n`);
}

function rulesFile(host: LabHost): string {
  return host.flavour === 'rhel' ? '/etc/sysconfig/iptables' : '/etc/iptables/rules.v4';
}

function keyFile(host: LabHost): string {
  return host.flavour === 'rhel' ? `/etc/pki/tls/private/${host.name}.key.nopasswd` : `/etc/ssl/private/${host.name}.key`;
}

interface HostFiles {
  mainCf: string;
  masterCf: string;
  rules: string;
  /** sha256 of /etc/postfix/sasl/smtpd.conf, or "absent" */
  saslConf: string;
  /** mode and owner of /etc/sasldb2 */
  sasldb: string;
}

/** What the playbook may change on a host, as hashes (and the sasldb's mode and owner). */
async function hostFiles(host: LabHost): Promise<HostFiles> {
  const out = await sh(
    host,
    `for f in /etc/postfix/main.cf /etc/postfix/master.cf ${rulesFile(host)} /etc/postfix/sasl/smtpd.conf; do
       if [ -e "$f" ]; then sha256sum "$f" | cut -d' ' -f1; else echo absent; fi
     done
     stat -c '%a %U:%G' /etc/sasldb2`,
  );
  const [mainCf, masterCf, rules, saslConf, sasldb] = out.trim().split('\n') as [string, string, string, string, string];
  return { mainCf, masterCf, rules, saslConf, sasldb };
}


interface Ran {
  code: number | null;
  out: string;
}

function swaks(host: LabHost, family: 4 | 6 = 4): Promise<Ran> {
  const args = [
    ...(family === 6 ? ['-6', '-s', host.ip6!, '-p', '465'] : ['-s', `${host.ip}:465`]), '--tls-on-connect', '--tls-sni', host.name,
    '--auth', 'PLAIN', '--auth-user', `${SASL_USER}@${SASL_DOMAIN}`, '--auth-password', SASL_PASSWORD,
    '--quit-after', 'AUTH', '--timeout', '30',
  ];
  return new Promise((resolve) => {
    execFile('swaks', args, { timeout: 60_000 }, (error, stdout, stderr) => {
      resolve({ code: error ? (typeof error.code === 'number' ? error.code : null) : 0, out: `${stdout}${stderr}` });
    });
  });
}

/**
 * `openssl s_client -brief` to HOST:465 with the FQDN as SNI. Its stdin stays open until the greeting has
 * arrived (closing it earlier ends the session before the server speaks), then QUIT.
 */
function sClient(host: LabHost): Promise<Ran> {
  return new Promise((resolve) => {
    const child = spawn('openssl', ['s_client', '-connect', `${host.ip}:465`, '-servername', host.name, '-brief'], { stdio: ['pipe', 'pipe', 'pipe'] });
    let out = '';
    let quit = false;
    const timer = setTimeout(() => child.kill('SIGKILL'), 30_000);
    const take = (b: Buffer) => {
      out += b.toString();
      if (!quit && /^220 /m.test(out)) {
        quit = true;
        child.stdin.end('QUIT\r\n');
      }
    };
    child.stdout.on('data', take);
    child.stderr.on('data', take);
    child.stdin.on('error', () => undefined);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, out });
    });
  });
}

const results = (r: CliResult, host?: string) =>
  r.events.filter((e): e is TaskResultEvent => e.type === 'task_result' && (host === undefined || e.host === host));

function recapOf(r: CliResult): RecapEvent {
  const last = r.events.at(-1) as RunEvent | undefined;
  if (last?.type !== 'recap') throw new Error(`no recap as the last JSON line:\n${r.stdout.slice(-2000)}\n${r.stderr}`);
  return last;
}

/** A readable account of a run for assertion messages. */
const story = (r: CliResult) => results(r).map((e) => `${e.status} ${e.host} ${e.handler ? 'handler ' : ''}${e.task}: ${e.msg}`).join('\n');

describe.skipIf(!lab)('SMTPS end to end (playbooks/smtps.yaml)', () => {
  const state = lab!;
  const hosts = state?.hosts ?? [];
  const rhel = hosts.filter((h) => h.flavour === 'rhel');
  const debian = hosts.filter((h) => h.flavour === 'debian');
  const dir = tempDir('provision-smtps-it-');

  const provision = (command: 'run' | 'check', extra: string[] = []) => runCli([command, PLAYBOOK, ...labArgs(state), '--retry-file', path.join(dir, 'smtps.retry'), ...extra]);

  beforeAll(async () => {
    // Whatever ran before, start from hosts as the lab made them.
    await labReset(state);
  });
  afterAll(async () => {
    await labReset(state);
  });

  it('has at least four hosts of both flavours', () => {
    expect(hosts.length).toBeGreaterThanOrEqual(4);
    expect(rhel.length).toBeGreaterThanOrEqual(2);
    expect(debian.length).toBeGreaterThanOrEqual(1);
  });

  describe('a run on fresh hosts', () => {
    let first: CliResult;

    beforeAll(async () => {
      await Promise.all(hosts.map(addSaslUser));
    });

    it('starts from hosts that refuse 465 with "no route to host"', async () => {
      for (const h of hosts) expect(await banner(h.ip, 465), h.name).toBe('EHOSTUNREACH');
    });

    it('converges every host (exit 0) and restarts postfix before the firewall on each', async () => {
      first = await provision('run', ['--json']);
      expect(first.code, `${story(first)}\n${first.stderr}`).toBe(0);
      const recap = recapOf(first);
      expect(recap.exit_code).toBe(0);
      for (const h of hosts) {
        expect(recap.hosts[h.name], h.name).toMatchObject({ failed: 0, unreachable: 0 });
        expect(recap.hosts[h.name]!.changed, h.name).toBeGreaterThan(0);
        const own = results(first, h.name);
        const handlers = own.filter((e) => e.handler);
        expect(handlers.map((e) => [e.task, e.status]), h.name).toEqual([
          ['restart postfix', 'changed'],
          ['restart firewall', 'changed'],
        ]);
        expect(handlers[0]!.msg).toMatch(/^postfix restarted; running, 2 inet listeners accepting connections$/);
        // The proof runs after the handlers, from the controller.
        const probe = own.findIndex((e) => e.module === 'smtp_probe');
        expect(probe, h.name).toBeGreaterThan(own.indexOf(handlers[1]!));
        expect(own[probe]!.status).toBe('ok');
        expect(own[probe]!.msg).toContain(`certificate CN=${h.name} covers ${h.name}`);
      }
    });

    it('lets swaks authenticate on every host over implicit TLS on 465 (235, exit 0)', async () => {
      expect(first?.code).toBe(0);
      for (const h of hosts) {
        const r = await swaks(h);
        expect(r.code, `${h.name}:\n${r.out}`).toBe(0);
        expect(r.out).toContain(`TLS peer DN="/CN=${h.name}"`);
        expect(r.out).toMatch(/<~ {2}235 2\.7\.0 Authentication successful/);
      }
    });

    it('opens 465 in ip6tables too, before its final REJECT, and swaks authenticates over IPv6 (issue 13)', async () => {
      expect(first?.code).toBe(0);
      const rule = '-A INPUT -p tcp -m conntrack --ctstate NEW -m tcp --dport 465 -j ACCEPT';
      for (const h of hosts) {
        expect(h.ip6, h.name).toMatch(/^2001:2:/);
        const v6 = h.flavour === 'rhel' ? '/etc/sysconfig/ip6tables' : '/etc/iptables/rules.v6';
        expect(await sh(h, `cat ${v6}`)).toContain(`${rule}\n-A INPUT -j REJECT --reject-with icmp6-adm-prohibited\n`);
        const live = (await sh(h, 'ip6tables -S INPUT')).split('\n');
        expect(live.indexOf(rule), h.name).toBe(live.indexOf('-A INPUT -j REJECT --reject-with icmp6-adm-prohibited') - 1);
        const r = await swaks(h, 6);
        expect(r.code, `${h.name}:\n${r.out}`).toBe(0);
        expect(r.out).toContain(`=== Connected to ${h.ip6!}.`);
        expect(r.out).toContain(`TLS peer DN="/CN=${h.name}"`);
        expect(r.out).toMatch(/<~ {2}235 2\.7\.0 Authentication successful/);
      }
    });

    it("shows each host's own certificate and greeting to openssl s_client", async () => {
      expect(first?.code).toBe(0);
      for (const h of hosts) {
        const r = await sClient(h);
        expect(r.out, h.name).toContain('CONNECTION ESTABLISHED');
        expect(r.out, h.name).toContain(`Peer certificate: CN = ${h.name}\n`);
        expect(r.out, h.name).toMatch(new RegExp(`^220 ${esc(h.name)} ESMTP Postfix`, 'm'));
      }
    });

    it('still answers 220 on port 25', async () => {
      for (const h of hosts) expect(await banner(h.ip, 25), h.name).toMatch(new RegExp(`^220 ${esc(h.name)} ESMTP Postfix`));
    });

    it('changes nothing on a second run: changed=0, no handler, at most two execs per host', async () => {
      expect(first?.code).toBe(0);
      const again = await provision('run', ['--json']);
      expect(again.code, story(again)).toBe(0);
      const recap = recapOf(again);
      for (const h of hosts) {
        expect(recap.hosts[h.name], h.name).toMatchObject({ changed: 0, failed: 0, unreachable: 0 });
        expect(recap.hosts[h.name]!.execs, h.name).toBeLessThanOrEqual(2);
      }
      expect(results(again).filter((e) => e.handler)).toEqual([]);
      expect(results(again).filter((e) => e.status !== 'ok')).toEqual([]);
    });
  });

  describe('check mode on fresh hosts', () => {
    it('exits 8, shows the main.cf, master.cf and rules diffs, and changes no file', async () => {
      await labReset(state);
      await Promise.all(hosts.map(addSaslUser));
      const before = await Promise.all(hosts.map(hostFiles));

      const r = await provision('check');

      expect(r.code, `${r.stdout}\n${r.stderr}`).toBe(8);
      expect(r.stdout).toMatch(/^check mode: nothing will be changed$/m);
      expect(r.stdout).not.toMatch(/^failed /m);
      for (const h of hosts) {
        expect(r.stdout).toContain(`smtpd_tls_cert_file = ${h.flavour === 'rhel' ? '/etc/pki/tls/certs' : '/etc/ssl/certs'}/${h.name}.crt\n`);
      }
      for (const file of ['/etc/postfix/main.cf', '/etc/postfix/master.cf', '/etc/sysconfig/iptables', '/etc/iptables/rules.v4']) {
        expect(r.stdout).toContain(`--- ${file} (before)\n+++ ${file} (after)\n`);
      }
      expect(r.stdout).toContain('\n+smtps     inet  n       -       n       -       -       smtpd\n');
      expect(r.stdout).toContain('\n+submissions     inet  n       -       n       -       -       smtpd\n');
      expect(r.stdout).toContain('\n+-A INPUT -p tcp -m conntrack --ctstate NEW -m tcp --dport 465 -j ACCEPT\n');

      expect(await Promise.all(hosts.map(hostFiles))).toEqual(before);
      for (const h of hosts) expect(await banner(h.ip, 465), h.name).toBe('EHOSTUNREACH');
    });
  });

  describe('a host whose private key is missing', () => {
    let r: CliResult;
    let broken: LabHost;
    let before: HostFiles;

    beforeAll(async () => {
      await labReset(state);
      await Promise.all(hosts.map(addSaslUser));
      broken = rhel[0]!;
      await sh(broken, `rm -- ${keyFile(broken)}`);
      before = await hostFiles(broken);
      r = await provision('run', ['--json']);
    });

    it('fails at the key check, before any write, and names the key', async () => {
      expect(r.code, story(r)).toBe(2);
      const own = results(r, broken.name);
      expect(own.filter((e) => e.status === 'failed').map((e) => [e.task, e.msg])).toEqual([
        ['the private key exists and is not world-readable', `private key ${keyFile(broken)} is missing or readable by everyone`],
      ]);
      expect(own.filter((e) => e.status === 'changed')).toEqual([]);
      expect(recapOf(r).hosts[broken.name]).toMatchObject({ changed: 0, failed: 1 });
      expect(await hostFiles(broken)).toEqual(before);
      expect(await banner(broken.ip, 465)).toBe('EHOSTUNREACH');
    });

    it('lets the other hosts converge, and names only the broken host in the retry file', async () => {
      const recap = recapOf(r);
      for (const h of hosts.filter((x) => x !== broken)) {
        expect(recap.hosts[h.name], h.name).toMatchObject({ failed: 0, unreachable: 0 });
        expect(results(r, h.name).find((e) => e.module === 'smtp_probe')?.status, h.name).toBe('ok');
      }
      expect(readFileSync(path.join(dir, 'smtps.retry'), 'utf8')).toBe(`${broken.name}\n`);
    });
  });

  describe('a host whose postfix cannot use its new TLS settings', () => {
    let r: CliResult;
    let targets: LabHost[];
    const before = new Map<LabHost, HostFiles>();

    beforeAll(async () => {
      // One host of each flavour; a valid key that does not belong to the certificate passes the playbook's
      // checks, but smtpd cannot build its TLS context and drops every connection on 465.
      targets = [rhel.at(-1)!, debian[0]!];
      await labReset(state, targets);
      for (const h of targets) {
        await addSaslUser(h);
        await sh(h, `openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out ${keyFile(h)}`);
        before.set(h, await hostFiles(h));
      }
      r = await provision('run', ['--json', '--limit', targets.map((h) => h.name).join(',')]);
    });

    it('fails the postfix restart with the cause from the mail log, and says what it restored', () => {
      expect(r.code, story(r)).toBe(2);
      for (const h of targets) {
        const failed = results(r, h.name).filter((e) => e.status === 'failed');
        expect(failed.map((e) => [e.task, e.handler]), h.name).toEqual([['restart postfix', true]]);
        const service = h.flavour === 'rhel' ? 'smtps' : 'submissions';
        expect(failed[0]!.msg, h.name).toMatch(
          new RegExp(
            `^postfix failed after it was restarted: ${service} \\(127\\.0\\.0\\.1:465\\) closed the connection without a greeting` +
              ` — mail log: warning: \\w+ private key in ${esc(keyFile(h))} does not match public key in \\S+: disabling TLS support` +
              `; restored /etc/postfix/main\\.cf, /etc/postfix/master\\.cf, ${esc(rulesFile(h))}, ${esc(h.flavour === 'rhel' ? '/etc/sysconfig/ip6tables' : '/etc/iptables/rules.v6')}, /etc/postfix/sasl/smtpd\\.conf \\(removed\\)` +
              ' and restarted postfix: it runs again with the previous configuration$',
          ),
        );
        // The firewall is not opened for a service that does not work.
        expect(results(r, h.name).some((e) => e.task === 'restart firewall'), h.name).toBe(false);
      }
    });

    it('leaves main.cf, master.cf and the rules as they were, and postfix serving port 25', async () => {
      for (const h of targets) {
        const now = await hostFiles(h);
        const was = before.get(h)!;
        expect({ mainCf: now.mainCf, masterCf: now.masterCf, rules: now.rules, saslConf: now.saslConf }, h.name).toEqual({
          mainCf: was.mainCf,
          masterCf: was.masterCf,
          rules: was.rules,
          saslConf: 'absent',
        });
        expect(await banner(h.ip, 25), h.name).toMatch(new RegExp(`^220 ${esc(h.name)} ESMTP Postfix`));
        expect(await banner(h.ip, 465), h.name).toBe('EHOSTUNREACH');
      }
    });
  });
});

/**
 * The SMTPS playbook on a mixed fleet (issue 12): one host of every lab flavour — CentOS 6 with iptables-services,
 * RHEL 9 with firewalld, Debian 11 and 12 with netfilter-persistent, Ubuntu 22.04 with ufw, Ubuntu 24.04 with
 * nftables — each with its distribution's stock Postfix files. `check` on the fresh hosts predicts exactly the
 * files that `run` then changes (the diff of each, byte for byte, and no other file), the run converges, swaks
 * authenticates over implicit TLS on 465 everywhere, and a second run changes nothing.
 *
 * Run: PROVISION_REQUIRE_LAB=1 npx vitest run --project lab test/integration/flavours.test.ts
 */
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import type { RecapEvent, TaskResultEvent } from '../../src/report/events.js';
import { fileDiff } from '../../src/report/diff.js';
import { labDown, labExec, LabExistsError, labExists, labOwnership, labUp, type Flavour, type LabHost, type LabState } from '../lab/lab.js';
import { labArgs, runCli, type CliResult } from '../support/cli.js';
import { tempDir, writeFiles } from '../support/tmp.js';
import { LOCKOUT_MESSAGE } from '../../src/modules/service.js';

const lab = inject('lab');
const PLAYBOOK = fileURLToPath(new URL('../../playbooks/smtps.yaml', import.meta.url));
const FLAVOURS: Flavour[] = ['rhel', 'rhel9', 'debian11', 'debian', 'ubuntu2204', 'ubuntu2404'];
// A letter first: swaks would take a password that starts with '-' for an option.
const PASSWORD = `p${randomBytes(12).toString('base64url')}`;
const dir = tempDir();

/** Every file the playbook could change on any flavour. */
const WATCHED = [
  '/etc/postfix/main.cf',
  '/etc/postfix/master.cf',
  '/etc/postfix/sasl/smtpd.conf',
  '/etc/sysconfig/iptables',
  '/etc/sysconfig/ip6tables',
  '/etc/iptables/rules.v4',
  '/etc/iptables/rules.v6',
  '/etc/firewalld/zones/public.xml',
  '/etc/ufw/user.rules',
  '/etc/ufw/user6.rules',
  '/etc/nftables.conf',
];

/** The files of each flavour's firewall that the change shows up in. */
const FIREWALL_FILES: Record<Flavour, string[]> = {
  // lab hosts have IPv6 addresses, so the rule goes into both families' files
  rhel: ['/etc/sysconfig/iptables', '/etc/sysconfig/ip6tables'],
  debian: ['/etc/iptables/rules.v4', '/etc/iptables/rules.v6'],
  debian11: ['/etc/iptables/rules.v4', '/etc/iptables/rules.v6'],
  rhel9: ['/etc/firewalld/zones/public.xml'],
  ubuntu2204: ['/etc/ufw/user.rules', '/etc/ufw/user6.rules'],
  ubuntu2404: ['/etc/nftables.conf'],
};

/**
 * Steps of the SMTPS first run, 4 on every flavour. iptables hosts: facts; the queued writes with the
 * pending-handler record, carried by the Postfix restart and its health check; the guarded firewall restart, which
 * reads the live rules after it; the guard's cancel, which removes the record. firewalld, ufw and nftables hosts:
 * facts; the queued writes (nftables.conf among them), carried by the guarded change's arm step; its cancel, with
 * the read after it; the Postfix restart, which removes the record.
 */
const FIRST_RUN_STEPS: Record<Flavour, number> = { rhel: 4, debian: 4, debian11: 4, rhel9: 4, ubuntu2204: 4, ubuntu2404: 4 };

/** How each flavour's firewall task words its change (check and run alike). */
const FIREWALL_CHANGE: Record<Flavour, RegExp> = {
  rhel: /^add "-A INPUT -p tcp -m conntrack --ctstate NEW -m tcp --dport 465 -j ACCEPT" to INPUT before the final REJECT/,
  debian: /^add "-A INPUT -p tcp -m conntrack --ctstate NEW -m tcp --dport 465 -j ACCEPT" to INPUT before the final REJECT/,
  debian11: /^add "-A INPUT -p tcp -m conntrack --ctstate NEW -m tcp --dport 465 -j ACCEPT" to INPUT before the final REJECT/,
  rhel9: /^allow service smtps in firewalld zone public \(permanent and runtime\)/,
  ubuntu2204: /^ufw allow 465\/tcp/,
  ubuntu2404: /^accept 465\/tcp in chain input of table inet filter \(above its final reject\/drop\) and load \/etc\/nftables.conf/,
};

async function upOwnLab(): Promise<LabState> {
  for (const name of ['flavours', 'flavours2', 'flavours3']) {
    if (labExists(name)) {
      if (labOwnership(name) !== 'dead') continue;
      await labDown(name);
    }
    try {
      return await labUp({ name, hosts: FLAVOURS.length, flavours: FLAVOURS, owner: true });
    } catch (e) {
      if (e instanceof LabExistsError) continue;
      throw e;
    }
  }
  throw new Error('every lab name from flavours to flavours3 is in use');
}

async function sh(host: LabHost, script: string, stdin?: string): Promise<string> {
  const r = await labExec(host, script, { timeoutMs: 60_000, ...(stdin === undefined ? {} : { stdin }) });
  if (r.code !== 0) throw new Error(`${host.name}: ${script} exited ${r.code}: ${r.stderr}`);
  return r.stdout;
}

/** Each watched file's content (base64 on the host), null when absent. */
async function snapshot(host: LabHost): Promise<Map<string, Buffer | null>> {
  const out = await sh(host, `for f in ${WATCHED.join(' ')}; do if [ -f "$f" ]; then printf '%s ' "$f"; base64 -w0 < "$f"; echo; else echo "$f -"; fi; done`);
  return new Map(
    out
      .trim()
      .split('\n')
      .map((l) => {
        const [path, b64 = ''] = l.split(' ');
        return [path!, b64 === '-' ? null : Buffer.from(b64, 'base64')] as const;
      }),
  );
}

const results = (r: CliResult, host: string) => r.events.filter((e): e is TaskResultEvent => e.type === 'task_result' && e.host === host);
const recap = (r: CliResult) => r.events.at(-1) as RecapEvent;
const story = (r: CliResult) =>
  r.events
    .filter((e): e is TaskResultEvent => e.type === 'task_result')
    .map((e) => `${e.status} ${e.host} ${e.task}: ${e.msg}`)
    .join('\n');

function swaks(host: LabHost): Promise<{ code: number | null; out: string }> {
  const args = ['-s', `${host.ip}:465`, '--tls-on-connect', '--auth', 'PLAIN', '--auth-user', 'alice@lab.test', '--auth-password', PASSWORD, '--quit-after', 'AUTH', '--timeout', '30'];
  return new Promise((resolve) => {
    execFile('swaks', args, { timeout: 60_000 }, (error, stdout, stderr) => {
      resolve({ code: error ? (typeof error.code === 'number' ? error.code : null) : 0, out: `${stdout}${stderr}` });
    });
  });
}

describe.skipIf(!lab)('the SMTPS playbook on one host of every flavour', () => {
  let fleet: LabState;
  let check: CliResult;
  let before: Map<string, Map<string, Buffer | null>>;
  let run: CliResult;

  beforeAll(async () => {
    fleet = await upOwnLab();
    await Promise.all(fleet.hosts.map((h) => sh(h, 'saslpasswd2 -c -p -u lab.test alice && chgrp postfix /etc/sasldb2', `${PASSWORD}\n`)));
    check = await runCli(['check', PLAYBOOK, ...labArgs(fleet), '--json', '--diff']);
    before = new Map(await Promise.all(fleet.hosts.map(async (h) => [h.name, await snapshot(h)] as const)));
    run = await runCli(['run', PLAYBOOK, ...labArgs(fleet), '--json']);
  }, 600_000);

  afterAll(async () => {
    if (fleet) await labDown(fleet.name);
  });

  it('check predicts changes on every host (exit 8) and run converges (exit 0)', () => {
    expect(check.code, story(check)).toBe(8);
    expect(run.code, story(run)).toBe(0);
  });

  for (const [i, flavour] of FLAVOURS.entries()) {
    describe(flavour, () => {
      const host = () => fleet.hosts[i]!;

      it('check showed exactly the files, and the diff of each, that run then changed', async () => {
        const predicted = new Map<string, string>();
        for (const e of results(check, host().name)) for (const d of e.diffs ?? []) predicted.set(d.path, d.diff);
        const old = before.get(host().name)!;
        const now = await snapshot(host());
        const made = new Map<string, string>();
        for (const [path, b] of old) {
          const a = now.get(path) ?? null;
          if (a === null || (b !== null && a.equals(b))) continue;
          made.set(path, fileDiff({ path, before: b, after: a, beforeSha: null }).diff);
        }
        expect([...predicted.keys()]).toEqual(expect.arrayContaining(['/etc/postfix/main.cf', '/etc/postfix/master.cf', ...FIREWALL_FILES[flavour]]));
        expect([...made.keys()].sort()).toEqual([...predicted.keys()].sort());
        for (const [path, diff] of made) expect(diff, `${host().name} ${path}`).toBe(predicted.get(path));
      });

      it("the firewall task said the same in check and run, in the flavour's own terms", () => {
        const task = 'the firewall accepts new connections to 465/tcp';
        const checked = results(check, host().name).find((e) => e.task === task);
        const ran = results(run, host().name).find((e) => e.task === task);
        expect(checked?.msg).toMatch(FIREWALL_CHANGE[flavour]);
        expect(ran?.status).toBe('changed');
        expect(ran?.msg.startsWith(checked!.msg)).toBe(true);
      });

      it(`the first run costs ${FIRST_RUN_STEPS[flavour]} steps (issue 18: at most 4), and leaves no pending-handler record`, async () => {
        expect(recap(run).hosts[host().name]!.steps, story(run)).toBe(FIRST_RUN_STEPS[flavour]);
        expect((await sh(host(), 'ls -A /var/lib/provision/pending 2>/dev/null; true')).trim(), story(run)).toBe('');
      });

      it('swaks authenticates over implicit TLS on 465', async () => {
        const r = await swaks(host());
        expect(r.code, r.out).toBe(0);
        expect(r.out).toMatch(/TLS started/);
        expect(r.out).toMatch(/235 2\.7\.0 Authentication successful/);
      });
    });
  }

  it('closing SSH on firewalld, ufw and nftables is undone by the rollback job, and the task says so', async () => {
    // The hosts' own firewalls let the established connection go on; only a brand-new connection sees the change.
    const play = writeFiles(dir, {
      'lockout.yaml': [
        '- hosts: rhel9:ubuntu2204:ubuntu2404',
        '  tasks:',
        // A write queued before it: the guarded change's arm step carries it, and the lockout leaves it made.
        '    - name: a file written before',
        '      copy: { dest: /root/before-lockout.txt, content: "written\\n" }',
        '    - name: close ssh',
        '      firewall: { port: 22, protocol: tcp, service: ssh, state: absent, rollback_timeout: 10 }',
        '',
      ].join('\n'),
    });
    const guarded = fleet.hosts.filter((h) => ['rhel9', 'ubuntu2204', 'ubuntu2404'].includes(h.flavour));
    const nftBefore = await sh(guarded.find((h) => h.flavour === 'ubuntu2404')!, 'sha256sum < /etc/nftables.conf');
    const r = await runCli(['run', play, ...labArgs(fleet), '--json']);
    expect(r.code, story(r)).toBe(2);
    for (const h of guarded) {
      expect(results(r, h.name).find((x) => x.task === 'a file written before')?.status, `${h.name}\n${story(r)}`).toBe('changed');
      expect(await sh(h, 'cat /root/before-lockout.txt; rm -f /root/before-lockout.txt'), h.name).toBe('written\n');
      const e = results(r, h.name).find((x) => x.task === 'close ssh');
      expect(e?.status, `${h.name}\n${story(r)}`).toBe('failed');
      expect(e?.msg, h.name).toContain(LOCKOUT_MESSAGE);
    }
    const rhel9 = guarded.find((h) => h.flavour === 'rhel9')!;
    expect(await sh(rhel9, 'firewall-cmd --query-service=ssh; firewall-cmd --permanent --query-service=ssh')).toBe('yes\nyes\n');
    const ufw = guarded.find((h) => h.flavour === 'ubuntu2204')!;
    expect(await sh(ufw, 'grep -c "^### tuple ### allow tcp 22 " /etc/ufw/user.rules; iptables -S ufw-user-input | grep -c -- "--dport 22 "')).toBe('1\n1\n');
    const nft = guarded.find((h) => h.flavour === 'ubuntu2404')!;
    expect(await sh(nft, 'sha256sum < /etc/nftables.conf')).toBe(nftBefore);
    expect(await sh(nft, 'nft list chain inet filter input')).toMatch(/tcp dport 22 accept/);
  });

  it('a second run changes nothing on any host, in one exec per host', async () => {
    const again = await runCli(['run', PLAYBOOK, ...labArgs(fleet), '--json']);
    expect(again.code, story(again)).toBe(0);
    for (const [name, c] of Object.entries(recap(again).hosts)) {
      expect(c.changed, `${name}\n${story(again)}`).toBe(0);
      expect(c.execs, name).toBe(1);
    }
  });
});

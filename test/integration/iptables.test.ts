/**
 * Issue 5: the iptables module and the guarded firewall restart on the lab's real hosts of both flavours, through
 * the CLI over real SSH. Reachability is tested from the controller with plain TCP connections; the rules file and
 * the live ruleset are read inside the hosts (labExec), not through the connection under test.
 * Run: PROVISION_REQUIRE_LAB=1 npx vitest run --project lab test/integration/iptables.test.ts
 */
import { execFile } from 'node:child_process';
import { connect } from 'node:net';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, inject, it } from 'vitest';
import { labExec, labReset, type LabHost } from '../lab/lab.js';
import { labArgs, runCli } from '../support/cli.js';
import { recap, results, warnings } from '../support/events.js';
import { LOCKOUT_MESSAGE } from '../../src/modules/service.js';

const lab = inject('lab');

const PLAYBOOKS = fileURLToPath(new URL('../fixtures/playbooks/', import.meta.url));
const RULE_TASK = 'the firewall accepts 465/tcp';
/** The rule as the module writes it: iptables-save's own spelling. */
const CANONICAL_465 = '-A INPUT -p tcp -m tcp --dport 465 -j ACCEPT';
/** The same rule as people write it by hand. */
const HANDWRITTEN_465 = '-A INPUT -p tcp --dport 465 -j ACCEPT';
const FINAL_REJECT = '-A INPUT -j REJECT --reject-with icmp-host-prohibited';

// Only the lab's first two flavours run here (the lab's default).
const FIREWALL = {
  rhel: { file: '/etc/sysconfig/iptables', service: 'iptables' },
  debian: { file: '/etc/iptables/rules.v4', service: 'netfilter-persistent' },
} as Record<LabHost['flavour'], { file: string; service: string }>;

async function sh(host: LabHost, script: string): Promise<string> {
  const r = await labExec(host, script, { timeoutMs: 60_000 });
  if (r.code !== 0) throw new Error(`${host.name}: ${script} exited ${r.code}: ${r.stderr}`);
  return r.stdout;
}

/** `connected`, or why a TCP connection from the controller failed (EHOSTUNREACH, ECONNREFUSED, timeout). */
function tcp(ip: string, port: number, timeoutMs = 5_000): Promise<string> {
  return new Promise((resolve) => {
    const sock = connect({ host: ip, port, timeout: timeoutMs });
    sock.on('connect', () => {
      sock.destroy();
      resolve('connected');
    });
    sock.on('timeout', () => {
      sock.destroy();
      resolve('timeout');
    });
    sock.on('error', (e: NodeJS.ErrnoException) => resolve(e.code ?? e.message));
  });
}

/** The INPUT rules of a rules file or of `iptables -S`, in order. */
const inputRules = (text: string) => text.split('\n').filter((l) => l.startsWith('-A INPUT '));

/** Every rule of an iptables-save dump with its table, without counters and timestamps, in order. */
function ruleLines(dump: string): string[] {
  let table = '';
  const out: string[] = [];
  for (const line of dump.split('\n')) {
    if (line.startsWith('*')) table = line.slice(1);
    else if (line.startsWith('-A ')) out.push(`${table} ${line}`);
  }
  return out;
}

function ssh(sshConfig: string, target: string, command: string): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile('ssh', ['-F', sshConfig, '-o', 'BatchMode=yes', '-o', 'ConnectTimeout=10', target, command], { timeout: 30_000 }, (error, stdout, stderr) => {
      resolve({ code: error ? (typeof error.code === 'number' ? error.code : null) : 0, stdout, stderr });
    });
  });
}

/** Reachability of HOST:22 from the controller over time: one new TCP connection every `everyMs`. */
interface Watch {
  /** stop probing once the host answers again (or the bound is reached); resolves to what was seen */
  stop(): Promise<Reachability>;
}

interface Reachability {
  /** ms from the start of the watch to the first failed connection, null if none failed */
  firstFailureMs: number | null;
  /** ms the host refused new connections: first failure to the first success after it */
  unreachableMs: number | null;
  /** the error the failed connections gave */
  failure: string | null;
  probes: number;
  /** the longest time between two probes: how precise the figures above are */
  maxGapMs: number;
}

const PROBE_EVERY_MS = 200;
const PROBE_LIMIT = 1_000;
const PROBE_DEADLINE_MS = 180_000;

function watchSsh(ip: string): Watch {
  const started = Date.now();
  let stopping = false;
  const done = (async (): Promise<Reachability> => {
    let firstFailure: number | null = null;
    let failure: string | null = null;
    let back: number | null = null;
    let probes = 0;
    let last: number | null = null;
    let maxGap = 0;
    // Bounded in count and time; after `stop` it only waits for the host to answer again.
    while (probes < PROBE_LIMIT && Date.now() - started < PROBE_DEADLINE_MS) {
      const at = Date.now();
      if (last !== null) maxGap = Math.max(maxGap, at - last);
      last = at;
      const got = await tcp(ip, 22, 2_000);
      probes++;
      if (got !== 'connected' && firstFailure === null) {
        firstFailure = at;
        failure = got;
      }
      if (got === 'connected' && firstFailure !== null) {
        back = at;
        break;
      }
      if (stopping && got === 'connected') break;
      await new Promise((r) => setTimeout(r, Math.max(0, PROBE_EVERY_MS - (Date.now() - at))));
    }
    return {
      firstFailureMs: firstFailure === null ? null : firstFailure - started,
      unreachableMs: firstFailure === null || back === null ? null : back - firstFailure,
      failure,
      probes,
      maxGapMs: maxGap,
    };
  })();
  return {
    stop: () => {
      stopping = true;
      return done;
    },
  };
}

describe.skipIf(!lab)('iptables and the firewall restart on lab hosts (issue 5)', () => {
  const state = lab!;
  const rhel = state?.hosts.find((h) => h.flavour === 'rhel');
  const debian = state?.hosts.find((h) => h.flavour === 'debian');
  const hosts = [rhel!, debian!];

  const provision = (playbook: string) =>
    runCli(['run', path.join(PLAYBOOKS, playbook), ...labArgs(state), '--limit', hosts.map((h) => h.name).join(','), '--json', '--no-retry-file']);

  afterEach(async () => {
    await labReset(state, hosts);
  });

  it('opens 465/tcp before the final REJECT, in the file and live, reachable from the controller; a second run changes nothing', async () => {
    const before = new Map<LabHost, string[]>();
    for (const h of hosts) {
      expect(await tcp(h.ip, 465)).toBe('EHOSTUNREACH');
      before.set(h, inputRules(await sh(h, `cat ${FIREWALL[h.flavour].file}`)));
    }

    const first = await provision('iptables-smtps.yaml');
    expect(first.stderr).toBe('');
    expect(first.code).toBe(0);
    for (const h of hosts) {
      const fw = FIREWALL[h.flavour];
      const r = results(first.events, h);
      expect(r.find((x) => x.task === RULE_TASK)).toMatchObject({ status: 'changed', msg: `add "${CANONICAL_465}" to INPUT before the final REJECT` });
      const restart = r.find((x) => x.task === 'restart firewall');
      expect(restart).toMatchObject({ handler: true, status: 'changed' });
      expect(restart!.msg).toMatch(new RegExp(`^${fw.service} restarted; a new SSH connection works; the live rules match ${fw.file}`));

      expect(await tcp(h.ip, 465)).toBe('connected');
      const old = before.get(h)!;
      expect(old.at(-1)).toBe(FINAL_REJECT);
      expect(inputRules(await sh(h, `cat ${fw.file}`))).toEqual([...old.slice(0, -1), CANONICAL_465, FINAL_REJECT]);
      const live = inputRules(await sh(h, 'iptables -S INPUT'));
      expect(live.filter((l) => l.includes('--dport 465'))).toEqual([CANONICAL_465]);
      expect(live.indexOf(CANONICAL_465)).toBe(live.length - 2);
      expect(live.at(-1)).toBe(FINAL_REJECT);
    }

    const files = await Promise.all(hosts.map((h) => sh(h, `sha256sum ${FIREWALL[h.flavour].file} /etc/postfix/main.cf /etc/postfix/master.cf`)));
    const second = await provision('iptables-smtps.yaml');
    expect(second.code).toBe(0);
    for (const h of hosts) {
      const r = results(second.events, h);
      expect(r.map((x) => x.status)).toEqual(['ok', 'ok', 'ok']);
      expect(r.some((x) => x.handler)).toBe(false);
      expect(recap(second.events).hosts[h.name]).toMatchObject({ changed: 0, failed: 0 });
      expect(warnings(second.events, h)).toEqual([]);
    }
    expect(await Promise.all(hosts.map((h) => sh(h, `sha256sum ${FIREWALL[h.flavour].file} /etc/postfix/main.cf /etc/postfix/master.cf`)))).toEqual(files);
  });

  it.each([
    { where: 'before', sed: 'i', status: 'ok', msg: /^INPUT accepts tcp\/465 before the final REJECT$/ },
    {
      where: 'after',
      sed: 'a',
      status: 'changed',
      msg: /^move "-A INPUT -p tcp -m tcp --dport 465 -j ACCEPT" above the final REJECT of INPUT \(line \d+ is below it and matches nothing\)$/,
    },
  ])(
    'adds no duplicate when the file already holds the rule, written by hand $where the REJECT and loaded',
    async ({ sed, status, msg }) => {
      for (const h of hosts) {
        const fw = FIREWALL[h.flavour];
        await sh(h, `sed -i '/^-A INPUT -j REJECT/${sed} ${HANDWRITTEN_465}' ${fw.file} && service ${fw.service} restart >/dev/null 2>&1`);
        expect(inputRules(await sh(h, 'iptables -S INPUT')).filter((l) => l.includes('--dport 465'))).toEqual([CANONICAL_465]);
      }

      const r = await provision('iptables-smtps.yaml');
      expect(r.code).toBe(0);
      for (const h of hosts) {
        const fw = FIREWALL[h.flavour];
        const task = results(r.events, h).find((x) => x.task === RULE_TASK)!;
        expect(task.status).toBe(status);
        expect(task.msg).toMatch(msg);
        expect(warnings(r.events, h)).toEqual([]);

        // The hand-written line is kept as written, once, above the REJECT, in the file and live.
        const file = inputRules(await sh(h, `cat ${fw.file}`));
        expect(file.filter((l) => l.includes('465'))).toEqual([HANDWRITTEN_465]);
        expect(file.indexOf(HANDWRITTEN_465)).toBe(file.indexOf(FINAL_REJECT) - 1);
        const live = inputRules(await sh(h, 'iptables -S INPUT'));
        expect(live.filter((l) => l.includes('465'))).toEqual([CANONICAL_465]);
        expect(live.indexOf(CANONICAL_465)).toBe(live.indexOf(FINAL_REJECT) - 1);
        expect(await tcp(h.ip, 465)).toBe('connected');
      }
    },
  );

  it('warns about drift in the JSON events when the live rules were changed by hand', async () => {
    // A rule added live only: the file does not have it, so the run adds it there and the restart loads the file.
    for (const h of hosts) await sh(h, `iptables -I INPUT 1 ${HANDWRITTEN_465.slice('-A INPUT '.length)}`);
    const added = await provision('iptables-smtps.yaml');
    expect(added.code).toBe(0);
    for (const h of hosts) {
      const fw = FIREWALL[h.flavour];
      expect(warnings(added.events, h)).toEqual([`drift: INPUT accepting tcp/465: ${fw.file} does not have it, the live ruleset has it; restarting ${fw.service} loads the file`]);
      expect(results(added.events, h).find((x) => x.task === RULE_TASK)?.status).toBe('changed');
      expect(inputRules(await sh(h, 'iptables -S INPUT')).filter((l) => l.includes('465'))).toEqual([CANONICAL_465]);
    }

    // The rule deleted live only: the file already has it, so nothing changes and nothing restarts, but the
    // operator is told the live rules lag behind the file.
    for (const h of hosts) await sh(h, `iptables -D ${CANONICAL_465.slice('-A '.length)}`);
    const deleted = await provision('iptables-smtps.yaml');
    expect(deleted.code).toBe(0);
    for (const h of hosts) {
      const fw = FIREWALL[h.flavour];
      expect(warnings(deleted.events, h)).toEqual([`drift: INPUT accepting tcp/465: ${fw.file} has it, the live ruleset does not have it; restarting ${fw.service} loads the file`]);
      expect(results(deleted.events, h).map((x) => x.status)).toEqual(['ok', 'ok', 'ok']);
      expect(await tcp(h.ip, 465)).toBe('EHOSTUNREACH');
    }
  });

  it('rolls back a restart that would lock out SSH: the host stays reachable and keeps its old rules, live and in the file', async () => {
    const before = new Map<LabHost, { rules: string; all: string[]; file: string }>();
    for (const h of hosts) {
      before.set(h, { rules: await sh(h, 'iptables -S'), all: ruleLines(await sh(h, 'iptables-save')), file: await sh(h, `sha256sum < ${FIREWALL[h.flavour].file}`) });
    }

    const watches = hosts.map((h) => watchSsh(h.ip));
    const r = await provision('iptables-ssh-lockout.yaml');
    const seen = await Promise.all(watches.map((w) => w.stop()));

    expect(r.code).toBe(2);
    for (const [i, h] of hosts.entries()) {
      const got = results(r.events, h);
      expect(got.map((x) => [x.task, x.status])).toEqual([
        ['no rule accepts new connections to 22/tcp', 'changed'],
        ['restart firewall', 'failed'],
      ]);
      const restart = got[1]!;
      expect(restart.msg).toBe(LOCKOUT_MESSAGE);

      // The lockout was real (new connections were refused for a while) and is over.
      const w = seen[i]!;
      expect(w.failure).toBe('EHOSTUNREACH');
      expect(w.unreachableMs).not.toBeNull();
      const login = await ssh(state.sshConfig, h.name, 'hostname');
      expect([login.code, login.stdout]).toEqual([0, `${h.name}\n`]);

      const old = before.get(h)!;
      expect(await sh(h, 'iptables -S')).toBe(old.rules);
      expect(ruleLines(await sh(h, 'iptables-save'))).toEqual(old.all);
      // The rules file is put back too, or the next restart (or a reboot) would lock SSH out for good.
      expect(await sh(h, `sha256sum < ${FIREWALL[h.flavour].file}`)).toBe(old.file);
      expect(warnings(r.events, h)).toEqual([`${FIREWALL[h.flavour].file} put back as before this run, so the refused rules are not loaded again`]);
      // The guard leaves nothing behind: no snapshot files, no rollback job still waiting.
      expect(await sh(h, 'ls -A /var/lib/provision | grep firewall- || true')).toBe('');
      expect(await sh(h, "pgrep -f 'provision-rollbac[k]' || true")).toBe('');

      console.log(
        `${h.name} (${h.flavour}): restart firewall → failure message ${(restart.duration_ms / 1000).toFixed(1)} s; ` +
          `new SSH connections refused (${w.failure}) for ${((w.unreachableMs ?? 0) / 1000).toFixed(1)} s, ` +
          `from ${((w.firstFailureMs ?? 0) / 1000).toFixed(1)} s after the run started (${w.probes} probes, at most ${w.maxGapMs} ms apart; rollback_timeout 10 s)`,
      );
    }
  });
});

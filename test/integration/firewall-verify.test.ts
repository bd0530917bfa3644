/**
 * Issue 13: after a guarded firewall restart the live rules are compared with the rules file loaded into a
 * throwaway network namespace on the host. Real-world-shaped rulesets (test/fixtures/iptables/real-world) are
 * loaded by the flavour's own firewall service through the service module: verification passes on each; a rule
 * added to the live ruleset behind the service's back (as a local script or fail2ban does) is reported, by name.
 * Run: PROVISION_REQUIRE_LAB=1 npx vitest run --project lab test/integration/firewall-verify.test.ts
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, inject, it } from 'vitest';
import { labExec, labReset, type LabHost } from '../lab/lab.js';
import { labArgs, runCli } from '../support/cli.js';
import { results, warnings } from '../support/events.js';

const lab = inject('lab');
const PLAYBOOK = fileURLToPath(new URL('../fixtures/playbooks/firewall-restart.yaml', import.meta.url));
const RULESETS = fileURLToPath(new URL('../fixtures/iptables/real-world/', import.meta.url));

/** The two iptables flavours this suite runs on. */
const FIREWALL: Partial<Record<LabHost['flavour'], { file: string; service: string }>> = {
  rhel: { file: '/etc/sysconfig/iptables', service: 'iptables' },
  debian: { file: '/etc/iptables/rules.v4', service: 'netfilter-persistent' },
};

/** Each ruleset, where its shape comes from, and a rule a local script adds after the service loaded it. */
const CASES = [
  { shape: 'university department gateway (comma lists, iprange, -g goto, DNAT --to)', file: 'university-department.rules', add: '-I SSH_IN 2 -s 198.51.100.66 -j ACCEPT', named: '-A SSH_IN -s 198.51.100.66/32 -j ACCEPT' },
  { shape: 'Tor relay style ruleset with hashlimit, recent and limit 2/s', file: 'tor-relay.rules', add: '-I TOR 1 -p tcp --dport 9001 -m limit --limit 3/s -j ACCEPT', named: '-A TOR -p tcp -m tcp --dport 9001 -m limit --limit 3/sec -j ACCEPT' },
  { shape: 'home router with raw, mangle MARK, statistic and owner', file: 'home-router.rules', add: '-t mangle -A PREROUTING -i br-lan -j MARK --set-mark 7', named: '-A PREROUTING -i br-lan -j MARK --set-xmark 0x7/0xffffffff' },
  { shape: 'call centre SIP server with string matches and an ipset blocklist', file: 'call-centre-sip.rules', add: '-I SIP 1 -m string --string "sipsak" --algo bm -j DROP', named: '-A SIP -m string --string "sipsak" --algo bm -j DROP' },
  { shape: 'web host rules file written with -N, -I and -P commands', file: 'web-host-inserted.rules', add: '-A WEB -j LOG', named: '-A WEB -j LOG' },
];

async function sh(host: LabHost, script: string): Promise<string> {
  const r = await labExec(host, script, { timeoutMs: 60_000 });
  if (r.code !== 0) throw new Error(`${host.name}: ${script} exited ${r.code}: ${r.stderr}`);
  return r.stdout;
}

/** The ruleset becomes the host's rules file; the blocklist set the SIP ruleset matches exists as on that server. */
async function install(host: LabHost, file: string): Promise<void> {
  const b64 = readFileSync(path.join(RULESETS, file)).toString('base64');
  await sh(host, `ipset create sip-blocklist hash:net -exist && echo ${b64} | base64 -d > ${FIREWALL[host.flavour]!.file}`);
}

describe.skipIf(!lab)('verification of real-world rulesets after a guarded firewall restart (issue 13)', () => {
  const state = lab!;
  const rhel = state?.hosts.find((h) => h.flavour === 'rhel');
  const debian = state?.hosts.find((h) => h.flavour === 'debian');
  const restart = (host: LabHost) => runCli(['run', PLAYBOOK, ...labArgs(state), '--limit', host.name, '--json', '--no-retry-file']);

  afterAll(async () => {
    await labReset(state, [rhel!, debian!]);
  });

  it.each(CASES)('$shape: restarted through the service module on both flavours, the live rules match', async (c) => {
    for (const host of [rhel!, debian!]) {
      await install(host, c.file);
      const r = await restart(host);
      expect(r.stderr).toBe('');
      const fw = FIREWALL[host.flavour]!;
      expect(results(r.events, host), `${host.name}: ${results(r.events, host).map((x) => x.msg).join('; ')}`).toMatchObject([
        { status: 'changed', msg: `${fw.service} restarted; a new SSH connection works; the live rules match ${fw.file}${host.flavour === 'debian' ? ' and /etc/iptables/rules.v6' : ''}` },
      ]);
      expect(warnings(r.events, host)).toEqual([]);
      expect(r.code).toBe(0);
    }
  });

  it.each(CASES)('$shape: a rule a local script adds at the restart is reported as drift, by name', async (c) => {
    const host = rhel!;
    await install(host, c.file);
    // The host's own init script, then a local addition to the live rules that the file does not have.
    await sh(
      host,
      `[ -e /etc/init.d/iptables.lab ] || cp -p /etc/init.d/iptables /etc/init.d/iptables.lab
printf '#!/bin/sh\\n/etc/init.d/iptables.lab "$@" || exit\\n[ "$1" = restart ] && iptables %s\\nexit 0\\n' '${c.add.replace(/'/g, "'\\''")}' > /etc/init.d/iptables`,
    );
    const r = await restart(host);
    const [result] = results(r.events, host);
    expect(result).toMatchObject({ status: 'failed' });
    expect(result!.msg).toMatch(/^iptables restarted, but the live IPv4 ruleset does not match \/etc\/sysconfig\/iptables: /);
    expect(result!.msg).toContain(`"${c.named}"`);
    expect(r.code).toBe(2);
    await sh(host, 'mv -f /etc/init.d/iptables.lab /etc/init.d/iptables');
  });
});

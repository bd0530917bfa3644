import { execFileSync, spawnSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { FACTS_SCRIPT, parseFacts } from '../../../src/facts/gather.js';

const PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';
const postconf = (name: string): string | null => {
  try {
    return execFileSync('postconf', ['-h', name], { encoding: 'utf8', env: { PATH } }).trim();
  } catch {
    return null;
  }
};

describe('facts', () => {
  it.skipIf(postconf('mail_version') === null)("report Postfix's version and configuration directory as postconf gives them", () => {
    const facts = parseFacts(execFileSync('sh', ['-c', FACTS_SCRIPT], { encoding: 'utf8', env: { PATH } }));
    expect({ version: facts.postfix_version, dir: facts.postfix_config_dir }).toEqual({ version: postconf('mail_version'), dir: postconf('config_directory') });
  });

  it('report the host name as hostname gives it', () => {
    const facts = parseFacts(execFileSync('/bin/sh', ['-c', FACTS_SCRIPT], { encoding: 'utf8', env: { PATH } }));
    expect(facts.hostname).toBe(execFileSync('hostname', { encoding: 'utf8' }).trim());
  });

  it('report no Postfix where there is no postconf', () => {
    const facts = parseFacts(execFileSync('/bin/sh', ['-c', FACTS_SCRIPT], { encoding: 'utf8', env: { PATH: '/nonexistent' } }));
    expect({ version: facts.postfix_version, dir: facts.postfix_config_dir }).toEqual({ version: null, dir: null });
  });
});

describe('facts about IPv6 (issue 13)', () => {
  const NS = `provision-facts6-${process.pid}`;
  const root = process.getuid?.() === 0 && spawnSync('ip', ['netns', 'add', `${NS}-probe`]).status === 0 && spawnSync('ip', ['netns', 'del', `${NS}-probe`]).status === 0;

  it('reads the IPv6 rules file of the flavour and a global IPv6 address from the facts', () => {
    const base = 'os_id=debian\niptables_version=iptables v1.8.9 (nf_tables)\nrules_v4=1\n';
    expect(parseFacts(`${base}rules_v6=1\nipv6_global=1\n`)).toMatchObject({ ip6tables_rules_file: '/etc/iptables/rules.v6', ip6tables_rules_exists: true, ipv6_global: true });
    expect(parseFacts(base)).toMatchObject({ ip6tables_rules_exists: false, ipv6_global: false });
    // A RHEL file on a Debian host is not its IPv6 rules file.
    expect(parseFacts(`${base}sysconfig_ip6tables=1\n`).ip6tables_rules_exists).toBe(false);
  });

  it.skipIf(!root)('sees a global IPv6 address in /proc/net/if_inet6, and not a link-local one', () => {
    expect(spawnSync('ip', ['netns', 'add', NS]).status).toBe(0);
    try {
      const facts = () => parseFacts(execFileSync('ip', ['netns', 'exec', NS, '/bin/sh', '-c', FACTS_SCRIPT], { encoding: 'utf8', env: { PATH } }));
      expect(spawnSync('ip', ['-n', NS, 'link', 'add', 'pv0', 'type', 'veth', 'peer', 'name', 'pv1']).status).toBe(0);
      expect(spawnSync('ip', ['-n', NS, 'link', 'set', 'pv0', 'up']).status).toBe(0);
      expect(spawnSync('ip', ['-n', NS, 'addr', 'add', 'fe80::1/64', 'dev', 'pv0', 'nodad']).status).toBe(0);
      expect(facts().ipv6_global).toBe(false);
      // Inside 2001:2::/48, the benchmarking prefix, in a namespace of its own: no traffic leaves it.
      expect(spawnSync('ip', ['-n', NS, 'addr', 'add', '2001:2:0:ff::1/64', 'dev', 'pv0', 'nodad']).status).toBe(0);
      expect(facts().ipv6_global).toBe(true);
    } finally {
      spawnSync('ip', ['netns', 'del', NS]);
    }
  });
});

describe('the firewall in charge', () => {
  const IPT = 'iptables_version=iptables v1.8.10 (nf_tables)\nnft=1\n';
  const firewall = (lines: string) => {
    const f = parseFacts(lines);
    return { firewall: f.firewall, service: f.firewall_service, rules: f.iptables_rules_file, zone: f.firewalld_zone };
  };

  it('Ubuntu 24.04 with nftables enabled: nftables, although netfilter-persistent\'s unit file is on disk', () => {
    const out = `os_id=ubuntu\nos_id_like=debian\n${IPT}netfilter_persistent=1\nnftables_conf=1\nnftables_enabled=1\n`;
    expect(firewall(out)).toEqual({ firewall: 'nftables', service: null, rules: null, zone: null });
  });

  it('Debian 12 with rules.v4 and an nftables.conf left as shipped: netfilter-persistent', () => {
    const out = `os_id=debian\n${IPT}rules_v4=1\nnetfilter_persistent=1\nnftables_conf=1\nnftables_enabled=1\n`;
    expect(firewall(out).firewall).toBe('netfilter-persistent');
  });

  it('RHEL 9 with firewalld running: firewalld and the zone of the interface SSH came in on', () => {
    const out = `os_id=rhel\nos_id_like=fedora\n${IPT}firewalld_active=1\nfirewalld_interface=eth0\nfirewalld_zone=internal\n`;
    expect(firewall(out)).toEqual({ firewall: 'firewalld', service: null, rules: null, zone: 'internal' });
  });

  it('Ubuntu 22.04 with ufw enabled: ufw', () => {
    expect(firewall(`os_id=ubuntu\n${IPT}netfilter_persistent=1\nufw_enabled=1\n`).firewall).toBe('ufw');
  });
});

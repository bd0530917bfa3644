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

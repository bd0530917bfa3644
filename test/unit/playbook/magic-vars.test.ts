import { describe, expect, it } from 'vitest';
import type { Facts } from '../../../src/facts/types.js';
import { defaultIpv4 } from '../../../src/facts/gather.js';
import { parseInventoryText } from '../../../src/inventory/load.js';
import { ansibleFactVars, ansibleGroups, makeHostvars, playVars } from '../../../src/playbook/magic-vars.js';
import { renderString } from '../../../src/playbook/template/render.js';

const base: Facts = {
  hostname: 'mx1', fqdn: 'mx1.example.org', os_family: 'Debian', distribution: 'debian', distribution_version: '12', init: 'systemd', user: 'root', uid: 0,
  postfix_version: '3.7.11', postfix_config_dir: '/etc/postfix', firewall: 'netfilter-persistent', firewall_service: 'netfilter-persistent',
  iptables_rules_file: '/etc/iptables/rules.v4', ip6tables_rules_file: '/etc/iptables/rules.v6', iptables_version: 'iptables v1.8.9 (nf_tables)',
  tls_cert_dir: '/etc/ssl/certs', tls_key_dir: '/etc/ssl/private',
};

describe('ansible_* fact names from the facts provision gathers', () => {
  it.each([
    // What Ansible 2.14's setup module reports on each of these releases.
    ['Debian 12', { distribution: 'debian', distribution_version: '12' }, { ansible_distribution: 'Debian', ansible_distribution_major_version: '12', ansible_service_mgr: 'systemd' }],
    ['Ubuntu 22.04', { distribution: 'ubuntu', distribution_version: '22.04' }, { ansible_distribution: 'Ubuntu', ansible_distribution_major_version: '22' }],
    ['RHEL 9.4', { os_family: 'RedHat', distribution: 'rhel', distribution_version: '9.4' }, { ansible_os_family: 'RedHat', ansible_distribution: 'RedHat', ansible_distribution_version: '9.4', ansible_distribution_major_version: '9' }],
    ['CentOS 6 (Upstart)', { os_family: 'RedHat', distribution: 'centos', distribution_version: '6', init: 'sysv' as const }, { ansible_distribution: 'CentOS', ansible_service_mgr: 'upstart' }],
  ])('%s', (_name, facts, want) => {
    expect(ansibleFactVars({ ...base, ...facts })).toMatchObject(want);
  });

  it('names hostname, fqdn and ansible_facts[...] alike', () => {
    const v = ansibleFactVars(base);
    expect(v).toMatchObject({ ansible_hostname: 'mx1', ansible_fqdn: 'mx1.example.org', ansible_os_family: 'Debian' });
    expect(v.ansible_facts).toMatchObject({ hostname: 'mx1', os_family: 'Debian', distribution: 'Debian' });
  });

  it('leaves out a distribution it cannot name as Ansible does, rather than guess', () => {
    const v = ansibleFactVars({ ...base, distribution: 'someos' });
    expect(v).not.toHaveProperty('ansible_distribution');
    expect(v).toHaveProperty('ansible_os_family', 'Debian');
  });
});

describe('hostvars', () => {
  it('has every inventory host, with facts only once gathered', () => {
    let gathered: Facts | null = null;
    const hv = makeHostvars(['a', 'b'], (h) => ({ role: h }), (h) => (h === 'b' ? gathered : null));
    expect(Object.keys(hv)).toEqual(['a', 'b']);
    expect(hv.b).toEqual({ role: 'b' });
    gathered = base;
    expect(hv.b).toMatchObject({ role: 'b', ansible_hostname: 'mx1', facts: base });
  });

  it("refuses another host's registered or set_fact variable, which Ansible gives at the moment of a lockstep run", () => {
    // `hostvars[h].result | default(...)` must not quietly give the default where Ansible gives h's result.
    const hv = makeHostvars(['a', 'b'], (h) => ({ role: h, result: 'from the inventory' }), () => null, new Set(['result', 'relay']));
    for (const src of ["{{ hostvars['b'].result | default('none') }}", "{{ hostvars['b'].relay is defined }}", "{{ hostvars['a']['relay'] }}"]) {
      expect(() => renderString(src, { hostvars: hv })).toThrow(/does not share a host's registered or set_fact variables/);
    }
    // Inventory variables still read, and the entry prints as before.
    expect(renderString("{{ hostvars['b'].role }}", { hostvars: hv })).toBe('b');
    expect(renderString("{{ hostvars['b'] | to_json }}", { hostvars: hv })).toBe('{"role": "b"}');
  });
});

describe('ansible_default_ipv4 from the facts exec', () => {
  it('reads the default route and its interface address as Ansible 2.14 reports them (Debian 12, iproute2 6.1)', () => {
    const v = defaultIpv4('default via 192.0.2.1 dev eth0 ', '4: eth0    inet 192.0.2.2/24 brd 192.0.2.255 scope global eth0\\       valid_lft forever preferred_lft forever');
    // The keys Ansible's setup module gives on the same host, with the same values.
    expect(v).toEqual({ address: '192.0.2.2', alias: 'eth0', broadcast: '192.0.2.255', gateway: '192.0.2.1', interface: 'eth0', netmask: '255.255.255.0', network: '192.0.2.0', prefix: '24' });
    expect(ansibleFactVars({ ...base, default_ipv4: v })).toMatchObject({ ansible_default_ipv4: { address: '192.0.2.2' } });
  });

  it('is null without a default route, so a template reading it fails naming it', () => {
    expect(defaultIpv4('', '')).toBeNull();
    expect(ansibleFactVars({ ...base, default_ipv4: null })).not.toHaveProperty('ansible_default_ipv4');
  });
});

describe("groups in Ansible's order", () => {
  it('walks each group down its children level by level, as Ansible lists groups[...]', () => {
    const inv = parseInventoryText('[mail]\nmx1\nmx2\n[web]\nwww\n[edge:children]\nmail\n[edge]\nedge1\n', 'inventory');
    const groups = ansibleGroups(inv);
    // all → ungrouped, web, edge (top-level groups in the order they were made) → mail (under edge)
    expect(groups.all).toEqual(['www', 'edge1', 'mx1', 'mx2']);
    expect(groups.edge).toEqual(['edge1', 'mx1', 'mx2']);
    expect(groups.mail).toEqual(['mx1', 'mx2']);
    expect(groups.ungrouped).toEqual([]);
  });

  it('is what playVars hands templates when the runner gives it', () => {
    const inv = parseInventoryText('[b]\nh2\n[a]\nh1\nh2\n', 'inventory');
    const play = playVars({ playHosts: [], allHosts: [], batch: [], check: false, playbookDir: '/', hostvars: {}, groups: ansibleGroups(inv) });
    expect(play.groups).toEqual({ all: ['h2', 'h1'], ungrouped: [], b: ['h2'], a: ['h1', 'h2'] });
  });
});

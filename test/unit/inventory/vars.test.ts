import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { InputError } from '../../../src/errors.js';
import { loadInventory, parseInventoryText } from '../../../src/inventory/load.js';
import type { Inventory, InventoryGroup } from '../../../src/inventory/types.js';
import { allGroupsOf, hostVars, hostsOfGroup, inventoryGraph, inventoryHost, inventoryList } from '../../../src/inventory/vars.js';
import { tempDir } from '../../support/tmp.js';

const fixture = loadInventory(path.join(import.meta.dirname, '../../fixtures/inventory/hosts.ini'));
const ini = (text: string) => parseInventoryText(text, 'hosts.ini', 'ini');

const tmp = tempDir('provision-vars-');

describe('allGroupsOf', () => {
  it('lists direct and ancestor groups by depth, then name, all first', () => {
    expect(allGroupsOf(fixture, 'mx01.lab.test')).toEqual(['all', 'canary', 'mail', 'debian']);
    expect(allGroupsOf(fixture, 'legacy3.lab.test')).toEqual(['all', 'mail', 'rhel']);
    expect(allGroupsOf(fixture, 'bastion.lab.test')).toEqual(['all', 'ungrouped']);
  });

  it('puts a group reached by a longer path deeper, whatever other parents it has', () => {
    const inv = ini('[a:children]\nb\n[b:children]\nc\n[x:children]\nc\n[c]\nh1\n[b]\n[x]\n');
    expect(allGroupsOf(inv, 'h1')).toEqual(['all', 'a', 'x', 'b', 'c']);
  });

  it('orders groups of equal depth by ansible_group_priority before name', () => {
    const inv = ini('[alpha]\nh1\n[zeta]\nh1\n[alpha:vars]\nansible_group_priority=10\n');
    expect(allGroupsOf(inv, 'h1')).toEqual(['all', 'zeta', 'alpha']);
  });

  it('rejects an unknown host', () => {
    expect(() => allGroupsOf(fixture, 'nosuch')).toThrow(InputError);
  });
});

describe('hostVars precedence', () => {
  const cases: [string, string, unknown][] = [
    // inline host var beats every group
    ['mx01.lab.test', 'tls_loglevel', 3],
    // debian (depth 2) beats mail (depth 1)
    ['mx02.lab.test', 'tls_loglevel', 2],
    ['legacy1.lab.test', 'tls_loglevel', 1],
    // host_vars/ beats both
    ['mx03.lab.test', 'tls_loglevel', 4],
    // host_vars/ beats the inline host var
    ['legacy1.lab.test', 'ansible_become_user', 'admin'],
    ['legacy3.lab.test', 'ansible_become_user', 'root'],
    // group_vars/rhel.yaml beats group_vars/all.yml
    ['legacy3.lab.test', 'tls_cert_dir', '/etc/pki/tls/certs'],
    ['mx01.lab.test', 'tls_cert_dir', '/etc/ssl/certs'],
    // every group_vars/ file beats every inventory-file group var, [all:vars] included
    ['mx01.lab.test', 'relay_domain', 'mail.lab.test'],
    ['bastion.lab.test', 'admin_email', 'postmaster@lab.test'],
    ['mx01.lab.test', 'serial_batch', 1],
  ];
  it.each(cases)('%s: %s = %j', (host, name, value) => {
    expect(hostVars(fixture, host)[name]).toEqual(value);
  });

  it('lets the later name win between groups of equal depth, and priority override that', () => {
    const text = '[zeta]\nh1\n[alpha]\nh1\n[zeta:vars]\nv=zeta\n[alpha:vars]\nv=alpha\n';
    expect(hostVars(ini(text), 'h1').v).toBe('zeta');
    expect(hostVars(ini(`${text}ansible_group_priority=2\n`), 'h1').v).toBe('alpha');
  });

  it('ignores ansible_group_priority set in group_vars/, as Ansible does', () => {
    fs.writeFileSync(path.join(tmp, 'hosts'), '[zeta]\nh1\n[alpha]\nh1\n[zeta:vars]\nv=zeta\n[alpha:vars]\nv=alpha\n');
    fs.mkdirSync(path.join(tmp, 'group_vars'), { recursive: true });
    fs.writeFileSync(path.join(tmp, 'group_vars/alpha.yml'), 'ansible_group_priority: 5\n');
    const inv = loadInventory(path.join(tmp, 'hosts'));
    expect(allGroupsOf(inv, 'h1')).toEqual(['all', 'alpha', 'zeta']);
    expect(hostVars(inv, 'h1').v).toBe('zeta');
  });

  it('rejects a priority that is not a whole number', () => {
    const inv = ini('[g]\nh1\n[g:vars]\nansible_group_priority=high\n');
    expect(() => hostVars(inv, 'h1')).toThrow('ansible_group_priority of group "g" must be a whole number, got "high"');
  });

  it('merges a hand-built inventory by depth, the host on top', () => {
    const group = (name: string, children: string[], hosts: string[], vars: Record<string, unknown>): [string, InventoryGroup] => [
      name,
      { name, children, hosts, vars },
    ];
    const inv: Inventory = {
      source: 'test',
      hosts: new Map([['h1', { name: 'h1', groups: ['child'], vars: { c: 'host' } }]]),
      groups: new Map([
        group('all', [], [], { a: 'all', b: 'all', c: 'all' }),
        group('child', [], ['h1'], { b: 'child', c: 'child' }),
        group('parent', ['child'], [], { a: 'parent', b: 'parent' }),
      ]),
    };
    expect(allGroupsOf(inv, 'h1')).toEqual(['all', 'parent', 'child']);
    expect(hostVars(inv, 'h1')).toMatchObject({ a: 'parent', b: 'child', c: 'host' });
  });

  it('reports a cycle in a hand-built inventory instead of looping', () => {
    const inv: Inventory = {
      source: 'test',
      hosts: new Map([['h1', { name: 'h1', groups: ['a'], vars: {} }]]),
      groups: new Map([
        ['a', { name: 'a', children: ['b'], hosts: ['h1'], vars: {} }],
        ['b', { name: 'b', children: ['a'], hosts: [], vars: {} }],
      ]),
    };
    expect(() => hostVars(inv, 'h1')).toThrow(/child groups form a cycle/);
  });
});

describe('magic variables', () => {
  it('sets inventory_hostname, the short name, sorted group_names and groups', () => {
    const v = hostVars(fixture, 'mx01.lab.test');
    expect(v.inventory_hostname).toBe('mx01.lab.test');
    expect(v.inventory_hostname_short).toBe('mx01');
    expect(v.group_names).toEqual(['canary', 'debian', 'mail']);
    expect(v.groups).toEqual({
      all: hostsOfGroup(fixture, 'all'),
      ungrouped: ['bastion.lab.test'],
      mail: hostsOfGroup(fixture, 'mail'),
      debian: ['mx01.lab.test', 'mx02.lab.test', 'mx03.lab.test', 'smtp-a.lab.test', 'smtp-b.lab.test'],
      rhel: ['legacy1.lab.test', 'legacy3.lab.test', 'legacy5.lab.test'],
      canary: ['mx01.lab.test'],
    });
    expect(hostsOfGroup(fixture, 'mail')).toHaveLength(8);
  });

  it('every host of the lab inventory sees one shared, read-only groups (not a copy per host: hosts × hosts at 500 hosts)', () => {
    const a = hostVars(fixture, 'mx01.lab.test').groups as Record<string, string[]>;
    const b = hostVars(fixture, 'legacy1.lab.test').groups as Record<string, string[]>;
    expect(b).toBe(a);
    expect(Object.isFrozen(a) && Object.isFrozen(a.all)).toBe(true);
    expect(() => a.mail!.push('intruder.lab.test')).toThrow(TypeError);
    expect(hostVars(fixture, 'mx02.lab.test').groups).toEqual(b);
    // another inventory has its own
    expect(hostVars(ini('[g]\nh1\n'), 'h1').groups).toEqual({ all: ['h1'], ungrouped: [], g: ['h1'] });
  });

  it('puts an ungrouped host in group_names "ungrouped"', () => {
    expect(hostVars(fixture, 'bastion.lab.test').group_names).toEqual(['ungrouped']);
  });

  it('does not let a variable named like a magic one hide the real value', () => {
    expect(hostVars(ini('[g]\nh1 inventory_hostname=spoof\n'), 'h1').inventory_hostname).toBe('h1');
  });
});

describe('inventoryHost', () => {
  it('gives the merged variables without magic ones, keys sorted', () => {
    const vars = inventoryHost(fixture, 'smtp-a.lab.test');
    expect(Object.keys(vars)).toEqual([...Object.keys(vars)].sort());
    expect(vars).toEqual({
      admin_email: 'postmaster@lab.test',
      ansible_port: 2222,
      ansible_user: 'postmaster',
      firewall_rules_file: '/etc/iptables/rules.v4',
      firewall_service: 'netfilter-persistent',
      relay_domain: 'mail.lab.test',
      restart_services: true,
      smtps_port: 465,
      tls_cert_dir: '/etc/ssl/certs',
      tls_key_dir: '/etc/ssl/private',
      tls_loglevel: 2,
    });
  });

  it('names the inventory when the host is not in it', () => {
    expect(() => inventoryHost(fixture, 'mx9.lab.test')).toThrow(`host "mx9.lab.test" is not in the inventory (${fixture.source})`);
  });
});

describe('inventoryList', () => {
  const list = inventoryList(fixture);

  it('is shaped like ansible-inventory --list, keys sorted', () => {
    expect(Object.keys(list)).toEqual(['_meta', 'all', 'canary', 'debian', 'mail', 'rhel', 'ungrouped']);
    expect(list.all).toEqual({
      children: ['ungrouped', 'mail', 'canary'],
      vars: { admin_email: 'postmaster@lab.test', relay_domain: 'mail.lab.test', tls_cert_dir: '/etc/ssl/certs' },
    });
    expect(list.mail).toEqual({
      children: ['debian', 'rhel'],
      vars: { relay_domain: 'lab.test', restart_services: true, smtps_port: 465, tls_loglevel: 1 },
    });
    expect(list.ungrouped).toEqual({ hosts: ['bastion.lab.test'] });
    expect((list._meta as { hostvars: Record<string, unknown> }).hostvars['mx02.lab.test']).toEqual(inventoryHost(fixture, 'mx02.lab.test'));
  });

  it('leaves out empty groups and hosts without variables, but keeps them as children', () => {
    const small = inventoryList(ini('h0\n[spare]\n[mail]\nmx1 x=1\n'));
    expect(small).toEqual({
      _meta: { hostvars: { mx1: { x: 1 } } },
      all: { children: ['ungrouped', 'spare', 'mail'] },
      mail: { hosts: ['mx1'] },
      ungrouped: { hosts: ['h0'] },
    });
  });
});

describe('inventoryGraph', () => {
  it('draws the tree as ansible-inventory --graph does', () => {
    expect(inventoryGraph(fixture)).toBe(
      [
        '@all:',
        '  |--@ungrouped:',
        '  |  |--bastion.lab.test',
        '  |--@mail:',
        '  |  |--@debian:',
        '  |  |  |--mx01.lab.test',
        '  |  |  |--mx02.lab.test',
        '  |  |  |--mx03.lab.test',
        '  |  |  |--smtp-a.lab.test',
        '  |  |  |--smtp-b.lab.test',
        '  |  |--@rhel:',
        '  |  |  |--legacy1.lab.test',
        '  |  |  |--legacy3.lab.test',
        '  |  |  |--legacy5.lab.test',
        '  |--@canary:',
        '  |  |--mx01.lab.test',
      ].join('\n'),
    );
  });

  it('shows an empty ungrouped, and can start at another group', () => {
    const inv = ini('[mail:children]\nrhel\n[rhel]\nold1\n');
    expect(inventoryGraph(inv)).toBe('@all:\n  |--@ungrouped:\n  |--@mail:\n  |  |--@rhel:\n  |  |  |--old1');
    expect(inventoryGraph(inv, 'rhel')).toBe('@rhel:\n  |--old1');
    expect(() => inventoryGraph(inv, 'nosuch')).toThrow('"nosuch" is not a group');
  });
});

import { describe, expect, it } from 'vitest';
import { parseInventoryText } from '../../../src/inventory/load.js';
import { selectHosts } from '../../../src/inventory/patterns.js';
import { parseYamlVars } from '../../../src/inventory/yaml.js';
import { PyFloat } from '../../../src/playbook/template/python.js';
import { inputErrorOf } from '../../support/errors.js';

const yaml = (text: string) => parseInventoryText(text, 'hosts.yml', 'yaml');

describe('YAML inventory structure', () => {
  it('reads all/children/hosts/vars, with ranges and host:port keys', () => {
    const inv = yaml(`
all:
  hosts:
    bastion.lab.test:
  vars:
    admin: root
  children:
    mail:
      hosts:
        mx[01:02].lab.test:2222:
          ansible_user: admin
      vars:
        smtps_port: 465
`);
    expect([...inv.hosts.keys()]).toEqual(['bastion.lab.test', 'mx01.lab.test', 'mx02.lab.test']);
    expect(inv.hosts.get('mx02.lab.test')!.vars).toEqual({ ansible_port: 2222, ansible_user: 'admin' });
    expect(inv.hosts.get('bastion.lab.test')!.groups).toEqual(['ungrouped']);
    expect(inv.groups.get('all')!.vars).toEqual({ admin: 'root' });
    expect(inv.groups.get('all')!.children).toEqual(['ungrouped', 'mail']);
    expect(inv.groups.get('mail')!.vars).toEqual({ smtps_port: 465 });
  });

  it('makes top-level groups other than all children of all', () => {
    const inv = yaml('web:\n  hosts:\n    w1:\ndb:\n  hosts: d1\n');
    expect(inv.groups.get('all')!.children).toEqual(['ungrouped', 'web', 'db']);
    expect(inv.groups.get('db')!.hosts).toEqual(['d1']);
  });

  it('accepts a single name for hosts or children, and groups listed with no body', () => {
    const inv = yaml('all:\n  children:\n    mail:\n      children: debian\n    debian:\n      hosts: mx1\n    empty:\n');
    expect(inv.groups.get('mail')!.children).toEqual(['debian']);
    expect(inv.groups.get('debian')!.hosts).toEqual(['mx1']);
    expect(inv.groups.get('empty')).toEqual({ name: 'empty', vars: {}, children: [], hosts: [] });
  });

  it('reads a host listed in two groups once, merging its variables', () => {
    const inv = yaml('a:\n  hosts:\n    h1: {x: 1, y: 1}\nb:\n  hosts:\n    h1: {x: 2}\n');
    expect([...inv.hosts.keys()]).toEqual(['h1']);
    expect(inv.hosts.get('h1')!.groups).toEqual(['a', 'b']);
    expect(inv.hosts.get('h1')!.vars).toEqual({ x: 2, y: 1 });
  });

  it('types values as YAML 1.1 the way PyYAML does for Ansible', () => {
    const inv = yaml(`
all:
  vars:
    become: yes
    legacy: Off
    answer: y
    mode: 0644
    zip: 089
    size: 1e3
    ratio: 1.0e+3
    half: .5
    dash: -.5
    ttl: 1:20
    when: 2024-01-01
    quoted: "yes"
    port: 465
    list: [25, 465]
`);
    expect(inv.groups.get('all')!.vars).toEqual({
      become: true,
      legacy: false,
      answer: 'y',
      mode: 420,
      zip: '089',
      size: '1e3',
      // PyYAML reads 1.0e+3 as the float 1000.0: boxed, so templates print it as Ansible does.
      ratio: new PyFloat(1000),
      half: 0.5,
      dash: '-.5',
      ttl: 80,
      when: '2024-01-01',
      quoted: 'yes',
      port: 465,
      list: [25, 465],
    });
  });

  it('resolves anchors, aliases and << merge keys', () => {
    const inv = yaml(`
all:
  vars:
    tls: &tls {level: 1, cache: ''}
  children:
    mail:
      vars:
        <<: *tls
        level: 2
      hosts:
        mx1: *tls
`);
    expect(inv.groups.get('mail')!.vars).toEqual({ level: 2, cache: '' });
    expect(inv.hosts.get('mx1')!.vars).toEqual({ level: 1, cache: '' });
  });
});

describe('YAML inventory errors say where and what', () => {
  const cases: [string, string, string][] = [
    ['all:\n  vars:\n    a: 1\n    a: 2\n', '4:5', 'duplicate key "a"'],
    ['all:\n  host:\n    h1:\n', '2:3', 'unknown key "host" in group "all": expected hosts, vars or children'],
    ['all:\n  hosts:\n    - h1\n', '3:5', '"hosts" of group "all" must be a mapping, not a list'],
    ['all:\n  hosts:\n    h1: 22\n', '3:9', 'host "h1" must map to its variables (or nothing), not number 22'],
    ['all:\n  vars:\n    foo-bar: 1\n', '3:5', '"foo-bar" is not a valid variable name'],
    ['all:\n  children:\n    1:\n', '3:5', 'a group name must be a string, got number 1: quote it'],
    ['all:\n  children:\n    "mail servers":\n', '3:5', 'invalid group name "mail servers"'],
    ['all:\n  hosts:\n    web[3:1]:\n', '3:5', 'host range [3:1] counts down'],
    ['all:\n  vars:\n    pw: !vault notvault\n', '3:9', 'a !vault value must start with $ANSIBLE_VAULT;'],
    ['$ANSIBLE_VAULT;1.1;AES256\n3031\n', '1:1', 'encrypted with ansible-vault'],
    ['# nothing here\n', '1:1', 'empty YAML inventory'],
    ['- h1\n- h2\n', '1:1', 'a YAML inventory is a mapping of groups such as "all:", not a list'],
    ['plugin: aws_ec2\n', '1:1', 'inventory plugin configuration'],
    ['all:\n  vars: [1\n', '3:1', 'Flow sequence in block collection must be sufficiently indented and end with a ]'],
    ['a:\n  children:\n    b:\n      children:\n        a:\n', '3:5', 'child groups form a cycle: a → b → a'],
  ];
  it.each(cases)('%j', (text, where, message) => {
    const err = inputErrorOf(() => yaml(text));
    expect(err.message).toBe(`hosts.yml:${where}: ${err.reason}`);
    expect(err.reason).toContain(message);
  });
});

describe('vars files', () => {
  it('reads a mapping, and an empty file as no variables', () => {
    expect(parseYamlVars('a: 1\nb: [x]\n', 'group_vars/all.yml')).toEqual({ a: 1, b: ['x'] });
    expect(parseYamlVars('---\n# only a comment\n', 'group_vars/all.yml')).toEqual({});
    expect(parseYamlVars('{"a": "b"}', 'group_vars/all.json')).toEqual({ a: 'b' });
  });

  it('rejects anything but a mapping, at its position', () => {
    const err = inputErrorOf(() => parseYamlVars('\n- a\n', 'group_vars/mail.yml'));
    expect(err.message).toBe('group_vars/mail.yml:2:1: a vars file must be a mapping of variable names to values, not a list');
  });
});

describe('YAML inventory quirks as Ansible has them', () => {
  it('a top-level group written as a string is skipped with a warning (ansible-inventory 2.14: "Skipping ... not a valid group definition")', () => {
    const inv = parseInventoryText('webservers: web1.example.com\ndb:\n  hosts:\n    db1:\n    db2:\n    db0:\n', 'inv.yml', 'yaml');
    expect(inv.groups.has('webservers')).toBe(false);
    expect(inv.hosts.has('web1.example.com')).toBe(false);
    expect(inv.warnings).toEqual(['inv.yml:1:1: skipping "webservers": not a valid group definition (a group is a mapping with hosts, vars or children, not string "web1.example.com")']);
    // Subscripts count in the order hosts are written, as `ansible -i inv.yml 'db[1:]' --list-hosts` lists them.
    expect(selectHosts(inv, 'db[0]')).toEqual(['db1']);
    expect(selectHosts(inv, 'db[1:]')).toEqual(['db2', 'db0']);
    expect(selectHosts(inv, 'all[-1]')).toEqual(['db0']);
    // A list is no group definition either.
    expect(parseInventoryText('all:\n  - h1\n', 'l.yml', 'yaml').warnings?.[0]).toMatch(/^l\.yml:1:1: skipping "all": not a valid group definition .*not a list/);
  });
});

import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { detectFormat, loadInventory, readVarsFor } from '../../../src/inventory/load.js';
import { hostVars } from '../../../src/inventory/vars.js';
import { inputErrorOf } from '../../support/errors.js';
import { subDirs, tempDir, writeFiles } from '../../support/tmp.js';

const fixtures = path.join(import.meta.dirname, '../../fixtures/inventory');
const iniFile = path.join(fixtures, 'hosts.ini');
const yamlFile = path.join(fixtures, 'hosts.yml');

const ALL_HOSTS = [
  'bastion.lab.test',
  'mx01.lab.test',
  'mx02.lab.test',
  'mx03.lab.test',
  'smtp-a.lab.test',
  'smtp-b.lab.test',
  'legacy1.lab.test',
  'legacy3.lab.test',
  'legacy5.lab.test',
];

const newDir = subDirs(tempDir('provision-inventory-'));

/** A new temporary directory holding the given files (paths relative to it). */
function tree(files: Record<string, string>): string {
  const dir = newDir('tree');
  writeFiles(dir, files);
  return dir;
}

/** Template-visible vars minus the two that name the file the host came from. */
function varsWithoutSource(inv: ReturnType<typeof loadInventory>, host: string) {
  const { inventory_file: _file, inventory_dir: _dir, ...rest } = hostVars(inv, host);
  return rest;
}

describe('the operator fixture', () => {
  const fromIni = loadInventory(iniFile);
  const fromYaml = loadInventory(yamlFile);

  it('gives the same hosts, in the same order, from INI and YAML', () => {
    expect([...fromIni.hosts.keys()]).toEqual(ALL_HOSTS);
    expect([...fromYaml.hosts.keys()]).toEqual(ALL_HOSTS);
    expect([...fromYaml.hosts.values()]).toEqual([...fromIni.hosts.values()]);
  });

  it('gives the same groups, children and members from INI and YAML', () => {
    expect([...fromIni.groups.keys()]).toEqual(['all', 'ungrouped', 'mail', 'debian', 'rhel', 'canary']);
    expect([...fromYaml.groups.values()]).toEqual([...fromIni.groups.values()]);
    expect(fromIni.groups.get('all')!.children).toEqual(['ungrouped', 'mail', 'canary']);
    expect(fromIni.groups.get('mail')!.children).toEqual(['debian', 'rhel']);
    expect(fromIni.groups.get('rhel')!.hosts).toEqual(['legacy1.lab.test', 'legacy3.lab.test', 'legacy5.lab.test']);
  });

  it('gives every host the same merged variables from INI and YAML', () => {
    for (const host of ALL_HOSTS) expect(varsWithoutSource(fromYaml, host)).toEqual(varsWithoutSource(fromIni, host));
  });

  it('records the file each host came from', () => {
    expect(hostVars(fromIni, 'mx02.lab.test')).toMatchObject({ inventory_file: iniFile, inventory_dir: fixtures });
    expect(hostVars(fromYaml, 'mx02.lab.test')).toMatchObject({ inventory_file: yamlFile, inventory_dir: fixtures });
  });

  it('reads group_vars/ beside the inventory, a directory of files merged in name order', () => {
    const debian = fromIni.groups.get('debian')!.vars;
    expect(debian).toEqual({
      firewall_service: 'netfilter-persistent',
      tls_loglevel: 2,
      tls_key_dir: '/etc/ssl/private',
      firewall_rules_file: '/etc/iptables/rules.v4',
    });
  });

  it('reads host_vars/ files without extension, .yml and .json', () => {
    expect(hostVars(fromIni, 'legacy1.lab.test')).toMatchObject({ ansible_port: 2200, ansible_become_user: 'admin' });
    expect(hostVars(fromIni, 'mx02.lab.test')).toMatchObject({ ansible_host: '198.19.1.2' });
    expect(hostVars(fromIni, 'mx03.lab.test')).toMatchObject({ ansible_host: '198.19.1.3', tls_loglevel: 4 });
  });

  it('ranks group_vars/all above [mail:vars], as Ansible does', () => {
    expect(fromIni.groups.get('mail')!.vars.relay_domain).toBe('lab.test');
    expect(hostVars(fromIni, 'mx02.lab.test').relay_domain).toBe('mail.lab.test');
  });
});

describe('loadInventory sources', () => {
  it('reads a directory: its files in name order, skipping docs, backups and vars dirs', () => {
    const dir = tree({
      '01-hosts.ini': '[mail]\nmx1\n',
      '02-more.yml': 'all:\n  children:\n    mail:\n      hosts:\n        mx2:\n',
      // [mail:vars] may refer to a group another file of the same inventory defines
      '03-vars': '[mail:vars]\nsmtps_port=465\n',
      'README.md': 'not an inventory\n',
      'hosts.bak': 'not an inventory either\n',
      '.hidden': 'nor this\n',
      'group_vars/mail.yml': 'tls: true\n',
    });
    const inv = loadInventory(dir);
    expect([...inv.hosts.keys()]).toEqual(['mx1', 'mx2']);
    expect(inv.groups.get('mail')!.vars).toEqual({ smtps_port: 465, tls: true });
    expect(hostVars(inv, 'mx2').inventory_file).toBe(path.join(dir, '02-more.yml'));
  });

  it('merges several sources in order, as several -i do', () => {
    const dir = tree({ 'a.ini': '[mail]\nmx1 x=1\n', 'b.yml': 'mail:\n  hosts:\n    mx1: {x: 2}\n    mx2:\n' });
    const inv = loadInventory([path.join(dir, 'a.ini'), path.join(dir, 'b.yml')]);
    expect([...inv.hosts.keys()]).toEqual(['mx1', 'mx2']);
    expect(inv.hosts.get('mx1')!.vars).toEqual({ x: 2 });
  });

  it('reads a comma-separated host list into ungrouped, with ports', () => {
    const inv = loadInventory('mx1.lab.test, mx2.lab.test:2222,');
    expect([...inv.hosts.keys()]).toEqual(['mx1.lab.test', 'mx2.lab.test']);
    expect(inv.groups.get('ungrouped')!.hosts).toEqual(['mx1.lab.test', 'mx2.lab.test']);
    expect(inv.hosts.get('mx2.lab.test')!.vars).toEqual({ ansible_port: 2222 });
    expect(hostVars(inv, 'mx1.lab.test').inventory_file).toBeUndefined();
    expect([...loadInventory('localhost,').hosts.keys()]).toEqual(['localhost']);
  });

  it('detects YAML in a file without extension by its first line', () => {
    const dir = tree({ hosts: '# fleet\nall:\n  hosts:\n    mx1:\n' });
    expect([...loadInventory(path.join(dir, 'hosts')).hosts.keys()]).toEqual(['mx1']);
  });

  const errors: [string, () => unknown, string][] = [
    ['a missing file', () => loadInventory('/nonexistent/hosts'), 'cannot read inventory "/nonexistent/hosts": no such file or directory'],
    ['a range in a host list', () => loadInventory('web[1:3],db1,'), 'host list:1:1: host list entry "web[1:3]" has a range; ranges need an inventory file'],
    ['a bad port in a host list', () => loadInventory('a,b:x,'), 'host list:1:3: host "b:x" has port "x", which is not a number'],
    ['an empty source list', () => loadInventory([]), 'no inventory given'],
  ];
  it.each(errors)('rejects %s', (_what, run, message) => {
    expect(inputErrorOf(run).message).toBe(message);
  });

  it('stops at a symlink loop in an inventory directory instead of recursing forever', () => {
    const dir = tree({ 'hosts.ini': '[mail]\nmx1\n' });
    fs.symlinkSync(dir, path.join(dir, 'loop'));
    expect(inputErrorOf(() => loadInventory(dir)).message).toMatch(/is nested too deeply \(a symlink loop\?\)$/);
  });

  it('reports a broken vars file at its own file:line:col', () => {
    const dir = tree({ hosts: '[mail]\nmx1\n', 'group_vars/mail.yml': 'a: 1\na: 2\n' });
    const err = inputErrorOf(() => loadInventory(path.join(dir, 'hosts')));
    expect(err.message).toBe(`${path.join(dir, 'group_vars/mail.yml')}:2:1: duplicate key "a"`);
  });

  it('keeps relative paths relative in messages', () => {
    const dir = tree({ 'hosts.ini': '[mail]\nmx1 bad\n' });
    const rel = path.relative(process.cwd(), path.join(dir, 'hosts.ini'));
    expect(inputErrorOf(() => loadInventory(rel)).message).toBe(`${rel}:2:5: expected key=value after the host name, got "bad"`);
  });
});

describe('readVarsFor', () => {
  it('reads only the first of NAME, NAME.yml, NAME.yaml, NAME.json that exists, as Ansible does', () => {
    const dir = tree({ h1: 'from: plain\n', 'h1.yml': 'from: yml\n', 'h2.yaml': 'from: yaml\n', 'h2.json': '{"from": "json"}' });
    expect(readVarsFor(dir, 'h1')).toEqual({ from: 'plain' });
    expect(readVarsFor(dir, 'h2')).toEqual({ from: 'yaml' });
    expect(readVarsFor(dir, 'h3')).toBeUndefined();
  });

  it('merges a directory recursively in name order, skipping hidden, backup and other files', () => {
    const dir = tree({
      'mail/b.yml': 'x: b\ny: b\n',
      'mail/a.yml': 'x: a\nz: a\n',
      'mail/sub/c.json': '{"y": "c"}',
      'mail/.secret.yml': 'x: hidden\n',
      'mail/d.yml~': 'x: backup\n',
      'mail/notes.txt': 'x: text\n',
    });
    expect(readVarsFor(dir, 'mail')).toEqual({ x: 'b', y: 'c', z: 'a' });
  });

  it('never reads outside the directory for odd host names', () => {
    const dir = tree({ 'inner/x.yml': 'a: 1\n' });
    expect(readVarsFor(path.join(dir, 'inner'), '../inner/x')).toBeUndefined();
  });
});

describe('detectFormat', () => {
  const cases: [string, string, 'ini' | 'yaml'][] = [
    ['hosts.yml', '[not really]\n', 'yaml'],
    ['hosts.yaml', '', 'yaml'],
    ['hosts.json', '{}', 'yaml'],
    ['hosts.ini', 'all:\n', 'ini'],
    ['hosts', '# comment\n\nall:\n  hosts:\n', 'yaml'],
    ['hosts', '---\nall:\n', 'yaml'],
    ['hosts', '{"all": {}}', 'yaml'],
    ['hosts', 'web: \n', 'yaml'],
    ['hosts', '[mail]\nmx1\n', 'ini'],
    ['hosts', 'mx1:2222 ansible_user=root\n', 'ini'],
    ['hosts', 'mx1 ansible_host=198.19.0.5\n', 'ini'],
    ['hosts', '; only comments\n', 'ini'],
  ];
  it.each(cases)('%s starting %j is %s', (file, text, format) => {
    expect(detectFormat(file, text)).toBe(format);
  });
});

import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { InputError } from '../../../src/errors.js';
import { loadInventory, parseInventoryText } from '../../../src/inventory/load.js';
import { selectHosts, splitHostPattern, unmatchedPatterns } from '../../../src/inventory/patterns.js';
import { tempDir } from '../../support/tmp.js';

const inv = loadInventory(path.join(import.meta.dirname, '../../fixtures/inventory/hosts.ini'));

const DEBIAN = ['mx01.lab.test', 'mx02.lab.test', 'mx03.lab.test', 'smtp-a.lab.test', 'smtp-b.lab.test'];
const RHEL = ['legacy1.lab.test', 'legacy3.lab.test', 'legacy5.lab.test'];
const ALL = ['bastion.lab.test', ...DEBIAN, ...RHEL];

const tmp = tempDir('provision-patterns-');
fs.writeFileSync(path.join(tmp, 'site.retry'), 'mx02.lab.test\n# a comment\n\n  legacy5.lab.test  \n');

describe('splitHostPattern', () => {
  const cases: [string, string[]][] = [
    ['mail', ['mail']],
    ['mail:&canary:!mx02.lab.test', ['mail', '&canary', '!mx02.lab.test']],
    ['mail, canary ,,', ['mail', 'canary']],
    ['a:b,c', ['a:b', 'c']],
    ['web[0:2]:db', ['web[0:2]', 'db']],
    ['2001:db8::1', ['2001:db8::1']],
  ];
  it.each(cases)('%j → %j', (pattern, terms) => {
    expect(splitHostPattern(pattern)).toEqual(terms);
  });
});

describe('selectHosts', () => {
  const cases: [string, string[]][] = [
    ['all', ALL],
    ['*', ALL],
    ['mail', [...DEBIAN, ...RHEL]],
    ['debian', DEBIAN],
    ['ungrouped', ['bastion.lab.test']],
    ['mx02.lab.test', ['mx02.lab.test']],
    ['mx0*', ['mx01.lab.test', 'mx02.lab.test', 'mx03.lab.test']],
    ['*.lab.test', ALL],
    ['legacy?.lab.test', RHEL],
    ['legacy[!3].lab.test', ['legacy1.lab.test', 'legacy5.lab.test']],
    ['~mx0[12]', ['mx01.lab.test', 'mx02.lab.test']],
    ['~smtp-(a|b)\\.', ['smtp-a.lab.test', 'smtp-b.lab.test']],
    // results come in inventory order, whatever the order of the terms
    ['rhel:debian', [...DEBIAN, ...RHEL]],
    ['canary,rhel', ['mx01.lab.test', ...RHEL]],
    ['mail:&canary', ['mx01.lab.test']],
    ['mail:!debian', RHEL],
    ['!mail', ['bastion.lab.test']],
    // every union first, then intersections and exclusions, whatever the written order
    ['mail:!debian:canary', RHEL],
    ['&canary:mail', ['mx01.lab.test']],
    ['!mx01.lab.test:debian:&canary', []],
    ['debian:!mx0*:&mail', ['smtp-a.lab.test', 'smtp-b.lab.test']],
    ['debian[0]', ['mx01.lab.test']],
    ['debian[-1]', ['smtp-b.lab.test']],
    ['debian[1:2]', ['mx02.lab.test', 'mx03.lab.test']],
    ['debian[3:]', ['smtp-a.lab.test', 'smtp-b.lab.test']],
    ['mail[9:]', []],
    // a glob or regex never selects the implicit groups: "a*" is not "all"
    ['a*', []],
    ['ung*', []],
    ['nosuch', []],
    ['@site.retry', ['mx02.lab.test', 'legacy5.lab.test']],
    ['canary:@site.retry', ['mx01.lab.test', 'mx02.lab.test', 'legacy5.lab.test']],
  ];
  it.each(cases)('%s', (pattern, hosts) => {
    expect(selectHosts(inv, pattern, { baseDir: tmp })).toEqual(hosts);
  });

  it('matches an IPv6 host name whole, and combines it with commas', () => {
    const v6 = parseInventoryText('[mail]\n2001:db8::25\n198.19.0.25\n', 'hosts.ini');
    expect(selectHosts(v6, '2001:db8::25')).toEqual(['2001:db8::25']);
    expect(selectHosts(v6, 'mail,!2001:db8::25')).toEqual(['198.19.0.25']);
  });

  it('reads @file relative to the working directory without baseDir', () => {
    const cwd = process.cwd();
    process.chdir(tmp);
    try {
      expect(selectHosts(inv, '@site.retry')).toEqual(['mx02.lab.test', 'legacy5.lab.test']);
    } finally {
      process.chdir(cwd);
    }
  });

  const errors: [string, string][] = [
    ['', 'empty host pattern'],
    ['mail:&', '"&" in host pattern "mail:&" names nothing'],
    ['~(mx', 'invalid regular expression in host pattern "~(mx"'],
    ['@missing.retry', 'cannot read host list file "missing.retry": no such file'],
    ['mail:!@site.retry', '"!@site.retry": a @file of hosts can only be added to a pattern, not intersected or excluded'],
    ['debian[7]', '"debian[7]": no host at index 7, "debian" matches 5 host(s)'],
  ];
  it.each(errors)('rejects %j', (pattern, message) => {
    let err: unknown;
    try {
      selectHosts(inv, pattern, { baseDir: tmp });
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(InputError);
    expect((err as InputError).message).toContain(message);
  });
});

describe('unmatchedPatterns', () => {
  const cases: [string, string[]][] = [
    ['mail:&canary', []],
    ['nosuch', ['nosuch']],
    ['mail:nosuch:!alsonot:&neither', ['nosuch', 'neither', 'alsonot']],
    ['mx9*', ['mx9*']],
    ['!mail', []],
    ['@site.retry', []],
  ];
  it.each(cases)('%s', (pattern, unmatched) => {
    expect(unmatchedPatterns(inv, pattern, { baseDir: tmp })).toEqual(unmatched);
  });

  it('does not count a group without hosts as unmatched', () => {
    const withEmpty = parseInventoryText('[mail]\nmx1\n[spare]\n', 'hosts.ini');
    expect(selectHosts(withEmpty, 'spare')).toEqual([]);
    expect(unmatchedPatterns(withEmpty, 'spare')).toEqual([]);
  });
});

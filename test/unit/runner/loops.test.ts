import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { fileglob, loopItems, sequence } from '../../../src/runner/loops.js';
import { tempDir, writeFiles } from '../../support/tmp.js';

describe("with_* loops give Ansible's items", () => {
  it('with_items flattens one level only', () => {
    expect(loopItems('items', [['a', 'b'], 'c', [['d']]], [])).toEqual(['a', 'b', 'c', ['d']]);
    expect(loopItems('items', 'single', [])).toEqual(['single']);
  });
  it('with_list keeps lists as items; loop refuses a non-list', () => {
    expect(loopItems('list', [['a', 'b'], 'c'], [])).toEqual([['a', 'b'], 'c']);
    expect(() => loopItems('loop', 'abc', [])).toThrow(/loop must be a list, got string/);
  });
  it('with_dict gives key/value pairs in order', () => {
    expect(loopItems('dict', { smtp: 25, smtps: 465 }, [])).toEqual([
      { key: 'smtp', value: 25 },
      { key: 'smtps', value: 465 },
    ]);
    expect(() => loopItems('dict', ['a'], [])).toThrow(/with_dict expects a mapping/);
  });
  it('with_together zips, padding the shorter lists with null', () => {
    expect(loopItems('together', [[1, 2, 3], ['a', 'b']], [])).toEqual([
      [1, 'a'],
      [2, 'b'],
      [3, null],
    ]);
  });
  it('with_nested gives every combination', () => {
    expect(loopItems('nested', [['a', 'b'], [1, 2]], [])).toEqual([
      ['a', 1],
      ['a', 2],
      ['b', 1],
      ['b', 2],
    ]);
  });
  it('with_subelements pairs each element with each entry of its list; skip_missing', () => {
    const users = [
      { name: 'alice', keys: ['k1', 'k2'] },
      { name: 'bob', keys: ['k3'] },
      { name: 'carol' },
    ];
    expect(loopItems('subelements', [users.slice(0, 2), 'keys'], [])).toEqual([
      [users[0], 'k1'],
      [users[0], 'k2'],
      [users[1], 'k3'],
    ]);
    expect(() => loopItems('subelements', [users, 'keys'], [])).toThrow(/has no "keys"/);
    expect(loopItems('subelements', [users, 'keys', { skip_missing: true }], [])).toHaveLength(3);
  });
  it('with_sequence: start/end/stride/format, count, the short form, and strings as Ansible returns them', () => {
    expect(sequence('start=1 end=3')).toEqual(['1', '2', '3']);
    expect(sequence('start=0 end=10 stride=5 format=host%02d')).toEqual(['host00', 'host05', 'host10']);
    expect(sequence('count=3 start=4')).toEqual(['4', '5', '6']);
    expect(sequence('4-8/2:web%x')).toEqual(['web4', 'web6', 'web8']);
    expect(sequence('start=5 end=1 stride=-2')).toEqual(['5', '3', '1']);
    expect(() => sequence('start=5 end=1')).toThrow(/backwards/);
    expect(() => sequence('count=3 end=4')).toThrow(/count or end/);
  });
  it('with_fileglob: files only, in the first directory that has matches, sorted', () => {
    const dir = tempDir();
    writeFiles(dir, { 'files/b.conf': 'b', 'files/a.conf': 'a', 'files/c.txt': 'c', 'files/d.conf/x': 'dir' });
    expect(fileglob('*.conf', [path.join(dir, 'files'), dir])).toEqual([path.join(dir, 'files/a.conf'), path.join(dir, 'files/b.conf')]);
    expect(fileglob('*.none', [dir])).toEqual([]);
  });
});

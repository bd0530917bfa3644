import { chmodSync, existsSync, mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { PostfixNamesStore } from '../../../src/modules/postfix-names-store.js';
import { tempDir } from '../../support/tmp.js';

const root = tempDir('provision-names-store-');
let n = 0;
/** A store in a directory of its own that does not exist yet. */
const freshStore = () => new PostfixNamesStore(path.join(root, `store${n++}`, 'postfix-names'));
const NAMES = ['myhostname', 'smtpd_tls_loglevel', 'alias_maps'];

describe('the store of Postfix parameter names', () => {
  it('gives back what it saved, sorted, from a file of its own per version', () => {
    const store = freshStore();
    expect(store.load('3.7.11')).toBeNull();
    expect(store.save('3.7.11', NAMES)).toBe(true);
    expect(store.save('2.6.6', ['myhostname'])).toBe(true);
    expect(store.load('3.7.11')).toEqual(new Set(NAMES));
    expect(store.load('2.6.6')).toEqual(new Set(['myhostname']));
    expect(readdirSync(store.dir).sort()).toEqual(['2.6.6.json', '3.7.11.json']);
    expect(JSON.parse(readFileSync(path.join(store.dir, '3.7.11.json'), 'utf8'))).toEqual({
      format: 1,
      postfix: '3.7.11',
      names: [...NAMES].sort(),
    });
    // another process (a later run) finds the same
    const later = new PostfixNamesStore(store.dir);
    expect(later.versions().sort()).toEqual(['2.6.6', '3.7.11']);
    expect(later.load('3.7.11')).toEqual(new Set(NAMES));
  });

  it('writes one Set, shared by many hosts, as the same text for each and the right version in each file', () => {
    const shared = new Set(NAMES);
    const stores = [freshStore(), freshStore(), freshStore()];
    for (const s of stores) expect(s.save('3.7.11', shared)).toBe(true);
    expect(stores[0]!.save('3.8.4', shared)).toBe(true);
    const texts = stores.map((s) => readFileSync(path.join(s.dir, '3.7.11.json'), 'utf8'));
    expect(new Set(texts).size).toBe(1);
    expect(JSON.parse(texts[0]!)).toEqual({ format: 1, postfix: '3.7.11', names: [...NAMES].sort() });
    expect(new PostfixNamesStore(stores[0]!.dir).load('3.8.4')).toEqual(shared);
    expect(JSON.parse(readFileSync(path.join(stores[0]!.dir, '3.8.4.json'), 'utf8')).postfix).toBe('3.8.4');
    // a directory whose parent is missing too is still made
    const deep = new PostfixNamesStore(path.join(root, `store${n++}`, 'a', 'b', 'postfix-names'));
    expect(deep.save('3.7.11', shared)).toBe(true);
    expect(deep.load('3.7.11')).toEqual(shared);
  });

  it('replaces a version\'s file when saved again', () => {
    const store = freshStore();
    store.save('3.7.11', ['a_name']);
    store.save('3.7.11', ['b_name']);
    expect(new PostfixNamesStore(store.dir).load('3.7.11')).toEqual(new Set(['b_name']));
  });

  it('creates its directory private to the user and files readable by all, writable by the owner only', () => {
    const store = freshStore();
    store.save('3.7.11', NAMES);
    const umask = process.umask();
    expect(statSync(store.dir).mode & 0o777).toBe(0o700 & ~umask);
    expect(statSync(path.dirname(store.dir)).mode & 0o777).toBe(0o700 & ~umask);
    expect(statSync(path.join(store.dir, '3.7.11.json')).mode & 0o777).toBe(0o644 & ~umask);
  });

  it('lists the versions that have a file, and counts the ones it saves', () => {
    const store = freshStore();
    expect(store.versions()).toEqual([]);
    mkdirSync(store.dir, { recursive: true });
    writeFileSync(path.join(store.dir, '3.5.1.json'), 'whatever');
    writeFileSync(path.join(store.dir, 'notes.txt'), 'not a version file');
    writeFileSync(path.join(store.dir, '.3.4.json.123.abcd'), 'a temporary file');
    writeFileSync(path.join(store.dir, 'bad name.json'), '{}');
    const other = new PostfixNamesStore(store.dir);
    expect(other.versions()).toEqual(['3.5.1']);
    other.save('3.10-20240101', NAMES);
    expect(other.versions().sort()).toEqual(['3.10-20240101', '3.5.1']);
  });

  describe('a file that cannot be used counts as absent', () => {
    const good = { format: 1, postfix: '3.7.11', names: NAMES };
    it.each<[string, string]>([
      ['not JSON', '{"format": 1, "postfix": "3.7.11", "names": ["myhost'],
      ['empty', ''],
      ['null', 'null'],
      ['a list', '["myhostname"]'],
      ['another format', JSON.stringify({ ...good, format: 2 })],
      ['no format', JSON.stringify({ postfix: good.postfix, names: good.names })],
      ['another version inside', JSON.stringify({ ...good, postfix: '3.7.12' })],
      ['names not a list', JSON.stringify({ ...good, names: 'myhostname' })],
      ['no names', JSON.stringify({ ...good, names: [] })],
      ['a name that is not a string', JSON.stringify({ ...good, names: ['myhostname', 7] })],
      ['a name Postfix cannot have', JSON.stringify({ ...good, names: ['myhostname', 'bad name'] })],
      ['an empty name', JSON.stringify({ ...good, names: ['myhostname', ''] })],
    ])('%s', (_, text) => {
      const store = freshStore();
      mkdirSync(store.dir, { recursive: true });
      writeFileSync(path.join(store.dir, '3.7.11.json'), text);
      expect(store.versions()).toEqual(['3.7.11']);
      expect(store.load('3.7.11')).toBeNull();
      // no longer listed as known, so a run asks the host for the names again
      expect(store.versions()).toEqual([]);
      // and saving them repairs the file
      expect(store.save('3.7.11', NAMES)).toBe(true);
      expect(new PostfixNamesStore(store.dir).load('3.7.11')).toEqual(new Set(NAMES));
    });

    it('a file that is a directory', () => {
      const store = freshStore();
      mkdirSync(path.join(store.dir, '3.7.11.json'), { recursive: true });
      expect(store.load('3.7.11')).toBeNull();
    });
  });

  it('refuses versions that could name a path outside its directory, or are no version at all', () => {
    const store = freshStore();
    const outside = path.join(path.dirname(store.dir), 'x.json');
    for (const v of ['../x', 'a/b', '', '.', '..', '.hidden', '3.7.11\n', '3.7 11', 'x'.repeat(65), '/etc/passwd', '3.7.11\\x']) {
      expect(PostfixNamesStore.storable(v), JSON.stringify(v)).toBe(false);
      expect(store.save(v, NAMES), JSON.stringify(v)).toBe(false);
      expect(store.load(v), JSON.stringify(v)).toBeNull();
    }
    expect(existsSync(store.dir)).toBe(false);
    expect(existsSync(outside)).toBe(false);
    for (const v of ['3.7.11', '2.6.6', '3.10-20240101', '3.9.0-RC1', '3.8.0+deb', 'x'.repeat(64)]) {
      expect(PostfixNamesStore.storable(v), v).toBe(true);
    }
  });

  it('keeps only names Postfix can have, and saves nothing when none is left', () => {
    const store = freshStore();
    expect(store.save('3.7.11', ['good_name', 'bad name', '', '$x', 'x=y'])).toBe(true);
    expect(store.load('3.7.11')).toEqual(new Set(['good_name']));
    expect(store.save('3.7.12', ['bad name'])).toBe(false);
    expect(store.save('3.7.13', [])).toBe(false);
    expect(readdirSync(store.dir)).toEqual(['3.7.11.json']);
  });

  it('returns false without throwing when it cannot write, and leaves no temporary file behind', () => {
    // the directory would have to be under a regular file
    const file = path.join(root, `plain-file-${n++}`);
    writeFileSync(file, 'x');
    const underFile = new PostfixNamesStore(path.join(file, 'postfix-names'));
    expect(underFile.save('3.7.11', NAMES)).toBe(false);
    expect(underFile.load('3.7.11')).toBeNull();
    expect(underFile.versions()).toEqual([]);

    // the target is a directory: the rename fails after the temporary file was written
    const store = freshStore();
    mkdirSync(path.join(store.dir, '3.7.11.json'), { recursive: true });
    expect(store.save('3.7.11', NAMES)).toBe(false);
    expect(readdirSync(store.dir)).toEqual(['3.7.11.json']);
    expect(store.save('3.7.12', NAMES)).toBe(true);
    expect(readdirSync(store.dir).sort()).toEqual(['3.7.11.json', '3.7.12.json']);
  });

  it.skipIf(!existsSync('/proc/self'))('returns false at once where mkdir never succeeds (under /proc)', () => {
    const store = new PostfixNamesStore('/proc/provision-test-cache/postfix-names');
    expect(store.save('3.7.11', NAMES)).toBe(false);
    expect(store.versions()).toEqual([]);
  });

  // root writes whatever the mode says
  it.skipIf(process.getuid?.() === 0)('returns false in a directory it may not write', () => {
    const store = freshStore();
    mkdirSync(store.dir, { recursive: true });
    chmodSync(store.dir, 0o500);
    try {
      expect(store.save('3.7.11', NAMES)).toBe(false);
      expect(readdirSync(store.dir)).toEqual([]);
    } finally {
      chmodSync(store.dir, 0o700);
    }
  });

  it('leaves no temporary file behind after saving', () => {
    const store = freshStore();
    for (let i = 0; i < 5; i++) store.save('3.7.11', [...NAMES, `extra_${i}`]);
    expect(readdirSync(store.dir)).toEqual(['3.7.11.json']);
  });
});

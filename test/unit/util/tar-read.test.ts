import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { readTar } from '../../../src/util/tar-read.js';

/**
 * Recorded from GNU tar 1.34 (`tar -b 1 -chf - -- …`, as the read script runs it): a file of mode 0640, an empty
 * set-uid file, 1300 random bytes, a path of 126 characters (a GNU long-name member), a hard link and a symbolic
 * link to the first file (both followed by -h, so both stored as hard links), and a file owned by uid 3000000 and
 * gid 3000001, which have no names and need GNU's base-256 numbers.
 */
const gnu = Buffer.from(readFileSync(path.join(__dirname, '../../fixtures/tar/gnu-tar-1.34-dereference.tar.b64'), 'utf8'), 'base64');
const longName = `etc/${'d'.repeat(60)}/${'n'.repeat(60)}.cf`;

describe('readTar on an archive recorded from GNU tar 1.34', () => {
  const entries = readTar(gnu);

  it('gives every member in order, with its name, type and content', () => {
    expect(entries.map((e) => [e.name, e.type])).toEqual([
      ['etc/postfix/main.cf', '0'],
      ['etc/postfix/empty.cf', '0'],
      ['etc/postfix/binary.db', '0'],
      [longName, '0'],
      ['etc/postfix/main-hard.cf', '1'],
      ['etc/postfix/main-link.cf', '1'],
      ['etc/postfix/bigid.cf', '0'],
    ]);
    expect(entries[0]!.content).toEqual(Buffer.from('a = 1\n'));
    expect(entries[1]!.content).toEqual(Buffer.alloc(0));
    expect(entries[3]!.content).toEqual(Buffer.from('long\n'));
    expect(entries[6]!.content).toEqual(Buffer.from('big ids\n'));
  });

  it('keeps binary content byte for byte across blocks', () => {
    expect(entries[2]!.content.length).toBe(1300);
    expect(createHash('sha256').update(entries[2]!.content).digest('hex')).toBe('5cb01a3bb112dfd4db3a51a9b076b1d005b76ccc86ad31d9dbd6cd44fc7d511a');
  });

  it('gives a hard link (and a followed symbolic link to the same file) the content of the member it links to', () => {
    expect(entries[4]).toMatchObject({ linkname: 'etc/postfix/main.cf', content: Buffer.from('a = 1\n'), mode: 0o640 });
    expect(entries[5]).toMatchObject({ linkname: 'etc/postfix/main.cf', content: Buffer.from('a = 1\n') });
  });

  it('reads modes with their set-id bits, owners by number and name, and base-256 numbers', () => {
    expect(entries[0]).toMatchObject({ mode: 0o640, uid: 0, gid: 0, uname: 'root', gname: 'root' });
    expect(entries[1]).toMatchObject({ mode: 0o4751 });
    expect(entries[6]).toMatchObject({ uid: 3000000, gid: 3000001, uname: '', gname: '' });
  });

  it('refuses a damaged header and a member cut short, and reads nothing from nothing', () => {
    const damaged = Buffer.from(gnu);
    damaged[10] = damaged[10]! ^ 1;
    expect(() => readTar(damaged)).toThrow(/checksum/);
    expect(() => readTar(gnu.subarray(0, 512 * 4 + 100))).toThrow(/past the end/);
    expect(readTar(Buffer.alloc(0))).toEqual([]);
  });

  it('counts every header byte but the checksum field itself (POSIX ustar: the field summed as eight spaces)', () => {
    for (const at of [0, 147, 156, 511]) {
      const damaged = Buffer.from(gnu);
      damaged[at] = damaged[at]! ^ 1;
      expect(() => readTar(damaged)).toThrow(/checksum/);
    }
    // The field's own spelling is free: a checksum written with six digits, a NUL and a space, or with eight
    // digits and no terminator, is the same number.
    const respelled = Buffer.from(gnu);
    const sum = parseInt(respelled.subarray(148, 156).toString('latin1').replace(/[\0 ]/g, ''), 8);
    respelled.write(sum.toString(8).padStart(7, '0') + ' ', 148, 'latin1');
    expect(readTar(respelled)).toEqual(entries);
  });

  it('refuses a hard link to a member that is not in the archive', () => {
    // the archive from the hard link on: its target came before
    const fromLink = gnu.subarray(entriesStart(gnu, 4));
    expect(() => readTar(fromLink)).toThrow(/not in the archive/);
  });
});

/** The byte offset of the n-th member's header (counting a long-name member and its own header as one). */
function entriesStart(archive: Buffer, n: number): number {
  let at = 0;
  for (let seen = 0; ; ) {
    const type = String.fromCharCode(archive[at + 156]!);
    const size = parseInt(archive.subarray(at + 124, at + 136).toString('ascii').replace(/\0.*$/, '').trim() || '0', 8);
    if (seen === n && type !== 'L') return at;
    at += 512 + Math.ceil(size / 512) * 512;
    if (type !== 'L') seen++;
  }
}

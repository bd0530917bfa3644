/**
 * A reader of tar archives as GNU tar and busybox tar write them (ustar and GNU headers, GNU long names, pax
 * extended headers), for the one archive a host sends back with the content of the files a run reads. It reads
 * a whole archive held in memory; every entry's content is cut by the size in its own header, so content never
 * depends on anything outside the archive.
 */

/** One member of an archive, after its long-name and extended headers are applied. */
export interface TarEntry {
  /** the member's name as stored (GNU tar and busybox drop a leading slash) */
  name: string;
  /** the header's type flag: '0' a regular file, '1' a hard link, '2' a symbolic link, '5' a directory, … */
  type: string;
  /** permission bits, set-id and sticky bits (mode & 0o7777) */
  mode: number;
  uid: number;
  gid: number;
  /** owner and group names ('' when the archiver knew none) */
  uname: string;
  gname: string;
  /** for a hard link: the name of the earlier member it links to */
  linkname: string;
  /** the member's bytes (empty for anything but regular files; for a hard link, the linked member's bytes) */
  content: Buffer;
}

const BLOCK = 512;

/** A NUL-terminated (or field-filling) string of a header. */
function text(h: Buffer, at: number, len: number): string {
  const field = h.subarray(at, at + len);
  const nul = field.indexOf(0);
  return field.subarray(0, nul < 0 ? len : nul).toString('utf8');
}

/** A numeric field: octal digits (space or NUL terminated), or GNU's base-256 form for values too big for octal. */
function num(h: Buffer, at: number, len: number): number {
  const field = h.subarray(at, at + len);
  if (field[0]! & 0x80) {
    if (field[0] === 0xff) throw new Error('tar: negative number in a header');
    let v = field[0]! & 0x7f;
    for (let i = 1; i < len; i++) v = v * 256 + field[i]!;
    return v;
  }
  const digits = text(h, at, len).trim();
  if (digits === '') return 0;
  if (!/^[0-7]+$/.test(digits)) throw new Error(`tar: bad number ${JSON.stringify(digits)} in a header`);
  return parseInt(digits, 8);
}

function checksumOk(h: Buffer): boolean {
  // The sum of the header's bytes with the checksum field counted as eight spaces; summed in two plain runs
  // around the field, as every member of every read passes here.
  let sum = 8 * 0x20;
  for (let i = 0; i < 148; i++) sum += h[i]!;
  for (let i = 156; i < BLOCK; i++) sum += h[i]!;
  return num(h, 148, 8) === sum;
}

/** Records of a pax extended header: `<length> <key>=<value>\n` each. */
function paxRecords(body: Buffer): Map<string, string> {
  const out = new Map<string, string>();
  let at = 0;
  while (at < body.length) {
    const space = body.indexOf(0x20, at);
    if (space < 0) break;
    const len = Number(body.subarray(at, space).toString('ascii'));
    if (!Number.isInteger(len) || len <= space - at || at + len > body.length) throw new Error('tar: bad pax record');
    const record = body.subarray(space + 1, at + len - 1).toString('utf8');
    const eq = record.indexOf('=');
    if (eq > 0) out.set(record.slice(0, eq), record.slice(eq + 1));
    at += len;
  }
  return out;
}

/**
 * The members of an archive in the order they were written. Throws on a damaged archive: a bad header checksum,
 * a member whose content runs past the end, a hard link to no earlier member.
 */
export function readTar(archive: Buffer): TarEntry[] {
  const entries: TarEntry[] = [];
  const byName = new Map<string, TarEntry>();
  let longName: string | null = null;
  let longLink: string | null = null;
  let pax = new Map<string, string>();
  const globalPax = new Map<string, string>();
  let at = 0;
  while (at + BLOCK <= archive.length) {
    const h = archive.subarray(at, at + BLOCK);
    if (h.every((b) => b === 0)) break;
    if (!checksumOk(h)) throw new Error(`tar: bad header checksum at byte ${at}`);
    const type = String.fromCharCode(h[156]!) === '\0' ? '0' : String.fromCharCode(h[156]!);
    const fields = new Map([...globalPax, ...pax]);
    const size = fields.has('size') ? Number(fields.get('size')) : num(h, 124, 12);
    const start = at + BLOCK;
    if (start + size > archive.length) throw new Error('tar: a member runs past the end of the archive');
    const body = archive.subarray(start, start + size);
    at = start + Math.ceil(size / BLOCK) * BLOCK;
    if (type === 'L') {
      longName = text(body, 0, body.length);
      continue;
    }
    if (type === 'K') {
      longLink = text(body, 0, body.length);
      continue;
    }
    if (type === 'x') {
      pax = paxRecords(body);
      continue;
    }
    if (type === 'g') {
      for (const [k, v] of paxRecords(body)) globalPax.set(k, v);
      continue;
    }
    const magic = text(h, 257, 6);
    const prefix = magic === 'ustar' ? text(h, 345, 155) : '';
    const stored = text(h, 0, 100);
    const entry: TarEntry = {
      name: fields.get('path') ?? longName ?? (prefix ? `${prefix}/${stored}` : stored),
      type,
      mode: num(h, 100, 8) & 0o7777,
      uid: fields.has('uid') ? Number(fields.get('uid')) : num(h, 108, 8),
      gid: fields.has('gid') ? Number(fields.get('gid')) : num(h, 116, 8),
      uname: fields.get('uname') ?? text(h, 265, 32),
      gname: fields.get('gname') ?? text(h, 297, 32),
      linkname: fields.get('linkpath') ?? longLink ?? text(h, 157, 100),
      content: type === '0' || type === '7' ? Buffer.from(body) : Buffer.alloc(0),
    };
    if (type === '1') {
      const target = byName.get(entry.linkname);
      if (!target) throw new Error(`tar: ${entry.name} links to ${entry.linkname}, which is not in the archive`);
      entry.content = target.content;
    }
    entries.push(entry);
    byName.set(entry.name, entry);
    longName = null;
    longLink = null;
    pax = new Map();
  }
  return entries;
}

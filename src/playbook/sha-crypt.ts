/**
 * SHA-512 crypt (`$6$salt$hash`, the glibc scheme /etc/shadow uses), as Ansible's `password_hash('sha512', salt)`
 * produces it: 5000 rounds unless told otherwise (then written `$6$rounds=N$salt$hash`).
 */
import { createHash } from 'node:crypto';

const B64 = './0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz';

function sha512(...parts: Buffer[]): Buffer {
  const h = createHash('sha512');
  for (const p of parts) h.update(p);
  return h.digest();
}

/** `len` bytes of `digest` repeated. */
function repeatTo(digest: Buffer, len: number): Buffer {
  const out = Buffer.alloc(len);
  for (let i = 0; i < len; i++) out[i] = digest[i % digest.length]!;
  return out;
}

export function sha512Crypt(password: string, salt: string, rounds?: number): string {
  const p = Buffer.from(password, 'utf8');
  const s = Buffer.from(salt.slice(0, 16), 'utf8');
  const r = Math.min(999999999, Math.max(1000, rounds ?? 5000));
  const b = sha512(p, s, p);
  const aParts: Buffer[] = [p, s, repeatTo(b, p.length)];
  for (let n = p.length; n > 0; n >>= 1) aParts.push(n & 1 ? b : p);
  let a = sha512(...aParts);
  const dp = sha512(...Array.from({ length: p.length }, () => p));
  const pBytes = repeatTo(dp, p.length);
  const ds = sha512(...Array.from({ length: 16 + a[0]! }, () => s));
  const sBytes = repeatTo(ds, s.length);
  for (let i = 0; i < r; i++) {
    const parts: Buffer[] = [i & 1 ? pBytes : a];
    if (i % 3) parts.push(sBytes);
    if (i % 7) parts.push(pBytes);
    parts.push(i & 1 ? a : pBytes);
    a = sha512(...parts);
  }
  const order = [
    [0, 21, 42], [22, 43, 1], [44, 2, 23], [3, 24, 45], [25, 46, 4], [47, 5, 26], [6, 27, 48], [28, 49, 7], [50, 8, 29], [9, 30, 51], [31, 52, 10],
    [53, 11, 32], [12, 33, 54], [34, 55, 13], [56, 14, 35], [15, 36, 57], [37, 58, 16], [59, 17, 38], [18, 39, 60], [40, 61, 19], [62, 20, 41],
  ];
  let out = '';
  const enc = (v: number, n: number) => {
    for (let k = 0; k < n; k++) {
      out += B64[v & 63];
      v >>= 6;
    }
  };
  for (const [x, y, z] of order) enc((a[x!]! << 16) | (a[y!]! << 8) | a[z!]!, 4);
  enc(a[63]!, 2);
  const prefix = rounds === undefined ? '$6$' : `$6$rounds=${r}$`;
  return `${prefix}${salt.slice(0, 16)}$${out}`;
}

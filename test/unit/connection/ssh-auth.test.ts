import { randomBytes } from 'node:crypto';
import ssh2 from 'ssh2';
import type { ParsedKey } from 'ssh2';
import { describe, expect, it } from 'vitest';
import { signingOnce } from '../../../src/connection/ssh-auth.js';
import { parsableKeyPair } from './loopback-sshd.js';

const { utils } = ssh2;

function parsed(text: string): ParsedKey {
  const k = utils.parseKey(text);
  if (k instanceof Error) throw k;
  return Array.isArray(k) ? (k[0] as ParsedKey) : k;
}

describe('identity keys sign with a key object made once', () => {
  const data = randomBytes(200);

  it('gives the bytes ssh2 gives, for Ed25519 (no hash) and RSA (rsa-sha2-256 and -512), and they verify', () => {
    const ed = parsed(parsableKeyPair(() => utils.generateKeyPairSync('ed25519')).private);
    const rsa = parsed(utils.generateKeyPairSync('rsa', { bits: 2048 }).private);
    for (const [key, algo] of [
      [ed, undefined],
      [rsa, 'sha256'],
      [rsa, 'sha512'],
    ] as const) {
      const fast = signingOnce(key);
      const sig = fast.sign(data, algo);
      expect(sig).toBeInstanceOf(Buffer);
      expect(sig).toEqual(key.sign(data, algo));
      expect(key.verify(data, sig as Buffer, algo)).toBe(true);
      // everything else is the key's own
      expect(fast.type).toBe(key.type);
      expect(fast.getPublicSSH().equals(key.getPublicSSH())).toBe(true);
      expect(fast.isPrivateKey()).toBe(true);
    }
  });

  it("leaves ssh2's own hash choice to ssh2 where no algorithm is given for a key other than Ed25519", () => {
    const ecdsa = parsed(utils.generateKeyPairSync('ecdsa', { bits: 256 }).private);
    const fast = signingOnce(ecdsa);
    const sig = fast.sign(data);
    expect(sig).toBeInstanceOf(Buffer);
    // ECDSA signatures are randomised: the check is that ssh2's verification, with its own hash, accepts it
    expect(ecdsa.verify(data, sig as Buffer)).toBe(true);
  });
});

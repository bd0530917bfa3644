/**
 * SSH client authentication in OpenSSH's order: agent keys (only the configured identities' keys with
 * IdentitiesOnly), identity files (each read and decrypted once per run, its passphrase asked once), then
 * password and keyboard-interactive. Secrets are asked only when a method the server accepts needs them.
 */
import { createPrivateKey, type KeyObject, sign as cryptoSign } from 'node:crypto';
import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import ssh2 from 'ssh2';
import type {
  AnyAuthMethod,
  AuthenticationType,
  IdentityCallback,
  KeyboardInteractiveCallback,
  ParsedKey,
  Prompt,
  SignCallback,
  SigningRequestOptions,
} from 'ssh2';
import { tildePath } from './known-hosts.js';
import type { Secrets } from './secrets.js';
import type { SshTarget } from './ssh-target.js';

const { utils, createAgent, BaseAgent } = ssh2;

/** A private key ready to sign, or why it cannot be used. */
export type LoadedKey = { key: ParsedKey } | { skipped: string };

/** Decrypted private keys by path, so each passphrase is asked and each key decrypted once per run. */
export type KeyCache = Map<string, Promise<LoadedKey>>;

/** The authentication methods to try, produced lazily so secrets are asked only when a method needs them. */
export function authSteps(
  t: SshTarget,
  secrets: Secrets,
  keys: KeyCache,
  waitFor: <T>(p: Promise<T>) => Promise<T>,
  tried: string[],
  passwordAllowed: () => boolean,
): { next(left: AuthenticationType[]): Promise<AnyAuthMethod | null> | null } {
  const username = t.user;
  const queue: ((left: AuthenticationType[]) => Promise<AnyAuthMethod | null>)[] = [];
  if (t.agent) {
    queue.push(async (left) => {
      if (!left.includes('publickey')) return null;
      try {
        await fs.access(t.agent!);
      } catch {
        return null;
      }
      tried.push('ssh-agent');
      const agent = t.identitiesOnly
        ? new OnlyTheseKeys(createAgent(t.agent!) as InstanceType<typeof BaseAgent<ParsedKey>>, await publicBlobs(t.identityFiles))
        : t.agent!;
      return { type: 'agent', username, agent };
    });
  }
  for (const file of t.identityFiles) {
    queue.push(async (left) => {
      if (!left.includes('publickey')) return null;
      const loaded = await waitFor(loadKey(file, secrets, keys));
      if ('skipped' in loaded) {
        if (loaded.skipped !== 'missing' || !isDefaultIdentity(file)) tried.push(`${tildePath(file)} (${loaded.skipped})`);
        return null;
      }
      tried.push(tildePath(file));
      return { type: 'publickey', username, key: loaded.key };
    });
  }
  const password = async (): Promise<string | null> => {
    if (!passwordAllowed()) return null;
    if (t.password !== null) return t.password;
    if (!secrets.askPass) return null;
    return waitFor(secrets.password('ssh'));
  };
  queue.push(async (left) => {
    if (!left.includes('password')) return null;
    const pw = await password();
    if (pw === null) return null;
    tried.push('password');
    return { type: 'password', username, password: pw };
  });
  queue.push(async (left) => {
    if (!left.includes('keyboard-interactive')) return null;
    const pw = await password();
    if (pw === null) return null;
    tried.push('keyboard-interactive');
    return {
      type: 'keyboard-interactive',
      username,
      prompt(_name: string, _instructions: string, _lang: string, prompts: Prompt[], finish: KeyboardInteractiveCallback) {
        // Only a lone hidden prompt is a password question; anything else (codes, confirmations) is not ours to answer.
        finish(prompts.length === 1 && !prompts[0]!.echo ? [pw] : []);
      },
    };
  });
  let i = 0;
  return {
    next(left) {
      const step = queue[i++];
      return step ? step(left) : null;
    },
  };
}

function isDefaultIdentity(file: string): boolean {
  return path.dirname(file) === path.join(os.homedir(), '.ssh') && /^id_(rsa|ecdsa|ed25519)$/.test(path.basename(file));
}

/** Read and decrypt a private key once per run; every host using it waits on the same promise. */
function loadKey(file: string, secrets: Secrets, keys: KeyCache): Promise<LoadedKey> {
  let pending = keys.get(file);
  if (!pending) {
    pending = (async (): Promise<LoadedKey> => {
      let data: Buffer;
      try {
        data = await fs.readFile(file);
      } catch (e) {
        const code = (e as NodeJS.ErrnoException).code;
        return { skipped: code === 'ENOENT' ? 'missing' : `cannot read: ${code ?? (e as Error).message}` };
      }
      let parsed = utils.parseKey(data);
      if (parsed instanceof Error && /no passphrase given/.test(parsed.message)) {
        try {
          const passphrase = await secrets.passphrase(file, (p) => !(utils.parseKey(data, p) instanceof Error));
          parsed = utils.parseKey(data, passphrase);
        } catch (e) {
          return { skipped: `encrypted: ${(e as Error).message}` };
        }
      }
      if (parsed instanceof Error) return { skipped: `not usable: ${parsed.message}` };
      const key = Array.isArray(parsed) ? (parsed[0] as ParsedKey) : parsed;
      if (!key.isPrivateKey()) return { skipped: 'not a private key' };
      return { key: signingOnce(key) };
    })();
    keys.set(file, pending);
  }
  return pending;
}

/**
 * The key, signing with a private key object made once: ssh2 keeps the key as PEM text and hands that text to
 * crypto.sign, which parses it again for every signature (about 0.6 ms against 0.05 ms with an ed25519 key here),
 * once per host and per connection of a run. The signature is the same call with the same key, and Ed25519 and
 * RSA's PKCS#1 v1.5 sign deterministically, so the bytes are identical. Where ssh2 would fall back on a hash of
 * its own choosing (no algorithm given, a key other than Ed25519), its own sign is used.
 */
export function signingOnce(key: ParsedKey): ParsedKey {
  const pem = key.getPrivatePEM();
  let object: KeyObject;
  try {
    object = createPrivateKey(pem);
  } catch {
    return key;
  }
  const own = key.sign.bind(key);
  const sign = (data: Buffer, algo?: string): Buffer | Error => {
    if (!algo && key.type !== 'ssh-ed25519') return own(data, algo);
    try {
      return cryptoSign(algo || null, data, object);
    } catch (e) {
      return e as Error;
    }
  };
  // An own property in front of ssh2's: everything else about the key (type, public blob, checks) is ssh2's.
  return Object.assign(Object.create(key) as ParsedKey, { sign });
}

/** Public key blobs of identity files, from their .pub files (readable without the passphrase). */
async function publicBlobs(files: string[]): Promise<Buffer[]> {
  const blobs: Buffer[] = [];
  for (const f of files) {
    try {
      const parsed = utils.parseKey(await fs.readFile(`${f}.pub`));
      if (!(parsed instanceof Error)) blobs.push((Array.isArray(parsed) ? (parsed[0] as ParsedKey) : parsed).getPublicSSH());
    } catch {
      // No .pub file: that identity cannot be matched to an agent key, as with OpenSSH.
    }
  }
  return blobs;
}

/** IdentitiesOnly with an agent: offer only the agent keys that belong to the configured identity files. */
class OnlyTheseKeys extends BaseAgent<ParsedKey> {
  constructor(
    private readonly inner: InstanceType<typeof BaseAgent<ParsedKey>>,
    private readonly allowed: Buffer[],
  ) {
    super();
  }
  getIdentities(cb: IdentityCallback<ParsedKey>): void {
    this.inner.getIdentities((err, keys) => {
      if (err) return cb(err);
      const parsed = (keys ?? []).filter((k): k is ParsedKey => 'getPublicSSH' in k);
      cb(undefined, parsed.filter((k) => this.allowed.some((a) => a.equals(k.getPublicSSH()))));
    });
  }
  sign(pubKey: ParsedKey, data: Buffer, options: SigningRequestOptions | SignCallback, cb?: SignCallback): void {
    if (typeof options === 'function') this.inner.sign(pubKey, data, options);
    else this.inner.sign(pubKey, data, options, cb);
  }
}

/**
 * Host-key policy for SSH connections: which key types to ask a server for, whether the key it offers is the one
 * known_hosts has on record (strict, accept-new, or let through by --host-key-checking no), and recording a new
 * key for accept-new one writer at a time.
 */
import os from 'node:os';
import path from 'node:path';
import {
  appendKnownHost,
  checkHostKey,
  fingerprint,
  keyTypeOf,
  loadKnownHosts,
  tildePath,
  type KnownHostsEntry,
} from './known-hosts.js';
import { targetAddress, type SshTarget } from './ssh-target.js';

/** Pending known_hosts appends by file, so parallel hosts record keys one at a time. */
export type KnownHostsWrites = Map<string, Promise<unknown>>;

/** Server host key algorithms for each key type, in ssh2's default order. */
const HOST_KEY_ALGORITHMS: Record<string, string[]> = {
  'ssh-ed25519': ['ssh-ed25519'],
  'ecdsa-sha2-nistp256': ['ecdsa-sha2-nistp256'],
  'ecdsa-sha2-nistp384': ['ecdsa-sha2-nistp384'],
  'ecdsa-sha2-nistp521': ['ecdsa-sha2-nistp521'],
  'ssh-rsa': ['rsa-sha2-512', 'rsa-sha2-256', 'ssh-rsa'],
};

/** Server host key algorithms with the types known_hosts has for this host first, as OpenSSH orders them. */
export function hostKeyAlgorithms(preferred: string[]): string[] {
  const all = Object.values(HOST_KEY_ALGORITHMS).flat();
  const first = preferred.flatMap((type) => HOST_KEY_ALGORITHMS[type] ?? []);
  return [...new Set([...first, ...all])];
}

/** Every known_hosts file of a target, the user's first. */
export async function readKnownHosts(t: SshTarget): Promise<readonly KnownHostsEntry[]> {
  return loadKnownHosts([...t.knownHostsFiles, ...t.globalKnownHostsFiles]);
}

/** `changedButAllowed`: why the key is not the one on record, when --host-key-checking no let it through anyway. */
export type HostKeyJudgement = { ok: true; changedButAllowed: string | null } | { ok: false; message: string };

/** Decide on the key a server offered, recording it first when accept-new applies. */
export async function judgeHostKey(t: SshTarget, key: Buffer, writes: KnownHostsWrites, label: string): Promise<HostKeyJudgement> {
  const who = `${label} (${targetAddress(t)})`;
  const offered = `${keyTypeOf(key)} ${fingerprint(key)}`;
  const verdict = checkHostKey(await readKnownHosts(t), t.hostKeyName, t.port, key);
  switch (verdict.status) {
    case 'known':
      return { ok: true, changedButAllowed: null };
    case 'revoked':
      return { ok: false, message: `host key for ${who} is REVOKED: ${offered} is marked @revoked in ${tildePath(verdict.entry.file)} line ${verdict.entry.line}` };
    case 'changed': {
      const changed = `REMOTE HOST KEY CHANGED for ${who}: server offers ${offered}, ${tildePath(verdict.entry.file)} line ${verdict.entry.line} has ${fingerprint(verdict.entry.key)}`;
      if (t.hostKeyChecking === 'no') return { ok: true, changedButAllowed: changed };
      return { ok: false, message: `${changed} (if the host was reinstalled, remove that line)` };
    }
    case 'unknown': {
      // known_hosts trusts a CA for this host: OpenSSH would check the host's certificate. ssh2 neither asks for
      // nor returns certificates, so saying yes (or recording the plain key) would pretend a check that never ran.
      const ca = verdict.authorities[0];
      if (ca && t.hostKeyChecking !== 'no') {
        return {
          ok: false,
          message: `host key for ${who} is not known: ${offered}; ${tildePath(ca.file)} line ${ca.line} trusts a certificate authority (@cert-authority) for it, but provision cannot verify host certificates: add the host's own key to known_hosts`,
        };
      }
      if (t.hostKeyChecking === 'yes') {
        const file = tildePath(t.knownHostsFiles[0] ?? path.join(os.homedir(), '.ssh', 'known_hosts'));
        const others = verdict.otherTypes.length ? `; known_hosts has only ${verdict.otherTypes.join(', ')} for it` : '';
        return { ok: false, message: `host key for ${who} is not known: ${offered}${others} (add it to ${file} or use --host-key-checking accept-new)` };
      }
      const file = t.knownHostsFiles[0];
      if (!file) return { ok: true, changedButAllowed: null };
      return recordHostKey(t, key, file, writes, who, offered);
    }
  }
}

/** accept-new: record the key unless, meanwhile, another connection recorded a key for this host. */
function recordHostKey(t: SshTarget, key: Buffer, file: string, writes: KnownHostsWrites, who: string, offered: string): Promise<HostKeyJudgement> {
  const previous = writes.get(file) ?? Promise.resolve();
  const next = previous.then(async (): Promise<HostKeyJudgement> => {
    const again = checkHostKey(await readKnownHosts(t), t.hostKeyName, t.port, key);
    if (again.status === 'known') return { ok: true, changedButAllowed: null };
    if (again.status === 'unknown') {
      await appendKnownHost(file, t.hostKeyName, t.port, key, t.hashKnownHosts === true);
      return { ok: true, changedButAllowed: null };
    }
    return { ok: false, message: `host key for ${who} changed while it was being recorded: server offers ${offered}` };
  });
  writes.set(file, next.catch(() => undefined));
  return next;
}

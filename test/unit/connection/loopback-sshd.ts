/**
 * An SSH server on 127.0.0.1 for unit tests of the SSH transport, built on ssh2's Server. Exec requests run for
 * real in a local `/bin/sh -c` (so scripts, stdin and exit codes behave as on a host), with a fake `sudo` first
 * on PATH that behaves like `sudo -S`: it prompts on stderr and reads the password from stdin, or, in
 * `nopasswd` mode, runs the command without reading anything.
 */
import { spawn } from 'node:child_process';
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import ssh2 from 'ssh2';
import type { AuthContext, ParsedKey } from 'ssh2';

const { Server, utils } = ssh2;
// ssh2's packet writer, for a message its server has no call for (see offerHostKeys)
const { sendPacket } = createRequire(import.meta.url)('ssh2/lib/protocol/utils.js') as { sendPacket(proto: unknown, packet: Buffer): void };

export interface KeyPair {
  /** private key in OpenSSH format */
  private: string;
  /** `type base64` as in a .pub file, without comment */
  public: string;
  blob: Buffer;
}

/**
 * ssh2's key generator drops leading zero bytes of an ed25519 public key, so about one key in 256 cannot be read
 * back (ssh2 issue 1390): generate again until ssh2 parses both halves, a bounded number of times.
 */
export function parsableKeyPair<T extends { private: string; public: string }>(generate: () => T, passphrase?: string): T {
  for (let i = 0; i < 20; i++) {
    const pair = generate();
    if (!(utils.parseKey(pair.public) instanceof Error) && !(utils.parseKey(pair.private, passphrase) instanceof Error)) return pair;
  }
  throw new Error('ssh2 generated 20 key pairs it cannot parse');
}

export function keyPair(passphrase?: string): KeyPair {
  const pair = parsableKeyPair(() =>
    passphrase ? utils.generateKeyPairSync('ed25519', { passphrase, cipher: 'aes256-ctr', rounds: 4 }) : utils.generateKeyPairSync('ed25519'),
    passphrase,
  );
  const pub = pair.public.trim().split(' ').slice(0, 2).join(' ');
  return { private: pair.private, public: pub, blob: Buffer.from(pub.split(' ')[1]!, 'base64') };
}

export interface LoopbackOptions {
  hostKey?: KeyPair;
  /** public keys accepted for any user */
  authorized?: KeyPair[];
  /** password accepted for any user */
  password?: string;
  /** the fake sudo's password, or `nopasswd` */
  sudo?: { password: string } | 'nopasswd';
  /**
   * what to do with an exec request: run it, cut every connection at once, never answer, or stop reading from
   * every connection (a host that froze or a network that silently drops packets)
   */
  onExec?: (command: string) => 'run' | 'drop' | 'hang' | 'freeze';
  /**
   * once a client has authenticated, offer it the host key as OpenSSH's sshd does (a `hostkeys-00@openssh.com`
   * global request that asks no reply), and record the global requests the client sends (`globalRequests`)
   */
  offerHostKeys?: boolean;
}

export interface Loopback {
  port: number;
  hostKey: KeyPair;
  /** TCP connections accepted */
  connections: number;
  /** authentication requests seen, as "method" or "method:ok" */
  auths: string[];
  /** exec command lines received */
  commands: string[];
  /** direct-tcpip destinations requested ("host:port") */
  forwards: string[];
  /** names of the global requests clients sent (recorded with `offerHostKeys`) */
  globalRequests: string[];
  close(): Promise<void>;
}

const FAKE_SUDO = `#!/bin/sh
# Parses the options provision uses, then behaves like sudo -S.
prompt='Password:'; nonint=0
while [ $# -gt 0 ]; do
  case "$1" in
    -S) shift ;;
    -n) nonint=1; shift ;;
    -p) prompt="$2"; shift 2 ;;
    -u) shift 2 ;;
    --) shift; break ;;
    *) break ;;
  esac
done
if [ "$FAKE_SUDO" = nopasswd ]; then exec "$@"; fi
if [ $nonint = 1 ]; then echo "sudo: a password is required" >&2; exit 1; fi
printf '%s' "$prompt" >&2
IFS= read -r pw || { echo "sudo: no password was provided" >&2; exit 1; }
if [ "$pw" = "$FAKE_SUDO" ]; then exec "$@"; fi
echo "Sorry, try again." >&2
printf '%s' "$prompt" >&2
IFS= read -r pw || { echo "sudo: 1 incorrect password attempt" >&2; exit 1; }
if [ "$pw" = "$FAKE_SUDO" ]; then exec "$@"; fi
echo "sudo: 2 incorrect password attempts" >&2
exit 1
`;

export async function startLoopback(opts: LoopbackOptions = {}): Promise<Loopback> {
  const hostKey = opts.hostKey ?? keyPair();
  const bin = mkdtempSync(path.join(os.tmpdir(), 'provision-fake-sudo-'));
  writeFileSync(path.join(bin, 'sudo'), FAKE_SUDO);
  chmodSync(path.join(bin, 'sudo'), 0o755);
  const authorized = (opts.authorized ?? []).map((k) => utils.parseKey(k.public) as ParsedKey);
  const sockets = new Set<net.Socket>();
  const state: Loopback = {
    port: 0,
    hostKey,
    connections: 0,
    auths: [],
    commands: [],
    forwards: [],
    globalRequests: [],
    close: async () => {
      for (const s of sockets) s.destroy();
      await new Promise<void>((resolve) => tcp.close(() => resolve()));
      rmSync(bin, { recursive: true, force: true });
    },
  };

  const methods: ('publickey' | 'password')[] = opts.password === undefined ? ['publickey'] : ['publickey', 'password'];
  const authenticate = (ctx: AuthContext) => {
    if (ctx.method === 'publickey') {
      const key = authorized.find((k) => k.getPublicSSH().equals(ctx.key.data));
      if (!key) {
        state.auths.push('publickey');
        return ctx.reject(methods);
      }
      if (!ctx.signature) return ctx.accept();
      const ok = key.verify(ctx.blob!, ctx.signature, ctx.hashAlgo);
      state.auths.push(ok ? 'publickey:ok' : 'publickey');
      return ok ? ctx.accept() : ctx.reject(methods);
    }
    if (ctx.method === 'password' && opts.password !== undefined) {
      const ok = ctx.password === opts.password;
      state.auths.push(ok ? 'password:ok' : 'password');
      return ok ? ctx.accept() : ctx.reject(methods);
    }
    state.auths.push(ctx.method);
    ctx.reject(methods);
  };

  const server = new Server({ hostKeys: [hostKey.private] }, (conn) => {
    conn.on('error', () => undefined);
    conn.on('authentication', authenticate);
    if (opts.offerHostKeys) conn.once('ready', () => offerHostKeys(conn, hostKey, state.globalRequests));
    conn.on('tcpip', (accept, reject, info) => {
      state.forwards.push(`${info.destIP}:${info.destPort}`);
      const out = net.connect(info.destPort, info.destIP);
      out.once('connect', () => {
        const ch = accept();
        ch.on('error', () => undefined);
        out.pipe(ch).pipe(out);
      });
      out.once('error', () => reject());
    });
    conn.on('session', (accept) => {
      const session = accept();
      session.on('exec', (acceptExec, _reject, info) => {
        state.commands.push(info.command);
        const mode = opts.onExec?.(info.command) ?? 'run';
        if (mode === 'drop') {
          for (const s of sockets) s.destroy();
          return;
        }
        if (mode === 'freeze') {
          for (const s of sockets) s.pause();
          return;
        }
        const ch = acceptExec();
        if (mode === 'hang') return;
        const sudo = opts.sudo === undefined ? 'unused' : opts.sudo === 'nopasswd' ? 'nopasswd' : opts.sudo.password;
        const child = spawn('/bin/sh', ['-c', info.command], {
          env: { ...process.env, PATH: `${bin}:${process.env.PATH}`, FAKE_SUDO: sudo },
        });
        child.stdout.pipe(ch, { end: false });
        child.stderr.pipe(ch.stderr, { end: false });
        ch.pipe(child.stdin);
        child.stdin.on('error', () => undefined);
        child.on('close', (code, signal) => {
          if (signal) ch.exit(signal.replace(/^SIG/, ''), false, '');
          else ch.exit(code ?? 0);
          ch.end();
        });
      });
    });
  });
  // Accept TCP here and hand sockets to ssh2, so the test can count connections and cut them.
  const tcp = net.createServer((s) => {
    state.connections++;
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
    server.injectSocket(s);
  });
  await new Promise<void>((resolve) => tcp.listen(0, '127.0.0.1', () => resolve()));
  state.port = (tcp.address() as net.AddressInfo).port;
  return state;
}

/**
 * sshd's `hostkeys-00@openssh.com` request, sent through ssh2's protocol object (ssh2's server has no call for
 * it), and a record of the global requests the client sends back. Built on ssh2's internals: a release that moves
 * them fails here, loudly, rather than testing nothing.
 */
function offerHostKeys(conn: unknown, hostKey: KeyPair, seen: string[]): void {
  interface Proto {
    _handlers: Record<string, (p: unknown, name: string, ...rest: unknown[]) => void>;
    _packetRW: { write: { allocStart: number; alloc(n: number): Buffer; finalize(b: Buffer): Buffer } };
  }
  const proto = (conn as { _protocol: Proto })._protocol;
  const handle = proto._handlers.GLOBAL_REQUEST!;
  proto._handlers.GLOBAL_REQUEST = (p, name, ...rest) => {
    seen.push(name);
    handle(p, name, ...rest);
  };
  const name = Buffer.from('hostkeys-00@openssh.com');
  const body = Buffer.concat([u32(name.length), name, Buffer.from([0]), u32(hostKey.blob.length), hostKey.blob]);
  const start = proto._packetRW.write.allocStart;
  const packet = proto._packetRW.write.alloc(1 + body.length);
  packet[start] = 80; // SSH_MSG_GLOBAL_REQUEST
  body.copy(packet, start + 1);
  sendPacket(proto, proto._packetRW.write.finalize(packet));
}

function u32(n: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeUInt32BE(n);
  return b;
}

/** A TCP server that accepts connections and then does `behaviour` with them (for failure tests). */
export async function startTcp(behaviour: 'reset' | 'silent'): Promise<{ port: number; connections: number; close(): Promise<void> }> {
  const sockets = new Set<net.Socket>();
  const state = { port: 0, connections: 0, close: async () => undefined as void };
  const server = net.createServer((s) => {
    state.connections++;
    sockets.add(s);
    s.on('error', () => undefined);
    if (behaviour === 'reset') s.resetAndDestroy();
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  state.port = (server.address() as net.AddressInfo).port;
  state.close = async () => {
    for (const s of sockets) s.destroy();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  };
  return state;
}

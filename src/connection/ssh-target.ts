/**
 * Where and how to connect to one host: inventory variables, command-line options and ssh_config merged with
 * Ansible's precedence (inventory variables, then the command line, then ssh_config, then OpenSSH's defaults).
 * ssh_config is consulted under the inventory hostname; jump hosts only under their own names.
 */
import os from 'node:os';
import path from 'node:path';
import { InputError } from '../errors.js';
import type { HostKeyChecking, JumpSpec, SshConfigFile, SshHostConfig } from './ssh-config.js';
import { connectName } from './ssh-config-match.js';

/** Connection options from the command line. */
export interface SshCliOptions {
  /** -u / --user: remote user when the inventory does not set one */
  user?: string;
  /** --private-key: identity file when the inventory does not set one */
  privateKey?: string;
  /** --host-key-checking: overrides ssh_config for every host and jump host */
  hostKeyChecking?: HostKeyChecking;
  /** -T / --timeout: connect timeout in seconds */
  timeoutS?: number;
}

/** Everything needed to open a connection to one host (or one jump host). */
export interface SshTarget {
  /** name for messages: the inventory hostname, or the jump host as written in ProxyJump */
  name: string;
  /** address to connect to */
  hostname: string;
  port: number;
  user: string;
  /** private keys to offer, in order (absolute paths; missing files are skipped) */
  identityFiles: string[];
  /** offer only keys from identityFiles, also through the agent */
  identitiesOnly: boolean;
  /** ssh-agent socket, null when no agent is used */
  agent: string | null;
  /** password from the inventory (ansible_password); --ask-pass goes through the run's secrets instead */
  password: string | null;
  /** known_hosts files the user owns; new keys are recorded in the first */
  knownHostsFiles: string[];
  /** system-wide known_hosts files, read only */
  globalKnownHostsFiles: string[];
  /** name the host key is recorded under (HostKeyAlias, else hostname) */
  hostKeyName: string;
  hostKeyChecking: HostKeyChecking;
  /** accept-new records keys under a hashed host name (HashKnownHosts yes) */
  hashKnownHosts?: boolean;
  connectTimeoutMs: number;
  /** connection attempts before giving up on a transient failure (refused, reset, no route) */
  connectionAttempts: number;
  /** keepalive interval; 0 disables keepalives */
  serverAliveIntervalMs: number;
  serverAliveCountMax: number;
  /** the jump host this host is reached through, itself possibly reached through another */
  via: SshTarget | null;
}

const DEFAULT_TIMEOUT_S = 10;
const DEFAULT_ATTEMPTS = 3;
const MAX_ATTEMPTS = 10;
/** Longer chains than this are surely a configuration mistake. */
const MAX_JUMPS = 8;

/** Resolve the connection settings of an inventory host. Throws InputError for invalid values. */
export function resolveSshTarget(
  inventoryHostname: string,
  hostVars: Record<string, unknown>,
  opts: SshCliOptions,
  config: SshConfigFile | null,
): SshTarget {
  const where = `host "${inventoryHostname}"`;
  const v = (...names: string[]) => names.map((n) => hostVars[n]).find((x) => x !== undefined && x !== null && x !== '');
  const str = (name: string, value: unknown): string => {
    if (typeof value === 'string' || typeof value === 'number') return String(value);
    throw new InputError(`${name} must be a string`, undefined, where);
  };

  const varUser = v('ansible_user', 'ansible_ssh_user');
  const explicitUser = varUser !== undefined ? str('ansible_user', varUser) : opts.user;
  const cfg = config?.lookup(inventoryHostname, explicitUser) ?? { identityFiles: [] };

  const varHost = v('ansible_host', 'ansible_ssh_host');
  // Without ansible_host, the name ssh would connect to: the HostName (or the name), lower-cased unless an address.
  const hostname = varHost !== undefined ? str('ansible_host', varHost) : connectName(cfg.hostName, inventoryHostname);
  // Names, IPv4 and IPv6 addresses (with a %zone) only: anything else is a mistake, never something to resolve.
  if (!/^[A-Za-z0-9._:%-]+$/.test(hostname)) {
    throw new InputError(`${varHost !== undefined ? 'ansible_host' : 'the host name'} ${JSON.stringify(hostname)} is not a host name or address`, undefined, where);
  }

  const varPort = v('ansible_port', 'ansible_ssh_port');
  const port = varPort !== undefined ? portOf(varPort, where) : (cfg.port ?? 22);
  const user = explicitUser ?? cfg.user ?? localUser();

  const varKey = v('ansible_ssh_private_key_file', 'ansible_private_key_file');
  const firstKey = varKey !== undefined ? str('ansible_ssh_private_key_file', varKey) : opts.privateKey;

  const varPass = v('ansible_password', 'ansible_ssh_pass', 'ansible_ssh_password');
  const varStrict = v('ansible_host_key_checking', 'ansible_ssh_host_key_checking');
  // An inventory (perhaps someone else's) may not loosen the command line's policy: with both, the stricter wins.
  const fromVar = varStrict !== undefined ? strictOf(varStrict, where) : undefined;
  const hostKeyChecking =
    fromVar !== undefined && opts.hostKeyChecking !== undefined
      ? stricter(fromVar, opts.hostKeyChecking)
      : (fromVar ?? opts.hostKeyChecking ?? cfg.strictHostKeyChecking ?? 'yes');

  const varTimeout = v('ansible_ssh_timeout');
  const timeoutS = varTimeout !== undefined ? secondsOf(varTimeout, 'ansible_ssh_timeout', where) : (opts.timeoutS ?? cfg.connectTimeoutS ?? DEFAULT_TIMEOUT_S);

  const tokens: Tokens = { host: inventoryHostname, hostname, port, user };
  const target = build(inventoryHostname, cfg, tokens, firstKey ? [firstKey] : [], hostKeyChecking, timeoutS);
  target.password = varPass !== undefined ? str('ansible_password', varPass) : null;
  target.via = resolveJumps(cfg.proxyJump ?? [], opts, config, [inventoryHostname.toLowerCase()]);
  return target;
}

interface Tokens {
  /** the name as typed (%n) */
  host: string;
  /** the address (%h) */
  hostname: string;
  port: number;
  /** remote user (%r) */
  user: string;
}

function build(
  name: string,
  cfg: SshHostConfig,
  t: Tokens,
  extraKeys: string[],
  hostKeyChecking: HostKeyChecking,
  timeoutS: number,
): SshTarget {
  const expand = (p: string) => expandPath(p, t, name);
  const identities = [...extraKeys, ...cfg.identityFiles].filter((f) => f.toLowerCase() !== 'none');
  const identityFiles = identities.length
    ? identities.map(expand)
    : ['id_rsa', 'id_ecdsa', 'id_ed25519'].map((f) => path.join(os.homedir(), '.ssh', f));
  const hostKeyName = cfg.hostKeyAlias ?? t.hostname;
  return {
    name,
    hostname: t.hostname,
    port: t.port,
    user: t.user,
    identityFiles: [...new Set(identityFiles)],
    identitiesOnly: cfg.identitiesOnly ?? false,
    agent: agentOf(cfg.identityAgent, t, name),
    password: null,
    knownHostsFiles: knownHostsOf(cfg.userKnownHostsFiles, ['~/.ssh/known_hosts', '~/.ssh/known_hosts2'], t, name),
    globalKnownHostsFiles: knownHostsOf(cfg.globalKnownHostsFiles, ['/etc/ssh/ssh_known_hosts', '/etc/ssh/ssh_known_hosts2'], t, name),
    hostKeyName,
    hostKeyChecking,
    hashKnownHosts: cfg.hashKnownHosts ?? false,
    connectTimeoutMs: timeoutS * 1000,
    connectionAttempts: Math.min(cfg.connectionAttempts ?? DEFAULT_ATTEMPTS, MAX_ATTEMPTS),
    serverAliveIntervalMs: (cfg.serverAliveIntervalS ?? 0) * 1000,
    serverAliveCountMax: cfg.serverAliveCountMax ?? 3,
    via: null,
  };
}

/**
 * The jump chain for a ProxyJump list, as OpenSSH builds it: the last hop is reached through the hops before it;
 * a single hop is reached the way its own ssh_config entry says (possibly through further jumps).
 */
function resolveJumps(
  jumps: JumpSpec[],
  opts: SshCliOptions,
  config: SshConfigFile | null,
  chain: string[],
): SshTarget | null {
  if (jumps.length === 0) return null;
  const hop = jumps[jumps.length - 1]!;
  const key = hop.host.toLowerCase();
  if (chain.includes(key)) {
    throw new InputError(`ProxyJump loops: ${[...chain, key].join(' -> ')}`, config?.where('proxyjump'));
  }
  if (chain.length > MAX_JUMPS) {
    throw new InputError(`ProxyJump chain is longer than ${MAX_JUMPS} hops: ${chain.join(' -> ')}`, config?.where('proxyjump'));
  }
  const cfg = config?.lookup(hop.host, hop.user) ?? { identityFiles: [] };
  const hostname = connectName(cfg.hostName, hop.host);
  const port = hop.port ?? cfg.port ?? 22;
  const user = hop.user ?? cfg.user ?? localUser();
  const strict = opts.hostKeyChecking ?? cfg.strictHostKeyChecking ?? 'yes';
  const timeoutS = opts.timeoutS ?? cfg.connectTimeoutS ?? DEFAULT_TIMEOUT_S;
  const target = build(hop.host, cfg, { host: hop.host, hostname, port, user }, [], strict, timeoutS);
  const before = jumps.slice(0, -1);
  target.via = resolveJumps(before.length ? before : (cfg.proxyJump ?? []), opts, config, [...chain, key]);
  return target;
}

function localUser(): string {
  try {
    return os.userInfo().username;
  } catch {
    return process.env.USER ?? process.env.LOGNAME ?? 'root';
  }
}

/** `~` and the ssh_config tokens OpenSSH allows in file names. */
function expandPath(value: string, t: Tokens, name: string): string {
  const home = os.homedir();
  const expanded = value.replace(/%(.)/g, (_, c: string) => {
    switch (c) {
      case '%':
        return '%';
      case 'd':
        return home;
      case 'h':
        return t.hostname;
      case 'n':
        return t.host;
      case 'p':
        return String(t.port);
      case 'r':
        return t.user;
      case 'u':
        return localUser();
      case 'i':
        return String(process.getuid?.() ?? '');
      case 'l':
        return os.hostname().split('.')[0]!;
      case 'L':
        return os.hostname();
      default:
        throw new InputError(`unknown token %${c} in "${value}"`, undefined, `host "${name}"`);
    }
  });
  const tilde = expanded === '~' ? home : expanded.startsWith('~/') ? path.join(home, expanded.slice(2)) : expanded;
  return path.resolve(tilde);
}

function knownHostsOf(files: string[] | undefined, defaults: string[], t: Tokens, name: string): string[] {
  const list = files ?? defaults;
  return list.filter((f) => f.toLowerCase() !== 'none').map((f) => expandPath(f, t, name));
}

function agentOf(value: string | undefined, t: Tokens, name: string): string | null {
  const env = process.env.SSH_AUTH_SOCK || null;
  if (value === undefined) return env;
  if (value.toLowerCase() === 'none') return null;
  if (value === 'SSH_AUTH_SOCK') return env;
  if (value.startsWith('$')) return process.env[value.slice(1)] || null;
  return expandPath(value, t, name);
}

function portOf(value: unknown, where: string): number {
  const s = String(value);
  const n = Number(s);
  if (!/^[0-9]{1,5}$/.test(s) || n < 1 || n > 65535) {
    throw new InputError(`ansible_port "${s}" is not a port number (1-65535)`, undefined, where);
  }
  return n;
}

function secondsOf(value: unknown, name: string, where: string): number {
  const s = String(value);
  if (!/^[1-9][0-9]{0,5}$/.test(s)) throw new InputError(`${name} "${s}" is not a positive whole number of seconds`, undefined, where);
  return Number(s);
}

const STRICTNESS: readonly HostKeyChecking[] = ['no', 'accept-new', 'yes'];

/** The stricter of two host key policies. */
export function stricter(a: HostKeyChecking, b: HostKeyChecking): HostKeyChecking {
  return STRICTNESS.indexOf(a) >= STRICTNESS.indexOf(b) ? a : b;
}

/** ansible_host_key_checking is a boolean in Ansible; `accept-new` is accepted too. */
function strictOf(value: unknown, where: string): HostKeyChecking {
  const s = String(value).toLowerCase();
  if (['true', 'yes', '1', 'on'].includes(s)) return 'yes';
  if (['false', 'no', '0', 'off'].includes(s)) return 'no';
  if (s === 'accept-new') return 'accept-new';
  throw new InputError(`ansible_host_key_checking "${String(value)}" is not a boolean or accept-new`, undefined, where);
}

/** `host:port` for messages, with an IPv6 address in brackets. */
export function targetAddress(t: SshTarget): string {
  return t.hostname.includes(':') ? `[${t.hostname}]:${t.port}` : `${t.hostname}:${t.port}`;
}

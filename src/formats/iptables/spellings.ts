/**
 * Value spellings of iptables rules: ports, protocols, connection states, TCP flags, ICMP types, reject replies,
 * log levels and addresses, each turned into what iptables-save 1.8.9 prints (checked against it), so a rule
 * written in that spelling reads back unchanged.
 */
import { type AddressFamily, formatAddress, maskOf, parseAddress, prefixOf } from '../../util/ip.js';
import type { Family } from './document.js';

/**
 * Port names a rule may use, with the numbers iptables-save prints for them.
 *
 * iptables resolves a port name through the host's /etc/services, so in principle the answer is the host's. This
 * table is deliberately kept instead of reading the host's file: iptables-save never prints a name (only numbers),
 * so names come only from rules files written by hand and from tasks, and reading /etc/services on every run would
 * add bytes to the one remote step a no-change run makes. The names here are well-known IANA service names
 * (and their common aliases) with fixed numbers. A name outside the table is never guessed: a task's
 * dport/sport refuses it ("give the number"), and a raw rule or rules-file rule that uses one is not understood by
 * the model (modelUnderstands), so it is left to the host's own iptables, which reads its /etc/services, where the
 * host is asked anyway (namespace normalisation, the verification after a restart).
 */
export const SERVICE_PORTS: Readonly<Record<string, number>> = {
  'ftp-data': 20,
  ftp: 21,
  ssh: 22,
  telnet: 23,
  smtp: 25,
  domain: 53,
  bootps: 67,
  bootpc: 68,
  tftp: 69,
  http: 80,
  www: 80,
  kerberos: 88,
  pop3: 110,
  sunrpc: 111,
  ntp: 123,
  imap: 143,
  imap2: 143,
  snmp: 161,
  ldap: 389,
  https: 443,
  'microsoft-ds': 445,
  submissions: 465,
  smtps: 465,
  ssmtp: 465,
  urd: 465,
  syslog: 514,
  submission: 587,
  ldaps: 636,
  rsync: 873,
  imaps: 993,
  pop3s: 995,
  nfs: 2049,
  mysql: 3306,
  sieve: 4190,
  postgresql: 5432,
  'http-alt': 8080,
};

const PROTOCOL_NAMES: Readonly<Record<string, string>> = {
  '1': 'icmp',
  '2': 'igmp',
  '4': 'ipencap',
  '6': 'tcp',
  '17': 'udp',
  '33': 'dccp',
  '41': 'ipv6',
  '47': 'gre',
  '50': 'esp',
  '51': 'ah',
  '58': 'ipv6-icmp',
  '89': 'ospf',
  '103': 'pim',
  '112': 'vrrp',
  '132': 'sctp',
  '136': 'udplite',
  icmpv6: 'ipv6-icmp',
};

const PROTOCOL_NUMBERS: Readonly<Record<string, string>> = Object.fromEntries(
  Object.entries(PROTOCOL_NAMES)
    .filter(([k]) => /^\d+$/.test(k))
    .map(([k, v]) => [v, k]),
);

/** `-p` as iptables-save prints it; null for "all". */
export function canonicalProtocol(value: string): string | null {
  const v = value.toLowerCase();
  if (v === 'all' || v === '0') return null;
  return PROTOCOL_NAMES[v] ?? v;
}

/** A port or range as iptables-save prints it: names become numbers, `a:` and `:b` are completed, `a:a` is `a`. */
export function canonicalPort(value: string): string {
  const one = (p: string, fallback: string) => {
    if (p === '') return fallback;
    const n = /^\d+$/.test(p) ? Number(p) : SERVICE_PORTS[p.toLowerCase()];
    return n === undefined ? p : String(n);
  };
  const i = value.indexOf(':');
  if (i < 0) return one(value, value);
  const lo = one(value.slice(0, i), '0');
  const hi = one(value.slice(i + 1), '65535');
  return lo === hi ? lo : `${lo}:${hi}`;
}

/** Whether a port argument is something this code can spell canonically (number, range or known name). */
export function isKnownPort(value: string | number): boolean {
  const s = String(value);
  const ok = (p: string) => p === '' || (/^\d+$/.test(p) ? Number(p) <= 65535 : SERVICE_PORTS[p.toLowerCase()] !== undefined);
  const parts = s.split(':');
  return s !== '' && parts.length <= 2 && parts.every(ok) && !(parts.length === 2 && parts[0] === '' && parts[1] === '');
}

export const CONNTRACK_STATES = ['INVALID', 'NEW', 'RELATED', 'ESTABLISHED', 'UNTRACKED', 'SNAT', 'DNAT'] as const;

/** A state list in iptables-save's order: `ESTABLISHED,RELATED` → `RELATED,ESTABLISHED`. */
export function canonicalStates(value: string): string {
  const given = new Set(value.split(',').map((s) => s.trim().toUpperCase()));
  const known = CONNTRACK_STATES.filter((s) => given.has(s));
  const unknown = [...given].filter((s) => !(CONNTRACK_STATES as readonly string[]).includes(s)).sort();
  return [...known, ...unknown].join(',');
}

const TCP_FLAGS = ['FIN', 'SYN', 'RST', 'PSH', 'ACK', 'URG'];

export function canonicalFlags(value: string): string {
  const given = new Set(value.split(',').map((s) => s.trim().toUpperCase()));
  if (given.has('ALL')) return TCP_FLAGS.join(',');
  const flags = TCP_FLAGS.filter((f) => given.has(f));
  return flags.length ? flags.join(',') : 'NONE';
}

const ICMP_TYPES: Readonly<Record<string, string>> = {
  'echo-reply': '0',
  pong: '0',
  'destination-unreachable': '3',
  'network-unreachable': '3/0',
  'host-unreachable': '3/1',
  'protocol-unreachable': '3/2',
  'port-unreachable': '3/3',
  'fragmentation-needed': '3/4',
  'source-route-failed': '3/5',
  'network-unknown': '3/6',
  'host-unknown': '3/7',
  'network-prohibited': '3/9',
  'host-prohibited': '3/10',
  'communication-prohibited': '3/13',
  'source-quench': '4',
  redirect: '5',
  'network-redirect': '5/0',
  'host-redirect': '5/1',
  'echo-request': '8',
  ping: '8',
  'router-advertisement': '9',
  'router-solicitation': '10',
  'time-exceeded': '11',
  'ttl-exceeded': '11',
  'ttl-zero-during-transit': '11/0',
  'ttl-zero-during-reassembly': '11/1',
  'parameter-problem': '12',
  'ip-header-bad': '12/0',
  'required-option-missing': '12/1',
  'timestamp-request': '13',
  'timestamp-reply': '14',
  'address-mask-request': '17',
  'address-mask-reply': '18',
};

const ICMP6_TYPES: Readonly<Record<string, string>> = {
  'destination-unreachable': '1',
  'no-route': '1/0',
  'communication-prohibited': '1/1',
  'beyond-scope': '1/2',
  'address-unreachable': '1/3',
  'port-unreachable': '1/4',
  'failed-policy': '1/5',
  'reject-route': '1/6',
  'packet-too-big': '2',
  'time-exceeded': '3',
  'ttl-zero-during-transit': '3/0',
  'ttl-zero-during-reassembly': '3/1',
  'parameter-problem': '4',
  'echo-request': '128',
  ping: '128',
  'echo-reply': '129',
  pong: '129',
  'router-solicitation': '133',
  'router-advertisement': '134',
  'neighbour-solicitation': '135',
  'neighbor-solicitation': '135',
  'neighbour-advertisement': '136',
  'neighbor-advertisement': '136',
  redirect: '137',
};

const REJECT_WITH: Record<Family, Readonly<Record<string, string>>> = {
  4: {
    'icmp-net-unreachable': 'icmp-net-unreachable',
    'net-unreach': 'icmp-net-unreachable',
    'icmp-host-unreachable': 'icmp-host-unreachable',
    'host-unreach': 'icmp-host-unreachable',
    'icmp-port-unreachable': 'icmp-port-unreachable',
    'port-unreach': 'icmp-port-unreachable',
    'icmp-proto-unreachable': 'icmp-proto-unreachable',
    'proto-unreach': 'icmp-proto-unreachable',
    'icmp-net-prohibited': 'icmp-net-prohibited',
    'net-prohib': 'icmp-net-prohibited',
    'icmp-host-prohibited': 'icmp-host-prohibited',
    'host-prohib': 'icmp-host-prohibited',
    'icmp-admin-prohibited': 'icmp-admin-prohibited',
    'admin-prohib': 'icmp-admin-prohibited',
    'tcp-reset': 'tcp-reset',
    'tcp-rst': 'tcp-reset',
  },
  6: {
    'icmp6-no-route': 'icmp6-no-route',
    'no-route': 'icmp6-no-route',
    'icmp6-adm-prohibited': 'icmp6-adm-prohibited',
    'adm-prohibited': 'icmp6-adm-prohibited',
    'icmp6-addr-unreachable': 'icmp6-addr-unreachable',
    'addr-unreach': 'icmp6-addr-unreachable',
    'icmp6-port-unreachable': 'icmp6-port-unreachable',
    'port-unreach': 'icmp6-port-unreachable',
    'icmp6-policy-fail': 'icmp6-policy-fail',
    'policy-fail': 'icmp6-policy-fail',
    'icmp6-reject-route': 'icmp6-reject-route',
    'reject-route': 'icmp6-reject-route',
    'tcp-reset': 'tcp-reset',
    'tcp-rst': 'tcp-reset',
  },
};

/** The `--reject-with` spelling iptables-save prints, or null when the family has no such reply. */
export function canonicalRejectWith(value: string, family: Family): string | null {
  return REJECT_WITH[family][value.toLowerCase()] ?? null;
}

export const LOG_LEVELS: Readonly<Record<string, string>> = {
  emerg: '0',
  panic: '0',
  alert: '1',
  crit: '2',
  err: '3',
  error: '3',
  warn: '4',
  warning: '4',
  notice: '5',
  info: '6',
  debug: '7',
};

/** A protocol as the number conntrack's --ctproto prints (`tcp` → `6`), or the value unchanged. */
export function protocolNumber(value: string): string {
  return PROTOCOL_NUMBERS[canonicalProtocol(value) ?? ''] ?? value;
}

/** An ICMP (family 4) or ICMPv6 (family 6) type name as the number iptables-save prints, or the value unchanged. */
export function canonicalIcmpType(value: string, family: Family): string {
  return (family === 6 ? ICMP6_TYPES : ICMP_TYPES)[value.toLowerCase()] ?? value;
}

/**
 * An address or network as iptables-save prints it: `a.b.c.d/nn` (host bits cleared, a bare address gets /32 or
 * /128, a dotted mask becomes a prefix when it is contiguous). Returns null for the whole address space and the
 * input unchanged when it is not an address (a host name).
 */
export function canonicalAddress(value: string): string | null {
  const slash = value.indexOf('/');
  const addr = slash < 0 ? value : value.slice(0, slash);
  const maskText = slash < 0 ? null : value.slice(slash + 1);
  const family: AddressFamily = addr.includes(':') ? 6 : 4;
  const bytes = parseAddress(addr, family);
  if (!bytes) return value;
  const width = family === 4 ? 32 : 128;
  const mask = maskText === null ? maskOf(width, family) : /^\d+$/.test(maskText) ? maskOf(Number(maskText), family) : parseAddress(maskText, family);
  if (!mask) return value;
  const prefix = prefixOf(mask);
  if (prefix === 0) return null;
  const network = formatAddress(bytes.map((b, i) => b & mask[i]!));
  return `${network}/${prefix ?? formatAddress(mask)}`;
}

/** Whether a value is an IPv4 or IPv6 address or network (not a host name), of the family when one is given. */
export function isAddress(value: string, family?: Family): boolean {
  const [addr, mask, ...extra] = value.split('/');
  if (extra.length || addr === undefined) return false;
  const f: AddressFamily = addr.includes(':') ? 6 : 4;
  if (family !== undefined && family !== f) return false;
  if (!parseAddress(addr, f)) return false;
  if (mask === undefined) return true;
  return /^\d+$/.test(mask) ? Number(mask) <= (f === 4 ? 32 : 128) : parseAddress(mask, f) !== null;
}

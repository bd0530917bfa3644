/**
 * Addressing for labs. Every lab lives inside 198.19.0.0/16 (the benchmarking range of RFC 2544), which no real
 * network routes, so a lab host can never be confused with, or leak traffic to, anything outside this machine.
 * Its IPv6 addresses lie inside 2001:2::/48, the IPv6 benchmarking prefix (RFC 5180), for the same reason.
 */
import { createHash } from 'node:crypto';
import { LabError } from './lab-system.js';

export interface Subnet {
  /** network address as an unsigned 32-bit integer */
  network: number;
  /** prefix length */
  prefix: number;
}

const LAB_SPACE_TEXT = '198.19.0.0/16';

/** Default size of a lab subnet: a /22 holds 1021 hosts, enough for the 500-host sshd benchmark. */
export const DEFAULT_PREFIX = 22;

/** Smallest subnet worth having: a /29 holds 5 hosts beside the controller. */
const MAX_PREFIX = 29;

export function parseIp4(text: string): number | null {
  const parts = text.split('.');
  if (parts.length !== 4) return null;
  let n = 0;
  for (const p of parts) {
    if (!/^\d{1,3}$/.test(p)) return null;
    const v = Number(p);
    if (v > 255) return null;
    n = n * 256 + v;
  }
  return n;
}

export function formatIp4(n: number): string {
  return [n >>> 24, (n >>> 16) & 255, (n >>> 8) & 255, n & 255].join('.');
}

export function formatSubnet(s: Subnet): string {
  return `${formatIp4(s.network)}/${s.prefix}`;
}

export function subnetSize(s: Subnet): number {
  return 2 ** (32 - s.prefix);
}

/** Parse "a.b.c.d/n" without any checks beyond syntax; null when it is not a CIDR. */
function parseCidr(text: string): Subnet | null {
  const m = /^(\d+\.\d+\.\d+\.\d+)\/(\d{1,2})$/.exec(text.trim());
  if (!m) return null;
  const ip = parseIp4(m[1]!);
  const prefix = Number(m[2]);
  if (ip === null || prefix > 32) return null;
  return { network: ip, prefix };
}

const LAB_SPACE = parseCidr(LAB_SPACE_TEXT)!;

export function contains(outer: Subnet, inner: Subnet): boolean {
  return inner.prefix >= outer.prefix && inner.network >= outer.network && inner.network + subnetSize(inner) <= outer.network + subnetSize(outer);
}

export function overlaps(a: Subnet, b: Subnet): boolean {
  return a.network < b.network + subnetSize(b) && b.network < a.network + subnetSize(a);
}

/** A lab subnet given by the user: a network address inside 198.19.0.0/16, between /16 and /29. */
export function parseLabSubnet(text: string): Subnet {
  const s = parseCidr(text);
  if (!s) throw new LabError(`subnet "${text}" is not an IPv4 CIDR like 198.19.4.0/22`);
  if (!contains(LAB_SPACE, s)) throw new LabError(`subnet ${text} is outside ${LAB_SPACE_TEXT}, the only range labs may use`);
  if (s.prefix > MAX_PREFIX) throw new LabError(`subnet ${text} is too small: use /${MAX_PREFIX} or larger`);
  const mask = s.prefix === 0 ? 0 : (0xffffffff << (32 - s.prefix)) >>> 0;
  const network = (s.network & mask) >>> 0;
  if (network !== s.network) {
    throw new LabError(`subnet ${text} has host bits set: did you mean ${formatSubnet({ network, prefix: s.prefix })}?`);
  }
  return s;
}

/** How many hosts fit: all addresses but the network, the broadcast and the controller's. */
export function hostCapacity(s: Subnet): number {
  return subnetSize(s) - 3;
}

/** Host N (1-based) gets network + N, so h1 of 198.19.4.0/22 is 198.19.4.1. */
export function hostAddress(s: Subnet, index: number): string {
  if (index < 1 || index > hostCapacity(s)) throw new LabError(`host ${index} does not fit in ${formatSubnet(s)}`);
  return formatIp4(s.network + index);
}

/** The controller (the bridge in the root namespace) takes the last usable address. */
export function controllerAddress(s: Subnet): string {
  return formatIp4(s.network + subnetSize(s) - 2);
}

/**
 * Candidate default subnets for a lab name: every /22 of 198.19.0.0/16, starting at a slot derived from the name
 * so that differently named labs usually land apart without coordination.
 */
export function defaultSubnets(name: string): Subnet[] {
  const slots = subnetSize(LAB_SPACE) / 2 ** (32 - DEFAULT_PREFIX);
  const first = createHash('sha256').update(name).digest().readUInt16BE(0) % slots;
  const out: Subnet[] = [];
  for (let i = 0; i < slots; i++) {
    const slot = (first + i) % slots;
    out.push({ network: LAB_SPACE.network + slot * 2 ** (32 - DEFAULT_PREFIX), prefix: DEFAULT_PREFIX });
  }
  return out;
}

/** Routes and addresses as `ip -j` prints them, reduced to the subnets they cover. */
export function subnetsInUse(routes: { dst?: string }[], addrs: { addr_info?: { family?: string; local?: string; prefixlen?: number }[] }[]): Subnet[] {
  const out: Subnet[] = [];
  for (const r of routes) {
    if (!r.dst || r.dst === 'default') continue;
    const s = parseCidr(r.dst.includes('/') ? r.dst : `${r.dst}/32`);
    if (s) out.push(s);
  }
  for (const link of addrs) {
    for (const a of link.addr_info ?? []) {
      if (a.family !== 'inet' || !a.local) continue;
      const s = parseCidr(`${a.local}/32`);
      if (s) out.push(s);
    }
  }
  return out;
}

/**
 * The lab's IPv6 /64 inside 2001:2::/48, named after its IPv4 subnet (the 16 bits of its second and third octets),
 * so labs that do not share IPv4 addresses do not share IPv6 ones: 198.19.4.0/22 → 2001:2:0:1304::/64.
 */
export function subnet6(s: Subnet): string {
  return `2001:2:0:${((s.network >>> 8) & 0xffff).toString(16)}::`;
}

/** Host N's IPv6 address: 2001:2:0:1304::1 for h1 of 198.19.4.0/22 (N in hex). */
export function hostAddress6(s: Subnet, index: number): string {
  hostAddress(s, index);
  return `${subnet6(s)}${index.toString(16)}`;
}

/** The controller's IPv6 address on the bridge: ::fffe of the lab's /64 (above every host index). */
export function controllerAddress6(s: Subnet): string {
  return `${subnet6(s)}fffe`;
}

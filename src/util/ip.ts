/**
 * Address maths for both families, on top of the platform and ipaddr.js rather than our own bit twiddling.
 *
 * Which text is an IPv6 address is decided by node:net, whose isIPv6 is libuv's inet_pton: the same rules as the
 * glibc inet_pton iptables uses (no zone index, no leading zeros in an embedded IPv4 part). IPv6 text is printed by
 * node:net too (SocketAddress is inet_ntop), so it matches what iptables-save prints, `::ffff:1.2.3.4` included.
 * ipaddr.js does the byte and mask work.
 */
import { SocketAddress, isIPv6 as platformIsIPv6 } from 'node:net';
import ipaddr from 'ipaddr.js';

export type AddressFamily = 4 | 6;

/** Whether `s` is one IPv6 address (with `::` shortening and an optional trailing dotted IPv4; no zone index). */
export function isIPv6(s: string): boolean {
  return !s.includes('%') && platformIsIPv6(s);
}

/**
 * Four dotted decimal parts of 0-255 (leading zeros allowed, as iptables' own IPv4 reader allows them); the short
 * and hexadecimal forms inet_aton also takes are left out.
 */
function isDottedQuad(s: string): boolean {
  const parts = s.split('.');
  return parts.length === 4 && parts.every((p) => /^\d{1,3}$/.test(p) && Number(p) <= 255);
}

/** The bytes of an address of the family (4 or 16 of them), or null when `s` is not one. */
export function parseAddress(s: string, family: AddressFamily): number[] | null {
  if (family === 4) return isDottedQuad(s) ? s.split('.').map(Number) : null;
  if (!isIPv6(s)) return null;
  // ipaddr.js reads the deprecated `::a.b.c.d` (IPv4-compatible) as IPv4-mapped; inet_pton reads it as written.
  // An explicit leading zero group makes ipaddr.js read it the inet_pton way; the address is the same.
  return ipaddr.IPv6.parse(/^::\d+\.\d+\.\d+\.\d+$/.test(s) ? `0${s}` : s).toByteArray();
}

/** Bytes of an address as iptables-save prints them: dotted quad, or IPv6 as inet_ntop spells it. */
export function formatAddress(bytes: readonly number[]): string {
  if (bytes.length === 4) return bytes.join('.');
  const full = ipaddr.fromByteArray([...bytes]).toNormalizedString();
  return new SocketAddress({ address: full, family: 'ipv6' }).address;
}

/** The mask bytes of a prefix length, or null when the prefix is longer than the family's width. */
export function maskOf(prefix: number, family: AddressFamily): number[] | null {
  if (prefix > (family === 4 ? 32 : 128)) return null;
  return (family === 4 ? ipaddr.IPv4 : ipaddr.IPv6).subnetMaskFromPrefixLength(prefix).toByteArray();
}

/** The prefix length of a mask, or null when its one bits are not contiguous from the left. */
export function prefixOf(mask: readonly number[]): number | null {
  return ipaddr.fromByteArray([...mask]).prefixLengthFromSubnetMask();
}

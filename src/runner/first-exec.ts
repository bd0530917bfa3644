/**
 * The first exec on a host brings back, besides the facts, what the play will read there, so that a run with
 * nothing to change needs no other exec. What the play reads depends on facts (the config directory, the rules
 * file of the firewall flavour, where certificates live), which are not known before that exec: so the reads are
 * computed for a few plausible hosts (a Debian-like and a RHEL-like one) and the union is fetched. Once the real
 * facts are known, the runner fetches whatever the guesses missed; a wrong guess costs one more exec, never a
 * wrong result, since every answer is what the host really holds at a path.
 *
 * Postfix's parameter names are fetched their own way. A controller that knows none of the host's has the facts
 * list them with the version and config directory, in one postconf run (see gather.ts); otherwise the host prints
 * `postconf -d` only when its version is not among those the controller knows (see postfix-names.ts).
 *
 * What the first exec prints after the facts (see factsScript):
 *   @@PROVISION_FACTS_END
 *   [@@P, then `postconf -C builtin,service` in base64 on one line; or
 *    @@N <exit status> <version>, then `postconf -d` in base64 on one line]
 *   @@PROVISION_READS
 *   <what readScript prints>
 *   @@PROVISION_READS_END
 */
import { lineAt, parseFacts, POSTFIX_LISTED_FACT, splitFactsOutput } from '../facts/gather.js';
import type { Facts } from '../facts/types.js';
import type { Reads } from '../modules/module.js';
import { type HostNames, hostNamesScript, isDefaultsCommand, parseHostNames } from '../modules/postfix-names.js';
import { compareVersions } from '../util/version.js';
import { parseReadOutput, readScript, type ReadRequest, type ReadResult } from './host-files.js';

export const READS_MARKER = '@@PROVISION_READS';
export const READS_END_MARKER = '@@PROVISION_READS_END';

type Flavour = Omit<Facts, 'hostname' | 'fqdn' | 'postfix_version'>;

const COMMON = {
  init: 'systemd',
  user: 'root',
  uid: 0,
  postfix_config_dir: '/etc/postfix',
  // A host with IPv6 has its rules edited in both families: guessing so fetches the IPv6 rules file and live
  // ruleset too, which on a host without them is an absent path and an empty listing.
  ipv6_global: true,
  ip6tables_rules_exists: true,
  firewalld_zone: null,
  default_ipv4: null,
} as const;

const DEBIAN_LIKE: Flavour = {
  ...COMMON,
  os_family: 'Debian',
  distribution: 'debian',
  distribution_version: '12',
  firewall: 'netfilter-persistent',
  firewall_service: 'netfilter-persistent',
  iptables_rules_file: '/etc/iptables/rules.v4',
  ip6tables_rules_file: '/etc/iptables/rules.v6',
  iptables_version: 'iptables v1.8.9 (nf_tables)',
  tls_cert_dir: '/etc/ssl/certs',
  tls_key_dir: '/etc/ssl/private',
};

const RHEL_LIKE: Flavour = {
  ...COMMON,
  os_family: 'RedHat',
  distribution: 'rhel',
  distribution_version: '9',
  firewall: 'iptables-services',
  firewall_service: 'iptables',
  iptables_rules_file: '/etc/sysconfig/iptables',
  ip6tables_rules_file: '/etc/sysconfig/ip6tables',
  iptables_version: 'iptables v1.8.10 (nf_tables)',
  tls_cert_dir: '/etc/pki/tls/certs',
  tls_key_dir: '/etc/pki/tls/private',
};

/**
 * The hosts `host` is likely to be: Debian-like with the newest Postfix the controller knows, RHEL-like with the
 * oldest (RHEL-like distributions ship older Postfix releases, and some of what a module reads depends on the
 * version); no version when the controller knows none.
 */
export function guessFacts(host: string, knownVersions: string[]): Facts[] {
  const sorted = [...knownVersions].sort((a, b) => compareVersions(a, b) || a.localeCompare(b));
  const names = { hostname: host.split('.')[0] || host, fqdn: host };
  return [
    { ...DEBIAN_LIKE, ...names, postfix_version: sorted.at(-1) ?? null },
    { ...RHEL_LIKE, ...names, postfix_version: sorted[0] ?? null },
  ];
}

/**
 * `facts` as seen by code that records which of them it looks at (templates rendering a task's arguments): a
 * rendering that looked only at facts two hosts agree on renders the same for both, so it need not run twice.
 * Listing the facts counts as looking at all of them.
 */
export function watchedFacts(facts: Facts): { facts: Facts; used: Set<string> } {
  const used = new Set<string>();
  const seen = (key: string | symbol) => {
    if (typeof key === 'string') used.add(key);
  };
  const watched = new Proxy(facts, {
    get(t, key, receiver) {
      seen(key);
      return Reflect.get(t, key, receiver);
    },
    has(t, key) {
      seen(key);
      return Reflect.has(t, key);
    },
    getOwnPropertyDescriptor(t, key) {
      seen(key);
      return Reflect.getOwnPropertyDescriptor(t, key);
    },
    ownKeys(t) {
      Object.keys(t).forEach(seen);
      return Reflect.ownKeys(t);
    },
  });
  return { facts: watched, used };
}

/** Whether two sets of facts agree on every fact in `used`. */
export function factsAgree(a: Facts, b: Facts, used: ReadonlySet<string>): boolean {
  for (const k of used) if ((a as unknown as Record<string, unknown>)[k] !== (b as unknown as Record<string, unknown>)[k]) return false;
  return true;
}

/** A path the first exec's output could be mistaken by: one that holds a marker (the read prints paths). */
const hostile = (p: string) => p.includes('@@PROVISION');

/**
 * One read request for everything in `reads`: each path and command once, a path whose content is wanted not
 * also stat'ed, and neither Postfix's names (the first exec asks for them its own way) nor paths that hold one of
 * the exec's markers (read later, on their own).
 */
export function unionOfReads(reads: Reads[]): ReadRequest {
  const files = new Set<string>();
  const stats = new Set<string>();
  const commands = new Map<string, { key: string; script: string }>();
  for (const r of reads) {
    r.files?.forEach((p) => hostile(p) || files.add(p));
    r.stats?.forEach((p) => hostile(p) || stats.add(p));
    r.commands?.forEach((c) => isDefaultsCommand(c.key) || commands.has(c.key) || commands.set(c.key, c));
  }
  return { files: [...files], stats: [...stats].filter((p) => !files.has(p)), commands: [...commands.values()] };
}

/** The shell the first exec runs after the facts (see factsScript): Postfix's names if unknown, then the reads. */
export function firstExecTail(knownVersions: string[], req: ReadRequest): string {
  const lines = [hostNamesScript(knownVersions), `echo ${READS_MARKER}`];
  if (req.files.length + req.stats.length + req.commands.length > 0) lines.push(`( ${readScript(req)}\n) </dev/null`);
  lines.push(`echo ${READS_END_MARKER}`);
  return lines.join('\n');
}

export interface FirstExec {
  facts: Facts;
  /** the host's Postfix version and its parameter names, when the host sent them */
  names: HostNames | null;
  /** what was read (unreadable files left out), or null when the reads did not come back whole */
  reads: ReadResult | null;
}

/** Take apart what the first exec printed before the held marker (or all of it, without a lock). */
export function parseFirstExec(stdout: string, req: ReadRequest): FirstExec {
  const { facts, after } = splitFactsOutput(stdout);
  const out: FirstExec = { facts: parseFacts(facts), names: null, reads: null };
  // The facts of a host that listed its Postfix parameters hold no version: it is in the listing, which must be there.
  const listed = lineAt(`${facts}\n`, `${POSTFIX_LISTED_FACT}=1`) >= 0;
  // Each section counts only once the marker after it is out: a section cut short is not taken for a whole one.
  const rest = after ?? '';
  const start = after === null ? -1 : lineAt(rest, READS_MARKER);
  if (start >= 0) out.names = parseHostNames(rest.slice(0, start));
  if (listed) {
    if (out.names?.listedConfigDir === undefined) {
      throw new Error("the host's Postfix parameters (postconf -C builtin,service) did not come back with its facts");
    }
    out.facts.postfix_version = out.names.version;
    out.facts.postfix_config_dir = out.names.listedConfigDir || null;
  }
  if (start < 0) return out;
  const body = start + READS_MARKER.length + 1;
  const end = lineAt(rest, READS_END_MARKER, body);
  if (end < 0) return out;
  try {
    out.reads = parseReadOutput(req, rest.slice(body, end), { skipUnreadable: true });
  } catch {
    out.reads = null;
  }
  return out;
}

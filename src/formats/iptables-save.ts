/**
 * The iptables-save / iptables-restore file format (/etc/sysconfig/iptables, /etc/iptables/rules.v4): pure parse
 * and print with a byte-exact round trip, rule identity, line edits, and the ruleset a file loads.
 *
 * Tokenising follows iptables-restore 1.8 exactly: only double quotes group words, a backslash escapes the next
 * character inside quotes only, and a closing quote ends the word. Canonical spellings follow what iptables-save
 * 1.8.9 prints (checked against it), so a rule written in that spelling reads back unchanged.
 */

/** Packet and byte counters, kept as written (they can exceed 2^53). */
export interface Counters {
  packets: string;
  bytes: string;
}

export type Line =
  /** empty or whitespace only */
  | { kind: 'blank'; raw: string }
  /** `# …` */
  | { kind: 'comment'; raw: string }
  /** `*filter`: opens a table section */
  | { kind: 'table'; raw: string; table: string }
  /** `:INPUT ACCEPT [0:0]` (policy `-` for user chains) */
  | { kind: 'chain'; raw: string; table: string; chain: string; policy: string; counters: Counters | null }
  /** `-A CHAIN …`: `args` are the words after the chain name */
  | { kind: 'rule'; raw: string; table: string; chain: string; args: string[]; counters: Counters | null }
  /** any other command (`-I`, `-N`, `-P`, `-F`, …), all of its words */
  | { kind: 'command'; raw: string; table: string; args: string[]; counters: Counters | null }
  /** `COMMIT`: closes the table section */
  | { kind: 'commit'; raw: string; table: string };

export type RuleLine = Extract<Line, { kind: 'rule' }>;

export interface RulesDocument {
  /** one entry per line; `raw` is the line without its `\n` (a CR of a CRLF line stays in `raw`) */
  lines: Line[];
  /** whether the last line ends with a newline */
  finalNewline: boolean;
  /** how the bytes were decoded: UTF-8 when they are valid UTF-8, else Latin-1 so every byte survives */
  encoding: 'utf8' | 'latin1';
  /** line ending for lines this code adds: CRLF when the file's first line uses it */
  crlf: boolean;
}

export type Family = 4 | 6;

/** A line iptables-restore would refuse, with its 1-based line number. */
export class IptablesSaveSyntaxError extends Error {
  override name = 'IptablesSaveSyntaxError';
  constructor(
    readonly line: number,
    readonly reason: string,
  ) {
    super(`line ${line}: ${reason}`);
  }
}

const COUNTERS = /^\[(\d+):(\d+)\]/;

function decode(input: Buffer | string): { text: string; encoding: 'utf8' | 'latin1' } {
  if (typeof input === 'string') return { text: input, encoding: 'utf8' };
  const utf8 = input.toString('utf8');
  return Buffer.from(utf8, 'utf8').equals(input) ? { text: utf8, encoding: 'utf8' } : { text: input.toString('latin1'), encoding: 'latin1' };
}

export function parse(input: Buffer | string): RulesDocument {
  const { text, encoding } = decode(input);
  const raws = text.split('\n');
  const finalNewline = raws.length > 1 && raws[raws.length - 1] === '';
  if (finalNewline || text === '') raws.pop();
  const lines: Line[] = [];
  let open: string | null = null;
  raws.forEach((raw, i) => {
    const n = i + 1;
    const content = raw.endsWith('\r') ? raw.slice(0, -1) : raw;
    const trimmed = content.trim();
    if (trimmed === '') {
      lines.push({ kind: 'blank', raw });
    } else if (content.startsWith('#')) {
      lines.push({ kind: 'comment', raw });
    } else if (content.startsWith('*')) {
      if (open !== null) throw new IptablesSaveSyntaxError(n, `table ${open} is not closed with COMMIT before *${trimmed.slice(1)}`);
      const table = trimmed.slice(1).trim();
      if (!/^[a-z_]+$/.test(table)) throw new IptablesSaveSyntaxError(n, `bad table name "${table}"`);
      open = table;
      lines.push({ kind: 'table', raw, table });
    } else if (trimmed === 'COMMIT') {
      if (open === null) throw new IptablesSaveSyntaxError(n, 'COMMIT outside a table');
      lines.push({ kind: 'commit', raw, table: open });
      open = null;
    } else if (content.startsWith(':')) {
      if (open === null) throw new IptablesSaveSyntaxError(n, 'chain declared outside a table');
      const words = content.slice(1).trim().split(/\s+/);
      const [chain, policy, counterWord, ...extra] = words;
      if (!chain || !policy || extra.length) throw new IptablesSaveSyntaxError(n, `bad chain line "${content}"`);
      let counters: Counters | null = null;
      if (counterWord !== undefined) {
        const m = COUNTERS.exec(counterWord);
        if (!m || m[0] !== counterWord) throw new IptablesSaveSyntaxError(n, `bad counters "${counterWord}"`);
        counters = { packets: m[1]!, bytes: m[2]! };
      }
      lines.push({ kind: 'chain', raw, table: open, chain, policy, counters });
    } else if (trimmed.startsWith('-') || trimmed.startsWith('[')) {
      if (open === null) throw new IptablesSaveSyntaxError(n, 'command outside a table');
      let rest = trimmed;
      let counters: Counters | null = null;
      const m = COUNTERS.exec(rest);
      if (m) {
        counters = { packets: m[1]!, bytes: m[2]! };
        rest = rest.slice(m[0].length);
      } else if (rest.startsWith('[')) {
        throw new IptablesSaveSyntaxError(n, `bad counters in "${content}"`);
      }
      const words = splitArgs(rest);
      if (words[0] === '-A' || words[0] === '--append') {
        if (!words[1]) throw new IptablesSaveSyntaxError(n, 'rule without a chain');
        lines.push({ kind: 'rule', raw, table: open, chain: words[1], args: words.slice(2), counters });
      } else {
        lines.push({ kind: 'command', raw, table: open, args: words, counters });
      }
    } else {
      throw new IptablesSaveSyntaxError(n, `unrecognised line "${content}"`);
    }
  });
  if (open !== null) throw new IptablesSaveSyntaxError(raws.length, `table ${open} has no COMMIT`);
  const crlf = raws.length > 0 && raws[0]!.endsWith('\r');
  return { lines, finalNewline, encoding, crlf };
}

export function print(doc: RulesDocument): Buffer {
  const text = doc.lines.map((l) => l.raw).join('\n') + (doc.finalNewline ? '\n' : '');
  return Buffer.from(text, doc.encoding);
}

/** The words of a command line, as iptables-restore splits them. */
export function splitArgs(text: string): string[] {
  const words: string[] = [];
  let word = '';
  let quoted = false;
  let escaped = false;
  for (const ch of text) {
    if (quoted) {
      if (escaped) {
        word += ch;
        escaped = false;
      } else if (ch === '\\') {
        escaped = true;
      } else if (ch === '"') {
        // A closing quote ends the word even when it is empty or more text follows at once.
        quoted = false;
        words.push(word);
        word = '';
      } else {
        word += ch;
      }
    } else if (ch === '"') {
      quoted = true;
    } else if (ch === ' ' || ch === '\t') {
      if (word !== '') words.push(word);
      word = '';
    } else {
      word += ch;
    }
  }
  if (word !== '') words.push(word);
  return words;
}

/** Quote a string value the way iptables-save does (`--comment`, `--log-prefix`). */
export function saveString(value: string): string {
  if (/^[_\-0-9a-zA-Z]+$/.test(value)) return value;
  return `"${value.replace(/["\\']/g, '\\$&')}"`;
}

/** One word for a rules file: bare when iptables-restore reads it back unchanged, else quoted. */
function word(value: string): string {
  return /^[^\s"\\]+$/.test(value) ? value : saveString(value);
}

/** Options whose values iptables-save prints through its string quoting. */
const STRING_OPTIONS = new Set(['--comment', '--log-prefix', '--nflog-prefix']);

/** Join words into the text of a rule line, quoting where needed. */
export function formatArgs(args: readonly string[]): string {
  return args.map((a, i) => (i > 0 && STRING_OPTIONS.has(args[i - 1]!) ? saveString(a) : word(a))).join(' ');
}

/** The text of a rule line as iptables-save prints it (no counters): `-A INPUT -p tcp …`. */
export function ruleText(chain: string, args: readonly string[]): string {
  return args.length ? `-A ${chain} ${formatArgs(args)}` : `-A ${chain}`;
}

// ---------------------------------------------------------------------------------------------------------------
// Value spellings

/** Port names a rule may use, with what iptables-save prints for them (IANA numbers, /etc/services names). */
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

function canonicalFlags(value: string): string {
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

const LOG_LEVELS: Readonly<Record<string, string>> = {
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

function parseIPv4(s: string): number[] | null {
  const parts = s.split('.');
  if (parts.length !== 4 || !parts.every((p) => /^\d{1,3}$/.test(p) && Number(p) <= 255)) return null;
  return parts.map(Number);
}

function parseIPv6(s: string): number[] | null {
  let text = s.toLowerCase();
  let tail: number[] | null = null;
  if (text.includes('.')) {
    // An embedded IPv4 address fills the last two words: parse it apart and stand in two zero words for it.
    const at = text.lastIndexOf(':');
    const v4 = parseIPv4(text.slice(at + 1));
    if (!v4) return null;
    tail = [(v4[0]! << 8) | v4[1]!, (v4[2]! << 8) | v4[3]!];
    text = `${text.slice(0, at + 1)}0:0`;
  }
  const group = (g: string) => (/^[0-9a-f]{1,4}$/.test(g) ? parseInt(g, 16) : NaN);
  let words: number[];
  const halves = text.split('::');
  if (halves.length > 2) return null;
  if (halves.length === 2) {
    const head = halves[0] ? halves[0].split(':').map(group) : [];
    const rest = halves[1] ? halves[1].split(':').map(group) : [];
    if (head.length + rest.length > 7) return null;
    words = [...head, ...new Array<number>(8 - head.length - rest.length).fill(0), ...rest];
  } else {
    words = text.split(':').map(group);
    if (words.length !== 8) return null;
  }
  if (words.some((w) => Number.isNaN(w))) return null;
  if (tail) words.splice(6, 2, ...tail);
  return words;
}

/** IPv6 words as glibc's inet_ntop prints them (what iptables-save shows). */
function formatIPv6(w: number[]): string {
  let best = { base: -1, len: 0 };
  let cur = { base: -1, len: 0 };
  for (let i = 0; i < 8; i++) {
    if (w[i] === 0) {
      cur = cur.base === -1 ? { base: i, len: 1 } : { base: cur.base, len: cur.len + 1 };
      if (cur.len > best.len) best = { ...cur };
    } else {
      cur = { base: -1, len: 0 };
    }
  }
  if (best.len < 2) best = { base: -1, len: 0 };
  let out = '';
  for (let i = 0; i < 8; i++) {
    if (best.base !== -1 && i >= best.base && i < best.base + best.len) {
      if (i === best.base) out += ':';
      continue;
    }
    if (i !== 0) out += ':';
    if (i === 6 && best.base === 0 && (best.len === 6 || (best.len === 5 && w[5] === 0xffff))) {
      out += `${w[6]! >> 8}.${w[6]! & 255}.${w[7]! >> 8}.${w[7]! & 255}`;
      return out;
    }
    out += w[i]!.toString(16);
  }
  if (best.base !== -1 && best.base + best.len === 8) out += ':';
  return out;
}

/** Bits of an address as an array of 0/1, and back: masks are handled bit by bit for both families. */
function toBits(words: number[], width: number): number[] {
  return words.flatMap((x) => Array.from({ length: width }, (_, i) => (x >> (width - 1 - i)) & 1));
}
function fromBits(bits: number[], width: number): number[] {
  const out: number[] = [];
  for (let i = 0; i < bits.length; i += width) out.push(bits.slice(i, i + width).reduce((a, b) => a * 2 + b, 0));
  return out;
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
  const v6 = addr.includes(':');
  const words = v6 ? parseIPv6(addr) : parseIPv4(addr);
  if (!words) return value;
  const width = v6 ? 16 : 8;
  const total = v6 ? 128 : 32;
  let maskBits: number[];
  if (maskText === null) {
    maskBits = new Array<number>(total).fill(1);
  } else if (/^\d+$/.test(maskText)) {
    const n = Number(maskText);
    if (n > total) return value;
    maskBits = Array.from({ length: total }, (_, i) => (i < n ? 1 : 0));
  } else {
    const m = v6 ? parseIPv6(maskText) : parseIPv4(maskText);
    if (!m) return value;
    maskBits = toBits(m, width);
  }
  const bits = toBits(words, width).map((b, i) => b & maskBits[i]!);
  const prefix = maskBits.indexOf(0) < 0 ? total : maskBits.indexOf(0);
  const contiguous = maskBits.slice(prefix).every((b) => b === 0);
  if (contiguous && prefix === 0) return null;
  const fmt = (ws: number[]) => (v6 ? formatIPv6(ws) : ws.join('.'));
  const masked = fmt(fromBits(bits, width));
  return `${masked}/${contiguous ? prefix : fmt(fromBits(maskBits, width))}`;
}

/** Whether a value is an IPv4 or IPv6 address or network (not a host name), of the family when one is given. */
export function isAddress(value: string, family?: Family): boolean {
  const [addr, mask, ...extra] = value.split('/');
  if (extra.length || addr === undefined) return false;
  const v6 = addr.includes(':');
  if (family !== undefined && (family === 6) !== v6) return false;
  const parser = v6 ? parseIPv6 : parseIPv4;
  if (!parser(addr)) return false;
  if (mask === undefined) return true;
  return /^\d+$/.test(mask) ? Number(mask) <= (v6 ? 128 : 32) : parser(mask) !== null;
}

// ---------------------------------------------------------------------------------------------------------------
// Rule structure

/** One option of a match or target: `! --dport 22` is { name: '--dport', negated: true, values: ['22'] }. */
export interface RuleOption {
  name: string;
  negated: boolean;
  values: string[];
}

/** A rule broken into the parts iptables-save prints in a fixed order. */
export interface RuleParts {
  /** -s, -d, -i, -o, -p, -f in that order, absent ones left out */
  base: RuleOption[];
  /** `-m name` blocks in order of first appearance (protocol matches loaded implicitly included) */
  matches: { name: string; options: RuleOption[] }[];
  /** `-j` / `-g` and its options */
  target: { flag: '-j' | '-g'; name: string; options: RuleOption[] } | null;
}

interface OptionSpec {
  /** canonical name without dashes */
  name: string;
  /** how many words follow */
  values: number;
  normalize?: (values: string[], family: Family) => string[];
}

interface ExtensionSpec {
  /** option aliases (without dashes) → spec */
  options: Record<string, OptionSpec>;
  /** canonical option names in the order iptables-save prints them */
  order: string[];
  /** options printed only when they differ from this default */
  defaults?: Record<string, string>;
  /** several blocks of this match merge into one (iptables-nft prints them so) */
  merges?: boolean;
}

const port = (v: string[]) => [canonicalPort(v[0]!)];
const portList = (v: string[]) => [v[0]!.split(',').map(canonicalPort).join(',')];
const states = (v: string[]) => [canonicalStates(v[0]!)];
const opt = (name: string, values = 1, normalize?: OptionSpec['normalize']): OptionSpec => ({ name, values, ...(normalize ? { normalize } : {}) });

const portMatch = (extra: Record<string, OptionSpec> = {}, extraOrder: string[] = []): ExtensionSpec => ({
  options: {
    sport: opt('sport', 1, port),
    'source-port': opt('sport', 1, port),
    dport: opt('dport', 1, port),
    'destination-port': opt('dport', 1, port),
    ...extra,
  },
  order: ['sport', 'dport', ...extraOrder],
  merges: true,
});

const MATCHES: Readonly<Record<string, ExtensionSpec>> = {
  tcp: portMatch(
    {
      'tcp-option': opt('tcp-option'),
      'tcp-flags': opt('tcp-flags', 2, (v) => [canonicalFlags(v[0]!), canonicalFlags(v[1]!)]),
      syn: opt('syn', 0),
    },
    ['tcp-option', 'tcp-flags'],
  ),
  udp: portMatch(),
  sctp: portMatch({ 'chunk-types': opt('chunk-types', 2) }, ['chunk-types']),
  dccp: portMatch(),
  icmp: {
    options: { 'icmp-type': opt('icmp-type', 1, (v) => [ICMP_TYPES[v[0]!.toLowerCase()] ?? v[0]!]) },
    order: ['icmp-type'],
  },
  icmp6: {
    options: { 'icmpv6-type': opt('icmpv6-type', 1, (v) => [ICMP6_TYPES[v[0]!.toLowerCase()] ?? v[0]!]) },
    order: ['icmpv6-type'],
  },
  state: { options: { state: opt('state', 1, states) }, order: ['state'] },
  conntrack: {
    options: {
      ctstate: opt('ctstate', 1, states),
      ctproto: opt('ctproto', 1, (v) => [PROTOCOL_NUMBERS[canonicalProtocol(v[0]!) ?? ''] ?? v[0]!]),
      ...Object.fromEntries(
        ['ctorigsrc', 'ctorigdst', 'ctreplsrc', 'ctrepldst'].map((n) => [n, opt(n, 1, (v) => [canonicalAddress(v[0]!) ?? v[0]!])]),
      ),
      ...Object.fromEntries(['ctorigsrcport', 'ctorigdstport', 'ctreplsrcport', 'ctrepldstport'].map((n) => [n, opt(n, 1, port)])),
      ctstatus: opt('ctstatus'),
      ctexpire: opt('ctexpire'),
      ctdir: opt('ctdir'),
    },
    order: [
      'ctstate',
      'ctproto',
      'ctorigsrc',
      'ctorigdst',
      'ctreplsrc',
      'ctrepldst',
      'ctorigsrcport',
      'ctorigdstport',
      'ctreplsrcport',
      'ctrepldstport',
      'ctstatus',
      'ctexpire',
      'ctdir',
    ],
  },
  multiport: {
    options: {
      sports: opt('sports', 1, portList),
      'source-ports': opt('sports', 1, portList),
      dports: opt('dports', 1, portList),
      'destination-ports': opt('dports', 1, portList),
      ports: opt('ports', 1, portList),
    },
    order: ['sports', 'dports', 'ports'],
  },
  comment: { options: { comment: opt('comment') }, order: ['comment'] },
};

const TARGETS: Readonly<Record<string, ExtensionSpec>> = {
  ACCEPT: { options: {}, order: [] },
  DROP: { options: {}, order: [] },
  RETURN: { options: {}, order: [] },
  QUEUE: { options: {}, order: [] },
  REJECT: {
    options: { 'reject-with': opt('reject-with', 1, (v, family) => [canonicalRejectWith(v[0]!, family) ?? v[0]!]) },
    order: ['reject-with'],
  },
  LOG: {
    options: {
      'log-prefix': opt('log-prefix'),
      'log-level': opt('log-level', 1, (v) => [LOG_LEVELS[v[0]!.toLowerCase()] ?? v[0]!]),
      'log-tcp-sequence': opt('log-tcp-sequence', 0),
      'log-tcp-options': opt('log-tcp-options', 0),
      'log-ip-options': opt('log-ip-options', 0),
      'log-uid': opt('log-uid', 0),
      'log-macdecode': opt('log-macdecode', 0),
    },
    order: ['log-prefix', 'log-level', 'log-tcp-sequence', 'log-tcp-options', 'log-ip-options', 'log-uid', 'log-macdecode'],
    defaults: { 'log-level': '4' },
  },
};

/** The match a protocol loads by itself when one of its options follows `-p`. */
const PROTOCOL_MATCH: Readonly<Record<string, string>> = {
  tcp: 'tcp',
  udp: 'udp',
  sctp: 'sctp',
  dccp: 'dccp',
  icmp: 'icmp',
  'ipv6-icmp': 'icmp6',
};

const BASE: Readonly<Record<string, string>> = {
  '-s': '-s',
  '--source': '-s',
  '--src': '-s',
  '-d': '-d',
  '--destination': '-d',
  '--dst': '-d',
  '-i': '-i',
  '--in-interface': '-i',
  '-o': '-o',
  '--out-interface': '-o',
  '-p': '-p',
  '--protocol': '-p',
  '-f': '-f',
  '--fragment': '-f',
};
const BASE_ORDER = ['-s', '-d', '-i', '-o', '-p', '-f'];

function takesValue(word: string | undefined): boolean {
  return word !== undefined && word !== '!' && !(word.startsWith('-') && word.length > 1 && !/^-\d/.test(word));
}

/**
 * Break a rule's words (after `-A CHAIN`) into parts, spelled as iptables-save prints them. Options of known
 * extensions are normalised (ports, states, flags, ICMP types, reject replies, log levels); unknown extensions keep
 * their words in the order given.
 */
export function parseRule(args: readonly string[], family: Family): RuleParts {
  const base = new Map<string, RuleOption>();
  const matches: RuleParts['matches'] = [];
  let target: RuleParts['target'] = null;
  // Known options are attached to the block that understands them; an unknown match takes what follows it.
  type Owner = { kind: 'match'; index: number } | { kind: 'target' } | null;
  let owner: Owner = null;
  let negate = false;

  let protocol: string | null = null;
  for (let i = 0; i < args.length; i++) {
    if (BASE[args[i]!] === '-p' && args[i + 1] !== undefined) protocol = canonicalProtocol(args[i + 1]!);
  }

  const specOfMatch = (name: string) => MATCHES[name];
  const findMatch = (name: string) => matches.findIndex((m) => m.name === name);
  const addMatch = (name: string): number => {
    const spec = specOfMatch(name);
    const existing = findMatch(name);
    if (spec?.merges && existing >= 0) return existing;
    matches.push({ name, options: [] });
    return matches.length - 1;
  };
  const pushOption = (options: RuleOption[], name: string, values: string[]) => {
    options.push({ name, negated: negate, values });
    negate = false;
  };
  const ownerSpec = (o: Owner): ExtensionSpec | undefined =>
    o?.kind === 'match' ? specOfMatch(matches[o.index]!.name) : o?.kind === 'target' ? TARGETS[target!.name] : undefined;

  let i = 0;
  const take = (n: number): string[] => {
    const v = args.slice(i + 1, i + 1 + n);
    i += n;
    return v;
  };
  const takeLoose = (): string[] => {
    const v: string[] = [];
    while (takesValue(args[i + 1])) v.push(args[++i]!);
    return v;
  };

  for (; i < args.length; i++) {
    const w = args[i]!;
    if (w === '!') {
      negate = true;
      continue;
    }
    const b = BASE[w];
    if (b) {
      const values = b === '-f' ? [] : take(1);
      base.set(b, { name: b, negated: negate, values });
      negate = false;
      continue;
    }
    if (w === '-m' || w === '--match') {
      const name = take(1)[0] ?? '';
      owner = { kind: 'match', index: addMatch(name) };
      continue;
    }
    if (w === '-j' || w === '--jump' || w === '-g' || w === '--goto') {
      target = { flag: w === '-g' || w === '--goto' ? '-g' : '-j', name: take(1)[0] ?? '', options: [] };
      owner = { kind: 'target' };
      continue;
    }
    if (w === '-c' || w === '--set-counters') {
      take(2);
      continue;
    }
    if (w === '-4' || w === '--ipv4' || w === '-6' || w === '--ipv6') continue;

    const name = w.replace(/^--?/, '');
    let dest: Owner = null;
    let spec: OptionSpec | undefined;
    if (owner && ownerSpec(owner)?.options[name]) {
      dest = owner;
      spec = ownerSpec(owner)!.options[name];
    } else if (owner?.kind === 'match' && !ownerSpec(owner)) {
      dest = owner;
    } else {
      // Options after an unknown target (a user chain, MASQUERADE, …) may still belong to a match: iptables-save
      // prints the target last, and an option only a match knows cannot be the target's.
      const earlier = matches.findIndex((m) => specOfMatch(m.name)?.options[name] !== undefined);
      const implicit = protocol ? PROTOCOL_MATCH[protocol] : undefined;
      if (earlier >= 0) {
        dest = { kind: 'match', index: earlier };
      } else if (implicit && specOfMatch(implicit)!.options[name]) {
        dest = { kind: 'match', index: addMatch(implicit) };
      } else if (target && TARGETS[target.name]?.options[name]) {
        dest = { kind: 'target' };
      } else {
        dest = owner;
      }
      spec = ownerSpec(dest)?.options[name];
    }
    const values = spec ? take(spec.values) : takeLoose();
    const options = dest?.kind === 'match' ? matches[dest.index]!.options : dest?.kind === 'target' ? target!.options : null;
    if (options === null) {
      // An option no block claims: keep it in a nameless block so the words are not lost.
      matches.push({ name: '', options: [] });
      owner = { kind: 'match', index: matches.length - 1 };
      pushOption(matches[matches.length - 1]!.options, w, values);
      continue;
    }
    if (spec?.name === 'syn') {
      pushOption(options, '--tcp-flags', ['FIN,SYN,RST,ACK', 'SYN']);
      continue;
    }
    if (!spec) pushOption(options, w, values);
    else pushOption(options, `--${spec.name}`, spec.normalize ? spec.normalize(values, family) : values);
  }

  const baseParts: RuleOption[] = [];
  for (const key of BASE_ORDER) {
    const o = base.get(key);
    if (!o) continue;
    if (key === '-s' || key === '-d') {
      const a = canonicalAddress(o.values[0] ?? '');
      if (a === null && !o.negated) continue;
      baseParts.push({ ...o, values: [a ?? (family === 6 ? '::/0' : '0.0.0.0/0')] });
    } else if (key === '-p') {
      const p = canonicalProtocol(o.values[0] ?? '');
      if (p === null && !o.negated) continue;
      baseParts.push({ ...o, values: [p ?? 'all'] });
    } else {
      baseParts.push(o);
    }
  }

  const ordered = (spec: ExtensionSpec | undefined, options: RuleOption[]): RuleOption[] => {
    if (!spec) return options;
    // Only an option with a default, given with that value, goes (a flag without values has no default to match).
    const isDefault = (o: RuleOption) => {
      const d = spec.defaults?.[o.name.slice(2)];
      return d !== undefined && d === o.values[0] && !o.negated;
    };
    const kept = options.filter((o) => !isDefault(o));
    const rank = (o: RuleOption) => {
      const r = spec.order.indexOf(o.name.slice(2));
      return r < 0 ? spec.order.length : r;
    };
    return kept.map((o, idx) => ({ o, idx })).sort((a, b) => rank(a.o) - rank(b.o) || a.idx - b.idx).map((x) => x.o);
  };

  const finalMatches = matches.map((m) => ({ name: m.name, options: ordered(specOfMatch(m.name), m.options) }));
  if (target?.name === 'REJECT' && !target.options.some((o) => o.name === '--reject-with')) {
    target.options.push({ name: '--reject-with', negated: false, values: [family === 6 ? 'icmp6-port-unreachable' : 'icmp-port-unreachable'] });
  }
  const finalTarget = target ? { ...target, options: ordered(TARGETS[target.name], target.options) } : null;
  return { base: baseParts, matches: finalMatches, target: finalTarget };
}

function optionWords(o: RuleOption): string[] {
  return [...(o.negated ? ['!'] : []), o.name, ...o.values];
}

/** Rule parts back to words, in iptables-save order. */
export function ruleWords(parts: RuleParts): string[] {
  const words: string[] = [];
  for (const o of parts.base) words.push(...optionWords(o));
  for (const m of parts.matches) {
    if (m.name) words.push('-m', m.name);
    for (const o of m.options) words.push(...optionWords(o));
  }
  if (parts.target) {
    words.push(parts.target.flag, parts.target.name);
    for (const o of parts.target.options) words.push(...optionWords(o));
  }
  return words;
}

/** A rule's words as iptables-save would print them: `-p tcp --dport smtps -j ACCEPT` → `-p tcp -m tcp --dport 465 -j ACCEPT`. */
export function canonicalRule(args: readonly string[], family: Family): string[] {
  return ruleWords(parseRule(args, family));
}

/**
 * Rule identity: equal keys mean the rules match the same packets and do the same thing. On top of the canonical
 * spelling, `-m state --state` counts as `-m conntrack --ctstate`, the order of match blocks does not matter and
 * comments are ignored.
 */
export function ruleKey(args: readonly string[], family: Family): string {
  const parts = parseRule(args, family);
  const matches = parts.matches
    .filter((m) => m.name !== 'comment')
    .map((m) =>
      m.name === 'state'
        ? { name: 'conntrack', options: m.options.map((o) => (o.name === '--state' ? { ...o, name: '--ctstate' } : o)) }
        : m,
    )
    .map((m) => JSON.stringify(ruleWords({ base: [], matches: [m], target: null })))
    .sort();
  const base = ruleWords({ base: parts.base, matches: [], target: null });
  const target = parts.target ? ruleWords({ base: [], matches: [], target: parts.target }) : [];
  return JSON.stringify([base, matches, target]);
}

/** An unconditional REJECT or DROP (comments allowed): nothing after it in the chain sees a packet. */
export function isFinalReject(args: readonly string[], family: Family): boolean {
  const parts = parseRule(args, family);
  return (
    parts.base.length === 0 &&
    parts.matches.every((m) => m.name === 'comment') &&
    parts.target?.flag === '-j' &&
    (parts.target.name === 'REJECT' || parts.target.name === 'DROP')
  );
}

// ---------------------------------------------------------------------------------------------------------------
// Queries and edits on a document

export const BUILTIN_CHAINS: Readonly<Record<string, readonly string[]>> = {
  filter: ['INPUT', 'FORWARD', 'OUTPUT'],
  nat: ['PREROUTING', 'INPUT', 'OUTPUT', 'POSTROUTING'],
  mangle: ['PREROUTING', 'INPUT', 'FORWARD', 'OUTPUT', 'POSTROUTING'],
  raw: ['PREROUTING', 'OUTPUT'],
  security: ['INPUT', 'FORWARD', 'OUTPUT'],
};

/** A table section: line indexes of `*table` and its `COMMIT`. */
export interface TableSection {
  table: string;
  start: number;
  commit: number;
}

export function tableSections(doc: RulesDocument, table?: string): TableSection[] {
  const out: TableSection[] = [];
  let start = -1;
  doc.lines.forEach((l, i) => {
    if (l.kind === 'table') start = i;
    if (l.kind === 'commit') {
      const name = (doc.lines[start] as Extract<Line, { kind: 'table' }>).table;
      if (table === undefined || name === table) out.push({ table: name, start, commit: i });
    }
  });
  return out;
}

/** A rule line of a chain with its index in `doc.lines`. */
export interface ChainRule {
  index: number;
  line: RuleLine;
}

export function chainRules(doc: RulesDocument, table: string, chain: string): ChainRule[] {
  return doc.lines.flatMap((line, index) => (line.kind === 'rule' && line.table === table && line.chain === chain ? [{ index, line }] : []));
}

/** Whether the chain exists in the table: a built-in chain, a `:CHAIN` declaration or a `-N CHAIN` command. */
export function hasChain(doc: RulesDocument, table: string, chain: string): boolean {
  if (BUILTIN_CHAINS[table]?.includes(chain)) return true;
  return doc.lines.some(
    (l) =>
      (l.kind === 'chain' && l.table === table && l.chain === chain) ||
      (l.kind === 'command' && l.table === table && (l.args[0] === '-N' || l.args[0] === '--new-chain') && l.args[1] === chain),
  );
}

/** Command lines (`-I`, `-D`, …) that touch a chain: their effect depends on order, so line edits would mislead. */
export function chainCommands(doc: RulesDocument, table: string, chain: string): number[] {
  return doc.lines.flatMap((l, i) => (l.kind === 'command' && l.table === table && l.args[1] === chain && l.args[0] !== '-N' && l.args[0] !== '--new-chain' ? [i] : []));
}

/** A rule line for this document (counters `[0:0]` when the file keeps counters on its rules). */
export function makeRuleLine(doc: RulesDocument, table: string, chain: string, args: string[]): RuleLine {
  const withCounters = doc.lines.some((l) => l.kind === 'rule' && l.counters !== null);
  const text = ruleText(chain, args);
  return {
    kind: 'rule',
    raw: `${withCounters ? '[0:0] ' : ''}${text}${doc.crlf ? '\r' : ''}`,
    table,
    chain,
    args,
    counters: withCounters ? { packets: '0', bytes: '0' } : null,
  };
}

/** Document with `line` inserted so that it becomes line `index` (0-based). */
export function insertLine(doc: RulesDocument, index: number, line: Line): RulesDocument {
  const lines = [...doc.lines.slice(0, index), line, ...doc.lines.slice(index)];
  return { ...doc, lines, finalNewline: doc.lines.length === 0 || doc.finalNewline };
}

export function removeLines(doc: RulesDocument, indexes: readonly number[]): RulesDocument {
  const drop = new Set(indexes);
  return { ...doc, lines: doc.lines.filter((_, i) => !drop.has(i)) };
}

/**
 * Document with a table section for `table`, appended (with its built-in chains, policy ACCEPT) when missing, so a
 * rule can be added to it.
 */
export function ensureTable(doc: RulesDocument, table: string): RulesDocument {
  if (tableSections(doc, table).length) return doc;
  const cr = doc.crlf ? '\r' : '';
  const fresh: Line[] = [
    { kind: 'table', raw: `*${table}${cr}`, table },
    ...(BUILTIN_CHAINS[table] ?? []).map(
      (chain): Line => ({ kind: 'chain', raw: `:${chain} ACCEPT [0:0]${cr}`, table, chain, policy: 'ACCEPT', counters: { packets: '0', bytes: '0' } }),
    ),
    { kind: 'commit', raw: `COMMIT${cr}`, table },
  ];
  return { ...doc, lines: [...doc.lines, ...fresh], finalNewline: true };
}

/**
 * Where a new rule of a chain without rules goes: after the rules of the chains declared before it (iptables-save
 * groups rules by chain in declaration order), else before the rules of later chains, else before COMMIT.
 */
function emptyChainSlot(doc: RulesDocument, section: TableSection, chain: string): number {
  const declared: string[] = [];
  for (let i = section.start + 1; i < section.commit; i++) {
    const l = doc.lines[i]!;
    if (l.kind === 'chain') declared.push(l.chain);
  }
  for (const name of BUILTIN_CHAINS[section.table] ?? []) if (!declared.includes(name)) declared.push(name);
  const rank = declared.indexOf(chain);
  let slot = -1;
  let firstLater = -1;
  for (let i = section.start + 1; i < section.commit; i++) {
    const l = doc.lines[i]!;
    if (l.kind !== 'rule') continue;
    const r = declared.indexOf(l.chain);
    if (rank >= 0 && r >= 0 && r < rank) slot = i + 1;
    else if (firstLater < 0) firstLater = i;
  }
  if (slot >= 0) return slot;
  return firstLater >= 0 ? firstLater : section.commit;
}

/**
 * Index before which to insert so a rule lands directly above line `index`, keeping the comment block that
 * introduces that line attached to it.
 */
export function slotAbove(doc: RulesDocument, index: number): number {
  let i = index;
  while (i > 0 && doc.lines[i - 1]!.kind === 'comment') i--;
  return i;
}

/** Index at which a new rule goes for `top` or `bottom` of a chain (the table section must exist). */
export function chainSlot(doc: RulesDocument, table: string, chain: string, where: 'top' | 'bottom'): number {
  const rules = chainRules(doc, table, chain);
  if (rules.length) return where === 'top' ? slotAbove(doc, rules[0]!.index) : rules[rules.length - 1]!.index + 1;
  const section = tableSections(doc, table)[0];
  if (!section) throw new Error(`no table ${table} in the document`);
  return emptyChainSlot(doc, section, chain);
}

// ---------------------------------------------------------------------------------------------------------------
// The ruleset a file loads, and comparing two

export interface LoadedRule {
  args: string[];
  /** `-A CHAIN …` as written (no counters) */
  text: string;
  /** 1-based line in the document */
  line: number;
}

export interface LoadedChain {
  /** policy for built-in chains, `-` for user chains, null when the document leaves it as it was */
  policy: string | null;
  rules: LoadedRule[];
}

/** What iptables-restore (without --noflush) leaves in each table the document mentions. */
export type LoadedRuleset = Map<string, Map<string, LoadedChain>>;

export function loadedRuleset(doc: RulesDocument): LoadedRuleset {
  const tables: LoadedRuleset = new Map();
  let chains = new Map<string, LoadedChain>();
  const chainOf = (name: string): LoadedChain => {
    let c = chains.get(name);
    if (!c) {
      c = { policy: null, rules: [] };
      chains.set(name, c);
    }
    return c;
  };
  const textOf = (l: Extract<Line, { kind: 'rule' | 'command' }>) => {
    const t = l.raw.endsWith('\r') ? l.raw.slice(0, -1) : l.raw;
    return t.trim().replace(COUNTERS, '').trim();
  };
  doc.lines.forEach((l, i) => {
    if (l.kind === 'table') {
      // Each section replaces the whole table: its rules are flushed and its user chains deleted.
      chains = new Map((BUILTIN_CHAINS[l.table] ?? []).map((c) => [c, { policy: null, rules: [] }]));
      tables.set(l.table, chains);
    } else if (l.kind === 'chain') {
      chainOf(l.chain).policy = l.policy;
    } else if (l.kind === 'rule') {
      chainOf(l.chain).rules.push({ args: l.args, text: textOf(l), line: i + 1 });
    } else if (l.kind === 'command') {
      const [op, chain, ...rest] = l.args;
      const num = rest[0] !== undefined && /^\d+$/.test(rest[0]) ? Number(rest[0]) : null;
      const ruleArgs = num === null ? rest : rest.slice(1);
      const rule = (args: string[]): LoadedRule => ({ args, text: ruleText(chain ?? '', args), line: i + 1 });
      switch (op) {
        case '-I':
        case '--insert':
          if (chain) chainOf(chain).rules.splice(Math.max((num ?? 1) - 1, 0), 0, rule(ruleArgs));
          break;
        case '-N':
        case '--new-chain':
          if (chain) chainOf(chain).policy = '-';
          break;
        case '-P':
        case '--policy':
          if (chain && rest[0]) chainOf(chain).policy = rest[0];
          break;
        case '-F':
        case '--flush':
          for (const [name, c] of chains) if (!chain || name === chain) c.rules = [];
          break;
        case '-X':
        case '--delete-chain':
          for (const name of [...chains.keys()]) if ((!chain || name === chain) && chains.get(name)!.policy === '-') chains.delete(name);
          break;
        case '-D':
        case '--delete': {
          if (!chain) break;
          const c = chainOf(chain);
          if (num !== null) c.rules.splice(num - 1, 1);
          else {
            const key = JSON.stringify(ruleArgs);
            const at = c.rules.findIndex((r) => JSON.stringify(r.args) === key);
            if (at >= 0) c.rules.splice(at, 1);
          }
          break;
        }
        case '-R':
        case '--replace':
          if (chain && num !== null) chainOf(chain).rules.splice(num - 1, 1, rule(ruleArgs));
          break;
        case '-E':
        case '--rename-chain':
          if (chain && rest[0] && chains.has(chain)) {
            chains.set(rest[0], chains.get(chain)!);
            chains.delete(chain);
          }
          break;
        default:
          break;
      }
    }
  });
  return tables;
}

// ---------------------------------------------------------------------------------------------------------------
// Comparing like with like: two iptables-save outputs of the same iptables

/** `-A CHAIN …` of a rule line without counters: what iptables-save prints for it. */
function savedText(l: RuleLine): string {
  const t = l.raw.endsWith('\r') ? l.raw.slice(0, -1) : l.raw;
  return t.trim().replace(COUNTERS, '').trim();
}

interface SavedChain {
  policy: string;
  rules: string[];
}

function savedTables(doc: RulesDocument): Map<string, Map<string, SavedChain>> {
  const tables = new Map<string, Map<string, SavedChain>>();
  let chains = new Map<string, SavedChain>();
  for (const l of doc.lines) {
    if (l.kind === 'table') {
      chains = tables.get(l.table) ?? new Map<string, SavedChain>();
      tables.set(l.table, chains);
    } else if (l.kind === 'chain') {
      chains.set(l.chain, { policy: l.policy, rules: chains.get(l.chain)?.rules ?? [] });
    } else if (l.kind === 'rule') {
      const c = chains.get(l.chain) ?? { policy: '-', rules: [] };
      c.rules.push(savedText(l));
      chains.set(l.chain, c);
    }
  }
  return tables;
}

/**
 * The first difference between two iptables-save outputs of the same iptables (the rules file loaded into a
 * throwaway network namespace and read back, and the live ruleset), table by table and chain by chain, ignoring
 * counters; only the tables `expected` has are compared (a restore leaves other tables alone). Both sides were
 * spelled by the same iptables-save, so rules compare as text: whatever the extension, equal meaning is equal
 * text. Null when they agree.
 */
export function diffSaved(expected: RulesDocument, live: RulesDocument): string | null {
  const want = savedTables(expected);
  const have = savedTables(live);
  for (const [table, chains] of want) {
    const liveChains = have.get(table);
    if (!liveChains) return `table ${table}: the rules file loads it, the live ruleset does not have it`;
    for (const name of new Set([...chains.keys(), ...liveChains.keys()])) {
      const f = chains.get(name);
      const l = liveChains.get(name);
      if (!f) return `${table} ${name}: the live ruleset has this chain, the rules file does not`;
      if (!l) return `${table} ${name}: the rules file declares this chain, the live ruleset does not have it`;
      if (f.policy !== l.policy) return `${table} ${name}: policy ${f.policy} in the rules file, ${l.policy} live`;
      for (let i = 0; i < Math.max(f.rules.length, l.rules.length); i++) {
        const a = f.rules[i];
        const b = l.rules[i];
        if (a === b) continue;
        const where = `${table} ${name} rule ${i + 1}`;
        if (a !== undefined && b !== undefined) return `${where}: the rules file loads "${a}", the live ruleset has "${b}"`;
        if (a !== undefined) return `${where}: the rules file loads "${a}", the live ruleset has no such rule`;
        return `${where}: the live ruleset has "${b!}", the rules file has no such rule`;
      }
    }
  }
  return null;
}

/**
 * Whether the model above spells a rule exactly as iptables-save would, so that a difference it finds is a real
 * one: every match and target is modelled (a user chain of the table counts as modelled), and no address is a
 * comma list (iptables-restore makes one rule per address of such a list).
 */
export function modelUnderstands(args: readonly string[], family: Family, chains: ReadonlySet<string>): boolean {
  const parts = parseRule(args, family);
  if (parts.base.some((o) => (o.name === '-s' || o.name === '-d') && (o.values[0] ?? '').includes(','))) return false;
  const modelled = (spec: ExtensionSpec | undefined, options: RuleOption[]) => spec !== undefined && options.every((o) => spec.options[o.name.replace(/^--?/, '')] !== undefined);
  if (parts.matches.some((m) => !m.name || !modelled(MATCHES[m.name], m.options))) return false;
  const t = parts.target;
  return t === null || modelled(TARGETS[t.name], t.options) || (chains.has(t.name) && t.options.length === 0);
}

/** What the model can say about a file against the live ruleset when the kernel cannot normalise it. */
export interface ModelVerdict {
  /** a difference between rules the model spells exactly: a real mismatch */
  mismatch: string | null;
  /** chains the model cannot verify, each with the first rule it does not understand */
  unverifiable: string[];
}

/**
 * Compare a rules file with the live ruleset by the model alone. A chain whose first difference involves a rule
 * the model does not understand is reported as unverifiable, never as a mismatch: its spelling in the kernel is
 * unknown here.
 */
export function verifyByModel(file: RulesDocument, live: RulesDocument, family: Family): ModelVerdict {
  const want = loadedRuleset(file);
  const have = loadedRuleset(live);
  const unverifiable: string[] = [];
  for (const [table, chains] of want) {
    const liveChains = have.get(table) ?? new Map<string, LoadedChain>();
    const known = new Set([...chains.keys(), ...liveChains.keys()]);
    const builtins = BUILTIN_CHAINS[table] ?? [];
    for (const name of known) {
      const f = chains.get(name);
      const l = liveChains.get(name);
      const builtin = builtins.includes(name);
      if (!f && !builtin) return { mismatch: `${table} ${name}: the live ruleset has this chain, the file does not`, unverifiable };
      if (!l && !builtin) return { mismatch: `${table} ${name}: the file declares this chain, the live ruleset does not have it`, unverifiable };
      const fp = f?.policy ?? null;
      const lp = l?.policy ?? null;
      if (builtin && fp !== null && lp !== null && fp !== lp) return { mismatch: `${table} ${name}: policy ${fp} in the file, ${lp} live`, unverifiable };
      const fr = f?.rules ?? [];
      const lr = l?.rules ?? [];
      for (let i = 0; i < Math.max(fr.length, lr.length); i++) {
        const a = fr[i];
        const b = lr[i];
        if (a && b && ruleKey(a.args, family) === ruleKey(b.args, family)) continue;
        const strange = [a, b].find((r) => r && !modelUnderstands(r.args, family, known));
        if (strange) {
          unverifiable.push(`${table} ${name} ("${strange.text}"${strange === a ? ` at line ${a.line}` : ''})`);
          break;
        }
        const where = `${table} ${name} rule ${i + 1}`;
        if (a && b) return { mismatch: `${where}: the file has "${a.text}" (line ${a.line}), the live ruleset has "${b.text}"`, unverifiable };
        if (a) return { mismatch: `${where}: the file has "${a.text}" (line ${a.line}), the live ruleset has no such rule`, unverifiable };
        return { mismatch: `${where}: the live ruleset has "${b!.text}", the file has no such rule`, unverifiable };
      }
    }
  }
  return { mismatch: null, unverifiable };
}

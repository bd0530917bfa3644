/**
 * One iptables rule: its words broken into base options, match blocks and target, each spelled as iptables-save
 * prints it, and rule identity on top of that spelling.
 */
import type { Family } from './document.js';
import {
  LOG_LEVELS,
  canonicalAddress,
  canonicalFlags,
  canonicalIcmpType,
  canonicalPort,
  canonicalProtocol,
  canonicalRejectWith,
  canonicalStates,
  isKnownPort,
  protocolNumber,
} from './spellings.js';

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
    options: { 'icmp-type': opt('icmp-type', 1, (v) => [canonicalIcmpType(v[0]!, 4)]) },
    order: ['icmp-type'],
  },
  icmp6: {
    options: { 'icmpv6-type': opt('icmpv6-type', 1, (v) => [canonicalIcmpType(v[0]!, 6)]) },
    order: ['icmpv6-type'],
  },
  state: { options: { state: opt('state', 1, states) }, order: ['state'] },
  conntrack: {
    options: {
      ctstate: opt('ctstate', 1, states),
      ctproto: opt('ctproto', 1, (v) => [protocolNumber(v[0]!)]),
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

const PORT_OPTIONS = new Set(['--sport', '--dport', '--sports', '--dports', '--ports', '--ctorigsrcport', '--ctorigdstport', '--ctreplsrcport', '--ctrepldstport']);

/** Whether a port option's values are numbers or names the model knows: another name is the host's to resolve. */
function portsSpelled(o: RuleOption): boolean {
  return !PORT_OPTIONS.has(o.name) || o.values.every((v) => v.split(',').every(isKnownPort));
}

/**
 * Whether the model above spells a rule exactly as iptables-save would, so that a difference it finds is a real
 * one: every match and target is modelled (a user chain of the table counts as modelled), and no address is a
 * comma list (iptables-restore makes one rule per address of such a list), and every port is a number or a name
 * of the model's table.
 */
export function modelUnderstands(args: readonly string[], family: Family, chains: ReadonlySet<string>): boolean {
  const parts = parseRule(args, family);
  if (parts.base.some((o) => (o.name === '-s' || o.name === '-d') && (o.values[0] ?? '').includes(','))) return false;
  const modelled = (spec: ExtensionSpec | undefined, options: RuleOption[]) =>
    spec !== undefined && options.every((o) => spec.options[o.name.replace(/^--?/, '')] !== undefined && portsSpelled(o));
  if (parts.matches.some((m) => !m.name || !modelled(MATCHES[m.name], m.options))) return false;
  const t = parts.target;
  return t === null || modelled(TARGETS[t.name], t.options) || (chains.has(t.name) && t.options.length === 0);
}


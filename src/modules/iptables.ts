/**
 * `iptables`: one rule in the persistent rules file (/etc/sysconfig/iptables or /etc/iptables/rules.v4), placed
 * where it takes effect, validated with iptables-restore --test, and compared with the live ruleset. Loading the
 * file is the job of the firewall service (a `service` task, usually a handler).
 */
import { createHash } from 'node:crypto';
import { quote } from '../connection/shell-quote.js';
import { CommandError } from '../errors.js';
import {
  IptablesSaveSyntaxError,
  type ChainRule,
  type Family,
  type Line,
  type RulesDocument,
  chainCommands,
  chainRules,
  chainSlot,
  ensureTable,
  formatArgs,
  hasChain,
  insertLine,
  makeRuleLine,
  parse,
  print,
  removeLines,
  ruleText,
  slotAbove,
  splitArgs,
  tableSections,
} from '../formats/iptables/document.js';
import { canonicalRule, isFinalReject, modelUnderstands, parseRule, ruleKey } from '../formats/iptables/rule.js';
import { loadedRuleset } from '../formats/iptables/ruleset.js';
import {
  CONNTRACK_STATES,
  canonicalPort,
  canonicalProtocol,
  canonicalRejectWith,
  canonicalStates,
  isAddress,
  isKnownPort,
} from '../formats/iptables/spellings.js';
import type { Facts } from '../facts/types.js';
import { NORMALISE_FN } from './netns-normalise.js';
import { type FileChange, type Module, ModuleError, type Plan, type ReadCommand, type Reads, type TaskContext, type Validation } from './module.js';
import type { ArgsOf } from './module.js';

export type Position = 'before_final_reject' | 'top' | 'bottom';

export type IptablesArgs = ArgsOf<typeof iptablesSchema>;

export type IpVersion = 4 | 6 | 'ipv4' | 'ipv6' | 'both';

const PORT_PROTOCOLS = ['tcp', 'udp', 'sctp', 'dccp'];

/** The arguments a raw `rule` replaces. */
const RULE_FIELDS = ['protocol', 'source', 'destination', 'in_interface', 'out_interface', 'sport', 'dport', 'ctstate', 'jump', 'reject_with', 'comment'] as const;

/** The chain a candidate rule is loaded into beside the rules file, to be read back in the kernel's spelling. */
const CANDIDATE_CHAIN = 'PV_CANDIDATE';

/**
 * The read-only command that loads the rules file, then the task's raw rule into a chain of its own, into a
 * throwaway network namespace and prints `STATUS` and what iptables-save printed there (see pv_norm). Asked only
 * for raw rules the model does not spell exactly; the runner fetches it with the play's other reads, so it costs
 * no round trip of its own.
 */
export function normaliseCommand(family: Family, rulesFile: string, table: string, rule: string): { key: string; script: string } {
  const line = `-A ${CANDIDATE_CHAIN} ${formatArgs(splitArgs(rule))}`;
  const key = `iptables-normalise:${family}:${rulesFile}:${table}:${createHash('sha256').update(line).digest('hex').slice(0, 16)}`;
  const script = [
    NORMALISE_FN,
    'pv_d=$(mktemp -d) || exit 1',
    `cat > "$pv_d/candidate" <<'PV_CANDIDATE_END'`,
    `*${table}`,
    `:${CANDIDATE_CHAIN} - [0:0]`,
    line,
    'COMMIT',
    'PV_CANDIDATE_END',
    `pv_norm ${family} ${quote(rulesFile)} "$pv_d/out" "$pv_d/candidate"`,
    `printf '%s\\n' "$pv_nst"; cat "$pv_d/out"; rm -rf "$pv_d"`,
  ].join('\n');
  return { key, script };
}

/** Whether the model alone spells this raw rule as iptables-save does (then no namespace is needed). */
const modelled = (args: IptablesArgs, family: Family): boolean =>
  args.rule === undefined || modelUnderstands(splitArgs(args.rule), family, new Set([args.chain, ...splitArgs(args.rule).filter((_, i, w) => w[i - 1] === '-j' || w[i - 1] === '-g')]));

/** The read-only command that prints the live ruleset of a family; its key is shared by every task of the run. */
export function liveRulesetCommand(family: Family): ReadCommand {
  // The kernel's state only: a command limited to named paths leaves it as it was.
  return family === 6 ? { key: 'iptables-save:6', script: 'ip6tables-save', dependsOn: [] } : { key: 'iptables-save:4', script: 'iptables-save', dependsOn: [] };
}

/** How a rules file is checked before it replaces the real one. */
export function restoreTest(family: Family): Validation {
  const cmd = family === 6 ? 'ip6tables-restore' : 'iptables-restore';
  // stdin rather than a file argument: iptables-restore 1.4 (RHEL 6) reads only stdin.
  return { script: `${cmd} --test < "$CANDIDATE"`, description: `${cmd} --test` };
}

/** Firewalls whose rules are not kept in an iptables-services or netfilter-persistent file, and why. */
const UNSUPPORTED: Partial<Record<Facts['firewall'], string>> = {
  firewalld: 'firewalld is active',
  ufw: 'ufw is enabled',
  nftables: 'nftables only (no iptables command)',
  none: 'no firewall tooling (neither iptables nor nft)',
};

/** Throws unless the host keeps its rules in an iptables-services or netfilter-persistent file. */
export function assertIptablesFirewall(facts: Facts): void {
  const what = UNSUPPORTED[facts.firewall];
  if (what) {
    throw new ModuleError(
      `unsupported firewall: ${what}; the iptables module edits iptables-services (/etc/sysconfig/iptables) or netfilter-persistent (/etc/iptables/rules.v4) rules files`,
    );
  }
}

interface Settings {
  family: Family;
  table: string;
  chain: string;
  state: 'present' | 'absent';
  position: Position;
  rulesFile: string;
}

/** The one family `ip_version` names, or null for `both` and when it is not given. */
function askedFamily(args: IptablesArgs): Family | null {
  const v = args.ip_version;
  return v === 6 || v === 'ipv6' ? 6 : v === 4 || v === 'ipv4' ? 4 : null;
}

/** The family the rule's own words tie it to (an address, an ICMP reply only one family has), or null. */
function wordsFamily(args: IptablesArgs): Family | null {
  if (args.rule !== undefined) {
    const base = parseRule(splitArgs(args.rule), 4).base.find((o) => o.name === '-s' || o.name === '-d');
    return base ? (base.values[0]!.includes(':') ? 6 : 4) : null;
  }
  for (const a of [args.source, args.destination]) if (a !== undefined) return a.includes(':') ? 6 : 4;
  if (args.reject_with !== undefined) {
    const in4 = canonicalRejectWith(args.reject_with, 4) !== null;
    const in6 = canonicalRejectWith(args.reject_with, 6) !== null;
    if (in4 !== in6) return in4 ? 4 : 6;
  }
  return null;
}

/** The family of one rule spelled from the arguments (the first of familiesOf when several apply). */
const familyOf = (args: IptablesArgs): Family => askedFamily(args) ?? wordsFamily(args) ?? 4;

/**
 * The families a task edits. `ip_version` when it names one; `both` for both; otherwise the family the rule's
 * words tie it to, else both when the host has a global IPv6 address or an IPv6 rules file (the same port opened
 * for both families), else IPv4. A task with its own `rules_file` edits that one file (IPv4 unless asked).
 */
export function familiesOf(args: IptablesArgs, facts: Facts): Family[] {
  const asked = askedFamily(args);
  if (asked) return [asked];
  if (args.ip_version === 'both') return [4, 6];
  const tied = wordsFamily(args);
  if (tied || args.rules_file !== undefined) return [tied ?? 4];
  return facts.ip6tables_rules_file && (facts.ipv6_global || facts.ip6tables_rules_exists) ? [4, 6] : [4];
}

/** The task's rules file: its `rules_file`, else the host's file for the family (plan and reads must agree). */
const rulesFileOf = (args: IptablesArgs, facts: Facts, family: Family): string | null =>
  args.rules_file ?? (family === 6 ? facts.ip6tables_rules_file : facts.iptables_rules_file);

function settings(args: IptablesArgs, facts: Facts, family: Family): Settings {
  assertIptablesFirewall(facts);
  const rulesFile = rulesFileOf(args, facts, family);
  if (!rulesFile) throw new ModuleError(`no IPv${family} rules file is known for this host (${facts.firewall}); give rules_file`);
  return {
    family,
    table: args.table ?? 'filter',
    chain: args.chain,
    state: args.state ?? 'present',
    // A rule below an unconditional REJECT/DROP never sees a packet, so only such a catch-all goes to the bottom.
    position: args.position ?? (isFinalReject(ruleFromArgs(args, family), family) ? 'bottom' : 'before_final_reject'),
    rulesFile,
  };
}

function stateList(ctstate: string | string[]): string[] {
  return (Array.isArray(ctstate) ? ctstate : ctstate.split(',')).map((s) => s.trim().toUpperCase()).filter(Boolean);
}

function protocolOf(args: IptablesArgs, family: Family): string | undefined {
  if (args.protocol === undefined) return undefined;
  const p = args.protocol.toLowerCase();
  // On IPv6 "icmp" can only mean ICMPv6: protocol 1 never reaches an IPv6 host.
  return family === 6 && p === 'icmp' ? 'ipv6-icmp' : p;
}

/** The rule's words in iptables-save's spelling, so a later comparison with the live ruleset is exact. */
export function ruleFromArgs(args: IptablesArgs, family: Family = familyOf(args)): string[] {
  if (args.rule !== undefined) return canonicalRule(splitArgs(args.rule), family);
  const words: string[] = [];
  if (args.source) words.push('-s', args.source);
  if (args.destination) words.push('-d', args.destination);
  if (args.in_interface) words.push('-i', args.in_interface);
  if (args.out_interface) words.push('-o', args.out_interface);
  const protocol = protocolOf(args, family);
  if (protocol) words.push('-p', protocol);
  if (args.ctstate !== undefined) words.push('-m', 'conntrack', '--ctstate', stateList(args.ctstate).join(','));
  if (args.sport !== undefined || args.dport !== undefined) {
    words.push('-m', canonicalProtocol(protocol ?? '') ?? '');
    if (args.sport !== undefined) words.push('--sport', String(args.sport));
    if (args.dport !== undefined) words.push('--dport', String(args.dport));
  }
  if (args.comment !== undefined) words.push('-m', 'comment', '--comment', args.comment);
  if (args.jump) words.push('-j', args.jump);
  if (args.reject_with) words.push('--reject-with', canonicalRejectWith(args.reject_with, family) ?? args.reject_with);
  return canonicalRule(words, family);
}

const VERBS: Readonly<Record<string, [string, string]>> = {
  ACCEPT: ['accepts', 'accepting'],
  DROP: ['drops', 'dropping'],
  REJECT: ['rejects', 'rejecting'],
  LOG: ['logs', 'logging'],
  RETURN: ['returns', 'returning'],
};

/** What the rule does, in words: "accepts tcp/465 from 198.19.0.0/16" (or "accepting …" for `gerund`). */
export function describeRule(args: IptablesArgs, gerund = false, family: Family = familyOf(args)): string {
  if (args.rule !== undefined) return `${gerund ? 'having' : 'has'} "${formatArgs(ruleFromArgs(args, family))}"`;
  const protocol = canonicalProtocol(protocolOf(args, family) ?? 'all');
  let what = protocol ?? 'all traffic';
  if (protocol && args.dport !== undefined) what += `/${canonicalPort(String(args.dport))}`;
  if (protocol && args.sport !== undefined) what += ` from port ${canonicalPort(String(args.sport))}`;
  const parts = [what];
  if (args.source) parts.push(`from ${args.source}`);
  if (args.destination) parts.push(`to ${args.destination}`);
  if (args.in_interface) parts.push(`in on ${args.in_interface}`);
  if (args.out_interface) parts.push(`out on ${args.out_interface}`);
  if (args.ctstate !== undefined) parts.push(`in state ${canonicalStates(stateList(args.ctstate).join(','))}`);
  const object = parts.join(' ');
  const verb = args.jump ? VERBS[args.jump] : (['counts', 'counting'] as [string, string]);
  if (verb) return `${verb[gerund ? 1 : 0]} ${object}${args.reject_with ? ` with ${args.reject_with}` : ''}`;
  return `${gerund ? 'sending' : 'sends'} ${object} to ${args.jump}`;
}

type Status = 'present' | 'misplaced' | 'missing';

interface Found {
  status: Status;
  /** equivalent rules in the chain */
  matches: ChainRule[];
  /** the first unconditional REJECT/DROP of the chain */
  final: ChainRule | null;
}

function find(doc: RulesDocument, s: Settings, key: string): Found {
  const rules = chainRules(doc, s.table, s.chain);
  const final = rules.find((r) => isFinalReject(r.line.args, s.family)) ?? null;
  const matches = rules.filter((r) => ruleKey(r.line.args, s.family) === key);
  // A rule after the final reject never sees a packet; the final reject itself counts as in place.
  const effective = matches.filter((r) => !final || r.index <= final.index);
  const status: Status = matches.length === 0 ? 'missing' : s.position === 'before_final_reject' && effective.length === 0 ? 'misplaced' : 'present';
  return { status, matches, final };
}

/**
 * `find` for a chain the file builds with commands (`-I INPUT 2 …`, `-D`, `-P`): the rules come from what
 * iptables-restore leaves in the chain, in that order; `final` stands for the loaded final REJECT/DROP (its index
 * is its 0-based position in the loaded chain, not a line).
 */
function findLoaded(doc: RulesDocument, s: Settings, key: string): Found & { position: number } {
  const rules = loadedRuleset(doc).get(s.table)?.get(s.chain)?.rules ?? [];
  const asRule = (args: string[], index: number): ChainRule => ({ index, line: { kind: 'rule', raw: '', table: s.table, chain: s.chain, args, counters: null } });
  const position = rules.findIndex((r) => isFinalReject(r.args, s.family));
  const at = rules.flatMap((r, i) => (ruleKey(r.args, s.family) === key ? [i] : []));
  const effective = at.filter((i) => position < 0 || i <= position);
  const status: Status = at.length === 0 ? 'missing' : s.position === 'before_final_reject' && effective.length === 0 ? 'misplaced' : 'present';
  return { status, matches: at.map((i) => asRule(rules[i]!.args, i)), final: position < 0 ? null : asRule(rules[position]!.args, position), position };
}

/**
 * Whether the file has a raw rule the model cannot spell, as the kernel sees both: the file and the rule are
 * loaded into a throwaway namespace (the prefetched normaliseCommand) and compared as iptables-save prints them.
 * `words` is the rule in iptables-save's spelling (when it is one rule). Null when the model decides: a modelled
 * rule, a file this run changed already, or no namespace (then with a warning).
 */
async function kernelFind(ctx: TaskContext, args: IptablesArgs, s: Settings, doc: RulesDocument, model: Found): Promise<{ found: Found; words: string[] | null } | null> {
  if (args.rule === undefined || modelled(args, s.family) || ctx.changedFiles().has(s.rulesFile)) return null;
  const cmd = normaliseCommand(s.family, s.rulesFile, s.table, args.rule);
  const res = await ctx.readCommand(cmd.key, cmd.script);
  const out = res.stdout.toString();
  const nl = out.indexOf('\n');
  const status = nl < 0 ? out.trim() : out.slice(0, nl);
  const body = nl < 0 ? '' : out.slice(nl + 1);
  if (res.code !== 0 || status !== 'ok') {
    const why = status === 'failed' ? 'the file and the rule do not load into an empty network namespace' : 'network namespaces are not available';
    const detail = (status === 'ok' || status === 'failed' || status === 'unavailable' ? body : res.stderr.toString()).trim().split('\n').slice(-2).join('; ');
    ctx.warn(`cannot tell whether ${s.rulesFile} has "${args.rule}" in another spelling: ${why}${detail ? ` (${detail})` : ''}; provision's own model decided`);
    return null;
  }
  let saved: RulesDocument;
  try {
    saved = parse(body);
  } catch (e) {
    if (e instanceof IptablesSaveSyntaxError) return null;
    throw e;
  }
  const rulesOf = (chain: string) => saved.lines.flatMap((l) => (l.kind === 'rule' && l.table === s.table && l.chain === chain ? [l.args] : []));
  const candidate = rulesOf(CANDIDATE_CHAIN).map((w) => ruleKey(w, s.family));
  const rules = rulesOf(s.chain);
  const keys = rules.map((w) => ruleKey(w, s.family));
  if (!candidate.length) return null;
  const at = keys.flatMap((_, i) => (candidate.every((c, j) => keys[i + j] === c) ? [i] : []));
  const final = rules.findIndex((w) => isFinalReject(w, s.family));
  const effective = at.filter((i) => final < 0 || i <= final);
  const words = candidate.length === 1 ? rulesOf(CANDIDATE_CHAIN)[0]! : null;
  if (!at.length) return { found: { ...model, status: 'missing', matches: [] }, words };
  if (s.position !== 'before_final_reject' || effective.length) return { found: { ...model, status: 'present', matches: [] }, words };
  // Misplaced: the file's -A lines of the chain are its loaded rules one to one unless a line holds an address list.
  const lines = chainRules(doc, s.table, s.chain);
  if (lines.length !== rules.length) {
    throw new ModuleError(`${s.rulesFile} loads "${args.rule}" only after the final REJECT of ${s.chain}, and provision cannot tell which line that is (a line loads several rules); move it by hand`);
  }
  return { found: { ...model, status: 'misplaced', matches: [lines[at[0]!]!] }, words };
}

/** The hint for a chain built with commands that this module cannot edit in place. */
const SAVE_FORM_HINT = 'load it and save it in iptables-save form (iptables-restore < FILE; iptables-save > FILE) to edit it here';

/**
 * A new rule for a chain the file builds with commands: an `-I CHAIN N` (or `-A`) line at the end of the table's
 * last section, after every other command, with N computed from the chain as iptables-restore leaves it.
 */
function planLoaded(doc: RulesDocument, s: Settings, words: string[], found: Found & { position: number }): { after: RulesDocument; text: string; where: string } {
  const sections = tableSections(doc, s.table);
  const commit = sections[sections.length - 1]!.commit;
  let args: string[];
  let where: string;
  if (s.position === 'top') {
    args = ['-I', s.chain, '1', ...words];
    where = `at the top of ${s.chain}`;
  } else if (s.position === 'before_final_reject' && found.final) {
    args = ['-I', s.chain, String(found.position + 1), ...words];
    where = `to ${s.chain} before the final ${parseRule(found.final.line.args, 4).target!.name} (position ${found.position + 1} once the file's commands have run)`;
  } else {
    args = ['-A', s.chain, ...words];
    where = `at the end of ${s.chain}`;
  }
  const text = args[0] === '-A' ? ruleText(s.chain, words) : `-I ${s.chain} ${args[2]} ${ruleText(s.chain, words).slice(`-A ${s.chain} `.length)}`;
  const line: Line =
    args[0] === '-A'
      ? { kind: 'rule', raw: `${text}${doc.crlf ? '\r' : ''}`, table: s.table, chain: s.chain, args: words, counters: null }
      : { kind: 'command', raw: `${text}${doc.crlf ? '\r' : ''}`, table: s.table, args, counters: null };
  return { after: insertLine(doc, commit, line), text, where };
}

function finalName(found: Found): string {
  // Only the target name is read here, which does not depend on the family.
  return found.final ? parseRule(found.final.line.args, 4).target!.name : 'REJECT';
}

function parseOrFail(content: Buffer, what: string): RulesDocument {
  try {
    return parse(content);
  } catch (e) {
    if (e instanceof IptablesSaveSyntaxError) throw new ModuleError(`${what}: ${e.message}`);
    throw e;
  }
}

/** The live ruleset, or null (with a warning for the recap) when it cannot be read. */
async function readLive(ctx: TaskContext, s: Settings): Promise<RulesDocument | null> {
  const cmd = liveRulesetCommand(s.family);
  const res = await ctx.readCommand(cmd.key, cmd.script, cmd.dependsOn);
  if (res.code !== 0) {
    ctx.warn(`cannot compare ${s.rulesFile} with the live ruleset: ${CommandError.describe(cmd.script, res.code, res.stderr.toString(), res.stdout.toString())}`);
    return null;
  }
  try {
    return parse(res.stdout);
  } catch (e) {
    if (!(e instanceof IptablesSaveSyntaxError)) throw e;
    ctx.warn(`cannot compare ${s.rulesFile} with the live ruleset: ${cmd.script} output ${e.message}`);
    return null;
  }
}

function statusWords(status: Status, final: string): string {
  return status === 'present' ? 'has it' : status === 'misplaced' ? `has it only after the final ${final}` : 'does not have it';
}

function checkArgs(args: IptablesArgs): string | null {
  const family = familyOf(args);
  const addresses = [args.source, args.destination].filter((a): a is string => a !== undefined);
  if (args.ip_version === 'both') {
    if (addresses.length) return `ip_version both needs a rule without addresses: "${addresses[0]}" is of one family only; write one task per family`;
    if (args.reject_with !== undefined && wordsFamily(args) !== null) return `reject_with "${args.reject_with}" exists for one family only; ip_version both needs tcp-reset or a task per family`;
  }
  if (!/^[A-Za-z0-9_.+-]{1,28}$/.test(args.chain)) return `chain "${args.chain}" is not a valid chain name`;
  if (args.rule !== undefined) {
    const mixed = RULE_FIELDS.filter((k) => args[k] !== undefined);
    if (mixed.length) return `rule gives the whole rule: leave out ${mixed.join(', ')}`;
    if (/[\r\n\0]/.test(args.rule)) return 'rule must be one line';
    const words = splitArgs(args.rule);
    if (!words.length) return 'rule is empty';
    if (/^-(A|I|D|R|N|X|F|P|E)$|^--(append|insert|delete|replace)$/.test(words[0]!)) return `rule is the words after "-A ${args.chain}": leave out "${words[0]}"`;
    if (args.ip_version === 'both' && wordsFamily(args) !== null) return 'ip_version both needs a rule without addresses; write one task per family';
    return null;
  }
  const protocol = protocolOf(args, family);
  for (const key of ['sport', 'dport'] as const) {
    const v = args[key];
    if (v === undefined) continue;
    if (!protocol || !PORT_PROTOCOLS.includes(canonicalProtocol(protocol) ?? '')) return `${key} needs protocol ${PORT_PROTOCOLS.join(', ')}`;
    if (!isKnownPort(v)) return `${key} "${v}" is not a port number, a range like 1024:65535, or a known service name; give the number`;
  }
  for (const key of ['source', 'destination'] as const) {
    const v = args[key];
    if (v !== undefined && !isAddress(v, family)) {
      return `${key} "${v}" is not an IPv${family} address or network (host names resolve differently on each host; give the address)`;
    }
  }
  if (args.ctstate !== undefined) {
    const states = stateList(args.ctstate);
    const bad = states.filter((x) => !(CONNTRACK_STATES as readonly string[]).includes(x));
    if (!states.length || bad.length) return `ctstate "${bad.join(',') || ''}" is not one of ${CONNTRACK_STATES.join(', ')}`;
  }
  if (args.reject_with !== undefined) {
    if (args.jump !== 'REJECT') return 'reject_with needs jump: REJECT';
    if (!canonicalRejectWith(args.reject_with, family)) return `reject_with "${args.reject_with}" is not an IPv${family} REJECT reply`;
  }
  if (args.comment !== undefined && (/[\r\n\0]/.test(args.comment) || args.comment.length > 256)) {
    return 'comment must be one line of at most 256 characters';
  }
  for (const key of ['in_interface', 'out_interface', 'jump', 'protocol'] as const) {
    const v = args[key];
    if (v !== undefined && !/^[A-Za-z0-9_.+:@-]+$/.test(v)) return `${key} "${v}" contains characters iptables does not accept`;
  }
  if (args.rules_file !== undefined && !args.rules_file.startsWith('/')) return `rules_file "${args.rules_file}" must be an absolute path`;
  return null;
}

const iptablesSchema = {
  type: 'object',
  additionalProperties: false,
  required: ['chain'],
  properties: {
    table: {
      type: 'string',
      enum: ['filter', 'nat', 'mangle', 'raw', 'security'],
      default: 'filter',
      description: 'table of the rule (default filter)',
    },
    chain: { type: 'string', minLength: 1, description: 'chain of the rule, e.g. INPUT; a user chain must already exist in the file' },
    protocol: { type: 'string', minLength: 1, description: 'protocol (-p): tcp, udp, icmp, … or a number; needed for sport and dport' },
    source: { type: 'string', minLength: 1, description: 'source address or network (-s), e.g. 198.19.0.0/16' },
    destination: { type: 'string', minLength: 1, description: 'destination address or network (-d)' },
    in_interface: { type: 'string', minLength: 1, description: 'incoming interface (-i), e.g. eth0 or eth+' },
    out_interface: { type: 'string', minLength: 1, description: 'outgoing interface (-o)' },
    sport: {
      anyOf: [
        { type: 'integer', minimum: 0, maximum: 65535 },
        { type: 'string', minLength: 1 },
      ],
      description: 'source port: a number, a range like 1024:65535, or a service name (smtps); written as a number',
    },
    dport: {
      anyOf: [
        { type: 'integer', minimum: 0, maximum: 65535 },
        { type: 'string', minLength: 1 },
      ],
      description: 'destination port: a number, a range like 1024:65535, or a service name (smtps); written as a number',
    },
    ctstate: {
      anyOf: [
        { type: 'string', minLength: 1 },
        { type: 'array', minItems: 1, items: { type: 'string', enum: [...CONNTRACK_STATES] as string[] } },
      ],
      description: 'connection states (-m conntrack --ctstate), a list or "NEW,ESTABLISHED"; -m state --state counts as the same',
    },
    jump: { type: 'string', minLength: 1, description: 'target (-j): ACCEPT, DROP, REJECT, LOG or a user chain' },
    reject_with: { type: 'string', minLength: 1, description: 'REJECT reply (--reject-with), e.g. icmp-host-prohibited; needs jump REJECT' },
    comment: { type: 'string', description: 'comment (-m comment) on a rule this task adds; rules that differ only in comment are the same rule' },
    state: { type: 'string', enum: ['present', 'absent'], default: 'present', description: 'present (default) or absent: remove every equivalent rule' },
    position: {
      type: 'string',
      enum: ['before_final_reject', 'top', 'bottom'],
      description:
        'where a new rule goes: before_final_reject (the default, e.g. for ACCEPT: above the first unconditional REJECT/DROP of the chain, and an equivalent rule below it is moved up), top, or bottom (the default for an unconditional REJECT/DROP itself)',
    },
    ip_version: {
      anyOf: [
        { type: 'integer', enum: [4, 6] },
        { type: 'string', enum: ['ipv4', 'ipv6', 'both'] },
      ],
      description:
        'ipv4 (or 4), ipv6 (or 6) or both: which rules files and which iptables. Default: the family of the rule\'s address or reply when it has one, else both when the host has a global IPv6 address or an IPv6 rules file, else ipv4',
    },
    rule: {
      type: 'string',
      minLength: 1,
      description:
        'the rule as raw text, the words after "-A CHAIN" (e.g. "-p tcp --dport 465 -m limit --limit 2/s -j ACCEPT"), instead of protocol, dport, jump and the like; an equivalent spelling already in the file counts as present (as iptables reads both)',
    },
    rules_file: { type: 'string', minLength: 1, description: "persistent rules file (default from facts: the host's iptables_rules_file or ip6tables_rules_file)" },
  },
} as const;

export const iptablesModule: Module<IptablesArgs> = {
  name: 'iptables',
  description: 'Keep one rule present or absent in the persistent iptables rules file, where it takes effect',
  schema: iptablesSchema,

  check: checkArgs,

  reads(args: IptablesArgs, facts: Facts): Reads {
    if (UNSUPPORTED[facts.firewall]) return {};
    const families = familiesOf(args, facts);
    const files = families.map((f) => rulesFileOf(args, facts, f)).filter((f): f is string => f !== null);
    const table = args.table ?? 'filter';
    const kernel = families.flatMap((f) => {
      const file = rulesFileOf(args, facts, f);
      return args.rule !== undefined && file && !modelled(args, f) ? [normaliseCommand(f, file, table, args.rule)] : [];
    });
    return { ...(files.length ? { files } : {}), commands: [...families.map(liveRulesetCommand), ...kernel] };
  },

  async plan(ctx: TaskContext, args: IptablesArgs): Promise<Plan> {
    const problem = checkArgs(args);
    if (problem) throw new ModuleError(problem);
    const families = familiesOf(args, ctx.facts);
    const plans = [];
    for (const family of families) plans.push(await planFamily(ctx, args, family));
    return combine(plans, families);
  },
};

/** One plan for a task that edits the rules files of both families: the same rule in each. */
function combine(plans: Plan[], families: Family[]): Plan {
  if (plans.length === 1) return plans[0]!;
  const tag = (p: Plan, f: Family) => (p.msg ? `IPv${f}: ${p.msg}` : '');
  const data = { ...plans[0]!.data, ...Object.fromEntries(families.map((f, i) => [`ipv${f}`, plans[i]!.data])) };
  const changed = plans.filter((p): p is Extract<Plan, { changed: true }> => p.changed);
  if (!changed.length) {
    const same = plans.every((p) => p.msg === plans[0]!.msg);
    return { changed: false, msg: same ? `${plans[0]!.msg} (IPv4 and IPv6)` : plans.map((p, i) => tag(p, families[i]!)).join('; '), data };
  }
  const same = changed.length === plans.length && changed.every((p) => p.msg === changed[0]!.msg);
  return {
    changed: true,
    msg: same ? `${changed[0]!.msg} (IPv4 and IPv6)` : plans.map((p, i) => tag(p, families[i]!)).join('; '),
    files: changed.flatMap((p) => p.files),
    commands: changed.flatMap((p) => p.commands),
    data,
  };
}

async function planFamily(ctx: TaskContext, args: IptablesArgs, family: Family): Promise<Plan> {
  const s = settings(args, ctx.facts, family);
  const file = await ctx.readFile(s.rulesFile);
  if (file.exists && file.kind !== 'file') throw new ModuleError(`${s.rulesFile} is not a regular file`);
  const live = await readLive(ctx, s);
  // A missing rules file would be created by saving the live rules, so start from them: restarting the
  // firewall service must not silently drop what is loaded now.
  const doc = file.exists ? parseOrFail(file.content ?? Buffer.alloc(0), s.rulesFile) : (live ?? parse(''));

  let words = ruleFromArgs(args, family);
  let key = ruleKey(words, s.family);
  // A chain the file builds with -I, -D or -P commands is judged by what iptables-restore leaves in it.
  const loaded = chainCommands(doc, s.table, s.chain).length > 0 ? findLoaded(doc, s, key) : null;
  let found: Found = loaded ?? find(doc, s, key);
  // A raw rule the model does not spell exactly: the kernel decides whether the file has it in another spelling.
  const kernel = !loaded && found.status !== 'present' && file.exists ? await kernelFind(ctx, args, s, doc, found) : null;
  if (kernel) {
    found = kernel.found;
    if (kernel.words) {
      words = kernel.words;
      key = ruleKey(words, s.family);
    }
  }
  const text = ruleText(s.chain, words);
  const finalTarget = finalName(found);
  const described = describeRule(args, false, family);
  const data = { rules_file: s.rulesFile, rule: text };

  // After this run changed the file, the live rules lag until the firewall service reloads it: no drift. Nor
  // can the model alone tell drift for a raw rule it does not spell as iptables-save does.
  const unsure = args.rule !== undefined && !modelled(args, family) && !kernel;
  if (live && !unsure && !ctx.changedFiles().has(s.rulesFile)) {
    const inLive = find(live, s, key);
    if (inLive.status !== found.status) {
      const service = ctx.facts.firewall_service ? `; restarting ${ctx.facts.firewall_service} loads the file` : '';
      ctx.warn(
        `drift: ${s.chain} ${describeRule(args, true, family)}: ${s.rulesFile} ${statusWords(found.status, finalTarget)}, the live ruleset ${statusWords(inLive.status, finalName(inLive))}${service}`,
      );
    }
  }

  const placement = s.position === 'before_final_reject' && found.final ? ` before the final ${finalTarget}` : '';
  let after: RulesDocument;
  let msg: string;
  if (loaded && !(s.state === 'present' && loaded.status === 'present') && !(s.state === 'absent' && loaded.status === 'missing')) {
    const first = chainCommands(doc, s.table, s.chain)[0]! + 1;
    if (s.state === 'absent') {
      throw new ModuleError(`${s.rulesFile} builds ${s.chain} with commands (line ${first}): removing a rule could move where the later ones land; ${SAVE_FORM_HINT}`);
    }
    if (loaded.status === 'misplaced') {
      throw new ModuleError(`${s.rulesFile} builds ${s.chain} with commands (line ${first}) and loads "${text}" only after the final ${finalTarget}; ${SAVE_FORM_HINT}`);
    }
    const planned = planLoaded(doc, s, words, loaded);
    after = planned.after;
    msg = `add "${planned.text}" ${planned.where}`;
  } else if (s.state === 'absent') {
    if (found.status === 'missing' || !file.exists) {
      return { changed: false, msg: `${s.chain} has no rule ${describeRule(args, true, family)}${file.exists ? '' : ` (${s.rulesFile} does not exist)`}`, data };
    }
    after = removeLines(doc, found.matches.map((m) => m.index));
    msg = found.matches.length === 1 ? `remove "${text}" from ${s.chain}` : `remove ${found.matches.length} rules like "${text}" from ${s.chain}`;
  } else if (found.status === 'present') {
    if (file.exists) return { changed: false, msg: `${s.chain} ${described}${placement}`, data };
    after = doc;
    msg = '';
  } else if (found.status === 'misplaced') {
    const stray = found.matches[0]!;
    const without = removeLines(doc, [stray.index]);
    after = insertLine(without, slotAbove(without, found.final!.index), stray.line);
    msg = `move "${text}" above the final ${finalTarget} of ${s.chain} (line ${stray.index + 1} is below it and matches nothing)`;
  } else {
    if (!hasChain(doc, s.table, s.chain)) throw new ModuleError(`chain ${s.chain} does not exist in table ${s.table} of ${s.rulesFile}`);
    const withTable = ensureTable(doc, s.table);
    const line = makeRuleLine(withTable, s.table, s.chain, words);
    if (s.position === 'before_final_reject' && found.final) {
      after = insertLine(withTable, slotAbove(withTable, found.final.index), line);
      msg = `add "${text}" to ${s.chain}${placement}`;
    } else {
      after = insertLine(withTable, chainSlot(withTable, s.table, s.chain, s.position === 'top' ? 'top' : 'bottom'), line);
      msg = s.position === 'top' ? `add "${text}" at the top of ${s.chain}` : `add "${text}" at the end of ${s.chain}`;
    }
  }
  if (!file.exists) {
    const origin = `create ${s.rulesFile}${live ? ' from the live ruleset' : ''}`;
    msg = msg ? `${origin}: ${msg}` : `${origin} (${s.chain} already ${described}${placement})`;
  }

  const change: FileChange = {
    path: s.rulesFile,
    before: file.exists ? (file.content ?? Buffer.alloc(0)) : null,
    after: print(after),
    beforeSha: file.sha,
    validate: [restoreTest(s.family)],
    // iptables-services keeps the file root-only; netfilter-persistent saves it 0640.
    ...(file.exists ? {} : { mode: ctx.facts.firewall === 'iptables-services' ? 0o600 : 0o640 }),
  };
  await ctx.validate([change]);
  return { changed: true, msg, files: [change], commands: [], data };
}

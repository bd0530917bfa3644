/**
 * The iptables-save / iptables-restore file format (/etc/sysconfig/iptables, /etc/iptables/rules.v4) as a
 * document: tokenising and quoting, parse and print with a byte-exact round trip, and the line edits a module
 * makes (find a chain's rules, pick the slot for a new rule, insert, remove, add a table section).
 *
 * Tokenising follows iptables-restore 1.8 exactly: only double quotes group words, a backslash escapes the next
 * character inside quotes only, and a closing quote ends the word.
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


/** The words of a rule or command line as written, without counters or a CR: `-A INPUT -p tcp …`. */
export function commandText(l: Extract<Line, { kind: 'rule' | 'command' }>): string {
  const t = l.raw.endsWith('\r') ? l.raw.slice(0, -1) : l.raw;
  return t.trim().replace(COUNTERS, '').trim();
}

// ---------------------------------------------------------------------------------------------------------------
// Queries and edits on a document

/** The chains each table has before any file is loaded. */
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


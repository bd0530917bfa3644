/**
 * The persistent files of firewalld, ufw and nftables, edited the way their own tools would: pure functions from
 * text to text, no I/O. Each editor predicts what the tool writes (firewalld and ufw write their files
 * themselves; nftables.conf is ours to write), so check mode can show the diff the run then makes.
 */

export type Protocol = 'tcp' | 'udp';

/** A port opened by number, or (firewalld only) by service name. */
export interface Opening {
  port: number;
  protocol: Protocol;
  /** firewalld service name (smtps); when set, firewalld opens the service rather than the port */
  service?: string;
}

export class FirewallFileError extends Error {
  override name = 'FirewallFileError';
}

// ---------------------------------------------------------------------------------------------------------------
// firewalld zone XML (/etc/firewalld/zones/ZONE.xml, or the shipped /usr/lib/firewalld/zones/ZONE.xml)

const XML_ESCAPES: Record<string, string> = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;' };
const xmlAttr = (v: string) => `"${v.replace(/[&<>"]/g, (c) => XML_ESCAPES[c]!)}"`;

/** The element firewalld writes for the opening: `<service name="smtps"/>` or `<port port="465" protocol="tcp"/>`. */
export function zoneElement(o: Opening): string {
  return o.service ? `<service name=${xmlAttr(o.service)}/>` : `<port port=${xmlAttr(String(o.port))} protocol=${xmlAttr(o.protocol)}/>`;
}

/** What a zone file's top level holds, line by line, as firewalld writes it: one element per line. */
interface ZoneLines {
  lines: string[];
  /** index of the `<zone ...>` line and of `</zone>` */
  open: number;
  close: number;
}

function zoneLines(xml: string): ZoneLines {
  const lines = xml.split('\n');
  const open = lines.findIndex((l) => /^<zone(\s[^>]*)?>\s*$/.test(l.trim()));
  const close = lines.findIndex((l) => l.trim() === '</zone>');
  if (open < 0 || close < open) throw new FirewallFileError('not a firewalld zone file (no <zone> … </zone> lines)');
  for (let i = open + 1; i < close; i++) {
    const t = lines[i]!.trim();
    // firewalld writes each top-level element on one line; rich rules span several and are left alone.
    if (t !== '' && !t.startsWith('<')) throw new FirewallFileError(`line ${i + 1} is not in the one-element-per-line form firewalld writes`);
  }
  return { lines, open, close };
}

const elementName = (line: string) => /^<([A-Za-z-]+)/.exec(line.trim())?.[1] ?? '';

/** For each line of the zone's body, whether it is a top-level element (not inside a rich rule or the like). */
function topLevel(body: string[]): boolean[] {
  let depth = 0;
  return body.map((l) => {
    const t = l.trim();
    const top = depth === 0;
    if (/^<\//.test(t)) depth = Math.max(0, depth - 1);
    else if (/^<[A-Za-z]/.test(t) && !t.endsWith('/>') && !/<\/[A-Za-z-]+>$/.test(t)) depth++;
    return top && !/^<\//.test(t);
  });
}

function sameElement(line: string, o: Opening): boolean {
  const t = line.trim();
  if (o.service) return new RegExp(`^<service\\s+name=["']${o.service.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}["']\\s*/>$`).test(t);
  const port = /^<port\s+(?:port=["']([^"']*)["']\s+protocol=["']([^"']*)["']|protocol=["']([^"']*)["']\s+port=["']([^"']*)["'])\s*\/>$/.exec(t);
  return !!port && (port[1] ?? port[4]) === String(o.port) && (port[2] ?? port[3]) === o.protocol;
}

/** Whether the zone's permanent configuration opens it. */
export function zoneHas(xml: string, o: Opening): boolean {
  const z = zoneLines(xml);
  const body = z.lines.slice(z.open + 1, z.close);
  const top = topLevel(body);
  return body.some((l, i) => top[i] && sameElement(l, o));
}

/**
 * The zone file after firewalld adds or removes the opening. firewalld writes the elements in a fixed order
 * (short, description, services, ports, protocols, …), so a new service goes after the last service (or after the
 * description), a new port after the last port (or the last service).
 */
export function editZone(xml: string, o: Opening, present: boolean): string {
  const z = zoneLines(xml);
  const body = z.lines.slice(z.open + 1, z.close);
  const top = topLevel(body);
  if (!present) {
    const kept = body.filter((l, i) => !(top[i] && sameElement(l, o)));
    return [...z.lines.slice(0, z.open + 1), ...kept, ...z.lines.slice(z.close)].join('\n');
  }
  if (body.some((l, i) => top[i] && sameElement(l, o))) return xml;
  const after = o.service ? ['service', 'description', 'short'] : ['port', 'service', 'description', 'short'];
  const names = body.map((l, i) => (top[i] ? elementName(l) : ''));
  let at = -1;
  for (const name of after) {
    at = names.lastIndexOf(name);
    if (at >= 0) break;
  }
  const lines = [...z.lines];
  lines.splice(z.open + 1 + at + 1, 0, `  ${zoneElement(o)}`);
  return lines.join('\n');
}

/** The services and ports `firewall-cmd --zone=Z --list-all` reports for the zone's runtime configuration. */
export function parseListAll(output: string): { services: string[]; ports: string[] } {
  const field = (name: string) =>
    (new RegExp(`^\\s+${name}:(.*)$`, 'm').exec(output)?.[1] ?? '')
      .trim()
      .split(/\s+/)
      .filter(Boolean);
  return { services: field('services'), ports: field('ports') };
}

export function runtimeHas(listAll: { services: string[]; ports: string[] }, o: Opening): boolean {
  return o.service ? listAll.services.includes(o.service) : listAll.ports.includes(`${o.port}/${o.protocol}`);
}

// ---------------------------------------------------------------------------------------------------------------
// ufw user rules (/etc/ufw/user.rules and user6.rules, written by ufw itself)

/** The `### tuple ###` line ufw writes for `ufw allow PORT/PROTO`. */
export function ufwTuple(o: Opening, family: 4 | 6): string {
  const any = family === 6 ? '::/0' : '0.0.0.0/0';
  return `### tuple ### allow ${o.protocol} ${o.port} ${any} any ${any} in`;
}

/** The rule ufw writes under that tuple. */
export function ufwRule(o: Opening, family: 4 | 6): string {
  return `-A ${family === 6 ? 'ufw6' : 'ufw'}-user-input -p ${o.protocol} --dport ${o.port} -j ACCEPT`;
}

const END_RULES = '\n### END RULES ###';

/** Lines of a tuple block: its tuple line (with or without a comment) and the rule lines under it. */
function ufwBlock(text: string, o: Opening, family: 4 | 6): { start: number; end: number } | null {
  const tuple = ufwTuple(o, family);
  const lines = text.split('\n');
  let offset = 0;
  for (let i = 0; i < lines.length; i++) {
    const l = lines[i]!;
    if (l === tuple || l.startsWith(`${tuple} comment=`)) {
      // The block is the blank line before the tuple, the tuple and its rules up to the next blank line.
      let j = i + 1;
      let end = offset + l.length + 1;
      while (j < lines.length && lines[j] !== '') end += lines[j++]!.length + 1;
      return { start: offset - 1, end };
    }
    offset += l.length + 1;
  }
  return null;
}

export function ufwHas(text: string, o: Opening, family: 4 | 6): boolean {
  return ufwBlock(text, o, family) !== null;
}

/** The user rules file after `ufw allow PORT/PROTO` (present) or `ufw delete allow PORT/PROTO` (absent). */
export function editUfwRules(text: string, o: Opening, family: 4 | 6, present: boolean): string {
  const block = ufwBlock(text, o, family);
  if (!present) return block ? text.slice(0, block.start) + text.slice(block.end) : text;
  if (block) return text;
  const at = text.indexOf(END_RULES);
  if (at < 0 || !text.includes('### RULES ###')) throw new FirewallFileError('no "### RULES ###" … "### END RULES ###" section: not a user rules file ufw wrote');
  return `${text.slice(0, at)}\n${ufwTuple(o, family)}\n${ufwRule(o, family)}\n${text.slice(at)}`;
}

/** Whether /etc/default/ufw turns IPv6 on (ufw's own default is yes). */
export function ufwIpv6(defaults: string | null): boolean {
  const m = /^IPV6=(.*)$/m.exec(defaults ?? '');
  return !m || m[1]!.trim().replace(/^["']|["']$/g, '').toLowerCase() === 'yes';
}

// ---------------------------------------------------------------------------------------------------------------
// /etc/nftables.conf: a rule in chain `input` of `table inet filter`

/** The rule this module writes. */
export function nftRule(o: Opening): string {
  return `${o.protocol} dport ${o.port} accept`;
}

interface ChainSpan {
  /** line indexes of `chain input {` and of its closing `}` */
  open: number;
  close: number;
}

/** Strips a `#` comment and surrounding blanks. */
const bare = (line: string) => line.replace(/#.*$/, '').trim();

function findBlock(lines: string[], from: number, to: number, head: RegExp): ChainSpan | null {
  for (let i = from; i < to; i++) {
    if (!head.test(bare(lines[i]!))) continue;
    let depth = 0;
    for (let j = i; j < to; j++) {
      const t = bare(lines[j]!);
      depth += (t.match(/\{/g) ?? []).length - (t.match(/\}/g) ?? []).length;
      if (depth === 0) return { open: i, close: j };
    }
    throw new FirewallFileError(`the block opened on line ${i + 1} is not closed`);
  }
  return null;
}

/** The lines of `chain input` in `table inet filter`, or an error saying which is missing. */
function inputChain(lines: string[]): ChainSpan {
  const table = findBlock(lines, 0, lines.length, /^table\s+inet\s+filter\s*\{$/);
  if (!table) throw new FirewallFileError('no "table inet filter { … }" block');
  const chain = findBlock(lines, table.open + 1, table.close, /^chain\s+input\s*\{$/);
  if (!chain) throw new FirewallFileError('table inet filter has no "chain input { … }" block');
  if (chain.close === chain.open) throw new FirewallFileError('chain input is written on one line; give it one statement per line');
  return chain;
}

/** Words of a statement that accepts exactly this port (with or without a `ct state new` match). */
function accepts(statement: string, o: Opening): boolean {
  const words = statement.split(/\s+/).join(' ');
  const want = `${o.protocol} dport ${o.port}`;
  return words === `${want} accept` || words === `${want} ct state new accept` || words === `ct state new ${want} accept`;
}

/** A statement that ends the chain for every packet: reject or drop with no match before it. */
const isFinal = (statement: string) => /^(counter\s+)?(reject|drop)\b/.test(statement);

export interface NftFound {
  /** line indexes of statements accepting the port */
  matches: number[];
  /** first unconditional reject/drop, or -1 */
  final: number;
  /** a set or a map names the port (`tcp dport { 25, 465 } accept`): cannot be told apart line by line */
  inSet: number;
  chain: ChainSpan;
}

export function nftFind(text: string, o: Opening): NftFound {
  const lines = text.split('\n');
  const chain = inputChain(lines);
  const found: NftFound = { matches: [], final: -1, inSet: -1, chain };
  for (let i = chain.open + 1; i < chain.close; i++) {
    const s = bare(lines[i]!);
    if (accepts(s, o)) found.matches.push(i);
    else if (found.final < 0 && isFinal(s)) found.final = i;
    else if (found.inSet < 0 && new RegExp(`\\b${o.protocol} dport \\{[^}]*\\b${o.port}\\b`).test(s)) found.inSet = i;
  }
  return found;
}

/** Whether the port is accepted where it takes effect (above the final reject or drop). */
export function nftHas(text: string, o: Opening): boolean {
  const f = nftFind(text, o);
  return f.matches.some((m) => f.final < 0 || m < f.final) || (f.inSet >= 0 && (f.final < 0 || f.inSet < f.final));
}

/** nftables.conf with the rule added above the chain's final reject/drop (or at its end), or removed. */
export function editNftConf(text: string, o: Opening, present: boolean): string {
  const f = nftFind(text, o);
  const lines = text.split('\n');
  if (!present) {
    if (f.inSet >= 0) throw new FirewallFileError(`line ${f.inSet + 1} opens ${o.port}/${o.protocol} in a set; remove it from the set by hand`);
    return lines.filter((_, i) => !f.matches.includes(i)).join('\n');
  }
  if (nftHas(text, o)) return text;
  // Rules below the final reject never see a packet: drop them and add one above it.
  const kept = lines.filter((_, i) => !f.matches.includes(i));
  const shift = (i: number) => i - f.matches.filter((m) => m < i).length;
  const at = f.final >= 0 ? shift(f.final) : shift(f.chain.close);
  const near = kept[at - 1] ?? '';
  const indent = f.final >= 0 ? /^\s*/.exec(kept[at]!)![0] : `${/^\s*/.exec(near)![0] || '\t\t'}`;
  // The `type … hook …` line at the top of the chain may have its own indentation; a rule is indented like it.
  kept.splice(at, 0, `${indent}${nftRule(o)}`);
  return kept.join('\n');
}

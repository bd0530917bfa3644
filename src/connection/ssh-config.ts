/**
 * OpenSSH client configuration (ssh_config(5)) parsed with the `ssh-config` package and matched as OpenSSH
 * matches it (ssh-config-match.ts). Values are checked when the file is loaded, so a typo fails the run before any
 * connection with the file and line of the mistake.
 */
import { existsSync, readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import SSHConfig, { LineType, type Match, type Section } from 'ssh-config';
import { InputError, displayPath, type SourcePos } from '../errors.js';
import { resolveSettings, wordsOf, type RawSettings } from './ssh-config-match.js';

/** How strictly a server's host key is checked against known_hosts. */
export type HostKeyChecking = 'yes' | 'accept-new' | 'no';

/** One hop of a ProxyJump list: `[user@]host[:port]` or `ssh://[user@]host[:port]`. */
export interface JumpSpec {
  host: string;
  user?: string;
  port?: number;
}

/** The settings ssh_config gives one host (first value obtained wins). Paths and tokens are not expanded yet. */
export interface SshHostConfig {
  hostName?: string;
  user?: string;
  port?: number;
  identityFiles: string[];
  identitiesOnly?: boolean;
  /** socket path, `SSH_AUTH_SOCK`, or `none` */
  identityAgent?: string;
  userKnownHostsFiles?: string[];
  globalKnownHostsFiles?: string[];
  hostKeyAlias?: string;
  strictHostKeyChecking?: HostKeyChecking;
  /** record new host keys with hashed host names (HashKnownHosts yes) */
  hashKnownHosts?: boolean;
  /** hops to go through, first hop first; an empty list is `ProxyJump none` */
  proxyJump?: JumpSpec[];
  connectTimeoutS?: number;
  connectionAttempts?: number;
  serverAliveIntervalS?: number;
  serverAliveCountMax?: number;
}

/** A loaded ssh_config file. */
export interface SshConfigFile {
  /** the file as given */
  file: string;
  /** the settings that apply to `host` (as typed by the user); `user` is the remote user when already known */
  lookup(host: string, user?: string): SshHostConfig;
  /** where the first directive named `param` (any case) with this value is written, for error messages */
  where(param: string, value?: string): SourcePos | undefined;
}

/** ~/.ssh/config when it exists, else null. */
export function defaultSshConfigPath(): string | null {
  const file = path.join(os.homedir(), '.ssh', 'config');
  return existsSync(file) ? file : null;
}

/** Read and check an ssh_config file. Throws InputError (file:line:col) when it is unreadable or invalid. */
export function loadSshConfig(file: string): SshConfigFile {
  const shown = displayPath(file);
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (e) {
    throw new InputError(`cannot read ssh config: ${(e as Error).message}`, undefined, shown);
  }
  const config = parseWithPositions(text, shown);
  const directives = locate(config, shown);
  for (const d of directives) check(d);
  const blocks = plainHostBlocks(config);
  return {
    file,
    lookup: (host, user) => toHostConfig(computeSettings(config, blocks, host, user), host, directives),
    where(param, value) {
      const p = param.toLowerCase();
      return directives.find((d) => d.param === p && (value === undefined || d.value === value))?.pos;
    },
  };
}

interface Located {
  /** lower-case parameter name */
  param: string;
  /** value as one string (multiple values joined by a space) */
  value: string;
  values: string[];
  pos: SourcePos;
  /** criteria keywords of a Match line */
  criteria?: string[];
}

function parseWithPositions(text: string, shown: string): SSHConfig {
  try {
    return SSHConfig.parse(text);
  } catch (e) {
    // The parser does not say where it stopped; every directive is one line, so find the line that fails alone.
    const lines = text.split(/\r?\n/);
    for (let i = 0; i < lines.length; i++) {
      try {
        SSHConfig.parse(lines[i]!);
      } catch (lineError) {
        throw new InputError(
          `cannot parse "${lines[i]!.trim()}": ${describeParseError(lineError as Error)}`,
          { file: shown, line: i + 1, col: lines[i]!.length - lines[i]!.trimStart().length + 1 },
        );
      }
    }
    throw new InputError(`cannot parse ssh config: ${describeParseError(e as Error)}`, undefined, shown);
  }
}

function describeParseError(e: Error): string {
  // The parser dereferences a missing value instead of reporting it.
  if (e instanceof TypeError) return 'missing value';
  return e.message.replace(/^Unexpected line break at .*$/, 'unterminated quote or trailing backslash');
}

/** Directives with their 1-based positions, in file order (a section's own line, then its body). */
function locate(config: SSHConfig, shown: string): Located[] {
  const out: Located[] = [];
  let line = 1;
  const newlines = (s: string) => (s.match(/\n/g) ?? []).length;
  const visit = (nodes: SSHConfig) => {
    for (const node of nodes) {
      line += newlines(node.before);
      if (node.type === LineType.DIRECTIVE) {
        const values = wordsOf(node.value);
        const col = node.before.length - node.before.lastIndexOf('\n');
        // A keyword alone on its line swallows the line break (and the next line) into itself.
        const param = node.param.trim();
        const located: Located = { param: param.toLowerCase(), value: values.join(' '), values, pos: { file: shown, line, col } };
        if ('criteria' in node) located.criteria = Object.keys(node.criteria);
        if (located.value === '' || /[\r\n]/.test(node.param)) fail(located, `${param} has no value`);
        out.push(located);
      }
      line += newlines(node.after);
      if ('config' in node) visit((node as Section).config);
    }
  };
  visit(config);
  return out;
}

const YES = new Set(['yes', 'true']);
const NO = new Set(['no', 'false']);
const STRICT: Record<string, HostKeyChecking> = {
  yes: 'yes',
  true: 'yes',
  // There is no one to ask during a run; OpenSSH in batch mode treats `ask` as `yes`.
  ask: 'yes',
  'accept-new': 'accept-new',
  no: 'no',
  false: 'no',
  off: 'no',
};
const MATCH_CRITERIA = new Set(['all', 'canonical', 'final', 'host', 'originalhost', 'user', 'localuser']);

function fail(d: Located, message: string): never {
  throw new InputError(message, d.pos);
}

function check(d: Located): void {
  switch (d.param) {
    case 'include':
      fail(d, 'Include is not supported: put the settings in this file or pass --ssh-config with a file without Include');
    case 'match': {
      for (const key of d.criteria ?? []) {
        if (!MATCH_CRITERIA.has(key.toLowerCase())) {
          fail(d, `Match ${key} is not supported (supported: ${[...MATCH_CRITERIA].join(', ')})`);
        }
      }
      // OpenSSH refuses `all` with anything after it or more than one criterion before it (readconf.c).
      for (let i = 0, before = 0; i < d.values.length; i++, before++) {
        const key = d.values[i]!.toLowerCase();
        if (key === 'all' && (before > 1 || i < d.values.length - 1)) fail(d, `Match all cannot be combined with other criteria: ${d.value}`);
        if (key !== 'all' && key !== 'final' && key !== 'canonical') i++;
      }
      return;
    }
    case 'port':
      parsePort(d.value, () => fail(d, `Port "${d.value}" is not a port number (1-65535)`));
      return;
    case 'connecttimeout':
    case 'connectionattempts':
      if (!/^[1-9][0-9]{0,5}$/.test(d.value)) fail(d, `${d.param === 'connecttimeout' ? 'ConnectTimeout' : 'ConnectionAttempts'} "${d.value}" is not a positive whole number`);
      return;
    case 'serveraliveinterval':
    case 'serveralivecountmax':
      if (!/^[0-9]{1,6}$/.test(d.value)) fail(d, `${d.param === 'serveraliveinterval' ? 'ServerAliveInterval' : 'ServerAliveCountMax'} "${d.value}" is not a whole number`);
      return;
    case 'stricthostkeychecking':
      if (!(d.value.toLowerCase() in STRICT)) fail(d, `StrictHostKeyChecking "${d.value}" is not one of yes, no, ask, accept-new, off`);
      return;
    case 'identitiesonly':
      if (!YES.has(d.value.toLowerCase()) && !NO.has(d.value.toLowerCase())) fail(d, `IdentitiesOnly "${d.value}" is not yes or no`);
      return;
    case 'hashknownhosts':
      if (!YES.has(d.value.toLowerCase()) && !NO.has(d.value.toLowerCase())) fail(d, `HashKnownHosts "${d.value}" is not yes or no`);
      return;
    case 'proxyjump':
      try {
        parseProxyJump(d.value);
      } catch (e) {
        fail(d, (e as Error).message);
      }
      return;
  }
}

function parsePort(value: string, onError: () => never): number {
  if (!/^[0-9]{1,5}$/.test(value)) onError();
  const n = Number(value);
  if (n < 1 || n > 65535) onError();
  return n;
}

/** Parse a ProxyJump value: `none`, or comma-separated `[user@]host[:port]` / `ssh://[user@]host[:port]`. */
export function parseProxyJump(value: string): JumpSpec[] {
  if (value.trim().toLowerCase() === 'none') return [];
  return value.split(',').map((raw) => {
    const s = raw.trim().replace(/^ssh:\/\//, '');
    const m = /^(?:([^@\s]+)@)?(\[[^\]\s]+\]|[^:@\s[\]]+)(?::([0-9]{1,5}))?$/.exec(s);
    if (!m) throw new Error(`ProxyJump "${raw.trim()}" is not [user@]host[:port]`);
    const spec: JumpSpec = { host: m[2]!.replace(/^\[(.*)\]$/, '$1') };
    if (m[1]) spec.user = m[1];
    if (m[3]) spec.port = parsePort(m[3], () => {
      throw new Error(`ProxyJump "${raw.trim()}" has an invalid port`);
    });
    return spec;
  });
}

/**
 * The `Host` blocks whose patterns are all plain words (no `*`, `?` or `!`), by word, letter case included. A file
 * with one block per host would have every block's patterns compared for every host looked up; a plain block
 * can only match a name equal to one of its words (OpenSSH compares Host patterns with the name as asked,
 * case-sensitively), so a lookup reads only the plain blocks that list the name (with every other line, in file
 * order) and computes the same settings.
 */
export interface PlainHostBlocks {
  /** indices of the plain blocks among the file's top-level lines */
  plain: Set<number>;
  /** word → indices of the plain blocks that list it */
  byWord: Map<string, number[]>;
}

/**
 * Index the plain Host blocks, or null when a lookup must see every block: Host lines are matched a second time,
 * against the HostName, when the file has `Match final` or CanonicalizeHostName (CanonicalDomains is taken the
 * same way), and a block left out for the name asked might match that one.
 */
export function plainHostBlocks(config: SSHConfig): PlainHostBlocks | null {
  const plain = new Set<number>();
  const byWord = new Map<string, number[]>();
  for (let i = 0; i < config.length; i++) {
    const line = config[i]!;
    if (line.type !== LineType.DIRECTIVE) continue;
    const body = 'config' in line ? (line as Section).config : [];
    for (const d of [line, ...body]) if (d.type === LineType.DIRECTIVE && /^canonical(izehostname|domains)$/i.test(d.param.trim())) return null;
    if ('criteria' in line && Object.keys((line as Match).criteria).some((k) => k.toLowerCase() === 'final')) return null;
    // The same test the library uses to tell a Host line.
    if (!/^host$/i.test(line.param)) continue;
    // Each word is one pattern: OpenSSH does not split a Host word at commas.
    const patterns = wordsOf(line.value);
    if (patterns.some((p) => /[*?!]/.test(p))) continue;
    plain.add(i);
    for (const word of new Set(patterns)) {
      const list = byWord.get(word);
      if (list) list.push(i);
      else byWord.set(word, [i]);
    }
  }
  return { plain, byWord };
}

/**
 * The lines a lookup of `name` (as asked) needs: every line but the plain Host blocks that do not list the name.
 * A pattern without `*` and `?` matches only a name equal to it byte for byte, letter case included.
 */
export function candidateLines(config: SSHConfig, blocks: PlainHostBlocks | null, name: string): SSHConfig {
  if (!blocks || blocks.plain.size === 0) return config;
  const hits = blocks.byWord.get(name) ?? [];
  const view = new SSHConfig();
  for (let i = 0; i < config.length; i++) if (!blocks.plain.has(i) || hits.includes(i)) view.push(config[i]!);
  return view;
}

/** The raw settings `toHostConfig` reads for `host` (as asked, letter case kept) and `user`, when known. */
export function computeSettings(config: SSHConfig, blocks: PlainHostBlocks | null, host: string, user: string | undefined): RawSettings {
  // `Match exec` is refused when loading, so nothing here runs a command.
  return resolveSettings(candidateLines(config, blocks, host), host, user);
}

function toHostConfig(raw: RawSettings, host: string, directives: Located[]): SshHostConfig {
  const one = (key: string): string | undefined => {
    const v = raw[key];
    if (v === undefined) return undefined;
    return Array.isArray(v) ? v.join(' ') : v;
  };
  const many = (key: string): string[] | undefined => {
    const v = raw[key];
    if (v === undefined) return undefined;
    return Array.isArray(v) ? v : v.split(/\s+/).filter(Boolean);
  };
  const proxyCommand = one('proxycommand');
  if (proxyCommand !== undefined && proxyCommand.toLowerCase() !== 'none') {
    const pos = directives.find((d) => d.param === 'proxycommand')?.pos;
    throw new InputError(`ProxyCommand (for ${host}) is not supported; use ProxyJump`, pos);
  }
  const out: SshHostConfig = { identityFiles: many('identityfile') ?? [] };
  const hostName = one('hostname');
  if (hostName !== undefined) out.hostName = hostName;
  const u = one('user');
  if (u !== undefined) out.user = u;
  const port = one('port');
  if (port !== undefined) out.port = Number(port);
  const only = one('identitiesonly');
  if (only !== undefined) out.identitiesOnly = YES.has(only.toLowerCase());
  const agent = one('identityagent');
  if (agent !== undefined) out.identityAgent = agent;
  const ukh = many('userknownhostsfile');
  if (ukh !== undefined) out.userKnownHostsFiles = ukh;
  const gkh = many('globalknownhostsfile');
  if (gkh !== undefined) out.globalKnownHostsFiles = gkh;
  const alias = one('hostkeyalias');
  if (alias !== undefined) out.hostKeyAlias = alias;
  const hash = one('hashknownhosts');
  if (hash !== undefined) out.hashKnownHosts = YES.has(hash.toLowerCase());
  const strict = one('stricthostkeychecking');
  if (strict !== undefined) out.strictHostKeyChecking = STRICT[strict.toLowerCase()]!;
  const jump = one('proxyjump');
  if (jump !== undefined) out.proxyJump = parseProxyJump(jump);
  const ct = one('connecttimeout');
  if (ct !== undefined) out.connectTimeoutS = Number(ct);
  const ca = one('connectionattempts');
  if (ca !== undefined) out.connectionAttempts = Number(ca);
  const sai = one('serveraliveinterval');
  if (sai !== undefined) out.serverAliveIntervalS = Number(sai);
  const sacm = one('serveralivecountmax');
  if (sacm !== undefined) out.serverAliveCountMax = Number(sacm);
  return out;
}

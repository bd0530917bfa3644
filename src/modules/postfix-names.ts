/**
 * What the postconf and master_cf modules share: the host's Postfix version and config directory, how a value is
 * written, the names Postfix knows (for "unknown parameter" errors with a suggestion), and the `postconf -c DIR`
 * validation.
 */
import { createHash } from 'node:crypto';
import path from 'node:path';
import { heredocTo, quote } from '../connection/shell-quote.js';
import { POSTFIX_LISTING_VAR, POSTFIX_VERSION_VAR } from '../facts/gather.js';
import type { Facts } from '../facts/types.js';
import { fromBinary, referencedNames } from '../formats/main-cf.js';
import { type MasterCfEntry, splitService } from '../formats/master-cf.js';
import { ownString } from '../util/own-string.js';
import { nearest } from '../util/suggest.js';
import { compareVersions } from '../util/version.js';
import { ModuleError, type TaskContext, type Validation } from './module.js';
import { PostfixNamesStore } from './postfix-names-store.js';

/** /usr/sbin is not on every remote user's PATH (CentOS without a login shell). */
const SBIN_PATH = 'PATH="$PATH:/usr/sbin:/sbin"; export PATH';

/** `configDir`, or null when neither the task nor the host names one (for `reads`, which must not throw). */
export function knownConfigDir(argDir: string | undefined, facts: Facts): string | null {
  const dir = argDir ?? facts.postfix_config_dir;
  return dir ? dir.replace(/\/+$/, '') || '/' : null;
}

/** The config directory a task edits: its `config_dir`, else the host's `postconf -h config_directory`. */
export function configDir(argDir: string | undefined, facts: Facts): string {
  const dir = knownConfigDir(argDir, facts);
  if (dir === null) throw new ModuleError('Postfix is not installed on this host (no postconf found); set config_dir to edit files anyway');
  return dir;
}

/**
 * A value as main.cf and master.cf spell it. Playbooks are YAML 1.1, so `yes`/`no` arrive as booleans and go back
 * as yes/no; a list is a Postfix list, joined with ", ".
 */
export function renderValue(v: string | number | boolean | null | (string | number)[]): string {
  if (v === null) return '';
  if (typeof v === 'boolean') return v ? 'yes' : 'no';
  if (Array.isArray(v)) return v.map(String).join(', ');
  return String(v);
}

/** The host's Postfix version, required to know its parameter names and syntax. */
export function postfixVersion(facts: Facts): string {
  if (!facts.postfix_version) throw new ModuleError('Postfix is not installed on this host (postconf -h mail_version gave nothing)');
  return facts.postfix_version;
}

/** Whether `version` ("3.7.11", "2.6.6", "3.10-20240101") is at least `major.minor`. */
export function versionAtLeast(version: string, major: number, minor: number): boolean {
  return compareVersions(version, `${major}.${minor}`) >= 0;
}

/** Known parameter names per Postfix version, for the life of the process: `postconf -d` runs once per version. */
/**
 * Names by host, then by version. A host's answer is kept for that host only: a hostile host that claims any
 * version with any list of names decides nothing about another host's parameters.
 */
const knownByHost = new Map<string, Map<string, ReadonlySet<string>>>();

/** Where names are kept on disk between runs (one directory per host), when the run uses a store. */
let storeDir: string | null = null;
const stores = new Map<string, PostfixNamesStore>();

/** Keep names under `dir` between runs from now on (null: only for the life of the process). */
export function useNamesStore(dir: string | null): void {
  if (dir !== storeDir) stores.clear();
  storeDir = dir;
}

/** The store of `host`'s names: a directory named by a hash of the inventory name (any name, no path tricks). */
function storeOf(host: string): PostfixNamesStore | null {
  if (storeDir === null) return null;
  let s = stores.get(host);
  if (!s) {
    s = new PostfixNamesStore(path.join(storeDir, createHash('sha256').update(host).digest('hex').slice(0, 32)));
    stores.set(host, s);
  }
  return s;
}

const DEFAULTS_KEY = 'postconf-d:';

/** The read-only command that lists a version's parameters; the runner prefetches it with the files. */
export function postconfDefaultsCommand(version: string): { key: string; script: string } {
  return { key: `${DEFAULTS_KEY}${version}`, script: `${SBIN_PATH}; postconf -d` };
}

/** Whether a read-only command is `postconfDefaultsCommand`'s (the first exec asks for names its own way). */
export function isDefaultsCommand(key: string): boolean {
  return key.startsWith(DEFAULTS_KEY);
}

/** The names `host` gave for `version`, from the process, else from its store (then kept in the process), else null. */
function knownNames(host: string, version: string): ReadonlySet<string> | null {
  const hit = knownByHost.get(host)?.get(version);
  if (hit) return hit;
  const stored = storeOf(host)?.load(version) ?? null;
  if (stored) remember(host, version, stored);
  return stored;
}

/**
 * One Set for each distinct list of names, whichever hosts gave it: 500 hosts of one Postfix version keep one
 * list of ~1000 names, not 500. Hosts share a Set only when their lists are identical, so what one host claims
 * still decides nothing about another's.
 */
const distinctLists = new Map<number, ReadonlySet<string>[]>();
/** The shared Set of a Set already looked up (a host's names are remembered again when read from its store). */
let sharedOf = new WeakMap<ReadonlySet<string>, ReadonlySet<string>>();

/**
 * Lists are told apart by their size, then name by name: two Sets of one size are equal when one holds every name
 * of the other. With the few distinct lists of a fleet this is one lookup per name, not a sort and a hash per host.
 */
function shared(names: ReadonlySet<string>): ReadonlySet<string> {
  const known = sharedOf.get(names);
  if (known) return known;
  let lists = distinctLists.get(names.size);
  if (!lists) distinctLists.set(names.size, (lists = []));
  let set = lists.find((l) => {
    for (const n of names) if (!l.has(n)) return false;
    return true;
  });
  if (!set) {
    // Copies: a name cut from `postconf -d`'s output would keep the whole output alive (see ownString).
    set = new Set([...names].map(ownString));
    lists.push(set);
  }
  sharedOf.set(names, set);
  return set;
}

function remember(host: string, version: string, names: ReadonlySet<string>): void {
  let m = knownByHost.get(host);
  if (!m) knownByHost.set(host, (m = new Map()));
  m.set(version, shared(names));
}

/** Versions whose names this controller keeps for `host`: in the process, or with a file in its store. */
export function knownNameVersions(host: string): string[] {
  return [...new Set([...(knownByHost.get(host)?.keys() ?? []), ...(storeOf(host)?.versions() ?? [])])];
}

/** Keep the names `host` gave for `version`, for the process and, with a store, for later runs. */
export function rememberNames(host: string, version: string, names: ReadonlySet<string>): void {
  remember(host, version, names);
  storeOf(host)?.save(version, knownByHost.get(host)!.get(version)!);
}

/** Whether a read of `postconfDefaultsCommand` is needless on `host`: its names for that version are kept. */
export function namesKeptFor(host: string, commandKey: string): boolean {
  return isDefaultsCommand(commandKey) && knownNames(host, commandKey.slice(DEFAULTS_KEY.length)) !== null;
}

/** `postconfDefaultsCommand` for `reads` (the runner leaves it out for a host whose names it keeps, see namesKeptFor). */
export function pendingNameReads(version: string | null): { key: string; script: string }[] {
  return version ? [postconfDefaultsCommand(version)] : [];
}

/** Parameter names from `postconf -d` output (`name = value` per line). */
export function parsePostconfNames(stdout: string): Set<string> {
  const names = new Set<string>();
  // Line by line without cutting the text into lines: the name and " =" are matched where each line starts (a
  // name holds no line break, so a match never runs into the next line).
  const re = /([A-Za-z0-9_]+) =/y;
  for (let start = 0; start <= stdout.length; ) {
    re.lastIndex = start;
    const m = re.exec(stdout);
    if (m) names.add(m[1]!);
    const nl = stdout.indexOf('\n', start);
    if (nl < 0) break;
    start = nl + 1;
  }
  return names;
}

/** The names Postfix `version` knows, from the controller's caches or the host's `postconf -d`. */
export async function builtinNames(ctx: TaskContext, version: string): Promise<ReadonlySet<string>> {
  const cached = knownNames(ctx.host, version);
  if (cached) return cached;
  const cmd = postconfDefaultsCommand(version);
  const res = await ctx.readCommand(cmd.key, cmd.script);
  const names = parsePostconfNames(res.stdout.toString('utf8'));
  if (res.code !== 0 || names.size === 0) {
    const why = res.stderr.toString('utf8').trim() || `exit status ${res.code}`;
    throw new ModuleError(`cannot list Postfix's parameter names with postconf -d: ${why}`);
  }
  rememberNames(ctx.host, version, names);
  return knownNames(ctx.host, version)!;
}

/** Forget names kept in the process (tests use it to start from a clean process); the store is left alone. */
export function clearNameCache(): void {
  knownByHost.clear();
  distinctLists.clear();
  sharedOf = new WeakMap();
}

/** The line before the facts' listing (hostNamesScript, parseHostNames). */
const LISTING_LINE = '@@P';

/** Shell: the text in the shell variable `variable`, with a final newline, in base64 on one line. */
const base64Line = (variable: string) => `printf '%s\\n' "$${variable}" | base64 -w0; printf '\\n'`;

/**
 * Shell for the facts exec, run after the facts script in its shell. When the facts listed Postfix's parameters
 * (`postconf -C builtin,service` in $POSTFIX_LISTING_VAR, see gather.ts), print `@@P` and that listing in base64
 * on one line. Otherwise, when the host's Postfix version (the facts leave it in $POSTFIX_VERSION_VAR) is not among
 * `known`, print `@@N <exit status> <version>` and the output of `postconf -d` in base64 on one line; otherwise
 * print nothing.
 */
export function hostNamesScript(known: string[]): string {
  const v = `$${POSTFIX_VERSION_VAR}`;
  // One version a line: the version is one line of `postconf -h`, so it matches a known one only whole (with
  // spaces as separators, a version "3.7 11" would match the known "3.7" and "11").
  const list = known.filter((k) => k !== '' && !k.includes('\n'));
  return [
    `if [ -n "\${${POSTFIX_LISTING_VAR}:-}" ]; then`,
    `  echo ${LISTING_LINE}; ${base64Line(POSTFIX_LISTING_VAR)}`,
    `elif [ -n "\${${POSTFIX_VERSION_VAR}:-}" ]; then`,
    `  case ${quote(`\n${list.join('\n')}\n`)} in`,
    `    *"\n${v}\n"*) ;;`,
    `    *) pv_names=$(${SBIN_PATH}; postconf -d 2>/dev/null); pv_rc=$?`,
    `       printf '@@N %s %s\\n' "$pv_rc" "${v}"; ${base64Line('pv_names')} ;;`,
    '  esac',
    'fi',
  ].join('\n');
}

/** What `hostNamesScript` printed: a host's Postfix version and its parameter names. */
export interface HostNames {
  version: string;
  names: Set<string>;
  /** set when they came from the facts' listing: the config directory in it (the facts then hold neither) */
  listedConfigDir?: string;
}

/** The value of `name` in a `postconf` listing (`name = value` lines; `name =` for an empty one), or null. */
export function listedValue(listing: string, name: string): string | null {
  const text = `\n${listing}`;
  const head = `\n${name} =`;
  const at = text.indexOf(head);
  if (at < 0) return null;
  const end = text.indexOf('\n', at + head.length);
  const rest = text.slice(at + head.length, end < 0 ? undefined : end);
  if (rest !== '' && !rest.startsWith(' ')) return null;
  return rest.trim();
}

/**
 * What `hostNamesScript` printed, or null when the host printed none or its `postconf -d` failed (the names are
 * then fetched on demand, and a failure reported by the task that needs them). A listing without the version or
 * the config directory is null too (parseFirstExec then refuses facts that say the listing holds them).
 */
export function parseHostNames(output: string): HostNames | null {
  const lines = output.split('\n');
  const listed = lines.indexOf(LISTING_LINE);
  if (listed >= 0) {
    const text = Buffer.from(lines[listed + 1] ?? '', 'base64').toString('utf8');
    const version = listedValue(text, 'mail_version');
    const configDir = listedValue(text, 'config_directory');
    const names = parsePostconfNames(text);
    if (!version || configDir === null || names.size === 0) return null;
    return { version: ownString(version), names, listedConfigDir: ownString(configDir) };
  }
  const at = lines.findIndex((l) => l.startsWith('@@N '));
  if (at < 0) return null;
  const m = /^@@N (\d+) (.+)$/.exec(lines[at]!);
  if (!m || m[1] !== '0') return null;
  const names = parsePostconfNames(Buffer.from(lines[at + 1] ?? '', 'base64').toString('utf8'));
  return names.size ? { version: m[2]!, names } : null;
}


/**
 * Suffixes of per-transport parameters (`<transport>_destination_concurrency_limit`, …): Postfix defines them for
 * each master.cf service, so they are known exactly when the service exists.
 */
const TRANSPORT_SUFFIXES = [
  '_delivery_slot_cost',
  '_delivery_slot_discount',
  '_delivery_slot_loan',
  '_destination_concurrency_failed_cohort_limit',
  '_destination_concurrency_limit',
  '_destination_concurrency_negative_feedback',
  '_destination_concurrency_positive_feedback',
  '_destination_rate_delay',
  '_destination_recipient_limit',
  '_extra_recipient_limit',
  '_initial_destination_concurrency',
  '_minimum_delivery_slots',
  '_recipient_limit',
  '_recipient_refill_delay',
  '_recipient_refill_limit',
  '_time_limit',
  '_transport_rate_delay',
];

/** Everything a name may be besides a built-in: referenced somewhere, a per-transport name, or allowed. */
export interface NameContext {
  builtin: ReadonlySet<string>;
  /** texts (latin1) whose `$name` references make a name known: main.cf and master.cf */
  texts: string[];
  /** names already found referenced in other such texts */
  referenced?: readonly string[];
  /** master.cf service names (without a host: prefix) */
  services: string[];
  allowUnknown: string[];
}

/** The names in `names` that Postfix would not use, each with the nearest known name when one is close. */
export function unknownNames(names: string[], ctx: NameContext): { name: string; suggestion?: string }[] {
  const referenced = new Set([...(ctx.referenced ?? []), ...ctx.texts.flatMap((t) => referencedNames(t))]);
  const allowed = new Set(ctx.allowUnknown);
  const isTransportName = (n: string) =>
    TRANSPORT_SUFFIXES.some((s) => n.endsWith(s) && ctx.services.includes(n.slice(0, -s.length)));
  const out: { name: string; suggestion?: string }[] = [];
  for (const name of names) {
    if (ctx.builtin.has(name) || referenced.has(name) || allowed.has(name) || isTransportName(name)) continue;
    const suggestion = nearest(name, ctx.builtin);
    out.push(suggestion ? { name, suggestion } : { name });
  }
  return out;
}

/**
 * Fail the task when Postfix would not use one of `names` (latin1), before anything is validated or written. Besides
 * built-ins, a name is known when `texts` (main.cf values, the values being set) or an active entry of `master`
 * refers to it, when it is a per-transport name of such an entry, or when the task allows it. Without names, the
 * host's `postconf -d` is not needed.
 */
export async function checkNames(
  ctx: TaskContext,
  where: string,
  names: string[],
  known: { texts: string[]; master: MasterCfEntry[]; allowUnknown?: string[] },
): Promise<void> {
  if (!names.length) return;
  const master = masterNames(known.master);
  const unknown = unknownNames(names, {
    builtin: await builtinNames(ctx, postfixVersion(ctx.facts)),
    texts: known.texts,
    referenced: master.referenced,
    services: master.services,
    allowUnknown: known.allowUnknown ?? [],
  });
  if (unknown.length) throw unknownNamesError(where, unknown);
}

/**
 * What a list of master.cf entries gives a name check, by list: a frozen list (a shared parse, see parsedMasterCf)
 * cannot change, so hosts with the same master.cf work it out once between them.
 */
const masterNamesOf = new WeakMap<readonly MasterCfEntry[], { referenced: string[]; services: string[] }>();

/** The names an active entry's words refer to, and the active services (ports) of `master`. */
function masterNames(master: readonly MasterCfEntry[]): { referenced: string[]; services: string[] } {
  const hit = masterNamesOf.get(master);
  if (hit) return hit;
  const active = master.filter((e) => !e.commented);
  const out = {
    referenced: [...new Set(active.flatMap((e) => e.tokens.flatMap((t) => referencedNames(t.text))))],
    services: active.map((e) => splitService(e.service).port),
  };
  if (Object.isFrozen(master)) masterNamesOf.set(master, out);
  return out;
}

/** The error for unknown names: each with its suggestion, and how to allow a name on purpose. */
export function unknownNamesError(where: string, unknown: { name: string; suggestion?: string }[]): ModuleError {
  const list = unknown.map((u) => `"${fromBinary(u.name)}"${u.suggestion ? ` (did you mean "${u.suggestion}"?)` : ''}`).join(', ');
  const noun = unknown.length > 1 ? 'parameters' : 'parameter';
  return new ModuleError(
    `unknown Postfix ${noun} in ${where}: ${list}; Postfix would ignore ${unknown.length > 1 ? 'them' : 'it'} with an "unused parameter" warning (list a name in allow_unknown if it is meant)`,
    { unknown: unknown.map((u) => u.name) },
  );
}

/**
 * A validation that puts the candidate in a fresh directory beside `other` (the other of main.cf and master.cf,
 * as this play has it so far) and runs `postconf -c DIR <flag>`. postconf exits 0 after "unused parameter" and
 * "overriding earlier entry" warnings, so any `warning:` on stderr fails the change as well.
 * The directory is `postconf` under the private scratch prefix that the write and validate scripts set (pv_p, see
 * scratchDirScript): in a session it lives as long as the session and serves each validation in turn (both files
 * and the error file are written anew each time), so a validation starts no mktemp and no rm; without a session
 * the prefix is in the script's own directory, which the script removes. A script without the prefix (none today)
 * makes and removes a directory of its own, as before.
 */
export function postconfValidation(candidate: 'main.cf' | 'master.cf', other: Buffer, flag: '-n' | '-M'): Validation {
  const otherName = candidate === 'main.cf' ? 'master.cf' : 'main.cf';
  // postconf names the files it read; the user knows them by the target's directory, not the temporary one
  const renamePaths =
    'awk -v from="$pv_pc/" -v to="${TARGET%/*}/" ' +
    "'{ while ((i = index($0, from)) > 0) $0 = substr($0, 1, i - 1) to substr($0, i + length(from)); print }'";
  const script = [
    '(',
    SBIN_PATH,
    'if [ -n "${pv_p:-}" ]; then',
    '  pv_pc="${pv_p}postconf"; pv_rm=',
    '  { [ -d "$pv_pc" ] && [ ! -L "$pv_pc" ]; } || mkdir -m 0700 -- "$pv_pc" || exit 1',
    'else',
    '  pv_pc=$(mktemp -d) || exit 1; pv_rm=1',
    'fi',
    `cp "$CANDIDATE" "$pv_pc/${candidate}" && ${heredocTo(`"$pv_pc/${otherName}"`, other)}pv_rc=$?`,
    // Postfix rereads a main.cf modified within the last second or two until it "cools down" (about 2 s per
    // postconf); these copies are scratch files, so an old time stamp costs nothing and saves that wait.
    '[ "$pv_rc" -eq 0 ] && touch -t 200001010000 "$pv_pc/main.cf" "$pv_pc/master.cf"',
    'if [ "$pv_rc" -eq 0 ]; then',
    `  postconf -c "$pv_pc" ${flag} >/dev/null 2>"$pv_pc/stderr"; pv_rc=$?`,
    // Most candidates are clean: only a postconf that said something needs its paths put right (one fork fewer).
    `  [ -s "$pv_pc/stderr" ] && ${renamePaths} "$pv_pc/stderr" >&2`,
    'fi',
    '[ -z "$pv_rm" ] || rm -rf "$pv_pc"',
    'exit "$pv_rc"',
    ')',
  ].join('\n');
  return { script, failOnStderr: 'warning:', description: `postconf ${flag}` };
}

/**
 * What the user module reads of a host's account databases, as Ansible's module sees them through the C library
 * (pwd.getpwnam, spwd's getspnam, grp.getgrall): one `getent passwd NAME` line, one `getent shadow NAME` line, the
 * whole `getent group` listing (the same lines as /etc/passwd, /etc/shadow and /etc/group on a host that keeps its
 * accounts in files), and whether the home directories the task is about exist. Pure: no I/O.
 */
import { quote } from '../connection/shell-quote.js';

export interface PasswdEntry {
  name: string;
  /** the passwd field as written (`x` when the hash is in /etc/shadow) */
  password: string;
  uid: number;
  gid: number;
  comment: string;
  home: string;
  shell: string;
}

export interface ShadowEntry {
  name: string;
  password: string;
  /** days since 1970-01-01 when the account expires; -1 when the field is empty (as getspnam gives it) */
  expire: number;
}

export interface GroupEntry {
  name: string;
  gid: number;
  members: string[];
}

export interface UserState {
  passwd: PasswdEntry | null;
  shadow: ShadowEntry | null;
  groups: GroupEntry[];
  /** the home the task ends with (its `home`, else the account's) exists */
  homeExists: boolean;
  /** the account's current home exists */
  oldHomeExists: boolean;
  /** the directory above the task's `home` is a directory */
  homeParentIsDir: boolean;
}

const SEP = '@@PV-USER';

/** Lines of a database listing, without the empty last one. */
function lines(text: string): string[] {
  return text.split('\n').filter((l) => l !== '');
}

/** The first passwd-format line for `name` in `text` (a `getent passwd` line or a whole /etc/passwd). */
export function parsePasswd(text: string, name: string): PasswdEntry | null {
  for (const l of lines(text)) {
    const f = l.split(':');
    if (f.length < 7 || f[0] !== name || !/^\d+$/.test(f[2]!) || !/^\d+$/.test(f[3]!)) continue;
    return { name: f[0]!, password: f[1]!, uid: Number(f[2]), gid: Number(f[3]), comment: f[4]!, home: f[5]!, shell: f.slice(6).join(':') };
  }
  return null;
}

/** The first shadow-format line for `name` (a `getent shadow` line or a whole /etc/shadow). */
export function parseShadow(text: string, name: string): ShadowEntry | null {
  for (const l of lines(text)) {
    const f = l.split(':');
    if (f.length < 8 || f[0] !== name) continue;
    const expire = /^\d+$/.test(f[7]!) ? Number(f[7]) : -1;
    return { name: f[0]!, password: f[1]!, expire };
  }
  return null;
}

/** Every group of a group listing (`getent group` or /etc/group), in its order. */
export function parseGroups(text: string): GroupEntry[] {
  const out: GroupEntry[] = [];
  for (const l of lines(text)) {
    const f = l.split(':');
    if (f.length < 4 || !/^\d+$/.test(f[2]!)) continue;
    out.push({ name: f[0]!, gid: Number(f[2]), members: f[3] ? f[3].split(',').filter(Boolean) : [] });
  }
  return out;
}

/**
 * A group named by gid or by name, as Ansible's module looks one up: a value that reads as a number is tried as
 * a gid first, then as a name.
 */
export function findGroup(groups: GroupEntry[], ref: string): GroupEntry | null {
  const t = ref.trim();
  if (/^[+-]?\d+$/.test(t)) {
    const byGid = groups.find((g) => g.gid === Number(t));
    if (byGid) return byGid;
  }
  return groups.find((g) => g.name === ref) ?? null;
}

/** The groups whose member list names the user (its primary group too when listed there), in listing order. */
export function memberOf(groups: GroupEntry[], user: string): string[] {
  return groups.filter((g) => g.members.includes(user)).map((g) => g.name);
}

/** The read-only script whose output `parseUserState` reads; `home` is the task's `home`, when it has one. */
export function userReadScript(name: string, home: string | undefined): string {
  const n = quote(name);
  return [
    `p=$(getent passwd ${n}) || p=''`,
    `printf '%s\\n' "$p" '${SEP}'`,
    `getent shadow ${n}`,
    `printf '%s\\n' '${SEP}'`,
    'getent group',
    `printf '%s\\n' '${SEP}'`,
    `o=$(printf '%s\\n' "$p" | cut -d: -f6)`,
    `h=${home !== undefined ? quote(home) : '"$o"'}`,
    'if [ -n "$h" ] && [ -e "$h" ]; then echo home; fi',
    'if [ -n "$o" ] && [ -e "$o" ]; then echo oldhome; fi',
    'if [ -n "$h" ] && [ -d "$(dirname -- "$h")" ]; then echo parent; fi',
    'exit 0',
  ].join('\n');
}

export function parseUserState(out: string, name: string): UserState {
  const parts: string[][] = [[]];
  for (const l of out.split('\n')) {
    if (l === SEP) parts.push([]);
    else parts.at(-1)!.push(l);
  }
  const text = (i: number) => (parts[i] ?? []).join('\n');
  const flags = new Set(parts[3] ?? []);
  return {
    passwd: parsePasswd(text(0), name),
    shadow: parseShadow(text(1), name),
    groups: parseGroups(text(2)),
    homeExists: flags.has('home'),
    oldHomeExists: flags.has('oldhome'),
    homeParentIsDir: flags.has('parent'),
  };
}

/**
 * The steps of Ansible's create_homedir then chown_homedir, as a shell fragment: a home that is not there is
 * made as a copy of /etc/skel (or empty when there is none), with its parents, given the mode /etc/login.defs's
 * UMASK line implies, and then everything in it is given to the user and the user's primary group.
 */
export function makeHomeScript(home: string, user: string): string {
  const h = quote(home);
  return [
    `if [ ! -e ${h} ]; then`,
    `  if [ -e /etc/skel ]; then mkdir -p -- "$(dirname -- ${h})" && cp -a -- /etc/skel ${h} || exit $?; else mkdir -p -- ${h} || exit $?; fi`,
    "  pv_umask=$(sed -n 's/^UMASK[[:space:]]\\{1,\\}\\([0-7]\\{1,\\}\\)$/\\1/p' /etc/login.defs 2>/dev/null | tail -n 1)",
    `  if [ -n "$pv_umask" ]; then chmod "$(printf '%o' $((0777 & ~0$pv_umask)))" -- ${h} || exit $?; fi`,
    'fi',
    `chown -R -- ${quote(`${user}:`)} ${h} || exit $?`,
  ].join('\n');
}

export const USER_RESULT_MARK = SEP;

/** Whether a password looks like a crypt(3) hash, as Ansible's module checks before warning that it does not. */
export function looksHashed(password: string): boolean {
  if (['*', '!', '*************'].includes(password)) return true;
  if (/[:*!]/.test(password) || !password.includes('$')) return false;
  const f = password.split('$');
  if (f.length < 3) return false;
  const last = f.at(-1)!;
  if (/[^a-zA-Z0-9./=]/.test(last)) return false;
  const want: Record<string, number> = { '1': 22, '5': 43, '6': 86 };
  const len = want[f[1]!];
  return len === undefined || last.length === len;
}

/** `expires` (seconds since the epoch) as useradd/usermod -e takes it: a date, or '' (never) when negative. */
export function expiresArg(expires: number): string {
  if (expires < 0) return '';
  return new Date(Math.floor(expires) * 1000).toISOString().slice(0, 10);
}

/** Whether the account's expiry (days, -1 for none) already is what `expires` asks, compared as Ansible does. */
export function sameExpiry(currentDays: number, expires: number): boolean {
  if (expires < 0) return currentDays < 0;
  if (currentDays < 0) return false;
  return new Date(currentDays * 86_400_000).toISOString().slice(0, 10) === expiresArg(expires);
}

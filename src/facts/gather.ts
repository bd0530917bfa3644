/**
 * Facts in one exec: a shell script prints `key=value` lines, and a pure parser turns them into Facts.
 * The script only reads; it runs the same on RHEL-like, Debian-like and busybox hosts. It runs on every host at
 * every run, so it reads with shell builtins where it can rather than start a process.
 */
import type { Facts } from './types.js';
import { ownString } from '../util/own-string.js';

/** The facts script leaves the host's Postfix version (mail_version) in this shell variable, empty without Postfix. */
export const POSTFIX_VERSION_VAR = 'pv_postfix_version';
/** With `listPostfix` (see factsScript), `postconf -C builtin,service` is left in this variable, else it is empty. */
export const POSTFIX_LISTING_VAR = 'pv_postfix_listing';
/** The facts line that says the version and config directory are in that listing, sent after the facts. */
export const POSTFIX_LISTED_FACT = 'postfix_listed';

/**
 * Shell: the effective uid of the shell in $pv_uid, as `id -u` prints it, read from the shell's own
 * /proc/self/status without starting a process (`id -u` where /proc is not mounted).
 */
const UID_OF_SHELL = String.raw`pv_uid=; if [ -r /proc/self/status ]; then while read -r pv_a pv_b pv_c pv_x; do if [ "$pv_a" = Uid: ]; then pv_uid=$pv_c; break; fi; done </proc/self/status; fi
case $pv_uid in ''|*[!0-9]*) pv_uid=$(id -u) ;; esac`;

/**
 * Shell: the name of the user $pv_uid in $pv_user, as `id -un` prints it: the first /etc/passwd line with that uid
 * (where the C library looks first), else `id -un` (a user from a directory service).
 */
const USER_OF_SHELL = String.raw`pv_user=; if [ -r /etc/passwd ]; then while IFS=: read -r pv_a pv_b pv_c pv_x; do if [ "$pv_c" = "$pv_uid" ]; then pv_user=$pv_a; break; fi; done </etc/passwd; fi
[ -n "$pv_user" ] || pv_user=$(id -un 2>/dev/null)`;

/**
 * Shell condition: firewalld is installed, so a firewalld process may run (pidof scans every process on the host,
 * so it runs only then). The daemon lives in an sbin directory, which a non-root login's PATH may lack.
 */
const FIREWALLD_INSTALLED = '{ command -v firewalld >/dev/null 2>&1 || [ -e /usr/sbin/firewalld ] || [ -e /sbin/firewalld ] || [ -e /usr/bin/firewalld ]; }';

/**
 * Shell: the first line of the default IPv4 route and of the addresses of the interface it leaves by, for
 * defaultIpv4; the interface is the route's last `dev` word, cut out by the shell rather than by sed.
 */
const DEFAULT_ROUTE = [
  'if command -v ip >/dev/null 2>&1; then',
  `  pv_r=$(ip -4 route show default 2>/dev/null); pv_r=\${pv_r%%"$pv_nl"*}; printf 'ipv4_route=%s\\n' "$pv_r"`,
  '  pv_i=; case $pv_r in *" dev "*) pv_i=${pv_r##* dev }; pv_i=${pv_i%% *} ;; esac',
  `  [ -n "$pv_i" ] && { pv_a=$(ip -o -4 addr show dev "$pv_i" 2>/dev/null); printf 'ipv4_addr=%s\\n' "\${pv_a%%"$pv_nl"*}"; }`,
  'fi',
].join('\n');

/** Shell: the host's Postfix version and config directory, as `postconf -h` prints them. */
const POSTFIX_BY_NAME = String.raw`{ read -r ${POSTFIX_VERSION_VAR}; read -r pv_d; } <<PV_POSTCONF
$(postconf -h mail_version config_directory 2>/dev/null)
PV_POSTCONF
printf 'postfix_version=%s\npostfix_config_dir=%s\n' "$${POSTFIX_VERSION_VAR}" "$pv_d"`;

/**
 * Shell: `postconf -C builtin,service`, kept in $POSTFIX_LISTING_VAR for what runs after the facts, with a line
 * `postfix_listed=1` in place of the version and config directory, which the controller takes from the listing
 * (see postfix-names.ts). One postconf run gives what otherwise takes two (`postconf -h mail_version
 * config_directory`, then `postconf -d` for the names): the listing holds the parameters `postconf -d` lists
 * (built-in and service-defined names; postconf registers both whether or not -d is given, and -C leaves out the
 * user-defined ones only a main.cf without -d adds), with their values as main.cf sets them, as -h prints them.
 * When any of that fails (a Postfix before 2.9 has no -C; no base64 to send the listing), the facts ask
 * `postconf -h` as usual.
 */
const POSTFIX_LISTED = String.raw`if command -v base64 >/dev/null 2>&1 && pv_pl=$(postconf -C builtin,service 2>/dev/null) &&
  case "$pv_nl$pv_pl" in *"$pv_nl"mail_version' = '*) ;; *) false ;; esac &&
  case "$pv_nl$pv_pl" in *"$pv_nl"config_directory' = '*) ;; *) false ;; esac; then
  ${POSTFIX_LISTING_VAR}=$pv_pl; echo ${POSTFIX_LISTED_FACT}=1
else
${POSTFIX_BY_NAME}
fi`;

/** The facts script without its final `exit`; `listPostfix`: the facts list Postfix's parameters (POSTFIX_LISTED). */
const factsBody = (listPostfix: boolean) => String.raw`
pv_nl='
'
pv_osr=/etc/os-release; [ -r "$pv_osr" ] || pv_osr=/usr/lib/os-release
if [ -r "$pv_osr" ]; then
  ( . "$pv_osr"; printf 'os_id=%s\nos_id_like=%s\nos_version_id=%s\n' "$ID" "$ID_LIKE" "$VERSION_ID" )
fi
[ -e /etc/redhat-release ] && echo redhat_release=1
[ -e /etc/debian_version ] && echo debian_version=1
pv_h=; read -r pv_h 2>/dev/null </proc/sys/kernel/hostname || pv_h=$(hostname 2>/dev/null)
printf 'hostname=%s\n' "$pv_h"
printf 'fqdn=%s\n' "$(hostname -f 2>/dev/null)"
${UID_OF_SHELL}
${USER_OF_SHELL}
printf 'user=%s\nuid=%s\n' "$pv_user" "$pv_uid"
${DEFAULT_ROUTE}
pv_c=; read -r pv_c 2>/dev/null </proc/1/comm
printf 'pid1=%s\n' "$pv_c"
[ -d /run/systemd/system ] && echo systemd_running=1
pv_fwd=; pv_fwpids=; pv_fwrc=
${POSTFIX_VERSION_VAR}=; ${POSTFIX_LISTING_VAR}=
if command -v postconf >/dev/null 2>&1; then
${listPostfix ? POSTFIX_LISTED : POSTFIX_BY_NAME}
fi
command -v iptables >/dev/null 2>&1 && printf 'iptables_version=%s\n' "$(iptables -V 2>/dev/null)"
command -v nft >/dev/null 2>&1 && echo nft=1
[ -e /etc/sysconfig/iptables ] && echo sysconfig_iptables=1
[ -e /etc/init.d/iptables ] || [ -e /usr/lib/systemd/system/iptables.service ] && echo iptables_service=1
[ -e /etc/iptables/rules.v4 ] && echo rules_v4=1
[ -e /etc/sysconfig/ip6tables ] && echo sysconfig_ip6tables=1
[ -e /etc/iptables/rules.v6 ] && echo rules_v6=1
[ -r /proc/net/if_inet6 ] && while read -r pv_a pv_i pv_p pv_s pv_r; do [ "$pv_s" = 00 ] && { echo ipv6_global=1; break; }; done </proc/net/if_inet6
[ -e /etc/init.d/netfilter-persistent ] || [ -e /lib/systemd/system/netfilter-persistent.service ] || [ -e /usr/lib/systemd/system/netfilter-persistent.service ] && echo netfilter_persistent=1
if [ -d /run/systemd/system ] && command -v systemctl >/dev/null 2>&1; then
  systemctl is-active --quiet firewalld 2>/dev/null && echo firewalld_active=1 && pv_fwd=1
  systemctl is-active --quiet nftables 2>/dev/null && echo nftables_active=1
elif [ -e /var/run/firewalld.pid ] || { ${FIREWALLD_INSTALLED} && { pv_fwpids=$(pidof firewalld 2>/dev/null); pv_fwrc=$?; [ "$pv_fwrc" = 0 ]; }; }; then echo firewalld_active=1; pv_fwd=1
fi
[ -r /etc/ufw/ufw.conf ] && grep -qi '^ENABLED=yes' /etc/ufw/ufw.conf && echo ufw_enabled=1
[ -e /etc/nftables.conf ] && echo nftables_conf=1
[ -e /etc/systemd/system/sysinit.target.wants/nftables.service ] && echo nftables_enabled=1
if [ -n "$pv_fwd" ]; then
  pv_ip=; [ -n "$SSH_CONNECTION" ] && pv_ip=$(echo "$SSH_CONNECTION" | cut -d' ' -f3)
  pv_if=$(ip -o addr show 2>/dev/null | while read -r _ pv_n _ pv_a _; do
    [ "$pv_n" = lo ] && continue
    [ -z "$pv_ip" ] && { echo "$pv_n"; break; }
    case "$pv_a" in "$pv_ip"/*) echo "$pv_n"; break ;; esac
  done | cut -d@ -f1)
  pv_z=; [ -n "$pv_if" ] && { pv_z=$(firewall-cmd --get-zone-of-interface="$pv_if" 2>/dev/null) || pv_z=; }
  [ -n "$pv_z" ] || pv_z=$(firewall-cmd --get-default-zone 2>/dev/null)
  printf 'firewalld_interface=%s\nfirewalld_zone=%s\n' "$pv_if" "$pv_z"
fi
`;

const FACTS_BODY = factsBody(false);
/** The body that lists Postfix's parameters, made once (a run asks for it once per host). */
const LISTING_FACTS_BODY = factsBody(true);

export const FACTS_SCRIPT = `${FACTS_BODY}exit 0\n`;

/** Printed after the facts when more output follows them in the same exec (see factsScript). */
export const FACTS_END_MARKER = '@@PROVISION_FACTS_END';

/**
 * The facts script, or with `after`: the facts, a line FACTS_END_MARKER, then `after` run in the same shell (it
 * sees $POSTFIX_VERSION_VAR), so one exec can bring back what the run needs besides the facts. The script exits 0
 * whatever `after` does: the facts are out, and the caller judges the rest by what it printed.
 */
export function factsScript(after = '', opts: FactsOptions = {}): string {
  if (!after) return FACTS_SCRIPT;
  return `${opts.listPostfix === true ? LISTING_FACTS_BODY : FACTS_BODY}echo ${FACTS_END_MARKER}\n${PIDOF_FIREWALLD_ONCE}\n${after}\nexit 0\n`;
}

export interface FactsOptions {
  /**
   * Leave `postconf -C builtin,service` in $POSTFIX_LISTING_VAR for `after` to send, in place of the version and
   * config directory (see POSTFIX_LISTED): for a controller that does not know the host's parameter names yet.
   */
  listPostfix?: boolean;
}

/**
 * Shell run between the facts and what follows them: when the facts ran `pidof firewalld` (a host without systemd
 * where firewalld is installed), a shell function of that name answers `pidof firewalld` in what follows with
 * that run's output and status, so a read that asks again in the same exec (firewall.ts's guard of
 * `firewall-cmd --list-all`) does not scan every process of the host a second time. A function is found before
 * the command of that name; any other `pidof` goes to the command. The variables are the facts script's own,
 * set there whatever the environment held.
 */
const PIDOF_FIREWALLD_ONCE = String.raw`if [ -n "$pv_fwrc" ]; then
  pidof() { if [ "$#" = 1 ] && [ "$1" = firewalld ]; then [ -z "$pv_fwpids" ] || printf '%s
' "$pv_fwpids"; return "$pv_fwrc"; fi; command pidof "$@"; }
fi`;

/** A line of its own in `text`, from `from` on: the index where it starts, or -1. */
export function lineAt(text: string, line: string, from = 0): number {
  if (from === 0 && text.startsWith(`${line}\n`)) return 0;
  const at = text.indexOf(`\n${line}\n`, Math.max(0, from - 1));
  return at < 0 ? -1 : at + 1;
}

/** The facts and what `after` printed (null when the facts script ran alone or was cut short before the marker). */
export function splitFactsOutput(output: string): { facts: string; after: string | null } {
  const at = lineAt(output, FACTS_END_MARKER);
  if (at < 0) return { facts: output, after: null };
  return { facts: output.slice(0, Math.max(0, at - 1)), after: output.slice(at + FACTS_END_MARKER.length + 1) };
}

/** Printed by a held facts script once the host lock is taken and facts are out. */
export const HELD_MARKER = '@@PROVISION_LOCK_HELD';
/** Exit status of the facts script when another run holds the host lock past the timeout. */
export const LOCK_BUSY = 75;

/** Where provision keeps and locks what it needs on a host, for runs as root. */
export const STATE_DIR = '/var/lib/provision';
/** Exit status of a script that refuses provision's state directory (a symbolic link, someone else's, open to others). */
export const STATE_DIR_REFUSED = 77;

/** Shell: the state directory of the user the script runs as: STATE_DIR for root, ~/.provision for anyone else. */
const STATE_DIR_OF_USER = `${UID_OF_SHELL}
pv_sd=${STATE_DIR}; [ "$pv_uid" = 0 ] || pv_sd="\${HOME:-/nonexistent}/.provision"`;

/**
 * Shell that makes sure the directory in $pv_sd (given as a shell word, or the user's own by default) is private
 * to the user the script runs as before anything is kept or locked in it: created 0700 when missing; refused
 * (status STATE_DIR_REFUSED with one line on stderr) when it is a symbolic link, not a directory, owned by someone
 * else, or writable by others (who could have planted anything inside); tightened to 0700 when it is only
 * readable by others. Nothing is written through a path another user could have put there. A refusal ends the
 * script with `stop` (`exit`; `return` for a script dot-sourced by a session's loop, which must go on).
 */
export function stateDirScript(dir?: string, stop: 'exit' | 'return' = 'exit'): string {
  const refuse = (why: string) => `{ pv_sdrefuse "${why}"; ${stop} ${STATE_DIR_REFUSED}; }`;
  return [
    dir === undefined ? STATE_DIR_OF_USER : `${UID_OF_SHELL}\npv_sd=${dir}`,
    `pv_sdrefuse() { printf "refusing provision's state directory %s on this host: %s\\n" "$pv_sd" "$1" >&2; }`,
    `[ -L "$pv_sd" ] && ${refuse('it is a symbolic link')}`,
    // Without -p: a missing parent (no /var/lib, no home directory) is not made, and so not made private either.
    `[ -e "$pv_sd" ] || mkdir -m 0700 -- "$pv_sd" 2>/dev/null || ${refuse('it cannot be created')}`,
    `[ -L "$pv_sd" ] || [ ! -d "$pv_sd" ] && ${refuse('it is not a directory')}`,
    `pv_sdst=$(stat -c "%u %a" -- "$pv_sd" 2>/dev/null) || ${refuse('it cannot be examined')}`,
    'pv_sdu=${pv_sdst% *}; pv_sdm=${pv_sdst#* }',
    `[ "$pv_sdu" = "$pv_uid" ] || ${refuse('it is owned by uid $pv_sdu, not by $(id -un) (uid $pv_uid)')}`,
    'case $pv_sdm in',
    '  700) ;;',
    `  *[2367]?|*[2367]) ${refuse('it is writable by other users (mode $pv_sdm)')} ;;`,
    `  *) chmod 0700 -- "$pv_sd" || ${refuse('its mode $pv_sdm cannot be set to 700')} ;;`,
    'esac',
  ].join('\n');
}

/**
 * Wraps every other exec of a locked run: the script holds the "busy" lock shared while it runs. When a run's
 * connection dies, the commands it had started keep running on the host (a write finishing its rename, a restart
 * and its health check); the next run's facts script takes this lock exclusively, so it waits for them instead
 * of interleaving with them. The script runs in a subshell without the descriptor, so its commands do not inherit
 * it (a daemon started by a restart must not hold the lock forever) while this shell keeps the lock until the
 * script ends, even when the script ends by `exec`. The lock lives in the state directory the facts exec checked;
 * an exec as another user (a task's become_user) finds no lock of its own there and runs without it.
 */
export function busyLocked(script: string, dir?: string): string {
  return [
    dir === undefined ? STATE_DIR_OF_USER : `pv_sd=${dir}`,
    'pv_busy="$pv_sd/lock.busy"',
    // A failed `exec` redirection ends a POSIX shell, so the file is checked first; flock needs only a read descriptor.
    'if command -v flock >/dev/null 2>&1 && [ ! -L "$pv_sd" ] && [ -O "$pv_sd" ] && [ -r "$pv_busy" ]; then',
    '  exec 8<"$pv_busy"',
    `  flock -s -w ${BUSY_WAIT_S} 8 || { echo "the host lock $pv_busy stayed taken for over ${BUSY_WAIT_S}s" >&2; exit ${LOCK_BUSY}; }`,
    'fi',
    '(',
    script,
    ') 8<&-',
  ].join('\n');
}

/** How long an exec of a run that holds the host lock waits for the shared busy lock (only a starting run takes it, briefly). */
const BUSY_WAIT_S = 60;

/**
 * Facts plus the per-host run lock, in one exec that stays open for the whole run: the script checks the state
 * directory (see stateDirScript), takes an flock on a lock file in it (waiting up to `timeoutS` for another run
 * to finish), waits (as long again at most) for commands a dead run left running (see busyLocked), records who
 * holds the lock, prints the facts (and what `after` prints, see factsScript: it runs under the lock, after a dead
 * run's commands ended) and a marker, then waits on stdin. The lock is released when the run closes the channel,
 * or when the connection dies (the waiting `cat` sees the end of its input), so a crashed controller cannot leave
 * a host locked. The directory is private, so no other user can hold, replace or redirect the lock files; the
 * holder's line is shown to the operator only after the controller made it display-safe. This form is for a
 * channel of its own (hosts that cannot run sessions); see sessionLockedFactsScript for the usual one.
 */
export function lockedFactsScript(timeoutS: number, holder: string, after = '', dir?: string, opts: FactsOptions = {}): string {
  return `${lockScript(timeoutS, holder, after, dir, 'exit', opts)}cat >/dev/null\n`;
}

/**
 * lockedFactsScript as the first, persistent step of a remote session (see session-remote.ts): it runs in the
 * session's own shell, which keeps the lock's descriptor 9 until the session ends (the run closes it, or the
 * connection or the controller dies and sshd ends the shell). It does not wait on stdin and never `exit`s (that
 * would end the session): it `return`s LOCK_BUSY or STATE_DIR_REFUSED with the same meaning, after closing the
 * descriptors it opened. It leaves the shell's umask and the loop's own variables as they were.
 */
export function sessionLockedFactsScript(timeoutS: number, holder: string, after = '', dir?: string, opts: FactsOptions = {}): string {
  return lockScript(timeoutS, holder, after, dir, 'return', opts);
}

function lockScript(timeoutS: number, holder: string, after: string, dir: string | undefined, stop: 'exit' | 'return', opts: FactsOptions): string {
  const wait = Math.max(0, Math.floor(timeoutS));
  // In a session's shell, a failed `exec` redirection must not end the shell (`command` keeps it alive), and a
  // failure closes what was opened: the shell lives on, and so would the descriptors.
  const open = stop === 'exit' ? 'exec' : 'command exec';
  const close = stop === 'exit' ? '' : 'exec 8<&- 9<&-; ';
  // The holder line says since when the run holds the lock. When both locks are free at once (nearly always), that
  // is when the controller made this script, so the controller's clock gives the time and the host starts no
  // `date`; a run that had to wait for either lock takes the host's time once it holds them.
  const sent = new Date().toISOString().replace(/\.\d+Z$/, 'Z');
  return String.raw`
${stateDirScript(dir, stop)}
pv_lock="$pv_sd/lock"
(umask 077; { [ -f "$pv_lock" ] || : >> "$pv_lock"; } && { [ -f "$pv_lock.busy" ] || : >> "$pv_lock.busy"; }) || ${stop} ${STATE_DIR_REFUSED}
if command -v flock >/dev/null 2>&1; then
  pv_since=${sent}
  ${open} 9<"$pv_lock" || ${stop} ${STATE_DIR_REFUSED}
  if ! flock -n 9; then
    pv_since=
    if ! flock -w ${wait} 9; then
      echo "another provision run has held $pv_lock for over ${wait}s: $(head -c 300 "$pv_lock" 2>/dev/null)" >&2
      ${close}${stop} ${LOCK_BUSY}
    fi
  fi
  ${open} 8<"$pv_lock.busy" || { ${close}${stop} ${STATE_DIR_REFUSED}; }
  if ! flock -n 8; then
    pv_since=
    if ! flock -w ${wait} 8; then
      echo "commands of an earlier provision run (whose connection was lost) are still running after ${wait}s" >&2
      ${close}${stop} ${LOCK_BUSY}
    fi
  fi
  exec 8<&-
  [ -n "$pv_since" ] || pv_since=$(date -u +%Y-%m-%dT%H:%M:%SZ)
  { printf '%s since %s
' ${holder} "$pv_since" > "$pv_lock"; } 2>/dev/null
fi
( ${factsScript(after, opts)} ) </dev/null
echo ${HELD_MARKER}
`;
}

/** `key=value` lines; values are copies (see ownString): facts live until the run ends, the output need not. */
function kv(output: string): Map<string, string> {
  const m = new Map<string, string>();
  for (const line of output.split('\n')) {
    const i = line.indexOf('=');
    if (i > 0) m.set(line.slice(0, i), ownString(line.slice(i + 1).trim()));
  }
  return m;
}

function osFamily(id: string, like: string, redhatRelease: boolean, debianVersion: boolean): string {
  const words = `${id} ${like}`.toLowerCase().split(/\s+/);
  const has = (...names: string[]) => names.some((n) => words.includes(n));
  if (has('rhel', 'centos', 'fedora', 'rocky', 'almalinux', 'ol', 'amzn') || redhatRelease) return 'RedHat';
  if (has('debian', 'ubuntu') || debianVersion) return 'Debian';
  if (has('suse', 'opensuse', 'sles')) return 'Suse';
  if (has('alpine')) return 'Alpine';
  return 'Unknown';
}

export function parseFacts(output: string): Facts {
  const f = kv(output);
  const flag = (k: string) => f.get(k) === '1';
  const family = osFamily(f.get('os_id') ?? '', f.get('os_id_like') ?? '', flag('redhat_release'), flag('debian_version'));
  const hasIptables = f.has('iptables_version');

  // A host can carry leftovers of several firewall front ends; the one that is in charge wins, and the
  // persistent-rules flavour follows the distribution family when both files are present.
  let firewall: Facts['firewall'];
  if (flag('firewalld_active')) firewall = 'firewalld';
  else if (flag('ufw_enabled')) firewall = 'ufw';
  else if (!hasIptables) firewall = flag('nft') ? 'nftables' : 'none';
  else {
    const rhel = flag('sysconfig_iptables') || flag('iptables_service');
    const deb = flag('rules_v4') || flag('netfilter_persistent');
    // An enabled nftables service with no iptables rules file is in charge, even where the machine carries
    // netfilter-persistent's unit (Ubuntu 24.04 and Debian 12 set up with /etc/nftables.conf).
    const nftOnly = (flag('nftables_active') || flag('nftables_enabled')) && !flag('sysconfig_iptables') && !flag('rules_v4');
    if (nftOnly) firewall = 'nftables';
    else if (rhel && (!deb || family === 'RedHat')) firewall = 'iptables-services';
    else if (deb) firewall = 'netfilter-persistent';
    else if (flag('nftables_active') || flag('nftables_conf')) firewall = 'nftables';
    else firewall = family === 'RedHat' ? 'iptables-services' : 'netfilter-persistent';
  }
  const rhelFiles = firewall === 'iptables-services';
  const debFiles = firewall === 'netfilter-persistent';
  const hostname = f.get('hostname') || 'localhost';
  return {
    hostname,
    fqdn: f.get('fqdn') || hostname,
    os_family: family,
    distribution: f.get('os_id') ?? 'unknown',
    distribution_version: f.get('os_version_id') ?? '',
    init: f.get('pid1') === 'systemd' || flag('systemd_running') ? 'systemd' : 'sysv',
    user: f.get('user') ?? '',
    uid: Number(f.get('uid') ?? -1),
    postfix_version: f.get('postfix_version') || null,
    postfix_config_dir: f.get('postfix_config_dir') || null,
    firewall,
    firewall_service: rhelFiles ? 'iptables' : debFiles ? 'netfilter-persistent' : null,
    iptables_rules_file: rhelFiles ? '/etc/sysconfig/iptables' : debFiles ? '/etc/iptables/rules.v4' : null,
    ip6tables_rules_file: rhelFiles ? '/etc/sysconfig/ip6tables' : debFiles ? '/etc/iptables/rules.v6' : null,
    ip6tables_rules_exists: (rhelFiles && flag('sysconfig_ip6tables')) || (debFiles && flag('rules_v6')),
    ipv6_global: flag('ipv6_global'),
    iptables_version: f.get('iptables_version') || null,
    firewalld_zone: firewall === 'firewalld' ? f.get('firewalld_zone') || null : null,
    default_ipv4: defaultIpv4(f.get('ipv4_route') ?? '', f.get('ipv4_addr') ?? ''),
    tls_cert_dir: family === 'RedHat' ? '/etc/pki/tls/certs' : '/etc/ssl/certs',
    tls_key_dir: family === 'RedHat' ? '/etc/pki/tls/private' : '/etc/ssl/private',
  };
}

/**
 * The address of the interface the default IPv4 route leaves by, as Ansible's `ansible_default_ipv4` reports it,
 * from `ip -4 route show default` and `ip -o -4 addr show dev IF`; null without a default route.
 */
export function defaultIpv4(route: string, addr: string): Facts['default_ipv4'] {
  const dev = / dev (\S+)/.exec(route)?.[1];
  const cidr = / inet (\d+\.\d+\.\d+\.\d+)\/(\d+)/.exec(addr);
  if (!dev || !cidr) return null;
  const bits = Number(cidr[2]);
  const mask = bits === 0 ? 0 : (0xffffffff << (32 - bits)) >>> 0;
  const netmask = [24, 16, 8, 0].map((s) => (mask >>> s) & 255).join('.');
  const network = cidr[1]!.split('.').map((o, i) => Number(o) & ((mask >>> (24 - 8 * i)) & 255)).join('.');
  const broadcast = / brd (\S+)/.exec(addr)?.[1];
  return { address: cidr[1]!, interface: dev, alias: dev, gateway: / via (\S+)/.exec(route)?.[1] ?? null, netmask, network, prefix: cidr[2]!, ...(broadcast ? { broadcast } : {}) };
}

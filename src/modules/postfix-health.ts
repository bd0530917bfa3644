/**
 * Health of Postfix after a restart: the master runs, and every active inet listener in master.cf accepts a
 * connection on the host and answers it: plain listeners with their 220 greeting, wrapper-mode (implicit TLS)
 * listeners with a TLS record in reply to a ClientHello. An smtpd that dies at start-up, say for "fatal: no SASL
 * authentication mechanisms", or that cannot build its TLS context, closes the connection at once. When the check
 * fails, the files this run changed are put back, Postfix is restarted on them, and the task fails with the reason
 * from the mail log.
 */
import { quote } from '../connection/shell-quote.js';
import { parsedMasterCf } from '../formats/master-cf.js';
import type { Facts } from '../facts/types.js';
import { sha256 } from '../runner/host-files.js';
import { listenerPort, splitService } from './master-cf.js';
import { type FileChange, ModuleError, type Outcome, type TaskContext } from './module.js';

/** Seconds the check keeps trying after a restart before it gives up (master may take a moment). */
export const HEALTH_WAIT_SEC = 10;

export interface Listener {
  /** as written in master.cf */
  service: string;
  /** address to connect to on the host */
  host: string;
  /** port number, or a service name for getent to resolve */
  port: string;
  /** set for wrapper-mode listeners (`-o smtpd_tls_wrappermode=yes`): TLS from the first byte, no greeting before it */
  tls?: true;
}

/** Active inet services of a master.cf, as addresses to connect to from the host itself. */
export function inetListeners(masterCf: Buffer): Listener[] {
  const out: Listener[] = [];
  for (const e of parsedMasterCf(masterCf).entries) {
    if (e.commented || e.type !== 'inet') continue;
    const { host, port } = splitService(e.service);
    const bare = host.replace(/^\[|\]$/g, '');
    const wrapped = e.options.some((o) => o.name === 'smtpd_tls_wrappermode' && /^(yes|true|1)$/i.test(o.value));
    out.push({
      service: e.service,
      host: !bare || bare === '*' || bare === '0.0.0.0' ? '127.0.0.1' : bare === '::' ? '::1' : bare,
      port: listenerPort(port),
      ...(wrapped ? { tls: true as const } : {}),
    });
  }
  return out;
}

/**
 * A TLS 1.2 ClientHello (printf escapes) that any OpenSSL-based smtpd answers at once: ECDHE and plain RSA/ECDSA
 * AES-GCM and AES-CBC suites, groups x25519 and P-256, RSA and ECDSA SHA-256/384 signatures. The reply's first byte
 * (0x16, a handshake record, or 0x15, an alert) proves smtpd is up and speaking TLS without waiting for a silence.
 */
const CLIENT_HELLO = [
  '16 03 01 00 5b', // record: handshake, 91 bytes
  '01 00 00 57 03 03', // ClientHello, 87 bytes, TLS 1.2
  Array.from({ length: 32 }, (_, i) => (i + 1).toString(16).padStart(2, '0')).join(' '), // client random
  '00', // no session id
  '00 10 c0 2f c0 2b c0 30 c0 2c 00 9c 00 9d 00 2f 00 35', // cipher suites
  '01 00', // null compression
  '00 1e', // extensions, 30 bytes
  '00 0a 00 06 00 04 00 1d 00 17', // supported groups
  '00 0b 00 02 01 00', // EC point formats
  '00 0d 00 0a 00 08 08 04 04 01 04 03 08 05', // signature algorithms
]
  .join(' ')
  .split(' ')
  .map((b) => `\\x${b}`)
  .join('');

/**
 * Bash, run as `bash -c PROBE provision HOST PORT SERVICE TLS…` (four words a listener, TLS `tls` or `-`): checks
 * each listener in turn, printing `@@at SERVICE (HOST:PORT)` before it, and at the first that fails a line saying
 * why, with exit status 1. A reply that does not come within 2 s is a connection that stays open: healthy.
 */
const LISTENER_PROBE = String.raw`export LC_ALL=C
trap "" PIPE
while [ $# -ge 4 ]; do
  echo "@@at $3 ($1:$2)"
  exec 3<>"/dev/tcp/$1/$2" || { echo "$3 ($1:$2) refuses connections"; exit 1; }
  if [ "$4" = tls ]; then
    printf "${CLIENT_HELLO}" >&3
    read -r -n 1 -t 2 pv_b <&3; pv_s=$?
    if [ $pv_s -le 128 ]; then case $pv_b in "$(printf "\026")"|"$(printf "\025")") ;; *) echo "$3 ($1:$2) closed the connection without a greeting"; exit 1 ;; esac; fi
  else
    IFS= read -r -t 2 pv_l <&3; pv_s=$?
    if [ $pv_s -le 128 ]; then case $pv_s$pv_l in 0220*) ;; *) echo "$3 ($1:$2) closed the connection without a greeting${"$"}{pv_l:+: $pv_l}"; exit 1 ;; esac; fi
  fi
  shift 4
done
exit 0`;

/**
 * Shell: one postconf run, before the action, for the log file Postfix writes to and where its master keeps its
 * pid file and binary (the files this run wrote are already in place, so these are the values the restarted
 * Postfix uses). Values are taken as written; one that names another parameter (`$...`) leaves the master check
 * below to `postfix status`. A Postfix without `maillog_file` (before 3.4) warns and prints the others.
 */
const POSTFIX_PATHS = [
  'pv_log= pv_qdir= pv_ddir=',
  'while IFS= read -r pv_l; do',
  '  case $pv_l in',
  "    'maillog_file = '*) pv_log=${pv_l#*= } ;;",
  "    'queue_directory = '*) pv_qdir=${pv_l#*= } ;;",
  "    'daemon_directory = '*) pv_ddir=${pv_l#*= } ;;",
  '  esac',
  'done <<PV_EOF',
  '$(postconf maillog_file queue_directory daemon_directory 2>/dev/null)',
  'PV_EOF',
  "case $pv_log in *'$'*) pv_log= ;; esac",
  'if [ -z "$pv_log" ]; then for pv_f in /var/log/mail.log /var/log/maillog /var/log/mail.err /var/log/syslog /var/log/messages; do [ -f "$pv_f" ] && { pv_log=$pv_f; break; }; done; fi',
].join('\n');

/**
 * Shell: is Postfix's master running? Without forking: the pid in `$queue_directory/pid/master.pid` is a live
 * process whose executable is `$daemon_directory/master` (the file the master writes once it holds its lock, and
 * the binary postfix-script starts). A stale pid file, a pid reused by another program, or a master that died
 * all fail that test (the master writes its pid there only after it has locked the file, and holds the lock while
 * it lives). When the test fails, or cannot be made (no /proc, paths unknown or written with `$`), the answer is
 * `postfix status`'s (`master -t`: is the pid file locked?) as before, so the quick test can only say yes, and
 * a no still costs what it did.
 */
const MASTER_RUNNING = [
  'pv_master() {',
  "  case $pv_qdir$pv_ddir in *'$'*) ;; *)",
  '    if [ -n "$pv_qdir" ] && [ -n "$pv_ddir" ] && [ -d /proc/self ]; then',
  '      pv_pid=',
  '      { read -r pv_pid < "$pv_qdir/pid/master.pid"; } 2>/dev/null',
  '      case $pv_pid in',
  '        "" | *[!0-9]*) ;;',
  '        *) [ "/proc/$pv_pid/exe" -ef "$pv_ddir/master" ] && return 0 ;;',
  '      esac',
  '    fi ;;',
  '  esac',
  '  postfix status >/dev/null 2>&1',
  '}',
].join('\n');

/** Shell filter: the first five lines and the last five (each line once), each as an `@@log` line. */
const FIRST_AND_LAST_FIVE =
  "awk 'NR <= 5 { print \"@@log \" $0; next } { last[NR % 5] = $0 } END { for (i = (NR > 10 ? NR - 4 : 6); i <= NR; i++) print \"@@log \" last[i % 5] }'";

/**
 * Restart (or reload) and check: prints `@@health ok` or `@@health fail REASON`, then `@@log` lines with the
 * postfix errors logged since just before the action.
 */
export function restartAndCheckScript(action: string, init: Facts['init'], listeners: Listener[]): string {
  const running = init === 'systemd' ? 'systemctl is-active --quiet postfix' : 'pv_master';
  const targets = listeners.map((l) => quote(`${l.host} ${l.port} ${l.service}${l.tls ? ' tls' : ''}`)).join(' ');
  return [
    POSTFIX_PATHS,
    ...(init === 'systemd' ? [] : [MASTER_RUNNING]),
    'pv_off=0; [ -n "$pv_log" ] && [ -f "$pv_log" ] && pv_off=$(wc -c < "$pv_log")',
    // The time is only for journalctl, read when Postfix logs to no file.
    'pv_since=; [ -n "$pv_log" ] || pv_since=$(date +%s)',
    // The restart's stderr goes to a file mktemp creates (new, unpredictable name): never through a name another
    // user could have planted. A file, not a pipe: a daemon the restart starts may keep the descriptor.
    'pv_ef=$(mktemp 2>/dev/null) || pv_ef=/dev/null',
    `(\n${action}\n) >/dev/null 2>"$pv_ef"; pv_rc=$?`,
    'pv_err=; [ -s "$pv_ef" ] && pv_err=$(head -c 2000 "$pv_ef"); [ "$pv_ef" = /dev/null ] || rm -f -- "$pv_ef"',
    // Every listener, in one bash (it has /dev/tcp): connect from the host; a greeting, a TLS record in reply to a
    // ClientHello, or a connection that stays open is healthy, one closed at once is not. `--norc` and an empty
    // BASH_ENV: a bash started under sshd reads root's ~/.bashrc unless told not to, which on a host whose
    // .bashrc initialises pyenv or conda costs as much as a login, and could print into the answer.
    'pv_listeners() {',
    '  pv_a= pv_n=0',
    '  for pv_t in "$@"; do',
    '    set -- $pv_t',
    '    pv_port=$2',
    '    case $pv_port in *[!0-9]*) pv_port=$(getent services "$pv_port/tcp" 2>/dev/null | awk \'{ split($2, a, "/"); print a[1]; exit }\') ;; esac',
    '    [ -n "$pv_port" ] || { echo "cannot resolve the port of $3"; return 1; }',
    '    pv_a="$pv_a $1 $pv_port $3 ${4:--}"; pv_n=$((pv_n + 1))',
    '  done',
    '  [ "$pv_n" -gt 0 ] || return 0',
    '  if command -v bash >/dev/null 2>&1; then',
    `    pv_r=$(BASH_ENV= timeout $((pv_n * 5)) bash --norc -c '${LISTENER_PROBE}' provision $pv_a 2>/dev/null) && return 0`,
    '    pv_s=$?',
    '    pv_l=$(printf "%s\\n" "$pv_r" | tail -n 1)',
    // A last line `@@at …` is the listener the probe was at when it ended without a word: killed by the timeout
    // (status 124), or by anything else, such as the connection closing under it.
    '    case $pv_l in',
    '      "@@at "*) if [ "$pv_s" -eq 124 ]; then echo "${pv_l#@@at } did not answer within 5 s"; else echo "${pv_l#@@at } closed the connection without a greeting"; fi ;;',
    '      "") echo "the listeners could not be checked" ;;',
    '      *) echo "$pv_l" ;;',
    '    esac',
    '    return 1',
    '  fi',
    '  pv_ss=$(ss -Hltn 2>/dev/null | awk \'{ print $4 }\')',
    '  set -- $pv_a',
    '  while [ $# -ge 4 ]; do',
    '    printf "%s\\n" "$pv_ss" | grep -q ":$2\\$" || { echo "nothing listens on $3 ($2)"; return 1; }',
    '    shift 4',
    '  done',
    '}',
    'pv_check() {',
    `  ${running} || { echo "postfix is not running"; return 1; }`,
    `  pv_listeners ${targets}`,
    '}',
    'pv_ok=; if [ "$pv_rc" -ne 0 ]; then pv_why="the restart exited $pv_rc${pv_err:+: $pv_err}"; else',
    // Healthy is a check that succeeded, not one that said nothing: a check that fails without a word still fails.
    `  pv_i=0; while :; do pv_why=$(pv_check) && { pv_ok=1; break; }; pv_i=$((pv_i + 1)); [ "$pv_i" -ge ${HEALTH_WAIT_SEC} ] && break; sleep 1; done`,
    'fi',
    'if [ -n "$pv_ok" ]; then echo "@@health ok"; else printf "@@health fail %s\\n" "$(printf %s "${pv_why:-the health check failed without saying why}" | tr "\\n" " ")"; fi',
    // What Postfix logged since: its fatal/panic/error/warning lines name the cause. The first lines are kept as
    // well as the last: each retry of the check can log the same follow-up warning, pushing out the one that
    // names the cause (a key that does not match its certificate is logged once, before "see earlier warnings").
    `if [ -n "$pv_log" ] && [ -f "$pv_log" ]; then tail -c +$((pv_off + 1)) "$pv_log" 2>/dev/null | grep -E "postfix.*(fatal|panic|error|warning):" | ${FIRST_AND_LAST_FIVE}; fi`,
    `if [ -z "$pv_log" ] && command -v journalctl >/dev/null 2>&1; then journalctl -q -u postfix --since "@$pv_since" -o cat 2>/dev/null | grep -E "(fatal|panic|error|warning):" | ${FIRST_AND_LAST_FIVE}; fi`,
    // The exit status is the verdict too (0: healthy), so that what must happen only after a successful restart
    // can follow in the same step (see TaskContext.run's `last`).
    '[ -n "$pv_ok" ]',
  ].join('\n');
}

export interface HealthReport {
  ok: boolean;
  reason: string;
  log: string[];
}

export function parseHealth(stdout: string): HealthReport {
  let ok = false;
  let reason = 'the health check did not report';
  const log: string[] = [];
  for (const line of stdout.split('\n')) {
    if (line === '@@health ok') {
      ok = true;
      reason = '';
    } else if (line.startsWith('@@health fail ')) reason = line.slice('@@health fail '.length).trim();
    else if (line.startsWith('@@log ')) log.push(line.slice(6));
  }
  return { ok, reason, log };
}

/** Lines that only point at others ("For details see earlier warnings in your logs"). */
const DEFERS = /see earlier (warnings|messages)/i;

/**
 * The most telling log line: fatal before panic before error before warning, the latest of its kind, preferring
 * one that names a cause over one that points at earlier lines.
 */
export function causeOf(log: string[]): string | null {
  for (const kind of ['fatal:', 'panic:', 'error:', 'warning:']) {
    const ofKind = [...log].reverse().filter((l) => l.includes(kind));
    const line = ofKind.find((l) => !DEFERS.test(l)) ?? ofKind[0];
    if (line) return line.slice(line.indexOf(kind)).trim();
  }
  return null;
}

/** Restart or reload Postfix, prove it healthy, or roll this run's file changes back and say why. */
export async function restartPostfixChecked(ctx: TaskContext, action: string, verb: string): Promise<Outcome> {
  const configDir = ctx.facts.postfix_config_dir ?? '/etc/postfix';
  const listeners = async () => {
    const master = await ctx.readFile(`${configDir}/master.cf`);
    return master.content ? inetListeners(master.content) : [];
  };
  const wanted = await listeners();
  // The task's last step when it is healthy, and decided on the host: it exits 0 exactly when it prints healthy.
  const first = await ctx.run(restartAndCheckScript(action, ctx.facts.init, wanted), { last: true });
  const health = parseHealth(first.stdout.toString());
  if (health.ok) {
    const n = wanted.length;
    return { changed: true, msg: `postfix ${verb}; running, ${n} inet listener${n === 1 ? '' : 's'} accepting connections`, data: { health: 'ok' } };
  }
  const cause = causeOf(health.log);

  // Put back every file this run changed on the host, as it was before the run's first write; files the run
  // created are removed.
  const restored: FileChange[] = [];
  const created: string[] = [];
  for (const [path, original] of ctx.changedFiles()) {
    if (!original.before) {
      created.push(path);
      continue;
    }
    const now = await ctx.readFile(path);
    restored.push({ path, before: now.content, after: original.before, beforeSha: now.sha ?? (now.content ? sha256(now.content) : null) });
  }
  if (restored.length) await ctx.writeFiles(restored);
  if (created.length) await ctx.run(`rm -f -- ${created.map(quote).join(' ')}`);
  const second = await ctx.run(restartAndCheckScript(action, ctx.facts.init, await listeners()));
  const after = parseHealth(second.stdout.toString());
  const files = [...restored.map((f) => f.path), ...created.map((p) => `${p} (removed)`)].join(', ');
  const rollback = files
    ? `restored ${files} and restarted postfix: ${after.ok ? 'it runs again with the previous configuration' : `it is still unhealthy (${after.reason})`}`
    : 'no file of this run to restore';
  throw new ModuleError(`postfix failed after it was ${verb}: ${health.reason}${cause ? ` — mail log: ${cause}` : ''}; ${rollback}`, {
    health: 'failed',
    reason: health.reason,
    log: health.log,
    restored: restored.map((f) => f.path),
    removed: created,
    recovered: after.ok,
  });
}

/**
 * `service`: start, stop, restart or reload a service through systemctl or service/init.d. Restarting a firewall
 * service is guarded: the live rules are saved on the host and a detached job puts them back after a timeout
 * unless a brand-new SSH connection proves the new rules let us in; then the live rules must match the rules file.
 */
import { randomBytes } from 'node:crypto';
import type { ExecResult } from '../connection/connection.js';
import { quote } from '../connection/shell-quote.js';
import { CommandError, UnreachableError } from '../errors.js';
import { stateDirScript } from '../facts/gather.js';
import type { Facts } from '../facts/types.js';
import { type Family, IptablesSaveSyntaxError, diffSaved, parse, verifyByModel } from '../formats/iptables-save.js';
import { type FileChange, ModuleError, type Module, type Outcome, type Plan, type TaskContext } from './module.js';
import type { ArgsOf } from './module.js';
import { NORMALISE_FN, normaliseMarker, parseNormalised } from './netns-normalise.js';
import { restartPostfixChecked } from './postfix-health.js';

export type ServiceArgs = ArgsOf<typeof serviceSchema>;

export type Action = 'start' | 'stop' | 'restart' | 'reload';

const ACTIONS: Readonly<Record<NonNullable<ServiceArgs['state']>, Action>> = {
  started: 'start',
  stopped: 'stop',
  restarted: 'restart',
  reloaded: 'reload',
};

const PAST: Readonly<Record<Action, string>> = { start: 'started', stop: 'stopped', restart: 'restarted', reload: 'reloaded' };

/** Services whose restart loads firewall rules: guarded unless the task says `firewall: false`. */
export const FIREWALL_SERVICES: readonly string[] = ['iptables', 'ip6tables', 'netfilter-persistent'];

export const DEFAULT_ROLLBACK_TIMEOUT = 30;

/** Where the saved rules, the rollback job's PID and its markers live on the host (root only). */
export const ROLLBACK_DIR = '/var/lib/provision';

/** The command that performs `action` on a service, for the host's init system. */
export function serviceScript(init: Facts['init'], name: string, action: Action | 'status'): string {
  const n = quote(name);
  if (init === 'systemd') return action === 'status' ? `systemctl is-active --quiet -- ${n}` : `systemctl ${action} -- ${n}`;
  const script = quote(`/etc/init.d/${name}`);
  return [
    `if command -v service >/dev/null 2>&1; then service ${n} ${action}`,
    `elif [ -x ${script} ]; then ${script} ${action}`,
    `else echo ${quote(`${name}: no service command and no /etc/init.d/${name}`)} >&2; exit 127; fi`,
  ].join('\n');
}

/** Exit 0 when the service starts at boot: systemctl is-enabled, or an S link in runlevels 2–5. */
export function enabledScript(init: Facts['init'], name: string): string {
  if (init === 'systemd') return `systemctl is-enabled --quiet ${quote(name)}`;
  return `ls /etc/rc2.d /etc/rc3.d /etc/rc4.d /etc/rc5.d 2>/dev/null | grep -Eq ${quote(`^S[0-9]+${name.replace(/[.+]/g, '\\$&')}$`)}`;
}

/** Enable or disable a service at boot: systemctl, update-rc.d (Debian) or chkconfig (RHEL 6). */
export function bootScript(init: Facts['init'], name: string, on: boolean): string {
  const n = quote(name);
  if (init === 'systemd') return `systemctl ${on ? 'enable' : 'disable'} ${n}`;
  return [
    `if command -v update-rc.d >/dev/null 2>&1; then ${on ? `update-rc.d ${n} defaults >/dev/null && update-rc.d ${n} enable` : `update-rc.d ${n} disable`}`,
    `elif command -v chkconfig >/dev/null 2>&1; then ${on ? `chkconfig --add ${n} && chkconfig ${n} on` : `chkconfig ${n} off`}`,
    `else echo ${quote(`${name}: neither update-rc.d nor chkconfig is installed`)} >&2; exit 127; fi`,
  ].join('\n');
}

/** The boot-time part of a service task: what holds, and the command that makes it hold. */
async function bootPlan(ctx: TaskContext, args: ServiceArgs): Promise<{ msg: string; commands: { script: string; description: string }[] }> {
  if (args.enabled === undefined) return { msg: '', commands: [] };
  const r = await ctx.run(enabledScript(ctx.facts.init, args.name));
  const on = r.code === 0;
  if (on === args.enabled) return { msg: `${args.name} is ${on ? 'enabled' : 'disabled'} at boot`, commands: [] };
  const what = args.enabled ? 'enable' : 'disable';
  const reload = args.daemon_reload && ctx.facts.init === 'systemd' ? [{ script: 'systemctl daemon-reload', description: 'daemon-reload' }] : [];
  return { msg: `${what} ${args.name} at boot`, commands: [...reload, { script: bootScript(ctx.facts.init, args.name, args.enabled), description: `${what} ${args.name}` }] };
}

/** The status probe used by plan: exit 0 means running. */
export function statusScript(init: Facts['init'], name: string): string {
  return init === 'systemd' ? serviceScript(init, name, 'status') : `{\n${serviceScript(init, name, 'status')}\n} >/dev/null`;
}

function isFirewall(args: ServiceArgs): boolean {
  return args.firewall ?? FIREWALL_SERVICES.includes(args.name);
}

function guarded(args: ServiceArgs): boolean {
  return isFirewall(args) && args.state !== undefined && ACTIONS[args.state] !== 'stop';
}

// ---------------------------------------------------------------------------------------------------------------
// The rollback job

/** restore_rules BASE: load the saved rules and record the result in BASE.done (atomically). */
const RESTORE_FN = [
  'pv_restore() {',
  '  pv_rc=0',
  '  iptables-restore < "$1.v4" || pv_rc=$?',
  '  if [ -e "$1.v6" ]; then ip6tables-restore < "$1.v6" || pv_rc=$?; fi',
  '  echo "$pv_rc" > "$1.done.tmp" && mv -f "$1.done.tmp" "$1.done"',
  '}',
].join('\n');

/**
 * The detached job: sleep, then claim the `armed` marker by renaming it and restore. Renaming is atomic, so either
 * the job claims the marker or a cancel removes it first, never both.
 */
const JOB = [
  'PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin',
  RESTORE_FN,
  'sleep "$1"',
  'mv -f "$2.armed" "$2.fired" 2>/dev/null || exit 0',
  'pv_restore "$2"',
  // The controller may never come back to settle: keep only the small result it would read (see STALE_GUARDS).
  'rm -f "$2.v4" "$2.v6" "$2.pid" "$2.fired"',
].join('\n');

/**
 * Guard files older than an hour belong to no guard still running (a guard lasts rollback_timeout, at most 600 s,
 * plus its waits): each new guard removes them, so a run whose controller never settled leaves nothing for good.
 */
const STALE_GUARDS = 'find "$pv_sd" -maxdepth 1 -type f -name \'firewall-*\' -mmin +60 -exec rm -f -- {} + 2>/dev/null';

/**
 * Tables a snapshot must carry even when they were empty: restoring them undoes what the restart added there
 * (iptables-save prints nothing for tables that do not exist yet). IPv6 nat is left out for old kernels.
 */
const COMPLETE_FN = [
  'pv_complete() {',
  '  for pv_t in $2; do',
  '    grep -q "^\\*$pv_t\\$" "$1" && continue',
  '    case $pv_t in',
  "      filter) pv_c='INPUT FORWARD OUTPUT' ;;",
  "      raw) pv_c='PREROUTING OUTPUT' ;;",
  "      mangle) pv_c='PREROUTING INPUT FORWARD OUTPUT POSTROUTING' ;;",
  "      nat) pv_c='PREROUTING INPUT OUTPUT POSTROUTING' ;;",
  '    esac',
  '    { printf "*%s\\n" "$pv_t"; for pv_x in $pv_c; do printf ":%s ACCEPT [0:0]\\n" "$pv_x"; done; echo COMMIT; } >> "$1"',
  '  done',
  '}',
].join('\n');

export interface GuardOptions {
  /** random word naming this guard's files and output markers */
  token: string;
  /** directory for the snapshot and markers (default /var/lib/provision) */
  dir?: string;
}

function basePath(o: GuardOptions): string {
  return `${o.dir ?? ROLLBACK_DIR}/firewall-${o.token}`;
}

/**
 * Save the live rules, start the detached restore job, then run `action`. Prints `@@TOKEN armed` once the job is
 * running and `@@TOKEN done RC` after the action. Exits 90 without running the action when the rules cannot be
 * saved.
 */
export function armScript(o: GuardOptions & { timeoutSec: number; action: string }): string {
  const dir = quote(o.dir ?? ROLLBACK_DIR);
  const b = quote(basePath(o));
  return [
    `pv_b=${b}`,
    'umask 077',
    // The snapshot and the job's markers go only into a checked private directory (never through a planted link).
    `(\n${stateDirScript(dir)}\n) || exit 90`,
    `pv_sd=${dir}`,
    STALE_GUARDS,
    COMPLETE_FN,
    'if ! iptables-save > "$pv_b.v4"; then echo "cannot save the live IPv4 ruleset" >&2; rm -f "$pv_b.v4"; exit 90; fi',
    'pv_complete "$pv_b.v4" "filter raw mangle nat"',
    'if command -v ip6tables-save >/dev/null 2>&1 && ip6tables-save > "$pv_b.v6" 2>/dev/null; then pv_complete "$pv_b.v6" "filter raw mangle"; else rm -f "$pv_b.v6"; fi',
    ': > "$pv_b.armed" || exit 90',
    // setsid and nohup detach the job from this session; with every stream redirected the channel can close.
    'if command -v setsid >/dev/null 2>&1; then pv_detach=setsid; else pv_detach=; fi',
    `$pv_detach nohup sh -c ${quote(JOB)} provision-rollback ${Math.max(1, Math.round(o.timeoutSec))} "$pv_b" </dev/null >/dev/null 2>&1 &`,
    'echo $! > "$pv_b.pid"',
    `printf '@@%s armed\\n' ${quote(o.token)}`,
    `(\n${o.action}\n)`,
    `printf '\\n@@%s done %s\\n' ${quote(o.token)} "$?"`,
  ].join('\n');
}

/** A rules file to compare with the live rules after a successful cancel. */
export interface VerifyFile {
  family: Family;
  path: string;
}

/**
 * Settle the rollback job:
 * - `cancel`: remove the marker before the job claims it and stop the job; print the live rules and the rules files
 *   (base64) for comparison. If the job already claimed it, wait for its restore.
 * - `wait`: let the job fire (waiting up to `waitSec`), restoring here if it never does.
 * - `restore`: restore now (the action failed).
 * Prints `@@TOKEN cancelled` or `@@TOKEN rolledback RC`, and removes the guard's files.
 */
export function settleScript(
  o: GuardOptions & { mode: 'cancel' | 'wait' | 'restore'; waitSec?: number; verify?: VerifyFile[]; /** load the files into a throwaway namespace (default true) */ normalise?: boolean },
): string {
  const t = quote(o.token);
  const lines = [
    `pv_b=${quote(basePath(o))}`,
    RESTORE_FN,
    'pv_kill() {',
    '  pv_pid=$(cat "$pv_b.pid" 2>/dev/null)',
    '  [ -n "$pv_pid" ] || return 0',
    // The job leads its own process group (setsid): signal the group so its sleep goes too. dash's kill takes no `--`.
    '  kill -TERM "-$pv_pid" 2>/dev/null || kill -TERM -- "-$pv_pid" 2>/dev/null || kill -TERM "$pv_pid" 2>/dev/null',
    '  return 0',
    '}',
    'pv_state=',
  ];
  if (o.mode === 'cancel') lines.push('if rm "$pv_b.armed" 2>/dev/null; then pv_kill; pv_state=cancelled; fi');
  if (o.mode === 'wait') {
    lines.push(`pv_i=0; while [ -e "$pv_b.armed" ] && [ "$pv_i" -lt ${Math.max(1, Math.round(o.waitSec ?? 60))} ]; do sleep 1; pv_i=$((pv_i + 1)); done`);
  }
  lines.push(
    'if [ -z "$pv_state" ]; then',
    '  if mv -f "$pv_b.armed" "$pv_b.fired" 2>/dev/null; then pv_kill; pv_restore "$pv_b"; fi',
    '  pv_i=0; while [ ! -e "$pv_b.done" ] && [ "$pv_i" -lt 60 ]; do sleep 1; pv_i=$((pv_i + 1)); done',
    '  pv_state="rolledback $(cat "$pv_b.done" 2>/dev/null || echo unknown)"',
    'fi',
    `printf '@@%s %s\\n' ${t} "$pv_state"`,
  );
  if (o.verify?.length) {
    lines.push('if [ "$pv_state" = cancelled ]; then', NORMALISE_FN);
    for (const v of o.verify) {
      const save = v.family === 6 ? 'ip6tables-save' : 'iptables-save';
      const f = quote(v.path);
      lines.push(
        `  if ${save} > "$pv_b.live" 2>&1; then pv_s=ok; else pv_s=failed; fi`,
        `  printf '@@%s live${v.family} %s ' ${t} "$pv_s"; base64 -w0 < "$pv_b.live"; echo`,
        `  if [ -r ${f} ]; then printf '@@%s file${v.family} ok ' ${t}; base64 -w0 < ${f}; echo; else printf '@@%s file${v.family} missing\\n' ${t}; fi`,
        // The file as the kernel loads it, read back by the same iptables-save: compared like with like.
        ...(o.normalise === false ? [] : [`  if [ -r ${f} ]; then ${normaliseMarker(o.token, `norm${v.family}`, v.family, f, '"$pv_b.norm"')}; fi`]),
      );
    }
    lines.push('fi');
  }
  lines.push('rm -f "$pv_b.v4" "$pv_b.v6" "$pv_b.pid" "$pv_b.armed" "$pv_b.fired" "$pv_b.done" "$pv_b.done.tmp" "$pv_b.live" "$pv_b.norm"');
  return lines.join('\n');
}

/** `@@TOKEN word rest` lines of a guard script's output, by word. */
export function parseMarkers(stdout: string, token: string): Map<string, string> {
  const out = new Map<string, string>();
  const prefix = `@@${token} `;
  for (const line of stdout.split('\n')) {
    if (!line.startsWith(prefix)) continue;
    const rest = line.slice(prefix.length);
    const sp = rest.indexOf(' ');
    out.set(sp < 0 ? rest : rest.slice(0, sp), sp < 0 ? '' : rest.slice(sp + 1));
  }
  return out;
}

/** What the action itself printed on stdout: the lines between the `armed` and `done` markers. */
function actionOutput(stdout: string, token: string): string {
  const lines = stdout.split('\n');
  const from = lines.indexOf(`@@${token} armed`);
  const to = lines.findIndex((l) => l.startsWith(`@@${token} done `));
  return lines.slice(from + 1, to < 0 ? undefined : to).join('\n');
}

/** Rules files the service loads, to compare with the live rules after a restart. */
export function rulesFilesOf(name: string, facts: Facts): VerifyFile[] {
  const v4 = facts.iptables_rules_file;
  const v6 = facts.ip6tables_rules_file;
  const files: VerifyFile[] = [];
  if (name === 'netfilter-persistent' && facts.firewall === 'netfilter-persistent') {
    if (v4) files.push({ family: 4, path: v4 });
    if (v6) files.push({ family: 6, path: v6 });
  } else if (name === 'iptables' && facts.firewall === 'iptables-services' && v4) {
    files.push({ family: 4, path: v4 });
  } else if (name === 'ip6tables' && facts.firewall === 'iptables-services' && v6) {
    files.push({ family: 6, path: v6 });
  }
  return files;
}

/** What comparing the live rules with the rules files found. */
export interface Verification {
  /** the first way the live rules differ from a rules file; null when they agree */
  mismatch: string | null;
  /** what could not be verified, and why (the run goes on; the recap shows it) */
  warnings: string[];
}

/**
 * Compare the live rules with the rules files from a cancel's output. The file as a throwaway namespace loaded it
 * is compared with the live ruleset as text (both spelled by the same iptables-save). Where namespaces are not
 * available the model compares them, and a difference in a rule the model does not understand is a warning
 * ("cannot verify"), never a mismatch.
 */
export function verifyOutput(markers: Map<string, string>, files: VerifyFile[]): Verification {
  const warnings: string[] = [];
  for (const v of files) {
    const file = markers.get(`file${v.family}`);
    if (file === undefined || file === 'missing') continue;
    const [liveStatus, liveB64 = ''] = (markers.get(`live${v.family}`) ?? 'failed ').split(' ');
    const live = Buffer.from(liveB64, 'base64');
    if (liveStatus !== 'ok') return { mismatch: `cannot read the live IPv${v.family} ruleset: ${live.toString().trim() || 'no output'}`, warnings };
    const content = Buffer.from(file.slice(3), 'base64');
    const norm = parseNormalised(markers.get(`norm${v.family}`));
    try {
      const liveDoc = parse(live);
      if (norm?.status === 'ok') {
        const diff = diffSaved(parse(norm.saved), liveDoc);
        if (diff) return { mismatch: `the live IPv${v.family} ruleset does not match ${v.path}: ${diff}`, warnings };
        continue;
      }
      const verdict = verifyByModel(parse(content), liveDoc, v.family);
      if (verdict.mismatch) return { mismatch: `the live IPv${v.family} ruleset does not match ${v.path}: ${verdict.mismatch}`, warnings };
      if (verdict.unverifiable.length) {
        const why = !norm
          ? 'it was not loaded into a network namespace'
          : norm.status === 'failed'
            ? `it does not load into an empty network namespace (${norm.reason})`
            : `network namespaces are not available (${norm.reason})`;
        warnings.push(
          `cannot verify ${verdict.unverifiable.join(', ')} of ${v.path} against the live IPv${v.family} ruleset: ${why}, and provision's own model of iptables does not know every option of that rule`,
        );
      }
    } catch (e) {
      if (e instanceof IptablesSaveSyntaxError) return { mismatch: `cannot compare ${v.path} with the live IPv${v.family} ruleset: ${e.message}`, warnings };
      throw e;
    }
  }
  return { mismatch: null, warnings };
}

/**
 * The snapshot is restored whole (iptables-restore replaces each saved table), so rules another agent such as
 * fail2ban added after it are gone too: the message says so.
 */
export const LOCKOUT_MESSAGE =
  'firewall change would lock out SSH; previous rules restored (whole tables as saved before the restart: rules other tools added since are gone)';

async function runOrNull(ctx: TaskContext, script: string, timeoutMs: number): Promise<ExecResult | null> {
  try {
    return await ctx.run(script, { timeoutMs });
  } catch (e) {
    if (e instanceof UnreachableError) return null;
    throw e;
  }
}

/**
 * After a rollback of the live rules, put the rules files this run changed back as they were before the run:
 * left as they are, the next firewall restart (or a reboot) would load the same rules that were just refused.
 */
async function restoreRulesFiles(ctx: TaskContext, files: VerifyFile[]): Promise<void> {
  const paths = new Set(files.map((f) => f.path));
  const restore: FileChange[] = [];
  for (const [path, original] of ctx.changedFiles()) {
    if (!paths.has(path) || original.before === null) continue;
    const now = await ctx.readFile(path);
    if (now.content && now.content.equals(original.before)) continue;
    restore.push({ path, before: now.content, after: original.before, beforeSha: now.sha });
  }
  if (!restore.length) return;
  await ctx.writeFiles(restore);
  ctx.warn(`${restore.map((f) => f.path).join(' and ')} put back as before this run, so the refused rules are not loaded again`);
}

/**
 * On iptables-services the IPv6 rules have a service of their own: when this run changed /etc/sysconfig/ip6tables
 * (the iptables module opens a port in both families), restarting `iptables` restarts `ip6tables` too, under the
 * same guard, so the file is not left unloaded.
 */
function withIp6tables(ctx: TaskContext, args: ServiceArgs): boolean {
  const v6 = ctx.facts.ip6tables_rules_file;
  return args.name === 'iptables' && ctx.facts.firewall === 'iptables-services' && v6 !== null && ctx.changedFiles().has(v6);
}

async function guardedAction(ctx: TaskContext, args: ServiceArgs): Promise<Outcome> {
  const action = ACTIONS[args.state ?? 'restarted'];
  const both = withIp6tables(ctx, args);
  const what = both ? `${action} iptables and ip6tables` : `${action} ${args.name}`;
  const timeoutSec = args.rollback_timeout ?? DEFAULT_ROLLBACK_TIMEOUT;
  const g: GuardOptions = { token: randomBytes(8).toString('hex') };
  const files = both ? [...rulesFilesOf('iptables', ctx.facts), ...rulesFilesOf('ip6tables', ctx.facts)] : rulesFilesOf(args.name, ctx.facts);
  const script = both
    ? `{\n${serviceScript(ctx.facts.init, 'iptables', action)}\n} && {\n${serviceScript(ctx.facts.init, 'ip6tables', action)}\n}`
    : serviceScript(ctx.facts.init, args.name, action);
  const started = Date.now();
  const remaining = () => timeoutSec * 1000 - (Date.now() - started);

  // While new rules block this connection its output waits in TCP buffers, so the bound is past the rollback.
  const armed = await runOrNull(ctx, armScript({ ...g, timeoutSec, action: script }), (timeoutSec + 60) * 1000);
  const out = armed ? parseMarkers(armed.stdout.toString(), g.token) : new Map<string, string>();
  if (armed && !out.has('armed')) {
    throw new CommandError(ctx.host, `save the live rules before ${what}`, armed.code, armed.stdout.toString(), armed.stderr.toString());
  }
  const rc = out.get('done');
  if (armed && rc !== undefined && rc !== '0') {
    const settled = await runOrNull(ctx, settleScript({ ...g, mode: 'restore' }), 120_000);
    const restored = settled ? parseMarkers(settled.stdout.toString(), g.token).get('rolledback') : undefined;
    if (restored === '0') await restoreRulesFiles(ctx, files);
    const after =
      restored === '0' ? 'previous rules restored (whole tables as saved before the restart: rules other tools added since are gone)' : `restoring the previous rules ${restored && restored !== 'unknown' ? `exited ${restored}` : 'did not report back'}`;
    const stdout = actionOutput(armed.stdout.toString(), g.token);
    const message = `${CommandError.describe(what, Number(rc), armed.stderr.toString(), stdout)}; ${after}`;
    throw new CommandError(ctx.host, what, Number(rc), stdout, armed.stderr.toString(), message);
  }

  let probeError: string | null = armed ? null : `${what} did not return within ${timeoutSec + 60} s`;
  if (armed) {
    try {
      await ctx.probeNewConnection(Math.min(20_000, Math.max(1_000, remaining() - 2_000)));
    } catch (e) {
      probeError = e instanceof Error ? e.message : String(e);
    }
  }

  let rolledBack: string | undefined;
  if (probeError === null) {
    const settled = await runOrNull(ctx, settleScript({ ...g, mode: 'cancel', verify: files }), 120_000);
    if (!settled) throw new UnreachableError(ctx.host, `connection lost while cancelling the firewall rollback after ${what}`);
    const m = parseMarkers(settled.stdout.toString(), g.token);
    if (m.has('cancelled')) {
      const { mismatch, warnings } = verifyOutput(m, files);
      if (mismatch) throw new ModuleError(`${args.name} ${PAST[action]}, but ${mismatch}`, { rollback: 'cancelled' });
      for (const w of warnings) ctx.warn(w);
      const matched = files.length && !warnings.length ? `; the live rules match ${files.map((f) => f.path).join(' and ')}` : '';
      const name = both ? 'iptables and ip6tables' : args.name;
      return { changed: true, msg: `${name} ${PAST[action]}; a new SSH connection works${matched}`, data: { rollback: 'cancelled' } };
    }
    rolledBack = m.get('rolledback');
    probeError = `the rollback timer (${timeoutSec} s) fired before a new connection was proven`;
  } else {
    const waitSec = Math.ceil(Math.max(0, remaining()) / 1000) + 30;
    const settled = await runOrNull(ctx, settleScript({ ...g, mode: 'wait', waitSec }), (waitSec + 90) * 1000);
    rolledBack = settled ? parseMarkers(settled.stdout.toString(), g.token).get('rolledback') : undefined;
  }

  // The old rules are back (or should be): prove a new connection works again before reporting.
  try {
    await ctx.probeNewConnection(Math.max(0, remaining()) + 20_000);
  } catch (e) {
    throw new UnreachableError(
      ctx.host,
      `firewall change locked out SSH after ${what} and the host is still unreachable after the rollback: ${e instanceof Error ? e.message : String(e)}`,
    );
  }
  const data = { rollback: 'restored', reason: probeError };
  await restoreRulesFiles(ctx, files);
  if (rolledBack !== undefined && rolledBack !== '0') {
    const how = rolledBack === 'unknown' ? 'did not report back' : `exited ${rolledBack}`;
    throw new ModuleError(`firewall change would lock out SSH; restoring the previous rules ${how}`, data);
  }
  throw new ModuleError(LOCKOUT_MESSAGE, data);
}

/** Postfix restarts are proven healthy (or rolled back) unless the task says `health_check: false`. */
function healthChecked(args: ServiceArgs): boolean {
  return args.health_check ?? args.name === 'postfix';
}

function checkArgs(args: ServiceArgs): string | null {
  if (args.state === undefined && args.enabled === undefined) return 'service needs "state" or "enabled"';
  if (!/^[A-Za-z0-9@._:+-]+$/.test(args.name)) return `service name "${args.name}" contains characters a service name cannot have`;
  // A leading "-" would be read as an option (a service named --version ran `systemctl stop --version`).
  if (!/^[A-Za-z0-9_@]/.test(args.name)) return `service name "${args.name}" must start with a letter, digit, "_" or "@"`;
  if (args.rollback_timeout !== undefined && !(args.rollback_timeout >= 5 && args.rollback_timeout <= 600)) {
    return 'rollback_timeout must be between 5 and 600 seconds';
  }
  return null;
}

/** The run-time part of a service task: start/stop when needed, restart/reload always. */
async function planState(ctx: TaskContext, args: ServiceArgs & { state: NonNullable<ServiceArgs['state']> }): Promise<Plan> {
  const action = ACTIONS[args.state];
  const command = { script: serviceScript(ctx.facts.init, args.name, action), description: `${action} ${args.name}` };
  const guard = guarded(args) ? ` (firewall: rolled back after ${args.rollback_timeout ?? DEFAULT_ROLLBACK_TIMEOUT} s unless a new SSH connection works)` : '';
  if (action === 'start' || action === 'stop') {
    const status = await ctx.run(statusScript(ctx.facts.init, args.name));
    const running = status.code === 0;
    if (running === (action === 'start')) return { changed: false, msg: `${args.name} is ${running ? 'running' : 'stopped'}` };
  }
  return { changed: true, msg: `${action} ${args.name}${guard}`, files: [], commands: [command] };
}

const serviceSchema = {
  type: 'object',
  additionalProperties: false,
  required: ['name'],
  properties: {
    name: { type: 'string', minLength: 1, description: 'service name, e.g. postfix, iptables, netfilter-persistent' },
    enabled: { type: 'boolean', description: 'start at boot (systemctl enable/disable; update-rc.d or chkconfig with init scripts)' },
    daemon_reload: { type: 'boolean', description: 'systemd: run systemctl daemon-reload before the other actions, when something is to change' },
    state: {
      type: 'string',
      enum: ['started', 'stopped', 'restarted', 'reloaded'],
      description: 'started / stopped (changed only when the service is not already so), restarted or reloaded (always changed)',
    },
    firewall: {
      type: 'boolean',
      description:
        'the service loads firewall rules: guard start/restart/reload with a rollback and check the live rules afterwards (default true for iptables, ip6tables and netfilter-persistent)',
    },
    health_check: {
      type: 'boolean',
      description:
        'after start/restart/reload, prove Postfix runs and every inet listener in master.cf accepts connections; if not, restore the files this run changed, restart again and fail with the mail log\'s reason (default true for postfix)',
    },
    rollback_timeout: {
      type: 'integer',
      minimum: 5,
      maximum: 600,
      default: DEFAULT_ROLLBACK_TIMEOUT,
      description: 'seconds after which a guarded firewall change is rolled back unless a new SSH connection worked (default 30)',
    },
  },
} as const;

export const serviceModule: Module<ServiceArgs> = {
  name: 'service',
  description: 'Start, stop, restart or reload a service; firewall restarts roll back unless a new SSH connection works',
  schema: serviceSchema,

  check: checkArgs,

  async plan(ctx: TaskContext, args: ServiceArgs): Promise<Plan> {
    const problem = checkArgs(args);
    if (problem) throw new ModuleError(problem);
    const boot = await bootPlan(ctx, args);
    if (!args.state) {
      if (!boot.commands.length) return { changed: false, msg: boot.msg };
      return { changed: true, msg: boot.msg, files: [], commands: boot.commands };
    }
    const planned = await planState(ctx, { ...args, state: args.state });
    if (!boot.commands.length) return planned.changed || !boot.msg ? planned : { ...planned, msg: `${planned.msg}; ${boot.msg}` };
    if (!planned.changed) return { changed: true, msg: `${boot.msg} (${planned.msg})`, files: [], commands: boot.commands };
    return { ...planned, msg: `${planned.msg}; ${boot.msg}`, commands: [...boot.commands, ...planned.commands] };
  },

  async apply(ctx: TaskContext, plan: Extract<Plan, { changed: true }>, args: ServiceArgs): Promise<Outcome> {
    // Boot-time changes (and a daemon-reload) come first; then the state's action, if it is part of the plan.
    const isBoot = (c: { description: string }) => c.description === 'daemon-reload' || /^(enable|disable) /.test(c.description);
    for (const c of plan.commands.filter(isBoot)) {
      const r = await ctx.run(c.script);
      if (r.code !== 0) throw new CommandError(ctx.host, c.description, r.code, r.stdout.toString(), r.stderr.toString());
    }
    if (!args.state || !plan.commands.some((c) => !isBoot(c))) return { changed: true, msg: plan.msg };
    plan = { ...plan, commands: plan.commands.filter((c) => !isBoot(c)) };
    if (guarded(args)) return guardedAction(ctx, args);
    const action = ACTIONS[args.state];
    if (healthChecked(args) && action !== 'stop') {
      return restartPostfixChecked(ctx, serviceScript(ctx.facts.init, args.name, action), PAST[action]);
    }
    for (const c of plan.commands) {
      const r = await ctx.run(c.script);
      if (r.code !== 0) throw new CommandError(ctx.host, c.description, r.code, r.stdout.toString(), r.stderr.toString());
    }
    return { changed: true, msg: `${args.name} ${PAST[action]}` };
  },
};

/** Ansible's systemd module (and its newer name systemd_service): the same arguments, the same guards. */
export const systemdModule: Module<ServiceArgs> = { ...serviceModule, name: 'systemd', description: `${serviceModule.description} (Ansible's systemd module)` };
export const systemdServiceModule: Module<ServiceArgs> = { ...systemdModule, name: 'systemd_service' };

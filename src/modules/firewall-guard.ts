/**
 * The firewall guard: a change that loads firewall rules runs with the live rules saved on the host and a detached
 * job that puts them back after a timeout, unless a brand-new SSH connection proves the new rules let us in; after
 * a cancel the live rules must match the rules files. Used by `service` (firewall restarts) and, with scripts of
 * its own for firewalld, ufw and nftables, by `firewall`; both prove the new connection here (proveOrRollBack).
 */
import { randomBytes } from 'node:crypto';
import type { ExecResult } from '../connection/connection.js';
import { quote } from '../connection/shell-quote.js';
import { CommandError, UnreachableError } from '../errors.js';
import { stateDirScript } from '../facts/gather.js';
import { type FileChange, ModuleError, type Outcome, type TaskContext } from './module.js';
import { type VerifyFile, verifyOutput } from './firewall-verify.js';
import { NORMALISE_FN, normaliseMarker } from './netns-normalise.js';

export const DEFAULT_ROLLBACK_TIMEOUT = 30;

/** Where the saved rules, the rollback job's PID and its markers live on the host (root only). */
export const ROLLBACK_DIR = '/var/lib/provision';

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
const STALE_GUARDS = [
  // find runs only when there is a guard file at all (the shell's glob is free; most hosts have none).
  'for pv_f in "$pv_sd"/firewall-*; do',
  '  [ -e "$pv_f" ] || [ -L "$pv_f" ] || break',
  '  find "$pv_sd" -maxdepth 1 -type f -name \'firewall-*\' -mmin +60 -exec rm -f -- {} + 2>/dev/null; break',
  'done',
].join('\n');

/**
 * Tables a snapshot must carry even when they were empty: restoring them undoes what the restart added there
 * (iptables-save prints nothing for tables that do not exist yet). IPv6 nat is left out for old kernels.
 */
const COMPLETE_FN = [
  'pv_complete() {',
  // The tables the snapshot has, from one grep (a table starts with its `*name` line).
  '  pv_have=$(grep "^\\*" "$1")',
  '  for pv_t in $2; do',
  '    case "\n$pv_have\n" in *"\n*$pv_t\n"*) continue ;; esac',
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
export function armScript(o: GuardOptions & { timeoutSec: number; action: string; /** compare with the live rules once the action succeeded */ verify?: VerifyFile[] }): string {
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
    'pv_arc=$?',
    `printf '\\n@@%s done %s\\n' ${quote(o.token)} "$pv_arc"`,
    // The live rules and the rules files, read right after the action: the controller compares them before it
    // cancels, so that the cancel is the change's last step (see guardedAction).
    ...(o.verify?.length ? ['if [ "$pv_arc" -eq 0 ]; then', ...verifyLines(o.token, o.verify, true), '  rm -f "$pv_b.live" "$pv_b.norm"', 'fi'] : []),
  ].join('\n');
}

/** Print the live rules, each rules file and the file as a throwaway namespace loads it, as `@@TOKEN` markers. */
function verifyLines(token: string, verify: VerifyFile[], normalise: boolean): string[] {
  const t = quote(token);
  const lines = [NORMALISE_FN];
  for (const v of verify) {
    const save = v.family === 6 ? 'ip6tables-save' : 'iptables-save';
    const f = quote(v.path);
    lines.push(
      `  if ${save} > "$pv_b.live" 2>&1; then pv_s=ok; else pv_s=failed; fi`,
      `  printf '@@%s live${v.family} %s ' ${t} "$pv_s"; base64 -w0 < "$pv_b.live"; echo`,
      `  if [ -r ${f} ]; then printf '@@%s file${v.family} ok ' ${t}; base64 -w0 < ${f}; echo; else printf '@@%s file${v.family} missing\\n' ${t}; fi`,
      // The file as the kernel loads it, read back by the same iptables-save: compared like with like.
      ...(normalise ? [`  if [ -r ${f} ]; then ${normaliseMarker(token, `norm${v.family}`, v.family, f, '"$pv_b.norm"')}; fi`] : []),
    );
  }
  return lines;
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
  o: GuardOptions & {
    mode: 'cancel' | 'wait' | 'restore';
    waitSec?: number;
    verify?: VerifyFile[];
    /** load the files into a throwaway namespace (default true) */
    normalise?: boolean;
    /** exit 0 only when cancelled (by default the script exits 0 whatever it found) */
    exitCancelled?: boolean;
  },
): string {
  const t = quote(o.token);
  const lines = [
    `pv_b=${quote(basePath(o))}`,
    RESTORE_FN,
    'pv_kill() {',
    '  pv_pid=; { read -r pv_pid < "$pv_b.pid"; } 2>/dev/null',
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
  if (o.verify?.length) lines.push('if [ "$pv_state" = cancelled ]; then', ...verifyLines(o.token, o.verify, o.normalise !== false), 'fi');
  lines.push('rm -f "$pv_b.v4" "$pv_b.v6" "$pv_b.pid" "$pv_b.armed" "$pv_b.fired" "$pv_b.done" "$pv_b.done.tmp" "$pv_b.live" "$pv_b.norm"');
  // Exit 0 only when cancelled: what must happen only after the change succeeded can follow in the same step.
  if (o.exitCancelled) lines.push('[ "$pv_state" = cancelled ]');
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

/**
 * The snapshot is restored whole (iptables-restore replaces each saved table), so rules another agent such as
 * fail2ban added after it are gone too: the message says so.
 */
export const LOCKOUT_MESSAGE =
  'firewall change would lock out SSH; previous rules restored (whole tables as saved before the restart: rules other tools added since are gone)';

/**
 * Run a guard's script; null when the connection was lost (the rules may be blocking it). `thenRead`: see
 * TaskContext.run.
 */
export async function runOrNull(ctx: TaskContext, script: string, timeoutMs: number, thenRead?: (r: ExecResult) => boolean, last = false): Promise<ExecResult | null> {
  try {
    return await ctx.run(script, { timeoutMs, ...(thenRead ? { thenRead } : {}), ...(last ? { last } : {}) });
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

/** How a guarded change ended once the action returned: cancelled (a new connection works) or rolled back. */
export type Proof =
  | { cancelled: true; stdout: string; markers: Map<string, string> }
  | {
      cancelled: false;
      /** why the change was rolled back */
      reason: string;
      /** the rollback's exit status as the guard reported it, if it did */
      rolledBack: string | undefined;
    };

/**
 * After the action ran under an armed guard: prove a brand-new SSH connection works, then cancel the rollback
 * (`cancel`, whose output the caller checks); when no new connection works (or the action never returned), let
 * the rollback happen (`wait`) and prove the host reachable again, or fail it as unreachable.
 */
export async function proveOrRollBack(
  ctx: TaskContext,
  o: {
    token: string;
    timeoutSec: number;
    /** when the action was started (Date.now()) */
    started: number;
    /** the action returned (its guard script's output came back) */
    returned: boolean;
    what: string;
    cancel: string;
    /** the cancel exits 0 exactly when it cancelled, and then the change has succeeded: the task's last step */
    cancelIsLast?: boolean;
    wait: (waitSec: number) => string;
    /** the message when the connection is lost while cancelling */
    lost: string;
    /** the message when the host stays unreachable after the rollback (the probe's error follows) */
    lockedOut: string;
  },
): Promise<Proof> {
  const remaining = () => o.timeoutSec * 1000 - (Date.now() - o.started);
  let reason: string | null = o.returned ? null : `${o.what} did not return within ${o.timeoutSec + 60} s`;
  if (o.returned) {
    try {
      await ctx.probeNewConnection(Math.min(20_000, Math.max(1_000, remaining() - 2_000)));
    } catch (e) {
      reason = e instanceof Error ? e.message : String(e);
    }
  }

  let rolledBack: string | undefined;
  if (reason === null) {
    // What the rest of the play reads comes back with the cancel (the change may have changed anything, so it is
    // read after it), kept only once the rollback is cancelled: a rollback leaves the host to be read again.
    const cancelled = (r: ExecResult) => parseMarkers(r.stdout.toString(), o.token).has('cancelled');
    const settled = await runOrNull(ctx, o.cancel, 120_000, cancelled, o.cancelIsLast);
    if (!settled) throw new UnreachableError(ctx.host, o.lost);
    const stdout = settled.stdout.toString();
    const markers = parseMarkers(stdout, o.token);
    if (markers.has('cancelled')) return { cancelled: true, stdout, markers };
    rolledBack = markers.get('rolledback');
    reason = `the rollback timer (${o.timeoutSec} s) fired before a new connection was proven`;
  } else {
    const waitSec = Math.ceil(Math.max(0, remaining()) / 1000) + 30;
    const settled = await runOrNull(ctx, o.wait(waitSec), (waitSec + 90) * 1000);
    rolledBack = settled ? parseMarkers(settled.stdout.toString(), o.token).get('rolledback') : undefined;
  }

  // The old rules are back (or should be): prove a new connection works again before reporting.
  try {
    await ctx.probeNewConnection(Math.max(0, remaining()) + 20_000);
  } catch (e) {
    throw new UnreachableError(ctx.host, `${o.lockedOut}: ${e instanceof Error ? e.message : String(e)}`);
  }
  return { cancelled: false, reason, rolledBack };
}

/** A firewall service's action to run under the guard. */
export interface GuardedService {
  /** the service as the task names it */
  name: string;
  /** the services acted on, as the result names them ("iptables and ip6tables") */
  shown: string;
  /** the action ("restart iptables") */
  what: string;
  /** the action in the past tense ("restarted") */
  past: string;
  /** the shell that performs the action */
  script: string;
  /** the rules files the live rules must match afterwards */
  files: VerifyFile[];
  timeoutSec: number;
}

/** Run a firewall service's action under the guard (see the top of this file). */
export async function guardedAction(ctx: TaskContext, s: GuardedService): Promise<Outcome> {
  const { what, timeoutSec, files } = s;
  const g: GuardOptions = { token: randomBytes(8).toString('hex') };
  const started = Date.now();

  // While new rules block this connection its output waits in TCP buffers, so the bound is past the rollback.
  const armed = await runOrNull(ctx, armScript({ ...g, timeoutSec, action: s.script, verify: files }), (timeoutSec + 60) * 1000);
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

  // The live rules as the action left them, compared with the files before the cancel: when they match, the cancel
  // decides the change (it succeeded if and only if it cancelled) and is the task's last step. Without that
  // reading (the action's end was not reported), the cancel reads them again and the comparison follows it.
  const early = armed && rc === '0' ? verifyOutput(out, files) : null;
  const proof = await proveOrRollBack(ctx, {
    token: g.token,
    timeoutSec,
    started,
    returned: armed !== null,
    what,
    cancel: early ? settleScript({ ...g, mode: 'cancel', exitCancelled: !early.mismatch }) : settleScript({ ...g, mode: 'cancel', verify: files }),
    cancelIsLast: early !== null && !early.mismatch,
    wait: (waitSec) => settleScript({ ...g, mode: 'wait', waitSec }),
    lost: `connection lost while cancelling the firewall rollback after ${what}`,
    lockedOut: `firewall change locked out SSH after ${what} and the host is still unreachable after the rollback`,
  });
  if (proof.cancelled) {
    const { mismatch, warnings } = early ?? verifyOutput(proof.markers, files);
    if (mismatch) throw new ModuleError(`${s.name} ${s.past}, but ${mismatch}`, { rollback: 'cancelled' });
    for (const w of warnings) ctx.warn(w);
    const matched = files.length && !warnings.length ? `; the live rules match ${files.map((f) => f.path).join(' and ')}` : '';
    return { changed: true, msg: `${s.shown} ${s.past}; a new SSH connection works${matched}`, data: { rollback: 'cancelled' } };
  }
  const data = { rollback: 'restored', reason: proof.reason };
  await restoreRulesFiles(ctx, files);
  if (proof.rolledBack !== undefined && proof.rolledBack !== '0') {
    const how = proof.rolledBack === 'unknown' ? 'did not report back' : `exited ${proof.rolledBack}`;
    throw new ModuleError(`firewall change would lock out SSH; restoring the previous rules ${how}`, data);
  }
  throw new ModuleError(LOCKOUT_MESSAGE, data);
}

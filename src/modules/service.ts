/**
 * `service`: start, stop, restart or reload a service through systemctl or service/init.d. Restarting a firewall
 * service is guarded (see firewall-guard.ts): the live rules are put back unless a brand-new SSH connection proves
 * the new rules let us in; then the live rules must match the rules file. Postfix restarts are health-checked.
 */
import { quote } from '../connection/shell-quote.js';
import { CommandError } from '../errors.js';
import type { Facts } from '../facts/types.js';
import { DEFAULT_ROLLBACK_TIMEOUT, guardedAction } from './firewall-guard.js';
import { rulesFilesOf } from './firewall-verify.js';
import { ModuleError, type Module, type Outcome, type Plan, type Reads, type TaskContext } from './module.js';
import type { ArgsOf } from './module.js';
import { restartPostfixChecked } from './postfix-health.js';

// What tests and tools outside the modules know from here; the guard itself is firewall-guard.ts.
export { LOCKOUT_MESSAGE, settleScript } from './firewall-guard.js';
export { rulesFilesOf } from './firewall-verify.js';

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

/**
 * On iptables-services the IPv6 rules have a service of their own: when this run changed /etc/sysconfig/ip6tables
 * (the iptables module opens a port in both families), restarting `iptables` restarts `ip6tables` too, under the
 * same guard, so the file is not left unloaded.
 */
function withIp6tables(ctx: TaskContext, args: ServiceArgs): boolean {
  const v6 = ctx.facts.ip6tables_rules_file;
  return args.name === 'iptables' && ctx.facts.firewall === 'iptables-services' && v6 !== null && ctx.changedFiles().has(v6);
}

/** A firewall service's start, restart or reload, under the firewall guard. */
function guardedService(ctx: TaskContext, args: ServiceArgs): Promise<Outcome> {
  const action = ACTIONS[args.state ?? 'restarted'];
  const both = withIp6tables(ctx, args);
  return guardedAction(ctx, {
    name: args.name,
    shown: both ? 'iptables and ip6tables' : args.name,
    what: both ? `${action} iptables and ip6tables` : `${action} ${args.name}`,
    past: PAST[action],
    script: both
      ? `{\n${serviceScript(ctx.facts.init, 'iptables', action)}\n} && {\n${serviceScript(ctx.facts.init, 'ip6tables', action)}\n}`
      : serviceScript(ctx.facts.init, args.name, action),
    files: both ? [...rulesFilesOf('iptables', ctx.facts), ...rulesFilesOf('ip6tables', ctx.facts)] : rulesFilesOf(args.name, ctx.facts),
    timeoutSec: args.rollback_timeout ?? DEFAULT_ROLLBACK_TIMEOUT,
  });
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

  // A health-checked restart reads master.cf for its listeners: declared, so that it comes with the read before
  // it (after a guarded firewall change, the cancel step's; see proveOrRollBack) rather than in a step of its own.
  reads(args: ServiceArgs, facts: Facts): Reads {
    if (!args.state || ACTIONS[args.state] === 'stop' || guarded(args) || !healthChecked(args)) return {};
    return { files: [`${facts.postfix_config_dir ?? '/etc/postfix'}/master.cf`] };
  },

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
    if (guarded(args)) return guardedService(ctx, args);
    const action = ACTIONS[args.state];
    if (healthChecked(args) && action !== 'stop') {
      return restartPostfixChecked(ctx, serviceScript(ctx.facts.init, args.name, action), PAST[action]);
    }
    for (const [i, c] of plan.commands.entries()) {
      const r = await ctx.run(c.script, { last: i === plan.commands.length - 1 });
      if (r.code !== 0) throw new CommandError(ctx.host, c.description, r.code, r.stdout.toString(), r.stderr.toString());
    }
    return { changed: true, msg: `${args.name} ${PAST[action]}` };
  },
};

/** Ansible's systemd module (and its newer name systemd_service): the same arguments, the same guards. */
export const systemdModule: Module<ServiceArgs> = { ...serviceModule, name: 'systemd', description: `${serviceModule.description} (Ansible's systemd module)` };
export const systemdServiceModule: Module<ServiceArgs> = { ...systemdModule, name: 'systemd_service' };

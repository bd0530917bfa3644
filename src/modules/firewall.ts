/**
 * `firewall`: open (or close) one port the way the host's firewall wants it, chosen by the facts' firewall flavour:
 * - iptables-services / netfilter-persistent: the rule in the persistent rules file, through the iptables module;
 *   loading it is the firewall service's job (a `service` handler, guarded there);
 * - firewalld: `firewall-cmd --permanent` and runtime, in the zone of the interface that carries the host's address
 *   (or the zone given), by service name or port/protocol; the diff is the zone XML as firewalld writes it;
 * - ufw: `ufw allow PORT/PROTO` (before.rules untouched); the diff is the user rules files as ufw writes them;
 * - nftables: a rule in chain input of table inet filter in /etc/nftables.conf, above a final reject or drop,
 *   checked with `nft -c -f`, then loaded.
 * Plan reads only; firewalld, ufw and nftables changes are applied live under a detached rollback job that undoes
 * them unless a brand-new SSH connection works afterwards, and the live state is checked before the job is
 * cancelled.
 */
import { createHash, randomBytes } from 'node:crypto';
import { quote } from '../connection/shell-quote.js';
import { CommandError } from '../errors.js';
import type { Facts } from '../facts/types.js';
import {
  FirewallFileError,
  type Opening,
  editNftConf,
  editUfwRules,
  editZone,
  nftHas,
  parseListAll,
  runtimeHas,
  ufwHas,
  ufwIpv6,
  zoneHas,
} from '../formats/firewall-files.js';
import { type IptablesArgs, iptablesModule } from './iptables.js';
import { type FileChange, type Module, ModuleError, type Outcome, type Plan, type ReadCommand, type Reads, type TaskContext } from './module.js';
import { DEFAULT_ROLLBACK_TIMEOUT, LOCKOUT_MESSAGE, ROLLBACK_DIR, parseMarkers, proveOrRollBack, runOrNull } from './firewall-guard.js';
import type { ArgsOf } from './module.js';

export type FirewallArgs = ArgsOf<typeof firewallSchema>;

export type Backend = 'iptables' | 'firewalld' | 'ufw' | 'nftables';

export const NFT_CONF = '/etc/nftables.conf';
export const UFW_RULES: Record<4 | 6, string> = { 4: '/etc/ufw/user.rules', 6: '/etc/ufw/user6.rules' };
export const UFW_DEFAULTS = '/etc/default/ufw';
const zonePaths = (zone: string) => ({ etc: `/etc/firewalld/zones/${zone}.xml`, lib: `/usr/lib/firewalld/zones/${zone}.xml` });
const servicePaths = (s: string) => [`/etc/firewalld/services/${s}.xml`, `/usr/lib/firewalld/services/${s}.xml`];

/** The backend for the host's firewall, or a clear refusal. */
export function backendOf(facts: Facts): Backend {
  switch (facts.firewall) {
    case 'iptables-services':
    case 'netfilter-persistent':
      return 'iptables';
    case 'firewalld':
    case 'ufw':
    case 'nftables':
      return facts.firewall;
    default:
      throw new ModuleError(
        'no firewall this module can manage: the host has neither an iptables rules file (iptables-services, netfilter-persistent), a running firewalld, an enabled ufw nor an enabled nftables service',
      );
  }
}

const openingOf = (args: FirewallArgs, backend: Backend): Opening => ({
  port: args.port,
  protocol: args.protocol ?? 'tcp',
  ...(backend === 'firewalld' && args.service ? { service: args.service } : {}),
});

const describe = (o: Opening) => (o.service ? `service ${o.service}` : `${o.port}/${o.protocol}`);

/** The iptables module's arguments for the same opening (the rule the SMTPS playbook always wrote). */
export function iptablesArgsOf(args: FirewallArgs): IptablesArgs {
  return { chain: 'INPUT', protocol: args.protocol ?? 'tcp', dport: args.port, ctstate: 'NEW', jump: 'ACCEPT', state: args.state ?? 'present' };
}

function zoneOf(args: FirewallArgs, facts: Facts): string {
  const zone = args.zone ?? facts.firewalld_zone;
  if (!zone) throw new ModuleError('firewalld names no zone for the interface that carries this host\'s address and has no default zone; give zone');
  return zone;
}

/** Where firewalld keeps its pid file (/var/run links here on every distribution that ships firewalld). */
const FIREWALLD_PID = '/run/firewalld.pid';

/**
 * The zone's runtime configuration. Guarded so that it costs nothing on a host without a running firewalld: the
 * first exec asks for it on every host whose firewall it cannot know yet (see `reads`).
 */
const listAllCommand = (zone: string): ReadCommand => ({
  key: `firewalld:list-all:${zone}`,
  // The running daemon's state, and whether its pid file is there. Declared by its own path, /run (read with the
  // zone files, see firewalldReads): through the /var/run link every write of a queued task would have to forget
  // it, and the firewall task would read it again in a step of its own.
  dependsOn: [FIREWALLD_PID],
  script: `if [ -e /var/run/firewalld.pid ] || pidof firewalld >/dev/null 2>&1; then firewall-cmd --zone=${quote(zone)} --list-all; else echo 'firewalld is not running' >&2; exit 3; fi`,
});

/** firewalld's default zone on every distribution that ships it. */
const DEFAULT_ZONE = 'public';

/** What plan reads on a firewalld host, for the zone given or found. */
function firewalldReads(args: FirewallArgs, zone: string): Reads {
  const p = zonePaths(zone);
  return { files: [p.etc, p.lib], stats: [FIREWALLD_PID, ...(args.service ? servicePaths(args.service) : [])], commands: [listAllCommand(zone)] };
}

function checkArgs(args: FirewallArgs): string | null {
  if (!Number.isInteger(args.port) || args.port < 1 || args.port > 65535) return `port ${String(args.port)} is not a port number (1-65535)`;
  if (args.service !== undefined && !/^[A-Za-z0-9][A-Za-z0-9_.+-]{0,63}$/.test(args.service)) return `service "${args.service}" is not a firewalld service name`;
  if (args.zone !== undefined && !/^[A-Za-z0-9_-]{1,17}$/.test(args.zone)) return `zone "${args.zone}" is not a firewalld zone name (letters, digits, _ and -, at most 17)`;
  if (args.rollback_timeout !== undefined && !(args.rollback_timeout >= 5 && args.rollback_timeout <= 600)) return 'rollback_timeout must be between 5 and 600 seconds';
  return null;
}

function textOf(ctxFile: { content: Buffer | null }): string {
  return (ctxFile.content ?? Buffer.alloc(0)).toString('utf8');
}

function fileError(path: string, e: unknown): never {
  if (e instanceof FirewallFileError) throw new ModuleError(`${path}: ${e.message}`);
  throw e;
}

/** What apply needs besides the plan: how to undo the change, prove it live, and which files the tool writes. */
interface Extra {
  backend: Exclude<Backend, 'iptables'>;
  opening: Opening;
  present: boolean;
  /** commands applying the change (run in order under the rollback job) */
  action: string[];
  /** commands undoing it (the rollback job runs them) */
  undo: string[];
  /** prints the live state for `liveHolds` */
  verify: string;
  /** files the firewall's own tool writes, with the content the plan predicted */
  predicted: FileChange[];
  zone?: string;
}

const extras = new WeakMap<Plan, Extra>();

const present = (args: FirewallArgs) => (args.state ?? 'present') === 'present';

async function planFirewalld(ctx: TaskContext, args: FirewallArgs): Promise<Plan> {
  const zone = zoneOf(args, ctx.facts);
  const o = openingOf(args, 'firewalld');
  const want = present(args);
  const paths = zonePaths(zone);
  const etc = await ctx.readFile(paths.etc);
  const source = etc.exists ? etc : await ctx.readFile(paths.lib);
  if (!source.exists) throw new ModuleError(`firewalld has no zone "${zone}" (neither ${paths.etc} nor ${paths.lib} exists)`);
  if (o.service) {
    const defs = await Promise.all(servicePaths(o.service).map((p) => ctx.statFile(p)));
    if (!defs.some((d) => d.exists)) throw new ModuleError(`firewalld knows no service "${o.service}" (no ${servicePaths(o.service).join(' or ')}); give the port only`);
  }
  const text = textOf(source);
  let permanent: boolean;
  let after: string;
  try {
    permanent = zoneHas(text, o);
    after = editZone(text, o, want);
  } catch (e) {
    fileError(source.path, e);
  }
  const cmd = listAllCommand(zone);
  const listed = await ctx.readCommand(cmd.key, cmd.script, cmd.dependsOn);
  if (listed.code !== 0) throw new ModuleError(`cannot read firewalld's runtime zone: ${CommandError.describe(cmd.script, listed.code, listed.stderr.toString(), listed.stdout.toString())}`);
  const runtime = runtimeHas(parseListAll(listed.stdout.toString()), o);
  const what = describe(o);
  const data = { firewall: 'firewalld', zone };
  if (permanent === want && runtime === want) {
    return { changed: false, msg: `firewalld zone ${zone} ${want ? 'allows' : 'does not allow'} ${what} (permanent and runtime)`, data };
  }
  const flag = o.service ? `service=${o.service}` : `port=${o.port}/${o.protocol}`;
  const verb = (add: boolean) => (add ? 'add' : 'remove');
  const fc = (perm: boolean, add: boolean) => `firewall-cmd${perm ? ' --permanent' : ''} --zone=${quote(zone)} --${verb(add)}-${quote(flag)}`;
  const action: string[] = [];
  const undo: string[] = [];
  if (permanent !== want) {
    action.push(fc(true, want));
    undo.push(fc(true, !want));
  }
  if (runtime !== want) {
    action.push(fc(false, want));
    undo.push(fc(false, !want));
  }
  const files: FileChange[] =
    permanent === want ? [] : [{ path: paths.etc, before: etc.exists ? (etc.content ?? Buffer.alloc(0)) : null, after: Buffer.from(after), beforeSha: etc.sha }];
  const parts = [permanent !== want ? 'permanent' : '', runtime !== want ? 'runtime' : ''].filter(Boolean).join(' and ');
  const plan: Plan = {
    changed: true,
    msg: `${want ? 'allow' : 'stop allowing'} ${what} in firewalld zone ${zone} (${parts})`,
    files,
    commands: action.map((script) => ({ script, description: script })),
    data,
  };
  const q = o.service ? `--query-service=${quote(o.service)}` : `--query-port=${quote(`${o.port}/${o.protocol}`)}`;
  extras.set(plan, {
    backend: 'firewalld',
    opening: o,
    present: want,
    action,
    undo,
    verify: `echo "runtime $(firewall-cmd --zone=${quote(zone)} ${q} 2>&1)"; echo "permanent $(firewall-cmd --permanent --zone=${quote(zone)} ${q} 2>&1)"`,
    predicted: files,
    zone,
  });
  return plan;
}

async function planUfw(ctx: TaskContext, args: FirewallArgs): Promise<Plan> {
  const o = openingOf(args, 'ufw');
  const want = present(args);
  const defaults = await ctx.readFile(UFW_DEFAULTS);
  const families: (4 | 6)[] = ufwIpv6(defaults.exists ? textOf(defaults) : null) ? [4, 6] : [4];
  const files: FileChange[] = [];
  for (const family of families) {
    const f = await ctx.readFile(UFW_RULES[family]);
    if (!f.exists) throw new ModuleError(`${UFW_RULES[family]} does not exist: ufw keeps its rules there (run \`ufw enable\` once)`);
    const text = textOf(f);
    try {
      if (ufwHas(text, o, family) === want) continue;
      files.push({ path: f.path, before: f.content ?? Buffer.alloc(0), after: Buffer.from(editUfwRules(text, o, family, want)), beforeSha: f.sha });
    } catch (e) {
      fileError(f.path, e);
    }
  }
  const what = `${o.port}/${o.protocol}`;
  const data = { firewall: 'ufw' };
  if (!files.length) return { changed: false, msg: `ufw ${want ? 'allows' : 'does not allow'} ${what}`, data };
  const rule = `allow ${what}`;
  const action = [want ? `ufw ${rule}` : `ufw delete ${rule}`];
  const plan: Plan = { changed: true, msg: want ? `ufw ${rule}` : `ufw delete ${rule}`, files, commands: action.map((script) => ({ script, description: script })), data };
  const chains = families.map((f) => `${f === 6 ? 'ip6tables' : 'iptables'} -S ${f === 6 ? 'ufw6' : 'ufw'}-user-input`);
  extras.set(plan, {
    backend: 'ufw',
    opening: o,
    present: want,
    action,
    undo: [want ? `ufw delete ${rule}` : `ufw ${rule}`],
    verify: chains.map((c) => `${c} 2>&1 | sed 's/^/live /'`).join('\n'),
    predicted: files,
  });
  return plan;
}

async function planNftables(ctx: TaskContext, args: FirewallArgs): Promise<Plan> {
  const o = openingOf(args, 'nftables');
  const want = present(args);
  const f = await ctx.readFile(NFT_CONF);
  if (!f.exists) throw new ModuleError(`${NFT_CONF} does not exist: the nftables service loads its rules from there`);
  const text = textOf(f);
  let has: boolean;
  let after: string;
  try {
    has = nftHas(text, o);
    after = editNftConf(text, o, want);
  } catch (e) {
    fileError(NFT_CONF, e);
  }
  const what = `${o.port}/${o.protocol}`;
  const data = { firewall: 'nftables', path: NFT_CONF };
  if (has === want && after === text) {
    return { changed: false, msg: `chain input of table inet filter ${want ? 'accepts' : 'does not accept'} ${what} (${NFT_CONF})`, data };
  }
  const change: FileChange = {
    path: NFT_CONF,
    before: f.content ?? Buffer.alloc(0),
    after: Buffer.from(after),
    beforeSha: f.sha,
    validate: [{ script: 'nft -c -f "$CANDIDATE"', description: 'nft -c -f' }],
  };
  await ctx.validate([change]);
  const load = `nft -f ${NFT_CONF}`;
  const plan: Plan = {
    changed: true,
    msg: `${want ? 'accept' : 'stop accepting'} ${what} in chain input of table inet filter${want ? ' (above its final reject/drop)' : ''} and load ${NFT_CONF}`,
    files: [change],
    commands: [{ script: load, description: `load ${NFT_CONF}` }],
    data,
  };
  extras.set(plan, {
    backend: 'nftables',
    opening: o,
    present: want,
    action: [load],
    // The saved live ruleset and file go back (see armScript): flush first, as the file itself does.
    undo: [`cat "$pv_b.conf" > ${NFT_CONF}`, `{ echo 'flush ruleset'; cat "$pv_b.live"; } | nft -f -`],
    verify: `nft list chain inet filter input 2>&1 | sed 's/^/live /'`,
    predicted: [],
  });
  return plan;
}

// ---------------------------------------------------------------------------------------------------------------
// The rollback job for live changes

const guardBase = (token: string) => `${ROLLBACK_DIR}/firewall-${token}`;

/** Save what the undo needs, start the detached undo job, then apply. Markers: `armed`, `done RC`. */
export function armScript(token: string, timeoutSec: number, x: Extra, oldConf: Buffer | null): string {
  const undoFile = ['#!/bin/sh', `pv_b=${quote(guardBase(token))}`, 'pv_rc=0', ...x.undo.map((u) => `${u} || pv_rc=$?`), 'exit $pv_rc'].join('\n');
  const job = [
    'PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin',
    'sleep "$1"',
    'mv -f "$2.armed" "$2.fired" 2>/dev/null || exit 0',
    'sh "$2.undo"; echo "$?" > "$2.done.tmp" && mv -f "$2.done.tmp" "$2.done"',
  ].join('\n');
  const t = quote(token);
  return [
    `pv_b=${quote(guardBase(token))}`,
    'umask 077',
    `mkdir -p ${quote(ROLLBACK_DIR)} && chmod 0700 ${quote(ROLLBACK_DIR)} || { echo ${quote(`cannot create ${ROLLBACK_DIR}`)} >&2; exit 90; }`,
    ...(x.backend === 'nftables'
      ? [
          'nft list ruleset > "$pv_b.live" || { echo "cannot save the live nftables ruleset" >&2; exit 90; }',
          `printf %s ${quote((oldConf ?? Buffer.alloc(0)).toString('base64'))} | base64 -d > "$pv_b.conf" || exit 90`,
        ]
      : []),
    `printf '%s\\n' ${quote(undoFile)} > "$pv_b.undo" || exit 90`,
    ': > "$pv_b.armed" || exit 90',
    'if command -v setsid >/dev/null 2>&1; then pv_detach=setsid; else pv_detach=; fi',
    `$pv_detach nohup sh -c ${quote(job)} provision-rollback ${Math.max(1, Math.round(timeoutSec))} "$pv_b" </dev/null >/dev/null 2>&1 &`,
    'echo $! > "$pv_b.pid"',
    `printf '@@%s armed\\n' ${t}`,
    `(\nset -e\n${x.action.join('\n')}\n)`,
    `printf '\\n@@%s done %s\\n' ${t} "$?"`,
  ].join('\n');
}

/** Cancel (then print the live state and the written files' hashes), restore now, or wait for the job. */
export function settleScript(token: string, mode: 'cancel' | 'restore' | 'wait', x: Extra, waitSec = 60): string {
  const t = quote(token);
  const lines = [
    `pv_b=${quote(guardBase(token))}`,
    'pv_kill() { pv_pid=$(cat "$pv_b.pid" 2>/dev/null); [ -n "$pv_pid" ] || return 0; kill -TERM "-$pv_pid" 2>/dev/null || kill -TERM "$pv_pid" 2>/dev/null; return 0; }',
    'pv_state=',
  ];
  if (mode === 'cancel') lines.push('if rm "$pv_b.armed" 2>/dev/null; then pv_kill; pv_state=cancelled; fi');
  if (mode === 'wait') lines.push(`pv_i=0; while [ -e "$pv_b.armed" ] && [ "$pv_i" -lt ${Math.max(1, Math.round(waitSec))} ]; do sleep 1; pv_i=$((pv_i + 1)); done`);
  lines.push(
    'if [ -z "$pv_state" ]; then',
    '  if mv -f "$pv_b.armed" "$pv_b.fired" 2>/dev/null; then pv_kill; sh "$pv_b.undo"; echo "$?" > "$pv_b.done"; fi',
    '  pv_i=0; while [ ! -e "$pv_b.done" ] && [ "$pv_i" -lt 60 ]; do sleep 1; pv_i=$((pv_i + 1)); done',
    '  pv_state="rolledback $(cat "$pv_b.done" 2>/dev/null || echo unknown)"',
    'fi',
    `printf '@@%s %s\\n' ${t} "$pv_state"`,
    'if [ "$pv_state" = cancelled ]; then',
    `{\n${x.verify}\n} | sed "s/^/@@${token} /"`,
    ...x.predicted.map((f) => `  printf '@@%s sha %s %s\\n' ${t} ${quote(f.path)} "$(sha256sum < ${quote(f.path)} 2>/dev/null | cut -c1-64)"`),
    'fi',
    'rm -f "$pv_b.undo" "$pv_b.live" "$pv_b.conf" "$pv_b.pid" "$pv_b.armed" "$pv_b.fired" "$pv_b.done" "$pv_b.done.tmp"',
  );
  return lines.join('\n');
}

/** Whether the live firewall now has (or lacks) the opening, from the verify lines of a cancel; null when it does. */
export function liveProblem(x: Extra, stdout: string, token: string): string | null {
  const lines = stdout
    .split('\n')
    .filter((l) => l.startsWith(`@@${token} `))
    .map((l) => l.slice(token.length + 3));
  const what = describe(x.opening);
  if (x.backend === 'firewalld') {
    for (const kind of ['runtime', 'permanent']) {
      const answer = lines.find((l) => l.startsWith(`${kind} `))?.slice(kind.length + 1).trim();
      if (answer !== (x.present ? 'yes' : 'no')) return `firewalld's ${kind} zone ${x.zone} answers "${answer ?? 'nothing'}" when asked for ${what}`;
    }
    return null;
  }
  const live = lines.filter((l) => l.startsWith('live ')).map((l) => l.slice(5).trim().replace(/\s+/g, ' '));
  if (x.backend === 'ufw') {
    // A family whose chain is not listed (IPv6 off in /etc/default/ufw) has nothing to check.
    for (const f of [4, 6]) {
      const chain = `${f === 6 ? 'ufw6' : 'ufw'}-user-input`;
      const rule = `-A ${chain} -p ${x.opening.protocol} -m ${x.opening.protocol} --dport ${x.opening.port} -j ACCEPT`;
      const listed = live.some((l) => l.startsWith(`-N ${chain}`) || l.startsWith(`-A ${chain}`));
      if (!listed && f === 4) return `cannot list the live ${chain} chain: ${live.join(' | ') || 'no output'}`;
      if (!listed) continue;
      if (live.includes(rule) !== x.present) return `the live ${chain} chain ${x.present ? 'lacks' : 'still has'} "${rule}"`;
    }
    return null;
  }
  const rule = `${x.opening.protocol} dport ${x.opening.port} accept`;
  if (!live.some((l) => l.startsWith('chain input') || l.startsWith('table inet filter'))) return `cannot list the live chain input of table inet filter: ${live.join(' | ') || 'no output'}`;
  if (live.includes(rule) !== x.present) return `the live chain input of table inet filter ${x.present ? 'lacks' : 'still has'} "${rule}"`;
  return null;
}

const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');

async function guardedApply(ctx: TaskContext, plan: Extract<Plan, { changed: true }>, args: FirewallArgs, x: Extra): Promise<Outcome> {
  const timeoutSec = args.rollback_timeout ?? DEFAULT_ROLLBACK_TIMEOUT;
  const token = randomBytes(8).toString('hex');
  const started = Date.now();
  const what = plan.msg;
  // nftables.conf is ours to write (validated, atomically); firewalld and ufw write their own files.
  const ours = x.backend === 'nftables' ? plan.files : [];
  // Queued when it can be: the arm step below carries it, and arms only once the file is in place.
  if (ours.length) await ctx.writeFiles(ours, { behind: true });
  const putBack = async () => {
    if (!ours.length) return;
    const now = await ctx.readFile(NFT_CONF);
    const before = ours[0]!.before;
    if (before && !(now.content && now.content.equals(before))) {
      await ctx.writeFiles([{ path: NFT_CONF, before: now.content, after: before, beforeSha: now.sha }]);
    }
  };

  const armed = await runOrNull(ctx, armScript(token, timeoutSec, x, ours[0]?.before ?? null), (timeoutSec + 60) * 1000);
  const out = armed ? parseMarkers(armed.stdout.toString(), token) : new Map<string, string>();
  if (armed && !out.has('armed')) {
    await putBack();
    throw new CommandError(ctx.host, `prepare the rollback before: ${what}`, armed.code, armed.stdout.toString(), armed.stderr.toString());
  }
  const rc = out.get('done');
  if (armed && rc !== undefined && rc !== '0') {
    const settled = await runOrNull(ctx, settleScript(token, 'restore', x), 120_000);
    const restored = settled ? parseMarkers(settled.stdout.toString(), token).get('rolledback') : undefined;
    await putBack();
    const message = `${CommandError.describe(x.action.join('; '), Number(rc), armed.stderr.toString(), armed.stdout.toString().replace(/@@\S+ [^\n]*\n?/g, ''))}; ${restored === '0' ? 'undone' : `undoing it ${restored ? `exited ${restored}` : 'did not report back'}`}`;
    throw new CommandError(ctx.host, what, Number(rc), armed.stdout.toString(), armed.stderr.toString(), message);
  }

  const proof = await proveOrRollBack(ctx, {
    token,
    timeoutSec,
    started,
    returned: armed !== null,
    what,
    cancel: settleScript(token, 'cancel', x),
    wait: (waitSec) => settleScript(token, 'wait', x, waitSec),
    lost: `connection lost while cancelling the firewall rollback after: ${what}`,
    lockedOut: `firewall change locked out SSH (${what}) and the host is still unreachable after the rollback`,
  });
  if (proof.cancelled) {
    const { stdout } = proof;
    const problem = liveProblem(x, stdout, token);
    if (problem) throw new ModuleError(`${what}: done, but ${problem}`, { rollback: 'cancelled' });
    for (const f of x.predicted) {
      const written = stdout.split('\n').find((l) => l.startsWith(`@@${token} sha ${f.path} `))?.split(' ')[3];
      if (written && written !== sha(f.after)) ctx.warn(`${f.path} as ${x.backend} wrote it differs from the content the plan showed`);
    }
    return { changed: true, msg: `${what}; a new SSH connection works and the live firewall has the change`, data: { ...plan.data, rollback: 'cancelled' } };
  }
  await putBack();
  throw new ModuleError(LOCKOUT_MESSAGE, { rollback: 'restored', reason: proof.reason });
}

const firewallSchema = {
  type: 'object',
  additionalProperties: false,
  required: ['port'],
  properties: {
    port: { type: 'integer', minimum: 1, maximum: 65535, description: 'the port to open or close, e.g. 465' },
    protocol: { type: 'string', enum: ['tcp', 'udp'], default: 'tcp', description: 'tcp (default) or udp' },
    service: {
      type: 'string',
      minLength: 1,
      description: 'firewalld only: open this firewalld service (e.g. smtps) instead of port/protocol; other firewalls use port and protocol',
    },
    state: { type: 'string', enum: ['present', 'absent'], default: 'present', description: 'present (default): the port is open; absent: the rule is removed' },
    zone: { type: 'string', minLength: 1, description: "firewalld only: the zone (default: the zone of the interface that carries the host's address, else the default zone)" },
    rollback_timeout: {
      type: 'integer',
      minimum: 5,
      maximum: 600,
      default: DEFAULT_ROLLBACK_TIMEOUT,
      description: 'firewalld, ufw, nftables: seconds after which the live change is undone unless a new SSH connection worked (default 30)',
    },
  },
} as const;

export const firewallModule: Module<FirewallArgs> = {
  name: 'firewall',
  description: "Open or close a port in the host's own firewall: iptables rules file, firewalld, ufw or nftables",
  schema: firewallSchema,

  check: checkArgs,

  reads(args: FirewallArgs, facts: Facts): Reads {
    let backend: Backend;
    try {
      backend = backendOf(facts);
    } catch {
      return {};
    }
    if (backend === 'iptables') {
      // The first exec plans with guessed iptables hosts (see first-exec.ts); what a ufw, nftables or firewalld
      // host (in the default zone) would be asked for rides along, so such a host with nothing to change needs
      // no second exec. On other hosts it is a few absent paths and a test for a running firewalld.
      const ipt = iptablesModule.reads?.(iptablesArgsOf(args), facts) ?? {};
      const fwd = checkArgs(args) ? {} : firewalldReads(args, args.zone ?? DEFAULT_ZONE);
      return {
        ...ipt,
        files: [...(ipt.files ?? []), NFT_CONF, UFW_DEFAULTS, UFW_RULES[4], UFW_RULES[6], ...(fwd.files ?? [])],
        ...(fwd.stats ? { stats: [...(ipt.stats ?? []), ...fwd.stats] } : {}),
        commands: [...(ipt.commands ?? []), ...(fwd.commands ?? [])],
      };
    }
    if (backend === 'nftables') return { files: [NFT_CONF] };
    if (backend === 'ufw') return { files: [UFW_DEFAULTS, UFW_RULES[4], UFW_RULES[6]] };
    const zone = args.zone ?? facts.firewalld_zone;
    if (!zone || checkArgs(args)) return {};
    return firewalldReads(args, zone);
  },

  async plan(ctx: TaskContext, args: FirewallArgs): Promise<Plan> {
    const problem = checkArgs(args);
    if (problem) throw new ModuleError(problem);
    const backend = backendOf(ctx.facts);
    if (backend === 'iptables') return iptablesModule.plan(ctx, iptablesArgsOf(args));
    if (backend === 'firewalld') return planFirewalld(ctx, args);
    if (backend === 'ufw') return planUfw(ctx, args);
    return planNftables(ctx, args);
  },

  // An iptables rules file without commands: written as the default apply writes it.
  defaultLikeApply: (plan) => !extras.has(plan) && plan.commands.length === 0,

  async apply(ctx: TaskContext, plan: Extract<Plan, { changed: true }>, args: FirewallArgs): Promise<Outcome> {
    const x = extras.get(plan);
    if (!x) {
      // iptables rules file: written here, loaded by the firewall service (its restart is guarded there).
      await ctx.writeFiles(plan.files);
      for (const c of plan.commands) {
        const r = await ctx.run(c.script);
        if (r.code !== 0) throw new CommandError(ctx.host, c.description, r.code, r.stdout.toString(), r.stderr.toString());
      }
      return { changed: true, msg: plan.msg };
    }
    return guardedApply(ctx, plan, args, x);
  },
};

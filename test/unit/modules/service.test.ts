import { spawn, spawnSync } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type ExecResult, guard } from '../../../src/connection/connection.js';
import { CommandError, UnreachableError } from '../../../src/errors.js';
import { parse, verifyByModel } from '../../../src/formats/iptables-save.js';
import { ModuleError, type Plan } from '../../../src/modules/module.js';
import { parseNormalised } from '../../../src/modules/netns-normalise.js';
import {
  LOCKOUT_MESSAGE,
  type ServiceArgs,
  bootScript,
  enabledScript,
  rulesFilesOf,
  serviceModule,
  serviceScript,
  settleScript,
  statusScript,
} from '../../../src/modules/service.js';
import { armScript, parseMarkers } from '../../../src/modules/firewall-guard.js';
import { verifyOutput } from '../../../src/modules/firewall-verify.js';
import { type FakeContext, debianFacts, fakeContext, rhelFacts } from '../../support/fake-context.js';

const fixture = (name: string) => readFileSync(fileURLToPath(new URL(`../../fixtures/iptables/${name}`, import.meta.url))).toString();
const sh = (script: string, env: NodeJS.ProcessEnv = process.env) => spawnSync('/bin/sh', ['-c', script], { env, encoding: 'utf8' });

function changed(plan: Plan): Extract<Plan, { changed: true }> {
  expect(plan.changed).toBe(true);
  return plan as Extract<Plan, { changed: true }>;
}

describe('service commands', () => {
  it.each([
    ['systemd', 'restart', 'systemctl restart -- postfix'],
    ['systemd', 'status', 'systemctl is-active --quiet -- postfix'],
  ] as const)('%s %s', (init, action, script) => {
    expect(serviceScript(init, 'postfix', action)).toBe(script);
  });

  it('sysv: runs `service NAME ACTION` when there is a service command', () => {
    const bin = mkdtempSync(join(tmpdir(), 'provision-svc-'));
    writeFileSync(join(bin, 'service'), '#!/bin/sh\necho "service called with: $*"\nexit 3\n');
    chmodSync(join(bin, 'service'), 0o755);
    const r = sh(serviceScript('sysv', 'netfilter-persistent', 'restart'), { PATH: `${bin}:/usr/bin:/bin` });
    expect(r.stdout).toBe('service called with: netfilter-persistent restart\n');
    expect(r.status).toBe(3);
    const status = sh(statusScript('sysv', 'postfix'), { PATH: `${bin}:/usr/bin:/bin` });
    expect(status.stdout).toBe('');
    expect(status.status).toBe(3);
    rmSync(bin, { recursive: true });
  });

  it('sysv: says so when neither service nor an init script exists', () => {
    const r = sh(serviceScript('sysv', 'no-such-daemon', 'start'), { PATH: '/nonexistent' });
    expect(r.status).toBe(127);
    expect(r.stderr).toBe('no-such-daemon: no service command and no /etc/init.d/no-such-daemon\n');
  });

  it('quotes hostile names', () => {
    expect(serviceScript('systemd', "a'b", 'start')).toBe("systemctl start -- 'a'\\''b'");
  });
});

describe('service plan', () => {
  const status = (code: number) => ({ [statusScript('sysv', 'postfix')]: { code } });
  it.each([
    ['started', 0, { changed: false, msg: 'postfix is running' }],
    ['started', 3, { changed: true, msg: 'start postfix' }],
    ['stopped', 0, { changed: true, msg: 'stop postfix' }],
    ['stopped', 3, { changed: false, msg: 'postfix is stopped' }],
  ] as const)('%s when the status exits %i', async (state, code, expected) => {
    const ctx = fakeContext({ commands: status(code), check: true });
    const plan = await serviceModule.plan(ctx, { name: 'postfix', state });
    expect(plan).toMatchObject(expected);
    expect(ctx.calls).toEqual([{ op: 'run', arg: statusScript('sysv', 'postfix') }]);
  });

  it('restarted and reloaded are changes decided without touching the host', async () => {
    const ctx = fakeContext({ check: true, facts: { init: 'systemd' } });
    const plan = changed(await serviceModule.plan(ctx, { name: 'postfix', state: 'reloaded' }));
    expect(plan).toMatchObject({ msg: 'reload postfix', commands: [{ script: 'systemctl reload -- postfix', description: 'reload postfix' }] });
    expect(ctx.calls).toEqual([]);
  });

  it.each([
    [{ name: 'netfilter-persistent', state: 'restarted' }, 'restart netfilter-persistent (firewall: rolled back after 30 s unless a new SSH connection works)'],
    [{ name: 'iptables', state: 'reloaded', rollback_timeout: 60 }, 'reload iptables (firewall: rolled back after 60 s unless a new SSH connection works)'],
    [{ name: 'ferm', state: 'restarted', firewall: true }, 'restart ferm (firewall: rolled back after 30 s unless a new SSH connection works)'],
    [{ name: 'iptables', state: 'restarted', firewall: false }, 'restart iptables'],
  ] as const)('%j says what check mode would do', async (args, msg) => {
    expect(changed(await serviceModule.plan(fakeContext({ check: true }), args as ServiceArgs)).msg).toBe(msg);
  });

  it.each([
    [{ name: 'postfix; reboot', state: 'restarted' }, 'service name "postfix; reboot" contains characters a service name cannot have'],
    [{ name: 'iptables', state: 'restarted', rollback_timeout: 2 }, 'rollback_timeout must be between 5 and 600 seconds'],
  ] as const)('check(%j)', (args, message) => {
    expect(serviceModule.check!(args as ServiceArgs)).toBe(message);
  });
});

describe('service apply without a firewall', () => {
  it('runs the command', async () => {
    const ctx = fakeContext({ commands: { 'systemctl restart -- nginx': '' }, facts: { init: 'systemd' } });
    const plan = changed(await serviceModule.plan(ctx, { name: 'nginx', state: 'restarted' }));
    expect(await serviceModule.apply!(ctx, plan, { name: 'nginx', state: 'restarted' })).toEqual({ changed: true, msg: 'nginx restarted' });
    expect(ctx.calls).toEqual([{ op: 'run', arg: 'systemctl restart -- nginx' }]);
  });

  it('fails with what the command printed', async () => {
    const ctx = fakeContext({
      commands: { 'systemctl restart -- nginx': { code: 1, stderr: Buffer.from('Job for nginx.service failed.\n') } },
      facts: { init: 'systemd' },
    });
    const plan = changed(await serviceModule.plan(ctx, { name: 'nginx', state: 'restarted' }));
    const error = await serviceModule.apply!(ctx, plan, { name: 'nginx', state: 'restarted' }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(CommandError);
    expect(error).toMatchObject({ message: 'restart nginx exited 1: Job for nginx.service failed.', exitCode: 1, host: 'h1' });
  });

  it('postfix restarts are health-checked unless health_check is false', async () => {
    const ctx = fakeContext({ facts: { init: 'systemd' }, files: { '/etc/postfix/master.cf': 'smtp inet n - y - - smtpd\n' } });
    ctx.run = async (script: string) => {
      ctx.calls.push({ op: 'run', arg: script });
      return { stdout: Buffer.from('@@health ok\n'), stderr: Buffer.alloc(0), code: 0 };
    };
    const plan = changed(await serviceModule.plan(ctx, { name: 'postfix', state: 'restarted' }));
    const out = await serviceModule.apply!(ctx, plan, { name: 'postfix', state: 'restarted' });
    expect(out.msg).toBe('postfix restarted; running, 1 inet listener accepting connections');
    expect(ctx.calls.at(-1)!.arg).toContain('@@health');
    const plain = await serviceModule.apply!(ctx, plan, { name: 'postfix', state: 'restarted', health_check: false });
    expect(plain.msg).toBe('postfix restarted');
  });

  it('stopping a firewall is not guarded', async () => {
    const ctx = fakeContext({ commands: { [statusScript('sysv', 'iptables')]: { code: 0 }, [serviceScript('sysv', 'iptables', 'stop')]: '' } });
    const plan = changed(await serviceModule.plan(ctx, { name: 'iptables', state: 'stopped' }));
    await serviceModule.apply!(ctx, plan, { name: 'iptables', state: 'stopped' });
    expect(ctx.calls.map((c) => c.op)).toEqual(['run', 'run']);
  });
});

/**
 * A fake host for guarded restarts: answers the arm and settle scripts the way the real scripts print, and lets a
 * test decide what the restart does, whether probes work and what the live rules are.
 */
function firewallHost(opts: {
  facts?: typeof debianFacts;
  restart?: { rc: number; stdout?: string; stderr?: string } | 'hang' | 'no-snapshot' | 'unreported';
  probes?: ('ok' | 'fail')[];
  cancel?: 'cancelled' | 'fired';
  live?: { 4?: string; 6?: string };
  files?: { 4?: string | null; 6?: string | null };
}) {
  const ctx: FakeContext = fakeContext({ facts: opts.facts ?? debianFacts });
  const scripts: string[] = [];
  /** what each run asked to read after its script (see TaskContext.run) */
  const thenReads: (((r: ExecResult) => boolean) | undefined)[] = [];
  /** whether each run was marked as the task's last step (see TaskContext.run) */
  const lasts: boolean[] = [];
  const probes = [...(opts.probes ?? ['ok'])];
  const b64 = (s: string) => Buffer.from(s).toString('base64');
  const reply = (stdout: string, code = 0, stderr = ''): ExecResult => ({ stdout: Buffer.from(stdout), stderr: Buffer.from(stderr), code });
  ctx.run = async (script: string, runOpts?: { thenRead?: (r: ExecResult) => boolean; last?: boolean }) => {
    ctx.calls.push({ op: 'run', arg: script });
    scripts.push(script);
    thenReads.push(runOpts?.thenRead);
    lasts.push(runOpts?.last === true);
    const token = /firewall-([0-9a-f]+)/.exec(script)![1]!;
    const m = (line: string) => `@@${token} ${line}\n`;
    // The live rules and the files, as the script prints them when it asks for them.
    const verify = () => {
      let out = '';
      for (const fam of [4, 6] as const) {
        if (!script.includes(`live${fam}`)) continue;
        const file = opts.files?.[fam];
        out += m(`live${fam} ok ${b64(opts.live?.[fam] ?? file ?? '')}`);
        out += file === null || file === undefined ? m(`file${fam} missing`) : m(`file${fam} ok ${b64(file)}`);
      }
      return out;
    };
    if (script.includes('nohup sh -c')) {
      const r = opts.restart ?? { rc: 0 };
      if (r === 'hang') throw new UnreachableError('h1', 'command timed out after 90000 ms');
      if (r === 'no-snapshot') return reply('', 90, 'cannot save the live IPv4 ruleset\n');
      if (r === 'unreported') return reply(`${m('armed')}`, 0);
      return reply(`${m('armed')}${r.stdout ?? ''}\n${m(`done ${r.rc}`)}${r.rc === 0 ? verify() : ''}`, 0, r.stderr ?? '');
    }
    if (script.includes('pv_state=cancelled') && opts.cancel !== 'fired') return reply(m('cancelled') + verify());
    return reply(m('rolledback 0'));
  };
  ctx.probeNewConnection = async (timeoutMs: number) => {
    ctx.calls.push({ op: 'probeNewConnection', arg: String(timeoutMs) });
    if (probes.shift() === 'fail') throw new UnreachableError('h1', 'connect ETIMEDOUT 198.19.1.1:22');
  };
  return { ctx, scripts, thenReads, lasts };
}

async function guardedRestart(host: ReturnType<typeof firewallHost>, args: ServiceArgs = { name: 'netfilter-persistent', state: 'restarted' }) {
  const plan = changed(await serviceModule.plan(host.ctx, args));
  return serviceModule.apply!(host.ctx, plan, args);
}

describe('service apply for a firewall', () => {
  const v4 = fixture('debian12.iptables-save');
  const v6 = fixture('debian12.ip6tables-save');

  it('arms a rollback, restarts, checks the live rules, proves a new connection and cancels: two execs', async () => {
    const host = firewallHost({ files: { 4: v4, 6: v6 } });
    const outcome = await guardedRestart(host);
    expect(outcome).toEqual({
      changed: true,
      msg: 'netfilter-persistent restarted; a new SSH connection works; the live rules match /etc/iptables/rules.v4 and /etc/iptables/rules.v6',
      data: { rollback: 'cancelled' },
    });
    expect(host.ctx.calls.map((c) => c.op)).toEqual(['run', 'probeNewConnection', 'run']);
    const [arm, settle] = host.scripts;
    expect(arm).toContain('provision-rollback 30 "$pv_b"');
    expect(arm).toContain(serviceScript('sysv', 'netfilter-persistent', 'restart'));
    expect(arm).toMatch(/pv_b=\/var\/lib\/provision\/firewall-[0-9a-f]{16}\n/);
    expect(settle).toContain('if rm "$pv_b.armed" 2>/dev/null; then pv_kill; pv_state=cancelled; fi');
    // The live rules are read with the restart and compared before the cancel, which then decides the change: it
    // exits 0 only when it cancelled, and is the task's last step (the pending-handler record may ride on it).
    expect(arm).toContain('/etc/iptables/rules.v6');
    expect(arm).toContain('if [ "$pv_arc" -eq 0 ]; then');
    expect(settle).not.toContain('/etc/iptables/rules.v6');
    expect(settle.endsWith('\n[ "$pv_state" = cancelled ]')).toBe(true);
    expect(host.lasts).toEqual([false, true]);
    // The probe must finish before the rollback job would fire.
    expect(Number(host.ctx.calls[1]!.arg)).toBeLessThanOrEqual(20_000);
  });

  it('the cancel step brings back what the rest of the play reads, kept only when it cancelled the rollback', async () => {
    // Issue 18: on the SMTPS first run the Postfix restart after a guarded change read master.cf in a step of its
    // own; it comes with the cancel now, read after the change as before.
    const host = firewallHost({ files: { 4: v4, 6: v6 } });
    await guardedRestart(host);
    const [arm, cancel] = host.thenReads;
    expect(arm).toBeUndefined();
    expect(cancel).toBeTypeOf('function');
    const token = /firewall-([0-9a-f]+)/.exec(host.scripts[1]!)![1]!;
    const reply = (stdout: string): ExecResult => ({ stdout: Buffer.from(stdout), stderr: Buffer.alloc(0), code: 0 });
    expect(cancel!(reply(`@@${token} cancelled\n`))).toBe(true);
    // The rollback fired first: the host is read again after it settled, in a step of its own.
    expect(cancel!(reply(`@@${token} rolledback 0\n`))).toBe(false);
    expect(cancel!(reply('@@0123456789abcdef cancelled\n'))).toBe(false);
  });

  it('fails when the live rules do not match the file although the restart exited 0', async () => {
    const host = firewallHost({ files: { 4: v4, 6: v6 }, live: { 6: '' } });
    const error = await guardedRestart(host).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ModuleError);
    expect((error as Error).message).toBe(
      'netfilter-persistent restarted, but the live IPv6 ruleset does not match /etc/iptables/rules.v6: filter INPUT rule 1: the file has "-A INPUT -i lo -j ACCEPT" (line 6), the live ruleset has no such rule',
    );
    // The new rules still let us in, so the rollback is cancelled; but that cancel does not decide the task, so
    // nothing that waits for the change's success may ride on it.
    expect(host.ctx.calls.map((c) => c.op)).toEqual(['run', 'probeNewConnection', 'run']);
    expect(host.lasts).toEqual([false, false]);
    expect(host.scripts[1]!.endsWith('\n[ "$pv_state" = cancelled ]')).toBe(false);
  });

  it('reads and compares the live rules after the cancel when the restart did not report its end', async () => {
    const host = firewallHost({ restart: 'unreported', files: { 4: v4, 6: v6 }, live: { 6: '' } });
    const error = await guardedRestart(host).catch((e: unknown) => e);
    expect((error as Error).message).toMatch(/^netfilter-persistent restarted, but the live IPv6 ruleset does not match \/etc\/iptables\/rules.v6/);
    expect(host.scripts[1]).toContain('/etc/iptables/rules.v6');
    expect(host.lasts).toEqual([false, false]);
  });

  it('compares only the files the service loads', async () => {
    const host = firewallHost({ facts: rhelFacts, files: { 4: fixture('rhel6-sysconfig-iptables') }, live: { 4: fixture('rhel6-loaded.iptables-save') } });
    const outcome = await guardedRestart(host, { name: 'iptables', state: 'restarted' });
    expect(outcome.msg).toBe('iptables restarted; a new SSH connection works; the live rules match /etc/sysconfig/iptables');
    expect(host.scripts[0]).toContain('live4');
    expect(host.scripts[0]).not.toContain('live6');
  });

  it('restarts ip6tables with iptables under one guard when this run changed /etc/sysconfig/ip6tables, and checks both files', async () => {
    const v6rules = fixture('debian12.ip6tables-save');
    const host = firewallHost({ facts: rhelFacts, files: { 4: fixture('rhel6-sysconfig-iptables'), 6: v6rules }, live: { 4: fixture('rhel6-loaded.iptables-save') } });
    await host.ctx.writeFiles([{ path: '/etc/sysconfig/ip6tables', before: null, after: Buffer.from(v6rules), beforeSha: null }]);
    const outcome = await guardedRestart(host, { name: 'iptables', state: 'restarted' });
    expect(outcome.msg).toBe('iptables and ip6tables restarted; a new SSH connection works; the live rules match /etc/sysconfig/iptables and /etc/sysconfig/ip6tables');
    expect(host.scripts[0]).toContain(`{\n${serviceScript('sysv', 'iptables', 'restart')}\n} && {\n${serviceScript('sysv', 'ip6tables', 'restart')}\n}`);
    expect(host.scripts[0]).toContain('live6');
  });

  it('lets the rollback run when no new connection can be opened, and fails once the host is back', async () => {
    const host = firewallHost({ probes: ['fail', 'ok'], files: { 4: v4 } });
    const error = await guardedRestart(host).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ModuleError);
    expect(error).toMatchObject({ message: LOCKOUT_MESSAGE, data: { rollback: 'restored', reason: 'connect ETIMEDOUT 198.19.1.1:22' } });
    expect(LOCKOUT_MESSAGE).toBe('firewall change would lock out SSH; previous rules restored (whole tables as saved before the restart: rules other tools added since are gone)');
    expect(host.ctx.calls.map((c) => c.op)).toEqual(['run', 'probeNewConnection', 'run', 'probeNewConnection']);
    expect(host.scripts[1]).toContain('while [ -e "$pv_b.armed" ]');
  });

  it('reports the host unreachable when it does not come back after the rollback', async () => {
    const host = firewallHost({ probes: ['fail', 'fail'] });
    const error = await guardedRestart(host).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(UnreachableError);
    expect((error as Error).message).toBe(
      'firewall change locked out SSH after restart netfilter-persistent and the host is still unreachable after the rollback: connect ETIMEDOUT 198.19.1.1:22',
    );
  });

  it('treats a connection that hangs during the restart as a lockout', async () => {
    const host = firewallHost({ restart: 'hang' });
    const error = await guardedRestart(host).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ModuleError);
    expect(error).toMatchObject({ message: LOCKOUT_MESSAGE, data: { reason: 'restart netfilter-persistent did not return within 90 s' } });
    expect(host.ctx.calls.map((c) => c.op)).toEqual(['run', 'run', 'probeNewConnection']);
  });

  it('does not claim success when the rollback fired before the cancel', async () => {
    const host = firewallHost({ cancel: 'fired' });
    const error = await guardedRestart(host).catch((e: unknown) => e);
    expect(error).toMatchObject({ message: LOCKOUT_MESSAGE, data: { reason: 'the rollback timer (30 s) fired before a new connection was proven' } });
  });

  it('restores at once when the restart fails', async () => {
    const host = firewallHost({ restart: { rc: 1, stdout: 'Applying firewall rules: iptables-restore: line 9 failed', stderr: '' } });
    const error = await guardedRestart(host, { name: 'iptables', state: 'restarted' }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(CommandError);
    expect((error as Error).message).toBe('restart iptables exited 1: Applying firewall rules: iptables-restore: line 9 failed; previous rules restored (whole tables as saved before the restart: rules other tools added since are gone)');
    expect(host.scripts[1]).toContain('if mv -f "$pv_b.armed" "$pv_b.fired" 2>/dev/null; then pv_kill; pv_restore "$pv_b"; fi');
    expect(host.ctx.calls.map((c) => c.op)).toEqual(['run', 'run']);
  });

  it('does not restart when the live rules cannot be saved', async () => {
    const host = firewallHost({ restart: 'no-snapshot' });
    await expect(guardedRestart(host)).rejects.toThrow('save the live rules before restart netfilter-persistent exited 90: cannot save the live IPv4 ruleset');
    expect(host.ctx.calls.map((c) => c.op)).toEqual(['run']);
  });

  it('guards a started firewall that was stopped, but not one with firewall: false', async () => {
    const guardedHost = firewallHost({});
    guardedHost.ctx.run = ((run) => async (script: string) => (script === statusScript('sysv', 'iptables') ? { stdout: Buffer.alloc(0), stderr: Buffer.alloc(0), code: 3 } : run(script)))(guardedHost.ctx.run);
    const outcome = await guardedRestart(guardedHost, { name: 'iptables', state: 'started' });
    expect(outcome.msg).toBe('iptables started; a new SSH connection works');
    const plain = fakeContext({ commands: { [serviceScript('sysv', 'iptables', 'restart')]: '' } });
    const plan = changed(await serviceModule.plan(plain, { name: 'iptables', state: 'restarted', firewall: false }));
    await serviceModule.apply!(plain, plan, { name: 'iptables', state: 'restarted', firewall: false });
    expect(plain.calls.map((c) => c.op)).toEqual(['run']);
  });

  it.each([
    ['netfilter-persistent', 'Debian', ['/etc/iptables/rules.v4', '/etc/iptables/rules.v6']],
    ['iptables', 'RHEL', ['/etc/sysconfig/iptables']],
    ['ip6tables', 'RHEL', ['/etc/sysconfig/ip6tables']],
    ['iptables', 'Debian', []],
    ['ferm', 'Debian', []],
  ] as const)('%s on %s loads %j', (name, flavour, files) => {
    expect(rulesFilesOf(name, flavour === 'RHEL' ? rhelFacts : debianFacts).map((f) => f.path)).toEqual(files);
  });

  it('declares the master.cf a health-checked Postfix restart reads, so that it comes with an earlier read', () => {
    const reads = serviceModule.reads!;
    const facts = { ...debianFacts, postfix_config_dir: '/etc/postfix' };
    expect(reads({ name: 'postfix', state: 'restarted' }, facts)).toEqual({ files: ['/etc/postfix/master.cf'] });
    expect(reads({ name: 'postfix', state: 'reloaded' }, { ...facts, postfix_config_dir: '/usr/local/etc/postfix' })).toEqual({ files: ['/usr/local/etc/postfix/master.cf'] });
    // Nothing for what is not health-checked: a stop, health_check: false, another service, a guarded firewall.
    expect(reads({ name: 'postfix', state: 'stopped' }, facts)).toEqual({});
    expect(reads({ name: 'postfix', state: 'restarted', health_check: false }, facts)).toEqual({});
    expect(reads({ name: 'postfix', enabled: true }, facts)).toEqual({});
    expect(reads({ name: 'nginx', state: 'restarted' }, facts)).toEqual({});
    expect(reads({ name: 'iptables', state: 'restarted', health_check: true }, facts)).toEqual({});
  });

  it('has a schema that names and describes every argument', () => {
    const props = serviceModule.schema.properties as Record<string, { description?: string }>;
    expect(Object.keys(props).sort()).toEqual(['daemon_reload', 'enabled', 'firewall', 'health_check', 'name', 'rollback_timeout', 'state']);
    for (const [name, p] of Object.entries(props)) expect(p.description, name).toMatch(/\w/);
  });
});

// The rollback job for real: a throwaway network namespace stands in for the host, a DROP-everything ruleset for
// the firewall restart that locks SSH out.
const NS = `provision-svc-${process.pid}`;
/** Root with iptables and the right to make namespaces; the probe namespace goes at once, so nothing leaks. */
const canNetns =
  process.getuid?.() === 0 &&
  spawnSync('iptables-restore', ['--version']).status === 0 &&
  spawnSync('ip', ['netns', 'add', `${NS}-probe`]).status === 0 &&
  spawnSync('ip', ['netns', 'del', `${NS}-probe`]).status === 0;

function inNs(script: string, timeoutMs = 20_000): Promise<{ code: number | null; stdout: string; stderr: string; ms: number }> {
  const started = Date.now();
  return new Promise((resolve, reject) => {
    const child = spawn('ip', ['netns', 'exec', NS, 'sh', '-s'], { stdio: ['pipe', 'pipe', 'pipe'] });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`script in ${NS} did not finish within ${timeoutMs} ms`));
    }, timeoutMs);
    child.stdout.on('data', (b: Buffer) => out.push(b));
    child.stderr.on('data', (b: Buffer) => err.push(b));
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout: Buffer.concat(out).toString(), stderr: Buffer.concat(err).toString(), ms: Date.now() - started });
    });
    child.stdin.end(guard(script));
  });
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('the guard snapshot of the live rules', () => {
  it('iptables-save of a host without nat or raw loaded (CentOS 6 after `service iptables start`): the missing tables are added empty, the present ones left alone', () => {
    const complete = /^pv_complete\(\) \{\n[\s\S]*?\n\}$/m.exec(armScript({ token: 't', timeoutSec: 5, action: 'true' }))![0];
    const dir = mkdtempSync(join(tmpdir(), 'provision-guard-'));
    try {
      const file = join(dir, 'snap.v4');
      // A filter table whose chain and comment mention other tables' names: only `*name` lines count.
      const saved = ['# Generated by iptables-save v1.4.7', '*filter', ':INPUT ACCEPT [0:0]', ':mangle - [0:0]', '-A INPUT -m comment --comment "*nat" -j mangle', 'COMMIT', '*manglex', 'COMMIT', ''].join('\n');
      writeFileSync(file, saved);
      const r = sh(`${complete}\npv_complete '${file}' "filter raw mangle nat"`);
      expect(r.status).toBe(0);
      expect(readFileSync(file, 'utf8')).toBe(
        saved +
          ['*raw', ':PREROUTING ACCEPT [0:0]', ':OUTPUT ACCEPT [0:0]', 'COMMIT'].join('\n') +
          '\n' +
          ['*mangle', ':PREROUTING ACCEPT [0:0]', ':INPUT ACCEPT [0:0]', ':FORWARD ACCEPT [0:0]', ':OUTPUT ACCEPT [0:0]', ':POSTROUTING ACCEPT [0:0]', 'COMMIT'].join('\n') +
          '\n' +
          ['*nat', ':PREROUTING ACCEPT [0:0]', ':INPUT ACCEPT [0:0]', ':OUTPUT ACCEPT [0:0]', ':POSTROUTING ACCEPT [0:0]', 'COMMIT'].join('\n') +
          '\n',
      );
      // Run again on the completed file: nothing more is added.
      const before = readFileSync(file, 'utf8');
      expect(sh(`${complete}\npv_complete '${file}' "filter raw mangle nat"`).status).toBe(0);
      expect(readFileSync(file, 'utf8')).toBe(before);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe.skipIf(!canNetns)('rollback job in a network namespace', () => {
  const PREVIOUS = '*filter\n:INPUT ACCEPT [0:0]\n:FORWARD ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n-A INPUT -p tcp -m tcp --dport 22 -j ACCEPT\nCOMMIT\n';
  const DROP_ALL = '*filter\n:INPUT DROP [0:0]\n:FORWARD DROP [0:0]\n:OUTPUT DROP [0:0]\n-A INPUT -j DROP\nCOMMIT\n';
  let work = '';
  let dir = '';

  beforeAll(() => {
    expect(spawnSync('ip', ['netns', 'add', NS]).status).toBe(0);
    work = mkdtempSync(join(tmpdir(), 'provision-guard-'));
    dir = join(work, 'state');
    writeFileSync(join(work, 'previous.rules'), PREVIOUS);
    writeFileSync(join(work, 'drop-all.rules'), DROP_ALL);
  });

  afterAll(() => {
    spawnSync('ip', ['netns', 'del', NS]);
    if (work) rmSync(work, { recursive: true, force: true });
  });

  const live = async () => parse((await inNs('iptables-save')).stdout);
  const matches = async (rules: string) => ((v) => v.mismatch === null && v.unverifiable.length === 0)(verifyByModel(parse(rules), await live(), 4));
  /** No live process (zombies aside) is left in the job's process group: its shell and its sleep are both gone. */
  const groupGone = (pgid: number) =>
    readdirSync('/proc')
      .filter((d) => /^\d+$/.test(d))
      .every((d) => {
        const stat = existsSync(`/proc/${d}/stat`) ? readFileSync(`/proc/${d}/stat`, 'utf8') : '';
        const [state, , pgrp] = stat.slice(stat.lastIndexOf(') ') + 2).split(' ');
        return stat === '' || state === 'Z' || Number(pgrp) !== pgid;
      });

  async function arm(token: string, timeoutSec: number, action: string) {
    expect((await inNs(`iptables-restore < ${join(work, 'previous.rules')}`)).code).toBe(0);
    const r = await inNs(armScript({ token, dir, timeoutSec, action }));
    const m = parseMarkers(r.stdout, token);
    expect(m.has('armed')).toBe(true);
    // The exec ends at once: the detached job holds none of its streams.
    expect(r.ms).toBeLessThan(timeoutSec * 1000 - 500);
    return { m, pid: Number(readFileSync(join(dir, `firewall-${token}.pid`), 'utf8')) };
  }

  it('puts the previous rules back after the timeout when nobody cancels', async () => {
    const { m } = await arm('lockout', 3, `iptables-restore < ${join(work, 'drop-all.rules')}`);
    expect(m.get('done')).toBe('0');
    expect(await matches(DROP_ALL)).toBe(true);
    let back = false;
    for (let i = 0; i < 40 && !back; i++) {
      await sleep(250);
      back = await matches(PREVIOUS);
    }
    expect(back).toBe(true);
    const settled = await inNs(settleScript({ token: 'lockout', dir, mode: 'wait', waitSec: 5 }));
    expect(parseMarkers(settled.stdout, 'lockout').get('rolledback')).toBe('0');
    expect(readdirSync(dir)).toEqual([]);
  }, 30_000);

  it('keeps the new rules when cancelled in time, and the job is gone', async () => {
    const { pid } = await arm('cancel', 2, `iptables-restore < ${join(work, 'drop-all.rules')}`);
    const settled = await inNs(settleScript({ token: 'cancel', dir, mode: 'cancel', verify: [{ family: 4, path: join(work, 'drop-all.rules') }] }));
    const m = parseMarkers(settled.stdout, 'cancel');
    expect(m.has('cancelled')).toBe(true);
    expect(m.get('file4')).toBe(`ok ${Buffer.from(DROP_ALL).toString('base64')}`);
    expect(verifyByModel(parse(DROP_ALL), parse(Buffer.from(m.get('live4')!.slice(3), 'base64')), 4)).toEqual({ mismatch: null, unverifiable: [] });
    // The same exec loaded the file into a throwaway namespace and read it back for a like-with-like comparison.
    expect(parseNormalised(m.get('norm4'))?.status).toBe('ok');
    expect(verifyOutput(m, [{ family: 4, path: join(work, 'drop-all.rules') }])).toEqual({ mismatch: null, warnings: [] });
    await sleep(3_000);
    expect(await matches(DROP_ALL)).toBe(true);
    expect(groupGone(pid)).toBe(true);
    expect(readdirSync(dir)).toEqual([]);
  }, 30_000);

  it('reads the live rules right after a successful restart, and a decisive cancel exits 0 only when it cancelled', async () => {
    expect((await inNs(`iptables-restore < ${join(work, 'previous.rules')}`)).code).toBe(0);
    const rules = join(work, 'drop-all.rules');
    const r = await inNs(armScript({ token: 'early', dir, timeoutSec: 20, action: `iptables-restore < ${rules}`, verify: [{ family: 4, path: rules }] }));
    const m = parseMarkers(r.stdout, 'early');
    expect(m.get('done')).toBe('0');
    expect(m.get('file4')).toBe(`ok ${Buffer.from(DROP_ALL).toString('base64')}`);
    expect(parseNormalised(m.get('norm4'))?.status).toBe('ok');
    expect(verifyOutput(m, [{ family: 4, path: rules }])).toEqual({ mismatch: null, warnings: [] });
    // Only the snapshot and the job's files stay for the settle: the readings are gone.
    expect(readdirSync(dir).filter((f) => /\.(live|norm)$/.test(f))).toEqual([]);
    expect(existsSync(join(dir, 'firewall-early.armed'))).toBe(true);
    const settled = await inNs(settleScript({ token: 'early', dir, mode: 'cancel', exitCancelled: true }));
    expect(parseMarkers(settled.stdout, 'early').has('cancelled')).toBe(true);
    expect(settled.code).toBe(0);
    expect(readdirSync(dir)).toEqual([]);

    // A failed restart prints no reading; a cancel that comes after the job fired exits non-zero.
    const failed = await inNs(armScript({ token: 'late', dir, timeoutSec: 1, action: 'exit 3', verify: [{ family: 4, path: rules }] }));
    const lm = parseMarkers(failed.stdout, 'late');
    expect(lm.get('done')).toBe('3');
    expect(lm.has('live4')).toBe(false);
    let fired = false;
    for (let i = 0; i < 40 && !fired; i++) {
      await sleep(250);
      fired = existsSync(join(dir, 'firewall-late.done'));
    }
    expect(fired).toBe(true);
    const late = await inNs(settleScript({ token: 'late', dir, mode: 'cancel', exitCancelled: true }));
    expect(parseMarkers(late.stdout, 'late').get('rolledback')).toBe('0');
    expect(late.code).not.toBe(0);
    expect(readdirSync(dir)).toEqual([]);
  }, 30_000);

  it('restores at once when asked after a failed restart', async () => {
    const { m, pid } = await arm('failed', 20, `iptables-restore < ${join(work, 'drop-all.rules')}; echo 'boom' >&2; exit 4`);
    expect(groupGone(pid)).toBe(false);
    expect(m.get('done')).toBe('4');
    const settled = await inNs(settleScript({ token: 'failed', dir, mode: 'restore' }));
    expect(parseMarkers(settled.stdout, 'failed').get('rolledback')).toBe('0');
    expect(settled.ms).toBeLessThan(5_000);
    expect(await matches(PREVIOUS)).toBe(true);
    expect(groupGone(pid)).toBe(true);
    expect(readdirSync(dir)).toEqual([]);
  }, 30_000);

  it('leaves only its small result behind when it fires and nobody settles, and the next guard removes stale files', async () => {
    const { pid } = await arm('orphan', 2, 'true');
    let fired = false;
    for (let i = 0; i < 40 && !fired; i++) {
      await sleep(250);
      fired = existsSync(join(dir, 'firewall-orphan.done')) && groupGone(pid);
    }
    expect(fired).toBe(true);
    expect(readdirSync(dir)).toEqual(['firewall-orphan.done']);
    // An hour later another guard starts: what the orphan left goes.
    spawnSync('touch', ['-d', '2 hours ago', join(dir, 'firewall-orphan.done')]);
    const { m } = await arm('next', 20, 'true');
    expect(m.get('done')).toBe('0');
    expect(readdirSync(dir).filter((f) => f.startsWith('firewall-orphan'))).toEqual([]);
    expect(parseMarkers((await inNs(settleScript({ token: 'next', dir, mode: 'cancel' }))).stdout, 'next').has('cancelled')).toBe(true);
    expect(readdirSync(dir)).toEqual([]);
  }, 30_000);

  it('keeps its snapshot only in a private directory: a planted symbolic link is refused', async () => {
    const planted = join(work, 'planted');
    const target = join(work, 'target');
    mkdirSync(target);
    symlinkSync(target, planted);
    const r = await inNs(armScript({ token: 'planted', dir: planted, timeoutSec: 2, action: 'echo restarted' }));
    expect(r.code).toBe(90);
    expect(r.stdout).toBe('');
    expect(r.stderr).toContain('it is a symbolic link');
    expect(readdirSync(target)).toEqual([]);
  });

  it('refuses to run the action when the rules cannot be saved', async () => {
    const shim = join(work, 'shim');
    mkdirSync(shim);
    writeFileSync(join(shim, 'iptables-save'), '#!/bin/sh\necho "iptables-save: permission denied" >&2\nexit 1\n', { mode: 0o755 });
    const r = await inNs(`PATH=${shim}:$PATH\n${armScript({ token: 'nosave', dir, timeoutSec: 2, action: 'echo restarted' })}`);
    expect(r.code).toBe(90);
    expect(r.stdout).toBe('');
    expect(r.stderr).toBe('iptables-save: permission denied\ncannot save the live IPv4 ruleset\n');
    expect(readdirSync(dir)).toEqual([]);
  });
});

describe('service enabled: boot-time, for systemd and init scripts', () => {
  it('systemd: is-enabled to read, enable/disable to change', () => {
    expect(enabledScript('systemd', 'postfix')).toBe('systemctl is-enabled --quiet postfix');
    expect(bootScript('systemd', 'postfix', false)).toBe('systemctl disable postfix');
  });

  it('init scripts: an S link in runlevels 2-5 means enabled; update-rc.d (Debian) or chkconfig (RHEL 6) change it', () => {
    expect(enabledScript('sysv', 'postfix')).toContain("grep -Eq '^S[0-9]+postfix$'");
    const on = bootScript('sysv', 'postfix', true);
    expect(on).toContain('update-rc.d postfix defaults >/dev/null && update-rc.d postfix enable');
    expect(on).toContain('chkconfig --add postfix && chkconfig postfix on');
  });

  it('init scripts for real: enabling makes S links, disabling turns them into K links, as the read sees it', async () => {
    if (process.getuid?.() !== 0 || !existsSync('/usr/sbin/update-rc.d')) return;
    const root = mkdtempSync(join(tmpdir(), 'provision-rc-'));
    try {
      // update-rc.d works on /etc: run it in a private mount namespace over a scratch /etc/rc?.d and init.d.
      const sh = (script: string) =>
        spawnSync('unshare', ['-m', 'sh', '-c', `mount -t tmpfs none /etc/init.d && for d in 0 1 2 3 4 5 6 S; do mount -t tmpfs none /etc/rc$d.d; done\nprintf '#!/bin/sh\\n### BEGIN INIT INFO\\n# Provides: pvtest\\n# Required-Start:\\n# Required-Stop:\\n# Default-Start: 2 3 4 5\\n# Default-Stop: 0 1 6\\n### END INIT INFO\\n' > /etc/init.d/pvtest && chmod +x /etc/init.d/pvtest\n${script}`], { encoding: 'utf8' });
      const read = `if ${enabledScript('sysv', 'pvtest')}; then echo on; else echo off; fi`;
      const r = sh(`${read}\n${bootScript('sysv', 'pvtest', true)} >/dev/null 2>&1\n${read}\n${bootScript('sysv', 'pvtest', false)} >/dev/null 2>&1\n${read}\nls /etc/rc2.d`);
      expect(r.stdout.split('\n').slice(0, 4)).toEqual(['off', 'on', 'off', 'K01pvtest']);
    } finally {
      rmSync(root, { recursive: true, force: true });
    }
  });
});

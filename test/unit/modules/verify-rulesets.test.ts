/**
 * Issue 13: verifying the live rules against a rules file holds on real-world-shaped rulesets. Each fixture under
 * test/fixtures/iptables/real-world is loaded into a throwaway network namespace standing in for the host; the
 * normaliser the service module runs after a firewall restart then loads the file into a namespace of its own and
 * compares what comes back with the live rules. Without namespaces the model decides, and it never reports a
 * mismatch for a rule it does not understand.
 */
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { guard } from '../../../src/connection/connection.js';
import { type Family, modelUnderstands, parse, verifyByModel } from '../../../src/formats/iptables-save.js';
import { NORMALISE_FN, normaliseMarker, parseNormalised } from '../../../src/modules/netns-normalise.js';
import { type IptablesArgs, iptablesModule } from '../../../src/modules/iptables.js';
import { parseMarkers } from '../../../src/modules/firewall-guard.js';
import { verifyOutput } from '../../../src/modules/firewall-verify.js';
import { fakeContext } from '../../support/fake-context.js';

const DIR = fileURLToPath(new URL('../../fixtures/iptables/real-world/', import.meta.url));
const fixturePath = (name: string) => join(DIR, name);
const fixture = (name: string) => readFileSync(fixturePath(name)).toString();

interface Case {
  /** where the ruleset's shape comes from */
  shape: string;
  file: string;
  family: Family;
  /** a rule inserted by hand into the live ruleset, and how iptables-save names it */
  drift: { insert: string; named: string };
}

const CASES: Case[] = [
  {
    shape: 'university department gateway with comma address lists, iprange, multiport by name, -g goto, negations and DNAT --to',
    file: 'university-department.rules',
    family: 4,
    drift: { insert: '-I SSH_IN 2 -s 198.51.100.66 -j ACCEPT', named: '-A SSH_IN -s 198.51.100.66/32 -j ACCEPT' },
  },
  {
    shape: 'Tor relay style ruleset with hashlimit, recent, limit 2/s and iptables-save -c counters',
    file: 'tor-relay.rules',
    family: 4,
    drift: { insert: '-I TOR 1 -p tcp --dport 9001 -m limit --limit 3/s -j ACCEPT', named: '-A TOR -p tcp -m tcp --dport 9001 -m limit --limit 3/sec -j ACCEPT' },
  },
  {
    shape: 'home router with raw, mangle MARK --set-mark, mark matches, statistic 0.050000, owner, state beside conntrack and SNAT --to',
    file: 'home-router.rules',
    family: 4,
    drift: { insert: '-t mangle -A PREROUTING -i br-lan -j MARK --set-mark 7', named: '-A PREROUTING -i br-lan -j MARK --set-xmark 0x7/0xffffffff' },
  },
  {
    shape: 'call centre SIP server with string matches against scanners, an ipset blocklist, recent --rsource and quoted comments',
    file: 'call-centre-sip.rules',
    family: 4,
    drift: { insert: '-I SIP 1 -m string --string "sipsak" --algo bm -j DROP', named: '-A SIP -m string --string "sipsak" --algo bm -j DROP' },
  },
  {
    shape: 'web host rules file written as commands: -N, -I at positions, -P, owner by user name, connlimit',
    file: 'web-host-inserted.rules',
    family: 4,
    drift: { insert: '-A WEB -j LOG', named: '-A WEB -j LOG' },
  },
  {
    shape: 'Tor relay style ip6tables ruleset with ICMPv6 names, hashlimit per /64 and an address list',
    file: 'tor-relay.v6.rules',
    family: 6,
    drift: { insert: '-I INPUT 3 -s 2001:db8:2::/48 -j DROP', named: '-A INPUT -s 2001:db8:2::/48 -j DROP' },
  },
];

const T = 'verify';
/** Markers as the service module's settle step prints them, for a file against the live rules of the namespace. */
function verifyScript(c: Case, work: string, normalise = true): string {
  const save = c.family === 6 ? 'ip6tables-save' : 'iptables-save';
  const f = fixturePath(c.file);
  return [
    NORMALISE_FN,
    `printf '@@${T} live${c.family} ok '; ${save} | base64 -w0; echo`,
    `printf '@@${T} file${c.family} ok '; base64 -w0 < '${f}'; echo`,
    ...(normalise ? [normaliseMarker(T, `norm${c.family}`, c.family, `'${f}'`, `'${join(work, 'norm')}'`)] : []),
  ].join('\n');
}

describe('the model alone never reports a false mismatch (no network namespaces)', () => {
  it.each(CASES)('$shape: passes or says it cannot verify', (c) => {
    const text = fixture(c.file);
    // What iptables-save printed after loading the file (recorded in the namespace tests below) is not needed:
    // the file against itself already holds spellings the model does not know on one side only after a restore.
    const markers = new Map([
      [`file${c.family}`, `ok ${Buffer.from(text).toString('base64')}`],
      [`live${c.family}`, `ok ${Buffer.from(text).toString('base64')}`],
      [`norm${c.family}`, `unavailable ${Buffer.from('unshare: unshare failed: Operation not permitted').toString('base64')}`],
    ]);
    expect(verifyOutput(markers, [{ family: c.family, path: `/etc/${c.file}` }])).toEqual({ mismatch: null, warnings: [] });
  });

  it('says "cannot verify" for a limit rule the kernel respelled, and still names a real difference in a rule it models', () => {
    const file = '*filter\n:INPUT ACCEPT [0:0]\n-A INPUT -m limit --limit 2/s -j LOG\n-A INPUT -p tcp --dport 22 -j ACCEPT\nCOMMIT\n';
    const live = '*filter\n:INPUT ACCEPT [0:0]\n-A INPUT -m limit --limit 2/sec -j LOG\n-A INPUT -p tcp -m tcp --dport 22 -j ACCEPT\nCOMMIT\n';
    const verdict = verifyByModel(parse(file), parse(live), 4);
    expect(verdict).toEqual({ mismatch: null, unverifiable: ['filter INPUT ("-A INPUT -m limit --limit 2/s -j LOG" at line 3)'] });
    const drifted = '*filter\n:INPUT ACCEPT [0:0]\n-A INPUT -p tcp -m tcp --dport 23 -j ACCEPT\nCOMMIT\n';
    const modelled = '*filter\n:INPUT ACCEPT [0:0]\n-A INPUT -p tcp --dport 22 -j ACCEPT\nCOMMIT\n';
    expect(verifyByModel(parse(modelled), parse(drifted), 4).mismatch).toBe(
      'filter INPUT rule 1: the file has "-A INPUT -p tcp --dport 22 -j ACCEPT" (line 3), the live ruleset has "-A INPUT -p tcp -m tcp --dport 23 -j ACCEPT"',
    );
  });

  it('reports the warning through verifyOutput with the reason namespaces were not used', () => {
    const file = '*filter\n:INPUT ACCEPT [0:0]\n-A INPUT -d 192.0.2.1,192.0.2.2 -j DROP\nCOMMIT\n';
    const live = '*filter\n:INPUT ACCEPT [0:0]\n-A INPUT -d 192.0.2.1/32 -j DROP\n-A INPUT -d 192.0.2.2/32 -j DROP\nCOMMIT\n';
    const b64 = (s: string) => Buffer.from(s).toString('base64');
    const markers = new Map([
      ['file4', `ok ${b64(file)}`],
      ['live4', `ok ${b64(live)}`],
      ['norm4', `unavailable ${b64('unshare: unshare failed: Operation not permitted\n')}`],
    ]);
    expect(verifyOutput(markers, [{ family: 4, path: '/etc/sysconfig/iptables' }])).toEqual({
      mismatch: null,
      warnings: [
        'cannot verify filter INPUT ("-A INPUT -d 192.0.2.1,192.0.2.2 -j DROP" at line 3) of /etc/sysconfig/iptables against the live IPv4 ruleset: network namespaces are not available (unshare: unshare failed: Operation not permitted), and provision\'s own model of iptables does not know every option of that rule',
      ],
    });
  });

  it.each([
    ['-p tcp -m tcp --dport 22 -j ACCEPT', true],
    ['-m conntrack --ctstate NEW -m comment --comment "x y" -j REJECT --reject-with tcp-reset', true],
    ['-j MYCHAIN', true],
    ['-m limit --limit 2/s -j ACCEPT', false],
    ['-s 192.0.2.1,192.0.2.2 -j DROP', false],
    ['-j MARK --set-mark 1', false],
    ['-p tcp -m multiport --dports 1,2 --unknown-option -j ACCEPT', false],
    ['-j DNAT --to 192.0.2.1', false],
  ])('the model understands %s: %s', (rule, understood) => {
    expect(modelUnderstands(rule.match(/"[^"]*"|\S+/g)!.map((w) => w.replace(/^"|"$/g, '')), 4, new Set(['MYCHAIN']))).toBe(understood);
  });
});

// A throwaway network namespace stands in for the host; the normaliser makes its own inside it with unshare.
const NS = `provision-verify-${process.pid}`;
const canNetns =
  process.getuid?.() === 0 &&
  spawnSync('iptables-restore', ['--version']).status === 0 &&
  spawnSync('ipset', ['--version']).status === 0 &&
  spawnSync('ip', ['netns', 'add', `${NS}-probe`]).status === 0 &&
  spawnSync('ip', ['netns', 'del', `${NS}-probe`]).status === 0;

function inNs(script: string, timeoutMs = 20_000): Promise<{ code: number | null; stdout: string; stderr: string }> {
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
      resolve({ code, stdout: Buffer.concat(out).toString(), stderr: Buffer.concat(err).toString() });
    });
    child.stdin.end(guard(script));
  });
}

describe.skipIf(!canNetns)('verification by the kernel on real-world-shaped rulesets', () => {
  let work = '';
  beforeAll(() => {
    expect(spawnSync('ip', ['netns', 'add', NS]).status).toBe(0);
    work = mkdtempSync(join(tmpdir(), 'provision-verify-'));
  });
  afterAll(() => {
    spawnSync('ip', ['netns', 'del', NS]);
    if (work) rmSync(work, { recursive: true, force: true });
  });

  /** A fresh live ruleset of the case's family in the namespace, loaded from its file as the firewall service would. */
  async function load(c: Case): Promise<void> {
    const restore = c.family === 6 ? 'ip6tables-restore' : 'iptables-restore';
    const other = c.family === 6 ? 'iptables-restore' : 'ip6tables-restore';
    const empty = join(work, 'empty.rules');
    writeFileSync(empty, '*filter\n:INPUT ACCEPT [0:0]\n:FORWARD ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\nCOMMIT\n');
    const r = await inNs(
      [
        // Tables a previous case loaded would otherwise stay: start every case from an empty namespace state.
        'for t in filter nat mangle raw; do iptables -t $t -F; iptables -t $t -X; ip6tables -t $t -F 2>/dev/null; ip6tables -t $t -X 2>/dev/null; done',
        'ipset destroy 2>/dev/null; ipset create sip-blocklist hash:net',
        `${other} < '${empty}'`,
        `${restore} < '${fixturePath(c.file)}'`,
      ].join('\n'),
    );
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
  }

  async function verify(c: Case) {
    const r = await inNs(verifyScript(c, work));
    expect(r.code).toBe(0);
    const m = parseMarkers(r.stdout, T);
    return { result: verifyOutput(m, [{ family: c.family, path: `/etc/${c.file}` }]), norm: parseNormalised(m.get(`norm${c.family}`)) };
  }

  it.each(CASES)('$shape: the live rules match the file right after it was loaded', async (c) => {
    await load(c);
    const { result, norm } = await verify(c);
    expect(norm?.status).toBe('ok');
    expect(result).toEqual({ mismatch: null, warnings: [] });
  });

  it.each(CASES)('$shape: a rule inserted by hand is reported as drift, by name', async (c) => {
    await load(c);
    const cmd = c.family === 6 ? 'ip6tables' : 'iptables';
    const ins = await inNs(`${cmd} ${c.drift.insert}`);
    expect(ins.stderr).toBe('');
    const { result } = await verify(c);
    expect(result.mismatch).toContain(`"${c.drift.named}"`);
    expect(result.mismatch).toMatch(new RegExp(`^the live IPv${c.family} ruleset does not match /etc/${c.file.replace('.', '\\.')}: `));
  });

  it('without namespaces the same drift in a chain the model does not understand is a warning, never a mismatch', async () => {
    const c = CASES.find((x) => x.file === 'call-centre-sip.rules')!;
    await load(c);
    await inNs(`iptables ${c.drift.insert}`);
    const shim = join(work, 'shim');
    spawnSync('mkdir', ['-p', shim]);
    writeFileSync(join(shim, 'unshare'), '#!/bin/sh\necho "unshare: unshare failed: Operation not permitted" >&2\nexit 1\n', { mode: 0o755 });
    const r = await inNs(`PATH=${shim}:$PATH\n${verifyScript(c, work)}`);
    const m = parseMarkers(r.stdout, T);
    expect(parseNormalised(m.get('norm4'))).toEqual({ status: 'unavailable', reason: 'unshare: unshare failed: Operation not permitted' });
    const result = verifyOutput(m, [{ family: 4, path: '/etc/call-centre-sip.rules' }]);
    expect(result.mismatch).toBeNull();
    expect(result.warnings).toHaveLength(1);
    expect(result.warnings[0]).toMatch(/^cannot verify filter INPUT .*filter SIP .* network namespaces are not available/);
  });

  it('leaves no namespace, set or file behind', async () => {
    const c = CASES.find((x) => x.file === 'call-centre-sip.rules')!;
    await load(c);
    const before = spawnSync('ip', ['netns', 'list']).stdout.toString();
    await verify(c);
    expect(spawnSync('ip', ['netns', 'list']).stdout.toString()).toBe(before);
    expect(spawnSync('ls', [work]).stdout.toString().split('\n').filter(Boolean).sort()).toEqual(['empty.rules', ...(spawnSync('ls', [join(work, 'shim')]).status === 0 ? ['shim'] : [])]);
  });
});

describe.skipIf(!canNetns)('"already present" for a rule given as raw text, decided by the kernel', () => {
  let work = '';
  beforeAll(() => {
    expect(spawnSync('ip', ['netns', 'add', `${NS}-raw`]).status).toBe(0);
    work = mkdtempSync(join(tmpdir(), 'provision-raw-'));
  });
  afterAll(() => {
    spawnSync('ip', ['netns', 'del', `${NS}-raw`]);
    if (work) rmSync(work, { recursive: true, force: true });
  });

  /** A host whose rules file is `content` (at a path of this test) and whose read commands run for real in a namespace. */
  function host(content: string) {
    const path = join(work, 'rules');
    writeFileSync(path, content);
    // The host has loaded its file: the live ruleset is what iptables-save prints for it.
    const loaded = spawnSync('ip', ['netns', 'exec', `${NS}-raw`, 'sh', '-c', `ipset create sip-blocklist hash:net -exist && iptables-restore < '${path}' && iptables-save`]);
    expect(loaded.status).toBe(0);
    const ctx = fakeContext({ files: { [path]: { content, mode: 0o640 } } });
    ctx.readCommand = async (key: string, script: string) => {
      ctx.calls.push({ op: 'readCommand', arg: key });
      if (key === 'iptables-save:4') return { stdout: loaded.stdout, stderr: Buffer.alloc(0), code: 0 };
      const r = spawnSync('ip', ['netns', 'exec', `${NS}-raw`, 'sh', '-s'], { input: guard(script), timeout: 20_000 });
      return { stdout: r.stdout, stderr: r.stderr, code: r.status };
    };
    return { ctx, path };
  }

  it('Tor relay style ruleset: "--limit 2/sec … --log-level 4" is the file\'s "--limit 2/s … --log-level warning", so nothing changes', async () => {
    const { ctx, path } = host(fixture('tor-relay.rules'));
    const args: IptablesArgs = { chain: 'INPUT', rules_file: path, rule: '-m limit --limit 2/sec --limit-burst 10 -j LOG --log-prefix "tor-drop: " --log-level 4' };
    expect(iptablesModule.reads!(args, ctx.facts).commands!.map((c) => c.key.split(':')[0])).toEqual(['iptables-save', 'iptables-normalise']);
    const plan = await iptablesModule.plan(ctx, args);
    expect(plan).toMatchObject({ changed: false });
    expect(plan.msg).toMatch(/^INPUT has "-m limit --limit 2\/sec/);
    expect(ctx.warnings).toEqual([]);
  });

  it('call centre SIP ruleset: a string match written in another option order is present in the SIP chain', async () => {
    const { ctx, path } = host(fixture('call-centre-sip.rules'));
    const plan = await iptablesModule.plan(ctx, { chain: 'SIP', rules_file: path, rule: '-m string --to 1500 --algo kmp --string sipvicious -j DROP', position: 'top' });
    expect(plan.changed).toBe(false);
  });

  it('adds a missing raw rule in iptables-save\'s own spelling before the final DROP; the next plan finds it', async () => {
    const { ctx, path } = host(fixture('tor-relay.rules'));
    const args: IptablesArgs = { chain: 'INPUT', rules_file: path, rule: '-p udp -m limit --limit 3/s -j ACCEPT' };
    const plan = await iptablesModule.plan(ctx, args);
    expect(plan).toMatchObject({ changed: true, msg: 'add "-A INPUT -p udp -m limit --limit 3/sec -j ACCEPT" to INPUT before the final DROP' });
    const written = (plan as Extract<typeof plan, { changed: true }>).files[0]!.after.toString();
    expect(written).toContain('[0:0] -A INPUT -p udp -m limit --limit 3/sec -j ACCEPT\n[7:420] -A INPUT -j DROP\n');
    const again = await iptablesModule.plan(host(written).ctx, args);
    expect(again.changed).toBe(false);
  });

  it('without namespaces the model decides, and says it cannot tell', async () => {
    const { ctx, path } = host(fixture('tor-relay.rules'));
    const real = ctx.readCommand;
    ctx.readCommand = (key, script) => real(key, script.replace('if command -v unshare', 'if false'));
    const plan = await iptablesModule.plan(ctx, { chain: 'INPUT', rules_file: path, rule: '-m limit --limit 2/sec --limit-burst 10 -j LOG --log-prefix "tor-drop: " --log-level 4' });
    expect(plan.changed).toBe(true);
    expect(ctx.warnings).toEqual([
      `cannot tell whether ${path} has "-m limit --limit 2/sec --limit-burst 10 -j LOG --log-prefix "tor-drop: " --log-level 4" in another spelling: network namespaces are not available (unshare is not installed); provision's own model decided`,
    ]);
  });

  it('web host rules file written as commands: the -I line it adds lands right above the final REJECT once iptables-restore ran', async () => {
    const { ctx, path } = host(fixture('web-host-inserted.rules'));
    const plan = await iptablesModule.plan(ctx, { chain: 'INPUT', rules_file: path, protocol: 'tcp', dport: 465, jump: 'ACCEPT' });
    expect(plan.msg).toBe('add "-I INPUT 6 -p tcp -m tcp --dport 465 -j ACCEPT" to INPUT before the final REJECT (position 6 once the file\'s commands have run)');
    const written = (plan as Extract<typeof plan, { changed: true }>).files[0]!.after.toString();
    writeFileSync(path, written);
    const r = spawnSync('ip', ['netns', 'exec', `${NS}-raw`, 'sh', '-c', `iptables-restore < '${path}' && iptables -S INPUT`], { encoding: 'utf8' });
    const input = r.stdout.split('\n').filter((l) => l.startsWith('-A INPUT'));
    expect(input.slice(-2)).toEqual(['-A INPUT -p tcp -m tcp --dport 465 -j ACCEPT', '-A INPUT -j REJECT --reject-with icmp-host-prohibited']);
  });

  it('asks no namespace for a rule the model spells exactly', () => {
    const reads = iptablesModule.reads!({ chain: 'INPUT', rule: '-p tcp --dport 465 -m conntrack --ctstate NEW -j ACCEPT' }, fakeContext().facts);
    expect(reads.commands!.map((c) => c.key)).toEqual(['iptables-save:4']);
  });
});

/**
 * `npm run demo`: the flagship job on six throwaway lab hosts, one of each lab flavour (CentOS 6 with iptables, RHEL 9
 * with firewalld, Debian 11 and 12 with netfilter-persistent, Ubuntu 22.04 with ufw, Ubuntu 24.04 with nftables), start to finish.
 * Brings up a lab of its own, adds a mail user on each host, runs playbooks/smtps.yaml with the CLI exactly as an
 * operator would (plain output in a pipe, the live view on a terminal), runs it again to show there is nothing
 * left to do, proves SMTPS from this machine with swaks and openssl, and takes the lab down again — also when a
 * step fails or the operator presses Ctrl-C. Exits 0 only when everything passed.
 *
 * Needs root (network namespaces); the lab installs the packages it and the proof need (postfix, swaks, …).
 */
import { randomBytes } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { $, type ProcessPromise } from 'zx/core';
import type { CliIO } from '../src/cli/commands.js';
import { defaultIO, main } from '../src/cli/main.js';
import { type Flavour, labDown, labExec, labExists, LabExistsError, labOwnership, labUp, type LabHost, type LabState } from '../test/lab/lab.js';
import { isRoot } from '../test/lab/lab-system.js';
import { banner } from '../test/support/net.js';

const LAB = 'demo';
/** One host of each flavour, in this order. */
const FLAVOURS: Flavour[] = ['rhel', 'rhel9', 'debian11', 'debian', 'ubuntu2204', 'ubuntu2404'];
const HOSTS = FLAVOURS.length;

const SHAPES: Record<Flavour, string> = {
  rhel: 'CentOS 6 paths, iptables service',
  rhel9: 'RHEL 9 stock Postfix files, firewalld',
  debian11: 'Debian 11 stock Postfix files, iptables-persistent',
  debian: 'Debian 12, netfilter-persistent',
  ubuntu2204: 'Ubuntu 22.04 stock Postfix files, ufw',
  ubuntu2404: 'Ubuntu 24.04 stock Postfix files, nftables',
};

/** What the host's own firewall tool says about 465, run inside the host; one line when it is open. */
const IPTABLES_465 = "iptables -S INPUT | grep -- '--dport 465 '";
const FIREWALL_VIEW: Record<Flavour, string> = {
  rhel: IPTABLES_465,
  debian: IPTABLES_465,
  debian11: IPTABLES_465,
  rhel9: 'r=$(firewall-cmd --query-service=smtps) p=$(firewall-cmd --permanent --query-service=smtps); echo "firewall-cmd --query-service=smtps: $r (permanent: $p)"; [ "$r$p" = yesyes ]',
  ubuntu2204: "ufw status | grep '^465/tcp '",
  ubuntu2404: "nft list chain inet filter input | grep 'dport 465 '",
};
const PLAYBOOK = fileURLToPath(new URL('../playbooks/smtps.yaml', import.meta.url));
const MAIL_USER = 'alice@lab.test';
const MAIL_PASSWORD = randomBytes(12).toString('base64url');
/** Bound on each client the proof runs, so a silent server cannot hang the demo. */
const CLIENT_TIMEOUT_MS = 30_000;

const say = (line = '') => process.stdout.write(`${line}\n`);
const seconds = (ms: number) => `${(ms / 1000).toFixed(1)} s`;

class Interrupted extends Error {}

/** The lab is this demo's to take down (a lab of the same name made by hand or by another demo is not). */
let labMade = false;

/** Set by the first SIGINT/SIGTERM/SIGHUP: finish or abandon the current step, then tear down. */
let stopping: NodeJS.Signals | null = null;
let stoppingAt = 0;
const clients = new Set<ProcessPromise>();
/** The graceful stop of the provision run in progress, if one is running. */
const runStops = new Set<() => void>();

function onSignal(signal: NodeJS.Signals): void {
  if (stopping) {
    // A Ctrl-C arrives twice at once: from the terminal, and relayed by the tsx parent process.
    if (Date.now() - stoppingAt > 1000) say(`(${signal} again: still taking lab "${LAB}" down, please wait)`);
    return;
  }
  stopping = signal;
  stoppingAt = Date.now();
  say(`\n${signal}: stopping; lab "${LAB}" will be taken down`);
  for (const stop of runStops) stop();
  for (const c of clients) void c.kill('SIGTERM');
}

/**
 * The CLI's own terminal wiring, except that the demo owns the signals: the CLI quits the process on a second
 * Ctrl-C, which would leave the lab up, so here every Ctrl-C after the first only waits for the teardown.
 */
function cliIO(): CliIO {
  return {
    ...defaultIO(),
    onInterrupt: (stop) => {
      runStops.add(stop);
      return () => runStops.delete(stop);
    },
  };
}

function checkpoint(): void {
  if (stopping) throw new Interrupted(`interrupted by ${stopping}`);
}

/** Run a client program with a time bound; stdout and stderr together, as a person would read them. */
async function client(cmd: string, args: string[], feed?: (out: string, stdin: NodeJS.WritableStream) => void): Promise<{ code: number | null; out: string }> {
  const p = $({ nothrow: true, quiet: true, timeout: CLIENT_TIMEOUT_MS, timeoutSignal: 'SIGKILL' })`${cmd} ${args}`;
  clients.add(p);
  p.stdin.on('error', () => undefined);
  if (feed) {
    let out = '';
    const take = (b: Buffer) => {
      out += b.toString();
      feed(out, p.stdin);
    };
    p.stdout.on('data', take);
    p.stderr.on('data', take);
  } else p.stdin.end();
  const r = await p;
  clients.delete(p);
  return { code: r.exitCode, out: r.stdall };
}


/** A lab left by a demo that died is cleared; one in use or made by hand is not ours to touch. */
async function freeLabName(): Promise<void> {
  if (!labExists(LAB)) return;
  const owner = labOwnership(LAB);
  if (owner === 'live') throw new Error(`lab "${LAB}" belongs to a demo that is still running`);
  if (owner === 'none') throw new Error(`lab "${LAB}" was made by hand: take it down first with \`npm run lab -- down --name ${LAB}\``);
  say(`clearing lab "${LAB}" left behind by an earlier demo that did not finish`);
  await labDown(LAB);
}

async function provision(args: string[]): Promise<number> {
  say(`$ provision ${args.map((a) => (a === PLAYBOOK ? 'playbooks/smtps.yaml' : a)).join(' ')}`);
  const code = await main(['node', 'provision', ...args], cliIO());
  say(`(exit code ${code})`);
  return code;
}

/** swaks and openssl against HOST:465 (by address, the FQDN as SNI), and a look at port 25. Prints the key lines. */
async function prove(host: LabHost): Promise<boolean> {
  const swaks = await client('swaks', [
    '-s', `${host.ip}:465`, '--tls-on-connect', '--tls-sni', host.name,
    '--auth', 'PLAIN', '--auth-user', MAIL_USER, '--auth-password', MAIL_PASSWORD,
    '--quit-after', 'AUTH', '--timeout', '20',
  ]);
  // Keep stdin open until the greeting is in: closing it first ends the session before the server speaks.
  let quit = false;
  const openssl = await client('openssl', ['s_client', '-connect', `${host.ip}:465`, '-servername', host.name, '-brief'], (out, stdin) => {
    if (!quit && /^220 /m.test(out)) {
      quit = true;
      stdin.end('QUIT\r\n');
    }
  });
  const smtp = await banner(host.ip, 25);
  const fw = await labExec(host, FIREWALL_VIEW[host.flavour], { timeoutMs: CLIENT_TIMEOUT_MS });

  const swaksOk = swaks.code === 0 && /^<~ {2}235 /m.test(swaks.out);
  const opensslOk = openssl.out.includes(`Peer certificate: CN = ${host.name}\n`) && new RegExp(`^220 ${host.name.replace(/\./g, '\\.')} ESMTP`, 'm').test(openssl.out);
  const smtpOk = smtp.startsWith(`220 ${host.name} `);
  const fwOk = fw.code === 0;

  const pick = (out: string, wanted: RegExp, fallback: number) => {
    const lines = out.split('\n').filter((l) => wanted.test(l));
    return lines.length ? lines : out.trimEnd().split('\n').slice(-fallback);
  };
  const show = (label: string, ok: boolean, lines: string[]) =>
    lines.forEach((l, i) => say(`    ${(i === 0 ? label : '').padEnd(8)} ${i === 0 ? (ok ? 'ok  ' : 'FAIL') : '    '} ${l.trimEnd()}`));
  say(`  ${host.name} (${host.flavour}: ${SHAPES[host.flavour]}, ${host.ip})`);
  show('firewall', fwOk, (fw.stdout.trim() || fw.stderr.trim() || '465 is not open').split('\n').map((l) => l.trim()));
  show('swaks', swaksOk, pick(swaks.out, /^=== TLS (started|peer DN)|^<~ {2}(220|235) |^<\*\*|^\*\*\*/, 4));
  if (!swaksOk) say(`                  swaks exited ${swaks.code}`);
  show('openssl', opensslOk, pick(openssl.out, /^Protocol version|^Peer certificate|^220 /, 4));
  show('port 25', smtpOk, [smtp]);
  return swaksOk && opensslOk && smtpOk && fwOk;
}

async function demo(times: Record<string, number>): Promise<boolean> {
  let t = Date.now();
  const lap = (name: string) => {
    times[name] = Date.now() - t;
    t = Date.now();
  };

  say(`1. a lab of ${HOSTS} throwaway hosts, one per flavour (network namespaces with sshd, rsyslog, postfix and the flavour's firewall)`);
  await freeLabName();
  // From here the name is ours: labUp undoes a start that fails, and taking it down once more is harmless.
  labMade = true;
  let state: LabState;
  try {
    state = await labUp({ name: LAB, hosts: HOSTS, flavours: FLAVOURS, owner: true, log: (m) => say(`   lab: ${m}`) });
  } catch (e) {
    if (!(e instanceof LabExistsError)) throw e;
    labMade = false;
    throw new Error(`lab "${LAB}" was just made by someone else: ${e.message}`);
  }
  lap('lab up');
  for (const h of state.hosts) say(`   ${h.name.padEnd(12)} ${h.ip.padEnd(15)} ${h.flavour.padEnd(10)} (${SHAPES[h.flavour]})`);
  checkpoint();

  say();
  say(`2. a mail user ${MAIL_USER} on each host (saslpasswd2); 465 is closed for now`);
  for (const h of state.hosts) {
    const r = await labExec(h, `saslpasswd2 -c -p -u lab.test ${MAIL_USER.split('@')[0]}`, { stdin: `${MAIL_PASSWORD}\n`, timeoutMs: 30_000 });
    if (r.code !== 0) throw new Error(`${h.name}: saslpasswd2 exited ${r.code}: ${r.stderr.trim()}`);
    say(`   ${h.name.padEnd(12)} user added; ${h.ip}:465 → ${await banner(h.ip, 465)}`);
  }
  lap('setup');
  checkpoint();

  const target = ['-i', state.inventory, '--ssh-config', state.sshConfig];
  say();
  say('3. the playbook: check the certificate and key, edit main.cf and master.cf, open 465, restart in order, prove');
  const first = await provision(['run', PLAYBOOK, ...target, '--diff', '--no-retry-file']);
  lap('first run');
  checkpoint();

  say();
  say('4. the same playbook again: nothing left to change, no restart');
  const second = await provision(['run', PLAYBOOK, ...target, '--no-retry-file']);
  lap('second run');
  checkpoint();

  say();
  say('5. proof from this machine, as a mail client sees it');
  const proofs: boolean[] = [];
  for (const h of state.hosts) {
    proofs.push(await prove(h));
    checkpoint();
  }
  lap('proof');

  const ok = first === 0 && second === 0 && proofs.every(Boolean);
  if (!ok) {
    const why = [first !== 0 ? `first run exited ${first}` : '', second !== 0 ? `second run exited ${second}` : '', proofs.some((p) => !p) ? 'a proof failed' : ''];
    say(`\nFAILED: ${why.filter(Boolean).join('; ')}`);
  }
  return ok;
}

async function takeDown(times: Record<string, number>): Promise<boolean> {
  const started = Date.now();
  say();
  try {
    await labDown(LAB);
    times['lab down'] = Date.now() - started;
    say(`lab "${LAB}" is down (${seconds(times['lab down'])})`);
    return true;
  } catch (e) {
    say(`could not take lab "${LAB}" down: ${e instanceof Error ? e.message : String(e)}; run \`npm run lab -- down --name ${LAB}\``);
    return false;
  }
}

async function run(): Promise<number> {
  const started = Date.now();
  if (!isRoot()) {
    process.stderr.write('demo: needs root (the lab makes network namespaces): run it as root, e.g. sudo npm run demo\n');
    return 1;
  }
  for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) process.on(signal, onSignal);
  // A closed terminal or pipe must not end the demo before the lab is down.
  process.stdout.on('error', () => undefined);
  say(`provision demo: SMTPS (implicit TLS on 465) on ${HOSTS} lab hosts, lab "${LAB}"`);
  say();
  const times: Record<string, number> = {};
  let ok = false;
  let down = true;
  try {
    ok = await demo(times);
  } catch (e) {
    // Once interrupted, whatever failed next (a lab step killed by the same Ctrl-C) is part of stopping.
    const why = stopping && !(e instanceof Interrupted) ? `interrupted by ${stopping} (${e instanceof Error ? e.message : String(e)})` : e instanceof Error ? e.message : String(e);
    say(`\n${stopping ? 'stopped' : 'FAILED'}: ${why}`);
  } finally {
    if (labMade) down = await takeDown(times);
  }
  const code = !down ? 1 : stopping ? 130 : ok ? 0 : 1;
  const parts = Object.entries(times).map(([k, v]) => `${k} ${seconds(v)}`);
  say(`${code === 0 ? 'demo passed' : 'demo did not pass'} in ${seconds(Date.now() - started)} wall time${parts.length ? ` (${parts.join(', ')})` : ''}`);
  return code;
}

process.exitCode = await run();

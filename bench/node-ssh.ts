/**
 * `npx tsx bench/node-ssh.ts [--name NAME] [--rounds N] [--blocks B]`: whether node-ssh over ssh2 would cost
 * speed. Opens one connection to the first host of a lab that is up (`npm run lab -- up 1 --name NAME`) with
 * provision's own SshConnection (ssh2 directly) and one with node-ssh's NodeSSH (which wraps ssh2's Client),
 * then runs the same script the same way on both (`sh -s`, the script on stdin) N times in a row on each,
 * in B alternating blocks so that load from other work on the machine falls on both alike. Prints the
 * milliseconds per round trip (median, mean, p90) and the total for each.
 *
 * node-ssh is not a dependency of provision (this measurement is why): install it for the run with
 * `npm install --no-save node-ssh@13`.
 */
import { Command } from 'commander';
import { guard } from '../src/connection/connection.js';
import { createSecrets } from '../src/connection/secrets.js';
import { loadSshConfig } from '../src/connection/ssh-config.js';
import { resolveSshTarget } from '../src/connection/ssh-target.js';
import { createSshRunState, SshConnection } from '../src/connection/ssh.js';
import { readLabState } from '../test/lab/lab.js';

const program = new Command()
  .option('--name <name>', 'lab name', 'lab')
  .option('--rounds <n>', 'round trips per tool', (v) => Number(v), 200)
  .option('--blocks <n>', 'alternating blocks the round trips are cut into', (v) => Number(v), 4)
  .parse();
const { name, rounds, blocks } = program.opts<{ name: string; rounds: number; blocks: number }>();

const state = readLabState(name);
if (!state) throw new Error(`lab "${name}" is not up: npm run lab -- up 1 --name ${name}`);
const host = state.hosts[0]!;
const SCRIPT = 'printf "%s\\n" "$(hostname)"';

const ours = new SshConnection(
  resolveSshTarget(host.name, { ansible_host: host.ip, ansible_user: 'root', ansible_ssh_private_key_file: state.key }, {}, loadSshConfig(state.sshConfig)),
  createSshRunState(createSecrets({ interactive: false, askPass: false })),
);
/** The part of node-ssh's NodeSSH this measurement uses. */
interface NodeSsh {
  connect(config: { host: string; username: string; privateKeyPath: string }): Promise<unknown>;
  execCommand(command: string, options: { stdin: string }): Promise<{ code: number | null; stderr: string }>;
  dispose(): void;
}
const nodeSshModule = 'node-ssh';
const { NodeSSH } = (await import(nodeSshModule).catch(() => {
  throw new Error('node-ssh is not installed: npm install --no-save node-ssh@13');
})) as { NodeSSH: new () => NodeSsh };
const theirs = new NodeSSH();

const t0 = performance.now();
await ours.connect();
const oursConnect = performance.now() - t0;
const t1 = performance.now();
// The lab's known_hosts already vouches for the host (checked by ours above); node-ssh is given no verifier.
await theirs.connect({ host: host.ip, username: 'root', privateKeyPath: state.key });
const theirsConnect = performance.now() - t1;

async function timeOurs(n: number, into: number[]): Promise<void> {
  for (let i = 0; i < n; i++) {
    const s = performance.now();
    const r = await ours.exec(SCRIPT);
    into.push(performance.now() - s);
    if (r.code !== 0) throw new Error(`provision: exit ${r.code}: ${r.stderr.toString()}`);
  }
}

async function timeTheirs(n: number, into: number[]): Promise<void> {
  for (let i = 0; i < n; i++) {
    const s = performance.now();
    const r = await theirs.execCommand('sh -s', { stdin: guard(SCRIPT) });
    into.push(performance.now() - s);
    if (r.code !== 0) throw new Error(`node-ssh: exit ${r.code}: ${r.stderr}`);
  }
}

// One warm-up round trip each, not counted.
await timeOurs(1, []);
await timeTheirs(1, []);

const a: number[] = [];
const b: number[] = [];
const per = Math.ceil(rounds / blocks);
for (let k = 0; k < blocks; k++) {
  const n = Math.min(per, rounds - k * per);
  if (k % 2 === 0) {
    await timeOurs(n, a);
    await timeTheirs(n, b);
  } else {
    await timeTheirs(n, b);
    await timeOurs(n, a);
  }
}
await ours.close();
theirs.dispose();

function summary(label: string, ms: number[], connectMs: number): string {
  const sorted = [...ms].sort((x, y) => x - y);
  const at = (q: number) => sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]!;
  const total = ms.reduce((s, x) => s + x, 0);
  const f = (x: number) => x.toFixed(2).padStart(8);
  return `${label.padEnd(22)} ${f(connectMs)} ${f(at(0.5))} ${f(total / ms.length)} ${f(at(0.9))} ${f(total)}`;
}
console.log(`${rounds} sequential round trips on one connection to ${host.name} (${host.ip}), ${blocks} alternating blocks`);
console.log(`${'ms'.padEnd(22)} ${'connect'.padStart(8)} ${'median'.padStart(8)} ${'mean'.padStart(8)} ${'p90'.padStart(8)} ${'total'.padStart(8)}`);
console.log(summary('provision (ssh2)', a, oursConnect));
console.log(summary('node-ssh (over ssh2)', b, theirsConnect));

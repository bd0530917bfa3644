/**
 * `npm run lab -- up N | down | status | reset | exec HOST -- CMD`: the lab for humans. Errors are one line on
 * stderr and exit 1.
 */
import { Command, InvalidArgumentError } from 'commander';
import { DEFAULT_LAB, findHost, FLAVOURS, flavourOf, labDown, labExec, LabError, labReset, labStatus, labUp, readLabState, type Flavour, type LabMode, type LabState } from './lab.js';
import { requireRoot } from './lab-system.js';

function positiveInt(value: string): number {
  if (!/^\d+$/.test(value) || Number(value) < 1) throw new InvalidArgumentError('must be a positive integer');
  return Number(value);
}

function flavourList(value: string): Flavour[] {
  const list = value.split(',').map((s) => s.trim());
  return list.map((f) => {
    const flavour = flavourOf(f);
    if (!flavour) throw new InvalidArgumentError(`"${f}" is not a flavour (${FLAVOURS.join(', ')}; centos6 and debian12 name rhel and debian)`);
    return flavour;
  });
}

function modeOf(value: string): LabMode {
  if (value !== 'full' && value !== 'sshd') throw new InvalidArgumentError('must be full or sshd');
  return value;
}

const seconds = (ms: number) => `${(ms / 1000).toFixed(1)} s`;

function mustBeUp(name: string): LabState {
  const state = readLabState(name);
  if (!state) throw new LabError(`lab "${name}" is not up: run \`npm run lab -- up N${name === DEFAULT_LAB ? '' : ` --name ${name}`}\``);
  return state;
}

function describe(state: LabState): string {
  const count = (f: Flavour) => state.hosts.filter((h) => h.flavour === f).length;
  return [
    `lab "${state.name}": ${state.hosts.length} hosts (${FLAVOURS.filter(count).map((f) => `${count(f)} ${f}`).join(', ')}, ${state.mode}${state.costlyLogin ? ', costly login' : ''}) on ${state.bridge} ${state.subnet}, controller ${state.controllerIp}`,
    `  inventory   ${state.inventory}`,
    `  ssh_config  ${state.sshConfig}   (try: ssh -F ${state.sshConfig} ${state.hosts[0]?.short ?? 'h1'})`,
    `  known_hosts ${state.knownHosts}`,
    `  key         ${state.key}`,
    `  sudo user   ${state.sudoUser.name} / ${state.sudoUser.password}`,
  ].join('\n');
}

const program = new Command('lab')
  .description('throwaway sshd + postfix + iptables hosts in namespaces on this machine (needs root)')
  .configureOutput({ outputError: (text, write) => write(text) });

program
  .command('up')
  .description('create N hosts')
  .argument('<n>', 'number of hosts', positiveInt)
  .option('--name <name>', 'lab name', DEFAULT_LAB)
  .option('--subnet <cidr>', 'subnet inside 198.19.0.0/16 (default: a free /22)')
  .option('--bridge <name>', 'bridge name (default: pv-NAME)')
  .option('--flavours <list>', 'flavours cycled over the hosts', flavourList, ['rhel', 'debian'] as Flavour[])
  .option('--mode <mode>', 'full (sshd, syslog, postfix) or sshd only', modeOf, 'full' as LabMode)
  .option('--costly-login', "root's and the sudo user's ~/.bashrc spend about 150 ms of CPU on every SSH command (as pyenv's or conda's init)")
  .action(async (n: number, o: { name: string; subnet?: string; bridge?: string; flavours: Flavour[]; mode: LabMode; costlyLogin?: boolean }) => {
    requireRoot();
    const started = Date.now();
    const state = await labUp({
      name: o.name,
      hosts: n,
      flavours: o.flavours,
      mode: o.mode,
      costlyLogin: o.costlyLogin === true,
      ...(o.subnet ? { subnet: o.subnet } : {}),
      ...(o.bridge ? { bridge: o.bridge } : {}),
      log: (msg) => console.log(`lab: ${msg}`),
    });
    console.log(describe(state));
    console.log(`up ${n} in ${seconds(Date.now() - started)}`);
  });

program
  .command('down')
  .description('remove every namespace, link, mount, process and file of a lab')
  .option('--name <name>', 'lab name', DEFAULT_LAB)
  .action(async (o: { name: string }) => {
    requireRoot();
    const started = Date.now();
    const existed = labStatus(o.name) !== null;
    await labDown(o.name);
    console.log(existed ? `lab "${o.name}" is down (${seconds(Date.now() - started)})` : `lab "${o.name}" was not up`);
  });

program
  .command('status')
  .description('show a lab and whether each host runs')
  .option('--name <name>', 'lab name', DEFAULT_LAB)
  .action((o: { name: string }) => {
    const st = labStatus(o.name);
    if (!st) {
      console.log(`lab "${o.name}" is not up`);
      return;
    }
    console.log(describe(st.state));
    const notes = [st.phase === 'up' ? null : 'HALF MADE (run down)', st.upSeconds === null ? null : `up took ${st.upSeconds.toFixed(1)} s`, st.owner ? `owned by test run ${st.owner}` : null];
    console.log(`  state       ${notes.filter(Boolean).join(', ') || st.phase}`);
    for (const h of st.hosts) {
      console.log(`  ${h.host.name.padEnd(16)} ${h.host.ip.padEnd(15)} ${h.host.flavour.padEnd(10)} ${h.pid === null ? 'STOPPED' : `running (pid ${h.pid})`}`);
    }
    if (st.hosts.some((h) => h.pid === null)) process.exitCode = 3;
  });

program
  .command('reset')
  .description('put hosts back to their state right after up (all hosts unless some are named)')
  .argument('[hosts...]', 'hosts by short name, FQDN or address')
  .option('--name <name>', 'lab name', DEFAULT_LAB)
  .action(async (names: string[], o: { name: string }) => {
    requireRoot();
    const state = mustBeUp(o.name);
    const hosts = names.length > 0 ? names.map((n) => findHost(state, n)) : state.hosts;
    const started = Date.now();
    await labReset(state, hosts);
    console.log(`reset ${hosts.length} host${hosts.length === 1 ? '' : 's'} in ${seconds(Date.now() - started)}`);
  });

program
  .command('exec')
  .description('run a shell command as root inside a host (nsenter, not SSH): exec h1 -- iptables -S')
  .argument('<host>', 'short name, FQDN or address')
  .argument('<command...>', 'command, joined with spaces and run by sh -c')
  .option('--name <name>', 'lab name', DEFAULT_LAB)
  .action(async (which: string, command: string[], o: { name: string }) => {
    requireRoot();
    const host = findHost(mustBeUp(o.name), which);
    const r = await labExec(host, command.join(' '));
    process.stdout.write(r.stdout);
    process.stderr.write(r.stderr);
    process.exitCode = r.code ?? 1;
  });

program.parseAsync(process.argv).catch((e: unknown) => {
  console.error(`lab: ${e instanceof Error ? e.message : String(e)}`);
  process.exitCode = 1;
});

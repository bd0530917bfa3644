/**
 * The lab: throwaway hosts on this machine for integration tests and benchmarks.
 *
 * Each host is a network namespace (veth to a bridge, an address in 198.19.0.0/16) plus fresh mount, UTS and PID
 * namespaces whose init is test/lab/files/boot.sh. Overlayfs gives it its own /etc, /root, /home, /var/log,
 * /var/mail and postfix state over the machine's; tmpfs gives it /run, /tmp and /dev. It runs sshd and, in full
 * mode, rsyslog and postfix, with an iptables ruleset loaded by its flavour's own service.
 *
 * Layers, bottom to top: the machine's directory, a template per flavour (sudo user, lab key, release and firewall
 * files, postfix configuration), the host's own layer written at first boot (names, host key, certificate), and an
 * upper dir that holds everything the host changes. Reset gives the host a new network namespace, empties its
 * upper dirs and boots it again: about a second per host.
 *
 * Everything a lab creates is recorded in its state.json before it is created, so `down` can undo a crashed `up`,
 * and it only ever deletes what the record names (links also carry an alias naming the lab).
 */
import { spawn } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { chmodSync, chownSync, closeSync, existsSync, mkdirSync, openSync, readdirSync, readFileSync, renameSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { cpus } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { renderEtcHosts, renderInventory, renderKnownHosts, renderSshConfig } from './lab-files.js';
import { controllerAddress, controllerAddress6, defaultSubnets, formatSubnet, hostAddress, hostAddress6, hostCapacity, overlaps, parseLabSubnet, subnetsInUse, type Subnet } from './lab-net.js';
import {
  childResult,
  ensurePackages,
  ensureUfw,
  findHostInit,
  isNamespaceInit,
  killNetnsProcesses,
  LabError,
  LabExistsError,
  must,
  netInode,
  netnsInode,
  pool,
  processStart,
  requireRoot,
  run,
  sleep,
  SYSTEM_PATH,
  type RunResult,
} from './lab-system.js';

export { LabError, LabExistsError } from './lab-system.js';

/**
 * Host shapes. `rhel` is CentOS 6 (iptables-services) and `debian` is Debian 12 (netfilter-persistent), the lab's
 * first two; `centos6` and `debian12` name them too. The others carry their distribution's stock Postfix files and
 * firewall: RHEL 9 with firewalld, Debian 11 with iptables-persistent, Ubuntu 22.04 with ufw, Ubuntu 24.04 with
 * nftables. See README.md for what each reproduces.
 */
export type Flavour = 'rhel' | 'debian' | 'rhel9' | 'debian11' | 'ubuntu2204' | 'ubuntu2404';

export const FLAVOURS: readonly Flavour[] = ['rhel', 'debian', 'rhel9', 'debian11', 'ubuntu2204', 'ubuntu2404'];

const FLAVOUR_ALIASES: Readonly<Record<string, Flavour>> = { centos6: 'rhel', debian12: 'debian' };

/** A flavour by its name or alias (centos6 → rhel, debian12 → debian), or null. */
export function flavourOf(name: string): Flavour | null {
  return FLAVOUR_ALIASES[name] ?? ((FLAVOURS as readonly string[]).includes(name) ? (name as Flavour) : null);
}
export type LabMode = 'full' | 'sshd';

export interface LabHost {
  /** inventory hostname = FQDN, e.g. "h1.lab.test" */
  name: string;
  /** "h1" */
  short: string;
  /** in 198.19.0.0/16 */
  ip: string;
  /** in 2001:2::/48 (absent in labs made before hosts had IPv6) */
  ip6?: string;
  flavour: Flavour;
  /** network namespace name (`ip netns`) */
  netns: string;
  /** pid (in the root pid namespace) of the host's namespace init process, for nsenter */
  pid: number;
}

export interface LabState {
  /** lab name (default "lab"), lets two labs coexist */
  name: string;
  /** where its files live (state.json, keys, layers) */
  dir: string;
  bridge: string;
  /** e.g. "198.19.4.0/22" */
  subnet: string;
  /** the bridge's address in the root namespace */
  controllerIp: string;
  /** the bridge's IPv6 address, in 2001:2::/48 */
  controllerIp6?: string;
  mode: LabMode;
  hosts: LabHost[];
  /** Ansible INI inventory: groups rhel, debian, and mail (children rhel, debian) */
  inventory: string;
  /** OpenSSH client config with one Host block per host (short name and FQDN) */
  sshConfig: string;
  /** known_hosts with every host's key by FQDN, short name and IP */
  knownHosts: string;
  /** the lab's private key (ed25519, no passphrase); root and the sudo user accept it */
  key: string;
  /** a non-root user on every host, sudo with password required */
  sudoUser: { name: string; password: string };
  /** root's and the sudo user's ~/.bashrc spend about 150 ms of CPU on every SSH command (absent: no) */
  costlyLogin?: boolean;
}

export interface LabUpOptions {
  /** lab name, default "lab" */
  name?: string;
  /** how many hosts */
  hosts: number;
  /** cycled over the hosts; default ['rhel', 'debian'] */
  flavours?: Flavour[];
  /** CIDR inside 198.19.0.0/16; default: a free /22 chosen from the name */
  subnet?: string;
  /** bridge name; default "pv-NAME" */
  bridge?: string;
  /** full (sshd, syslog, postfix) or sshd only; default full */
  mode?: LabMode;
  /**
   * Hosts whose login costs CPU, as on servers where root's .bashrc initialises pyenv or conda: root's and the sudo
   * user's ~/.bashrc spend about 150 ms of CPU on every SSH command (test/lab/files/costly-login.bashrc). Default off.
   */
  costlyLogin?: boolean;
  /** record this process as the lab's owner: once it is gone, the lab counts as stale (test runs) */
  owner?: boolean;
  /** progress messages */
  log?: (msg: string) => void;
}

/** Where labs keep their files: outside every directory a host overlays, so layers never overlap. */
export const LAB_ROOT = '/var/tmp/provision-lab';

export const DEFAULT_LAB = 'lab';
export const LAB_DOMAIN = 'lab.test';
const SUDO_USER = 'deploy';
const FILES = fileURLToPath(new URL('./files/', import.meta.url));
const STOCK = fileURLToPath(new URL('../fixtures/postfix/stock/', import.meta.url));
/** Debian's ufw package unpacked (it cannot be installed beside netfilter-persistent); ubuntu2204 hosts see it. */
const UFW_ROOT = join(LAB_ROOT, 'ufw', 'root');
const BOOT_TIMEOUT_MS = 180_000;
const HOST_ENV = { PATH: SYSTEM_PATH, HOME: '/root', USER: 'root', LOGNAME: 'root', LANG: 'C.UTF-8', TERM: 'dumb' };

/** The directories a host sees through overlayfs (layer key, path); everything else of the machine is shared. */
const OVERLAY_TARGETS: [string, string][] = [
  ['etc', '/etc'],
  ['root', '/root'],
  ['home', '/home'],
  ['var-log', '/var/log'],
  ['var-mail', '/var/mail'],
  ['spool-postfix', '/var/spool/postfix'],
  ['lib-postfix', '/var/lib/postfix'],
];
const LAB_TARGETS = OVERLAY_TARGETS.map(([key, path]) => `${key}:${path}`).join(' ');

interface HostRecord {
  short: string;
  netns: string;
  /** the root namespace's end of the host's veth pair */
  veth: string;
}

/** What a lab made, written before each thing is made. */
interface LabRecord {
  phase: 'creating' | 'up';
  /** the process a test lab belongs to (pid and kernel start time), null for labs made from the CLI */
  owner: { pid: number; start: string } | null;
  bridgeCreated: boolean;
  /** /run/netns was not a mount point before this lab's first `ip netns add` */
  netnsMountCreated: boolean;
  hosts: HostRecord[];
  /** seconds `up` took */
  upSeconds: number | null;
}

interface LabFile {
  version: 1;
  state: LabState;
  record: LabRecord;
}

export function labDir(name: string): string {
  return join(LAB_ROOT, name);
}

function validateName(name: string): void {
  if (!/^[a-z][a-z0-9-]{0,19}$/.test(name)) {
    throw new LabError(`lab name "${name}" must be 1-20 lowercase letters, digits or dashes, starting with a letter`);
  }
}

const shortHash = (text: string, n: number) => createHash('sha256').update(text).digest('hex').slice(0, n);
const aliasOf = (name: string) => `provision-lab:${name}`;

/**
 * A host's eth0 keeps one MAC address for the life of the lab, so the controller's ARP entry stays right when a
 * reset gives the host a new network namespace.
 */
function macOf(lab: string, short: string): string {
  const index = Number(short.slice(1));
  const hex = `02${shortHash(lab, 6)}${index.toString(16).padStart(4, '0')}`;
  return hex.match(/../g)!.join(':');
}

/** `ip -batch` lines that create a host's network namespace and its veth on the bridge. */
function hostNetCommands(state: LabState, rec: HostRecord): string[] {
  return [
    `netns add ${rec.netns}`,
    `link add ${rec.veth} type veth peer name eth0 address ${macOf(state.name, rec.short)} netns ${rec.netns}`,
    `link set dev ${rec.veth} alias ${aliasOf(state.name)}`,
    `link set dev ${rec.veth} master ${state.bridge} up`,
  ];
}

function defaultBridge(name: string): string {
  const plain = `pv-${name}`;
  return plain.length <= 15 ? plain : `pv-${shortHash(name, 12)}`;
}

function readLabFile(name: string): LabFile | null {
  let text: string;
  try {
    text = readFileSync(join(labDir(name), 'state.json'), 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw e;
  }
  const file = JSON.parse(text) as LabFile;
  if (file.version !== 1) throw new LabError(`${join(labDir(name), 'state.json')}: unknown state version ${String(file.version)}`);
  return file;
}

function writeLabFile(file: LabFile): void {
  const path = join(file.state.dir, 'state.json');
  writeFileSync(`${path}.tmp`, `${JSON.stringify(file, null, 2)}\n`, { mode: 0o600 });
  renameSync(`${path}.tmp`, path);
}

/** The state of a lab that is up, or null. */
export function readLabState(name: string = DEFAULT_LAB): LabState | null {
  const file = readLabFile(name);
  return file && file.record.phase === 'up' ? file.state : null;
}

/**
 * Who a lab belongs to: `none` when it was made by hand (or there is no such lab), `live` when the test run that
 * made it still runs, `dead` when that run is gone without tearing it down.
 */
export function labOwnership(name: string): 'none' | 'live' | 'dead' {
  const owner = readLabFile(name)?.record.owner;
  if (!owner) return 'none';
  return processStart(owner.pid) === owner.start ? 'live' : 'dead';
}

/** Whether a lab's directory exists at all (up, half made by a crash, or being made right now). */
export function labExists(name: string): boolean {
  return existsSync(labDir(name));
}

async function pickSubnet(name: string, wanted: string | undefined): Promise<Subnet> {
  const routes = JSON.parse(await must('ip', ['-j', '-4', 'route', 'show', 'table', 'all'])) as { dst?: string }[];
  const addrs = JSON.parse(await must('ip', ['-j', '-4', 'addr', 'show'])) as Parameters<typeof subnetsInUse>[1];
  const used = subnetsInUse(routes, addrs);
  if (wanted) {
    const s = parseLabSubnet(wanted);
    const clash = used.find((u) => overlaps(u, s));
    if (clash) throw new LabError(`subnet ${wanted} overlaps ${formatSubnet(clash)}, already in use on this machine: pick another with --subnet`);
    return s;
  }
  const free = defaultSubnets(name).find((s) => !used.some((u) => overlaps(u, s)));
  if (!free) throw new LabError('no free /22 left in 198.19.0.0/16: pass --subnet');
  return free;
}

function isMountPoint(path: string): boolean {
  return readFileSync('/proc/self/mountinfo', 'utf8')
    .split('\n')
    .some((line) => line.split(' ')[4] === path);
}

interface LinkInfo {
  ifname: string;
  ifalias?: string;
  linkinfo?: { info_kind?: string };
}

async function listLinks(): Promise<LinkInfo[]> {
  return JSON.parse(await must('ip', ['-d', '-j', 'link', 'show'])) as LinkInfo[];
}

function tail(path: string, lines: number): string {
  try {
    return readFileSync(path, 'utf8').trim().split('\n').slice(-lines).join(' | ');
  } catch {
    return '';
  }
}

/**
 * Fresh layer directories for every overlay target, each with its target's owner and mode (the topmost layer's
 * root gives the merged directory its attributes: postfix refuses a spool it does not own), and empty work dirs.
 */
function makeLayerDirs(layer: string, work: string): void {
  rmSync(layer, { recursive: true, force: true });
  rmSync(work, { recursive: true, force: true });
  for (const [key, target] of OVERLAY_TARGETS) {
    const st = statSync(target);
    const dir = join(layer, key);
    mkdirSync(dir, { recursive: true });
    chownSync(dir, st.uid, st.gid);
    chmodSync(dir, st.mode & 0o7777);
    mkdirSync(join(work, key), { recursive: true });
  }
}

/** What every host's private /dev starts with; boot.sh copies it onto a tmpfs. */
async function makeDevSkeleton(dir: string): Promise<void> {
  mkdirSync(dir, { mode: 0o755 });
  const nodes: [string, number, number][] = [
    ['null', 1, 3],
    ['zero', 1, 5],
    ['full', 1, 7],
    ['random', 1, 8],
    ['urandom', 1, 9],
    ['tty', 5, 0],
  ];
  for (const [node, major, minor] of nodes) await must('mknod', ['-m', '0666', join(dir, node), 'c', String(major), String(minor)]);
  mkdirSync(join(dir, 'pts'), { mode: 0o755 });
  mkdirSync(join(dir, 'shm'));
  chmodSync(join(dir, 'shm'), 0o1777);
  symlinkSync('pts/ptmx', join(dir, 'ptmx'));
  symlinkSync('/proc/self/fd', join(dir, 'fd'));
  ['stdin', 'stdout', 'stderr'].forEach((name, fd) => symlinkSync(`/proc/self/fd/${fd}`, join(dir, name)));
}

function concurrency(mode: LabMode): number {
  return mode === 'sshd' ? 16 : Math.max(2, cpus().length * 2);
}

/**
 * Start a host's init (boot.sh) in its network namespace with fresh mount, UTS and PID namespaces, wait until it
 * reports its services ready, and return the init's pid. The init is detached: it outlives this process.
 */
async function bootHost(state: LabState, host: LabHost): Promise<number> {
  const hostDir = join(state.dir, 'hosts', host.short);
  mkdirSync(hostDir, { recursive: true });
  const ready = join(hostDir, 'ready');
  const failed = join(hostDir, 'failed');
  const logPath = join(hostDir, 'boot.log');
  rmSync(ready, { force: true });
  rmSync(failed, { force: true });
  if (!existsSync(join(hostDir, 'layer.done'))) makeLayerDirs(join(hostDir, 'layer'), join(hostDir, 'work-layer'));
  makeLayerDirs(join(hostDir, 'upper'), join(hostDir, 'work'));
  const prefix = state.subnet.split('/')[1]!;
  const env = {
    ...HOST_ENV,
    FILES,
    LAB_TARGETS,
    HOST_DIR: hostDir,
    TEMPLATE: join(state.dir, 'templates', host.flavour, 'layer'),
    DEV_SKEL: join(state.dir, 'dev'),
    FLAVOUR: host.flavour,
    MODE: state.mode,
    FQDN: host.name,
    SHORT: host.short,
    IP: host.ip,
    PREFIX: prefix,
    IP6: host.ip6 ?? '',
    ETC_HOSTS: join(state.dir, 'etc-hosts'),
    UFW_ROOT,
  };
  const log = openSync(logPath, 'w');
  let exited: string | null = null;
  const child = (() => {
    try {
      return spawn(
        'nsenter',
        [`--net=/run/netns/${host.netns}`, '--', 'unshare', '--mount', '--uts', '--pid', '--fork', '--kill-child', '--mount-proc', '--propagation', 'private', '--', '/bin/bash', join(FILES, 'boot.sh')],
        { detached: true, stdio: ['ignore', log, log], env },
      );
    } finally {
      closeSync(log);
    }
  })();
  child.on('exit', (code, signal) => {
    exited = signal ? `was killed by ${signal}` : `exited ${code}`;
  });
  child.on('error', (e) => {
    exited = `could not start: ${e.message}`;
  });
  child.unref();
  const deadline = Date.now() + BOOT_TIMEOUT_MS;
  while (!existsSync(ready)) {
    const why = existsSync(failed) ? readFileSync(failed, 'utf8').trim() : exited ? `its init ${exited}` : Date.now() > deadline ? `not ready after ${BOOT_TIMEOUT_MS / 1000} s` : null;
    if (why) {
      const context = tail(logPath, 3);
      throw new LabError(`${host.name} did not boot: ${why}${context ? ` (${logPath}: ${context})` : ''}`);
    }
    await sleep(40);
  }
  const pid = child.pid!;
  const init = Number(readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').trim().split(/\s+/)[0]);
  if (!Number.isInteger(init) || init <= 0) throw new LabError(`${host.name} booted but its init process cannot be found under unshare ${pid}`);
  return init;
}

async function buildTemplate(state: LabState, flavour: Flavour): Promise<void> {
  const base = join(state.dir, 'templates', flavour);
  makeLayerDirs(join(base, 'layer'), join(base, 'work'));
  const env = {
    ...HOST_ENV,
    FILES,
    LAB_TARGETS,
    TEMPLATE: join(base, 'layer'),
    WORK: join(base, 'work'),
    FLAVOUR: flavour,
    MODE: state.mode,
    SUDO_NAME: state.sudoUser.name,
    SUDO_PASSWORD: state.sudoUser.password,
    LAB_PUBKEY: readFileSync(`${state.key}.pub`, 'utf8').trim(),
    STOCK,
    UFW_ROOT,
    COSTLY_LOGIN: state.costlyLogin ? '1' : '0',
  };
  await must('unshare', ['--mount', '--net', '--propagation', 'private', '--', '/bin/bash', join(FILES, 'template.sh')], { env, timeoutMs: 120_000 });
}

/** Bring a lab up: N hosts, flavours cycled, all services running, client files written. */
export async function labUp(opts: LabUpOptions): Promise<LabState> {
  const started = Date.now();
  const log = opts.log ?? (() => undefined);
  requireRoot();
  const name = opts.name ?? DEFAULT_LAB;
  validateName(name);
  const flavours = (opts.flavours ?? ['rhel', 'debian']).map((f) => flavourOf(f) ?? f) as Flavour[];
  if (flavours.length === 0 || flavours.some((f) => !FLAVOURS.includes(f))) {
    throw new LabError(`flavours must be among ${FLAVOURS.join(', ')} (or centos6, debian12), got "${flavours.join(',')}"`);
  }
  const mode = opts.mode ?? 'full';
  if (mode !== 'full' && mode !== 'sshd') throw new LabError(`mode must be full or sshd, got "${String(mode)}"`);
  if (!Number.isInteger(opts.hosts) || opts.hosts < 1) throw new LabError(`the number of hosts must be a positive integer, got ${opts.hosts}`);
  const bridge = opts.bridge ?? defaultBridge(name);
  if (!/^[A-Za-z0-9_-]{1,15}$/.test(bridge)) throw new LabError(`bridge name "${bridge}" must be 1-15 letters, digits, _ or -`);

  await ensurePackages(log);
  if (flavours.includes('ubuntu2204')) await ensureUfw(UFW_ROOT, log);
  // Each host mounts its own empty tmpfs here (provision's state: pending handlers, firewall rollback snapshots),
  // so nothing of the machine's or another host's shows through; the mount point must exist.
  mkdirSync('/var/lib/provision', { recursive: true, mode: 0o700 });

  const dir = labDir(name);
  mkdirSync(LAB_ROOT, { recursive: true, mode: 0o755 });
  try {
    mkdirSync(dir, { mode: 0o700 });
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
    throw new LabExistsError(`lab "${name}" already exists (${dir}): run \`npm run lab -- down --name ${name}\` first`);
  }

  let file: LabFile | null = null;
  try {
    const subnet = await pickSubnet(name, opts.subnet);
    if (opts.hosts > hostCapacity(subnet)) throw new LabError(`${opts.hosts} hosts do not fit in ${formatSubnet(subnet)} (at most ${hostCapacity(subnet)})`);
    const vethPrefix = `pv${shortHash(name, 5)}h`;
    const hosts: LabHost[] = Array.from({ length: opts.hosts }, (_, i) => ({
      name: `h${i + 1}.${LAB_DOMAIN}`,
      short: `h${i + 1}`,
      ip: hostAddress(subnet, i + 1),
      ip6: hostAddress6(subnet, i + 1),
      flavour: flavours[i % flavours.length]!,
      netns: `pvlab-${name}-h${i + 1}`,
      pid: 0,
    }));
    const links = await listLinks();
    const taken = new Set(links.map((l) => l.ifname));
    if (taken.has(bridge)) throw new LabError(`a link named ${bridge} already exists: pick another bridge with --bridge`);
    const clash = hosts.find((h) => existsSync(`/run/netns/${h.netns}`) || taken.has(`${vethPrefix}${h.short.slice(1)}`));
    if (clash) throw new LabError(`network namespace ${clash.netns} or its link already exists: is another lab named "${name}" half made?`);

    const state: LabState = {
      name,
      dir,
      bridge,
      subnet: formatSubnet(subnet),
      controllerIp: controllerAddress(subnet),
      controllerIp6: controllerAddress6(subnet),
      mode,
      hosts,
      inventory: join(dir, 'inventory.ini'),
      sshConfig: join(dir, 'ssh_config'),
      knownHosts: join(dir, 'known_hosts'),
      key: join(dir, 'id_ed25519'),
      sudoUser: { name: SUDO_USER, password: randomBytes(12).toString('base64url') },
      ...(opts.costlyLogin ? { costlyLogin: true } : {}),
    };
    file = {
      version: 1,
      state,
      record: {
        phase: 'creating',
        owner: opts.owner ? { pid: process.pid, start: processStart(process.pid)! } : null,
        bridgeCreated: false,
        netnsMountCreated: false,
        hosts: hosts.map((h) => ({ short: h.short, netns: h.netns, veth: `${vethPrefix}${h.short.slice(1)}` })),
        upSeconds: null,
      },
    };
    writeLabFile(file);

    log(`bridge ${bridge} ${state.controllerIp}/${subnet.prefix}`);
    file.record.bridgeCreated = true;
    writeLabFile(file);
    await must('ip', ['-batch', '-'], {
      input: [`link add name ${bridge} type bridge`, `link set dev ${bridge} alias ${aliasOf(name)}`, `addr add ${state.controllerIp}/${subnet.prefix} dev ${bridge}`, `addr add ${state.controllerIp6!}/64 dev ${bridge} nodad`, `link set dev ${bridge} up`, ''].join('\n'),
    });

    file.record.netnsMountCreated = !isMountPoint('/run/netns');
    writeLabFile(file);
    await must('ip', ['-batch', '-'], { input: `${file.record.hosts.flatMap((h) => hostNetCommands(state, h)).join('\n')}\n` });

    await must('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', `provision-lab-${name}`, '-f', state.key]);
    writeFileSync(join(dir, 'etc-hosts'), renderEtcHosts(hosts));
    await makeDevSkeleton(join(dir, 'dev'));
    const used = [...new Set(hosts.map((h) => h.flavour))];
    log(`templates ${used.join(', ')} (${mode}${state.costlyLogin ? ', costly login' : ''})`);
    await Promise.all(used.map((f) => buildTemplate(state, f)));

    log(`booting ${hosts.length} hosts`);
    await pool(hosts, concurrency(mode), async (h) => {
      h.pid = await bootHost(state, h);
    });

    const keys = new Map(hosts.map((h) => [h.short, readFileSync(join(dir, 'hosts', h.short, 'layer', 'etc', 'ssh', 'ssh_host_ed25519_key.pub'), 'utf8')]));
    writeFileSync(state.knownHosts, renderKnownHosts(hosts, keys));
    writeFileSync(state.sshConfig, renderSshConfig(state));
    writeFileSync(state.inventory, renderInventory(state));
    file.record.phase = 'up';
    file.record.upSeconds = (Date.now() - started) / 1000;
    writeLabFile(file);
    return state;
  } catch (e) {
    if (file) await teardown(file).catch(() => undefined);
    else rmSync(dir, { recursive: true, force: true });
    throw e;
  }
}

async function removeLinks(names: string[], kind: 'veth' | 'bridge', lab: string): Promise<void> {
  if (names.length === 0) return;
  const wanted = new Set(names);
  const ours = (await listLinks()).filter((l) => wanted.has(l.ifname) && (l.ifalias === aliasOf(lab) || (!l.ifalias && l.linkinfo?.info_kind === kind)));
  if (ours.length === 0) return;
  // -force: a veth may vanish on its own while its namespace is being cleaned up.
  await run('ip', ['-force', '-batch', '-'], { input: `${ours.map((l) => `link delete dev ${l.ifname}`).join('\n')}\n` });
}

/** Undo everything the record names: processes (found through their network namespace), namespaces, links. */
async function teardown(file: LabFile): Promise<void> {
  const { state, record } = file;
  const inodes = record.hosts.map((h) => netnsInode(h.netns)).filter((i): i is number => i !== null);
  await killNetnsProcesses(inodes);
  const present = record.hosts.filter((h) => existsSync(`/run/netns/${h.netns}`));
  if (present.length > 0) {
    await run('ip', ['-force', '-batch', '-'], { input: `${present.map((h) => `netns delete ${h.netns}`).join('\n')}\n` });
  }
  const left = record.hosts.filter((h) => existsSync(`/run/netns/${h.netns}`));
  if (left.length > 0) throw new LabError(`could not delete network namespaces ${left.map((h) => h.netns).join(', ')}`);
  await removeLinks(
    record.hosts.map((h) => h.veth),
    'veth',
    state.name,
  );
  if (record.bridgeCreated) await removeLinks([state.bridge], 'bridge', state.name);
  if (record.netnsMountCreated && existsSync('/run/netns') && readdirSync('/run/netns').length === 0 && isMountPoint('/run/netns')) {
    await run('umount', ['/run/netns']);
  }
  rmSync(state.dir, { recursive: true, force: true });
}

/** Tear a lab down: its processes, namespaces, links and files. A lab that does not exist is not an error. */
export async function labDown(name: string = DEFAULT_LAB): Promise<void> {
  requireRoot();
  validateName(name);
  const file = readLabFile(name);
  if (file) await teardown(file);
  else rmSync(labDir(name), { recursive: true, force: true });
}

/** The pid of the host's init now: the recorded one when it still is, else found through the namespace. */
function currentInit(host: LabHost): number {
  const ino = netnsInode(host.netns);
  if (ino === null) throw new LabError(`${host.name}: network namespace ${host.netns} does not exist (is the lab up?)`);
  if (host.pid > 0 && netInode(host.pid) === ino && isNamespaceInit(host.pid)) return host.pid;
  const found = findHostInit(ino);
  if (found === null) throw new LabError(`${host.name} is not running`);
  host.pid = found;
  return found;
}

/** Run `sh -c script` as root inside the host's namespaces (nsenter, not SSH). */
export async function labExec(host: LabHost, script: string, opts: { stdin?: Buffer | string; timeoutMs?: number } = {}): Promise<RunResult> {
  const pid = currentInit(host);
  const child = spawn('nsenter', ['-t', String(pid), '-m', '-u', '-n', '-p', '-r', '-w', '--', '/bin/sh', '-c', script], {
    detached: true,
    env: HOST_ENV,
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  const r = await childResult(child, {
    input: opts.stdin,
    timeoutMs: opts.timeoutMs,
    // The script runs in nsenter's process group: take all of it down.
    kill: () => {
      try {
        process.kill(-child.pid!, 'SIGKILL');
      } catch {
        child.kill('SIGKILL');
      }
    },
    cannotRun: `cannot run nsenter for ${host.name}`,
  });
  return {
    code: r.timedOut ? null : r.code,
    stdout: r.stdout,
    stderr: r.timedOut ? `${r.stderr}labExec: ${host.name}: timed out after ${opts.timeoutMs} ms\n` : r.stderr,
  };
}

/**
 * Put hosts back to the state they had right after `up`: stop each one, give it a new network namespace (no
 * leftover rules, routes or connections), drop everything it changed (its upper dirs) and boot it again. Updates
 * the pids in `state`, in `hosts` and in state.json.
 */
export async function labReset(state: LabState, hosts: LabHost[] = state.hosts): Promise<void> {
  requireRoot();
  const file = readLabFile(state.name);
  if (!file || file.record.phase !== 'up') throw new LabError(`lab "${state.name}" is not up`);
  const targets = hosts.map((given) => {
    const rec = file.state.hosts.find((h) => h.short === given.short);
    if (!rec) throw new LabError(`lab "${state.name}" has no host ${given.name}`);
    return { given, rec };
  });
  await pool(targets, concurrency(file.state.mode), async ({ given, rec }) => {
    const ino = netnsInode(rec.netns);
    const net = file.record.hosts.find((h) => h.short === rec.short);
    if (ino === null || !net) throw new LabError(`${rec.name}: network namespace ${rec.netns} is gone: run down, then up`);
    await killNetnsProcesses([ino]);
    // Deleting the veth first removes both ends at once, so the names are free again right away.
    const renew = [...(existsSync(`/sys/class/net/${net.veth}`) ? [`link delete dev ${net.veth}`] : []), `netns delete ${net.netns}`, ...hostNetCommands(file.state, net)];
    await must('ip', ['-batch', '-'], { input: `${renew.join('\n')}\n` });
    rec.pid = await bootHost(file.state, rec);
    given.pid = rec.pid;
  });
  for (const h of state.hosts) {
    const rec = file.state.hosts.find((x) => x.short === h.short);
    if (rec) h.pid = rec.pid;
  }
  writeLabFile(file);
}

export interface HostStatus {
  host: LabHost;
  /** the init pid when the host runs, else null */
  pid: number | null;
}

export interface LabStatus {
  state: LabState;
  phase: LabRecord['phase'];
  upSeconds: number | null;
  /** pid of the owning test run, when there is one and it still runs */
  owner: number | null;
  hosts: HostStatus[];
}

export function labStatus(name: string = DEFAULT_LAB): LabStatus | null {
  validateName(name);
  const file = readLabFile(name);
  if (!file) return null;
  const hosts = file.state.hosts.map((host) => {
    const ino = netnsInode(host.netns);
    return { host, pid: ino === null ? null : findHostInit(ino) };
  });
  const owner = file.record.owner;
  return {
    state: file.state,
    phase: file.record.phase,
    upSeconds: file.record.upSeconds,
    owner: owner && processStart(owner.pid) === owner.start ? owner.pid : null,
    hosts,
  };
}

/** A host of a lab by short name, FQDN or address. */
export function findHost(state: LabState, which: string): LabHost {
  const host = state.hosts.find((h) => h.short === which || h.name === which || h.ip === which);
  if (!host) throw new LabError(`lab "${state.name}" has no host "${which}" (it has ${state.hosts[0]?.short ?? 'none'}…${state.hosts.at(-1)?.short ?? ''})`);
  return host;
}

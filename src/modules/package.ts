/**
 * package, apt, yum and dnf: packages present, absent or at the latest version, through the host's own package
 * manager (dpkg/apt, or rpm with dnf or yum). One read finds the manager and what is installed (and, for latest,
 * what apt would install); nothing runs when every package is already as asked, and check mode says which
 * packages would be installed or removed. The package index is refreshed (update_cache) only before an install,
 * so a run with nothing to do needs no network.
 */
import { quote } from '../connection/shell-quote.js';
import { CommandError } from '../errors.js';
import { type ArgsOf, type Module, ModuleError, type Outcome, type Plan, type Reads, type TaskContext } from './module.js';

export type PackageArgs = ArgsOf<{ readonly additionalProperties: false; readonly properties: typeof aptProperties }>;

type Manager = 'apt' | 'dnf' | 'yum';

/** What the host said about the packages. */
export interface PackageState {
  manager: Manager | null;
  /** installed packages and their versions */
  installed: Map<string, string>;
  /** apt's candidate version (what an install or upgrade would bring), when asked */
  candidate: Map<string, string>;
}

const NAME = /^[A-Za-z0-9][A-Za-z0-9+._:@-]*$/;

function names(args: PackageArgs): string[] {
  const n = args.name === undefined ? [] : Array.isArray(args.name) ? args.name : [args.name];
  // `name: "a,b"` is a list too, as Ansible reads it.
  return n.flatMap((x) => String(x).split(',')).map((x) => x.trim()).filter(Boolean);
}

function wanted(args: PackageArgs): 'present' | 'absent' | 'latest' {
  const s = args.state ?? 'present';
  return s === 'installed' ? 'present' : s === 'removed' ? 'absent' : s;
}

/** The read-only command that tells the manager, the installed packages among `pkgs`, and apt's candidates. */
export function stateCommand(pkgs: string[], latest: boolean): { key: string; script: string } {
  const list = pkgs.map((p) => quote(p)).join(' ');
  const script = [
    'if command -v dpkg-query >/dev/null 2>&1 && command -v apt-get >/dev/null 2>&1; then',
    '  echo "manager apt"',
    `  dpkg-query -W -f='installed\\t\${Package}\\t\${Status}\\t\${Version}\\n' -- ${list} 2>/dev/null`,
    latest ? `  LC_ALL=C apt-cache policy -- ${list} 2>/dev/null | awk '/^[^ ]/{p=$1; sub(/:$/,"",p)} /^  Candidate:/{print "candidate\\t" p "\\t" $2}'` : '',
    'elif command -v rpm >/dev/null 2>&1; then',
    '  if command -v dnf >/dev/null 2>&1; then echo "manager dnf"; elif command -v yum >/dev/null 2>&1; then echo "manager yum"; else echo "manager none"; fi',
    `  rpm -q --qf 'installed\\t%{NAME}\\tinstall ok installed\\t%{VERSION}-%{RELEASE}\\n' -- ${list} 2>/dev/null | grep '^installed'`,
    'else echo "manager none"; fi',
    'exit 0',
  ]
    .filter(Boolean)
    .join('\n');
  return { key: `packages:${latest ? 'latest:' : ''}${pkgs.join(',')}`, script };
}

export function parseState(out: string): PackageState {
  const st: PackageState = { manager: null, installed: new Map(), candidate: new Map() };
  for (const line of out.split('\n')) {
    const m = /^manager (\w+)$/.exec(line);
    if (m) st.manager = m[1] === 'none' ? null : (m[1] as Manager);
    const f = line.split('\t');
    // dpkg's Status is "want flag state": only "installed" counts (not config-files, half-installed, …).
    if (f[0] === 'installed' && f.length >= 4 && f[2]!.split(' ')[2] === 'installed') st.installed.set(f[1]!.replace(/:[a-z0-9]+$/, ''), f[3]!);
    if (f[0] === 'candidate' && f.length >= 3 && f[2] !== '(none)') st.candidate.set(f[1]!, f[2]!);
  }
  return st;
}

function script(manager: Manager, action: 'install' | 'remove', pkgs: string[], updateCache: boolean): string {
  const list = pkgs.map((p) => quote(p)).join(' ');
  if (manager === 'apt') {
    const apt = 'DEBIAN_FRONTEND=noninteractive apt-get -y -q -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold';
    return [updateCache && action === 'install' ? 'apt-get -q update || exit $?' : '', `${apt} ${action} -- ${list}`].filter(Boolean).join('\n');
  }
  return `${manager} -y ${action} -- ${list}`;
}

const packageProperties = {
  name: {
    anyOf: [{ type: 'string', minLength: 1 }, { type: 'array', items: { type: 'string', minLength: 1 } }],
    description: 'A package name, a list of them, or names separated by commas.',
  },
  state: { enum: ['present', 'installed', 'absent', 'removed', 'latest'], description: 'present (default), absent, or latest.' },
  update_cache: { type: 'boolean', description: 'Refresh the package index first (only when something is to be installed).' },
} as const;

/** apt also accepts cache_valid_time (and ignores it). */
const aptProperties = {
  ...packageProperties,
  cache_valid_time: { type: 'integer', minimum: 0, description: 'Accepted; the index is refreshed only before an install.' },
} as const;

const packageSchema = (name: 'package' | 'apt' | 'yum' | 'dnf') =>
  ({ additionalProperties: false, properties: name === 'apt' ? aptProperties : packageProperties }) as const;

/** Why latest is refused on rpm hosts: what dnf or yum would upgrade to is not read yet, so check mode could not say. */
function latestRefusal(module: string, manager: string): string {
  return `${module}: state latest is not supported with ${manager} yet (provision cannot tell which version ${manager} would install, so check mode could not predict it); use state: present`;
}

function makeModule(name: 'package' | 'apt' | 'yum' | 'dnf'): Module<PackageArgs> {
  const only: Manager[] | null = name === 'package' ? null : name === 'apt' ? ['apt'] : ['yum', 'dnf'];
  return {
    name,
    description:
      name === 'package'
        ? "Packages present, absent or latest, through the host's own package manager (apt, dnf or yum)."
        : `Packages present, absent or latest with ${name === 'apt' ? 'apt' : 'yum/dnf'}.`,
    aliases: { pkg: 'name', package: 'name', 'update-cache': 'update_cache' },
    schema: packageSchema(name),
    check(args) {
      const pkgs = names(args);
      if (!pkgs.length && !args.update_cache) return `${name} needs "name" (or update_cache: true)`;
      const bad = pkgs.find((p) => !NAME.test(p));
      if (bad) return `"${bad}" is not a package name`;
      // yum and dnf only ever run on an rpm host, so their latest can be refused before any host is touched.
      if ((name === 'yum' || name === 'dnf') && wanted(args) === 'latest') return latestRefusal(name, name);
      return null;
    },
    reads: (args): Reads => (names(args).length ? { commands: [stateCommand(names(args), wanted(args) === 'latest')] } : {}),
    async plan(ctx: TaskContext, args: PackageArgs): Promise<Plan> {
      const pkgs = names(args);
      const state = wanted(args);
      const cmd = stateCommand(pkgs.length ? pkgs : ['dpkg'], state === 'latest');
      const res = await ctx.readCommand(cmd.key, cmd.script);
      const st = parseState(res.stdout.toString());
      if (!st.manager) throw new ModuleError(`${name}: no apt, dnf or yum on this host`);
      if (only && !only.includes(st.manager)) throw new ModuleError(`${name}: this host's packages are managed by ${st.manager}, not ${only.join('/')} (use package)`);
      if (!pkgs.length) {
        if (st.manager !== 'apt') return { changed: true, msg: `refresh the ${st.manager} metadata`, files: [], commands: [{ script: `${st.manager} -q makecache`, description: `${st.manager} makecache` }] };
        return { changed: true, msg: 'refresh the apt package index', files: [], commands: [{ script: 'apt-get -q update', description: 'apt-get update' }] };
      }
      if (state === 'latest' && st.manager !== 'apt') throw new ModuleError(latestRefusal(name, st.manager));
      if (state === 'absent') {
        const remove = pkgs.filter((p) => st.installed.has(p));
        if (!remove.length) return { changed: false, msg: `${pkgs.join(', ')} ${pkgs.length === 1 ? 'is' : 'are'} not installed` };
        return {
          changed: true,
          msg: `remove ${remove.join(', ')}`,
          files: [],
          commands: [{ script: script(st.manager, 'remove', remove, false), description: `${st.manager} remove ${remove.join(' ')}` }],
          data: { removed: remove },
        };
      }
      const missing = pkgs.filter((p) => !st.installed.has(p));
      const outdated = state === 'latest' ? pkgs.filter((p) => st.installed.has(p) && st.candidate.has(p) && st.candidate.get(p) !== st.installed.get(p)) : [];
      const todo = [...missing, ...outdated];
      if (!todo.length) {
        const versions = pkgs.map((p) => `${p} ${st.installed.get(p)}`).join(', ');
        return { changed: false, msg: `${state === 'latest' ? 'up to date' : 'installed'}: ${versions}` };
      }
      const parts = [missing.length ? `install ${missing.join(', ')}` : '', outdated.length ? `upgrade ${outdated.map((p) => `${p} ${st.installed.get(p)} → ${st.candidate.get(p)}`).join(', ')}` : ''];
      return {
        changed: true,
        msg: parts.filter(Boolean).join('; '),
        files: [],
        commands: [{ script: script(st.manager, 'install', todo, args.update_cache === true), description: `${st.manager} install ${todo.join(' ')}` }],
        data: { installed: missing, upgraded: outdated },
      };
    },
    async apply(ctx: TaskContext, plan: Extract<Plan, { changed: true }>): Promise<Outcome> {
      for (const c of plan.commands) {
        const r = await ctx.run(c.script);
        if (r.code !== 0) throw new CommandError(ctx.host, c.description, r.code, r.stdout.toString(), r.stderr.toString());
      }
      return { changed: true, msg: plan.msg.replace(/^install /, 'installed ').replace(/^remove /, 'removed ').replace(/^refresh /, 'refreshed '), data: plan.data };
    },
  };
}

export const packageModule = makeModule('package');
export const aptModule = makeModule('apt');
export const yumModule = makeModule('yum');
export const dnfModule = makeModule('dnf');

/**
 * Ansible's magic variables and fact names, built from what provision knows: the inventory, the play's hosts and
 * batch, the run's mode and the facts gathered in its one facts exec.
 */
import { randomBytes } from 'node:crypto';
import type { Facts } from '../facts/types.js';
import type { Inventory } from '../inventory/types.js';
import { TemplateError } from './template/errors.js';

/** The Ansible release whose templating provision follows (the conformance suite was recorded with it). */
export const ANSIBLE_VERSION = Object.freeze({ full: '2.14.18', major: 2, minor: 14, revision: 18, string: '2.14.18' });

/**
 * The value of `omit`: a task argument that renders to exactly this is left out, as Ansible does. Random per
 * run, like Ansible's, so no real value can be mistaken for it.
 */
export const OMIT = `__omit_place_holder__${randomBytes(20).toString('hex')}`;

/** `ansible_managed`'s text (Ansible's default setting). */
export const ANSIBLE_MANAGED = 'Ansible managed';

/** os-release IDs and the name Ansible's `ansible_distribution` gives each. */
const DISTRIBUTIONS: Record<string, string> = {
  debian: 'Debian',
  ubuntu: 'Ubuntu',
  centos: 'CentOS',
  rhel: 'RedHat',
  rocky: 'Rocky',
  almalinux: 'AlmaLinux',
  fedora: 'Fedora',
  ol: 'OracleLinux',
  amzn: 'Amazon',
  alpine: 'Alpine',
  sles: 'SLES',
  'opensuse-leap': 'openSUSE Leap',
  'opensuse-tumbleweed': 'openSUSE Tumbleweed',
  linuxmint: 'Linux Mint',
};

/**
 * The `ansible_*` names (and `ansible_facts`) of the facts provision gathers. A fact provision cannot derive
 * exactly (an unknown distribution) is left out, so a template that reads it fails naming it rather than
 * rendering a guess.
 */
export function ansibleFactVars(facts: Facts): Record<string, unknown> {
  const f: Record<string, unknown> = {
    hostname: facts.hostname,
    nodename: facts.hostname,
    fqdn: facts.fqdn,
    os_family: facts.os_family,
    distribution_version: facts.distribution_version,
    distribution_major_version: facts.distribution_version.split('.')[0] ?? '',
    user_id: facts.user,
    user_uid: facts.uid,
    system: 'Linux',
  };
  if (facts.default_ipv4) f.default_ipv4 = facts.default_ipv4;
  const name = DISTRIBUTIONS[facts.distribution];
  if (name) f.distribution = name;
  // PID 1 decides: systemd, else Upstart on the RHEL 6 family (as Ansible reports it), else SysV init.
  if (facts.init === 'systemd') f.service_mgr = 'systemd';
  else if (facts.os_family === 'RedHat' && f.distribution_major_version === '6') f.service_mgr = 'upstart';
  else f.service_mgr = 'sysvinit';
  const out: Record<string, unknown> = { ansible_facts: f };
  for (const [k, v] of Object.entries(f)) out[`ansible_${k}`] = v;
  return out;
}

/** What the runner knows about a play when it renders a task: its hosts, the current batch, the run's mode. */
export interface PlayContext {
  /** the play's hosts that are still in the run (Ansible's ansible_play_hosts) */
  playHosts: string[];
  /** every host the play selected */
  allHosts: string[];
  /** the hosts of the current batch (serial) */
  batch: string[];
  check: boolean;
  playbookDir: string;
  /** variables of any inventory host, as `hostvars[name]` shows them (facts included once gathered) */
  hostvars: Record<string, unknown>;
  /** the role's directory, set by the runner while it runs a role's tasks */
  rolePath?: string;
  /** `groups` in Ansible's order (see ansibleGroups); the inventory's own `groups` stays when absent */
  groups?: Record<string, string[]>;
}

/** The magic variables of one play, the same for every host of it. */
export function playVars(p: PlayContext): Record<string, unknown> {
  const out: Record<string, unknown> = {
    hostvars: p.hostvars,
    play_hosts: p.playHosts,
    ansible_play_hosts: p.playHosts,
    ansible_play_hosts_all: p.allHosts,
    ansible_play_batch: p.batch,
    ansible_check_mode: p.check,
    ansible_version: ANSIBLE_VERSION,
    ansible_managed: ANSIBLE_MANAGED,
    playbook_dir: p.playbookDir,
    omit: OMIT,
  };
  if (p.rolePath !== undefined) out.role_path = p.rolePath;
  if (p.groups !== undefined) out.groups = p.groups;
  return out;
}

/**
 * `groups` as Ansible builds it: for each group (in the order groups were created), the hosts met on a walk from
 * the group down its children, level by level: the group's own hosts, then those of its children in the order
 * they were added, then those of their children, and so on, each host once. So `groups['all']` lists the hosts
 * of top-level groups in group order, not the order hosts first appear in the file.
 *
 * Below the first level Ansible walks a Python set of groups, whose order is not fixed from run to run; there
 * this walk takes parents in level order and each parent's children in the order they were added.
 */
export function ansibleGroups(inv: Inventory): Record<string, string[]> {
  const out: Record<string, string[]> = {};
  for (const name of inv.groups.keys()) {
    const ordered: string[] = [name];
    const seen = new Set<string>([name]);
    let level = [name];
    while (level.length) {
      const next: string[] = [];
      for (const g of level) {
        for (const child of inv.groups.get(g)?.children ?? []) {
          if (seen.has(child)) continue;
          seen.add(child);
          next.push(child);
          ordered.push(child);
        }
      }
      level = next;
    }
    const hosts = new Set<string>();
    for (const g of ordered) for (const h of inv.groups.get(g)?.hosts ?? []) hosts.add(h);
    // Read-only, as the inventory's own `groups`: a template cannot change another host's view of it.
    Object.defineProperty(out, name, { value: [...hosts], enumerable: true });
  }
  return out;
}

/**
 * `hostvars`: one entry per inventory host, each read when first used: its inventory variables, and once its
 * facts are gathered, its facts under `facts` and their `ansible_*` names. A fact of a host not gathered yet is
 * therefore undefined, and the error names it.
 *
 * A host's registered and set_fact variables are not shared: in Ansible, `hostvars[h].x` gives h's value of x as
 * it stands at that moment of a lockstep run, which provision, running hosts apart, cannot give exactly. For the
 * names in `unshared` (what the playbook registers or sets anywhere), reading `hostvars[h].x` is therefore an
 * error that says so, not the inventory's value or an undefined that `default` would quietly replace.
 */
export function makeHostvars(
  hosts: Iterable<string>,
  varsOf: (host: string) => Record<string, unknown>,
  factsOf: (host: string) => Facts | null,
  unshared: ReadonlySet<string> = new Set(),
): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const h of hosts) {
    Object.defineProperty(out, h, {
      enumerable: true,
      configurable: true,
      get: () => {
        const facts = factsOf(h);
        const entry: Record<string, unknown> = { ...varsOf(h), ...(facts ? { facts, ...ansibleFactVars(facts) } : {}) };
        for (const name of unshared) {
          // Not enumerable: the entry still prints and iterates as its inventory variables and facts.
          Object.defineProperty(entry, name, {
            enumerable: false,
            get: () => {
              throw new TemplateError(
                `hostvars[${JSON.stringify(h)}].${name}: provision does not share a host's registered or set_fact variables through hostvars (in Ansible the value depends on the moment other hosts reach; use the variable on its own host, or pass it as an inventory variable)`,
              );
            },
          });
        }
        return entry;
      },
    });
  }
  return out;
}

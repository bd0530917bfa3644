/**
 * What a host's variables are, merged as Ansible merges them, and the views `provision inventory` prints
 * (`--list`, `--graph`, `--host`). An Inventory is treated as immutable once loaded: derived structure (parents,
 * depths, members) is computed once per inventory object.
 */
import path from 'node:path';
import { InputError } from '../errors.js';
import type { Inventory } from './types.js';

type Vars = Record<string, unknown>;

/** Variables of every group and host from one kind of place. */
export interface VarLayer {
  groups: Map<string, Vars>;
  hosts: Map<string, Vars>;
}

/**
 * Where variables were set, kept apart because Ansible ranks every group_vars/ file above every variable
 * written in the inventory file itself (so `group_vars/all.yml` beats `[mail:vars]`).
 */
export interface InventoryLayers {
  /** written in the inventory source: INI inline and [g:vars], YAML vars */
  inline: VarLayer;
  /** read from group_vars/ and host_vars/ */
  files: VarLayer;
  /** absolute path of the file each host was first defined in (inventory_file); absent for host lists */
  hostFiles: Map<string, string>;
}

/** An inventory from loadInventory: the shared shape (vars already merged per group and host) plus the layers. */
export interface LoadedInventory extends Inventory {
  layers: InventoryLayers;
}

interface Index {
  /** children as Ansible sees them: `all` also has every group that has no other parent */
  children: Map<string, string[]>;
  parents: Map<string, string[]>;
  depth: Map<string, number>;
  /** host → position in the inventory */
  order: Map<string, number>;
  /** group → hosts in it or in any descendant group, in inventory order */
  members: Map<string, string[]>;
}

const indexes = new WeakMap<Inventory, Index>();

function indexOf(inv: Inventory): Index {
  const cached = indexes.get(inv);
  if (cached) return cached;
  const children = new Map<string, string[]>();
  const parents = new Map<string, string[]>([...inv.groups.keys()].map((g) => [g, []]));
  for (const g of inv.groups.values()) {
    children.set(g.name, [...g.children]);
    for (const c of g.children) parents.get(c)?.push(g.name);
  }
  const top = children.get('all') ?? [];
  for (const g of inv.groups.keys()) {
    if (g !== 'all' && parents.get(g)!.length === 0) {
      top.push(g);
      parents.get(g)!.push('all');
    }
  }
  children.set('all', top);

  const depth = new Map<string, number>();
  const depthOf = (g: string, trail: string[]): number => {
    const known = depth.get(g);
    if (known !== undefined) return known;
    if (trail.includes(g)) throw new InputError(`child groups form a cycle: ${[...trail.slice(trail.indexOf(g)), g].join(' → ')}`);
    const ps = parents.get(g) ?? [];
    const d = g === 'all' ? 0 : Math.max(0, ...ps.map((p) => depthOf(p, [...trail, g]))) + 1;
    depth.set(g, d);
    return d;
  };
  for (const g of inv.groups.keys()) depthOf(g, []);

  const order = new Map([...inv.hosts.keys()].map((h, i) => [h, i]));
  const members = new Map<string, string[]>();
  for (const g of inv.groups.keys()) {
    const seen = new Set<string>();
    const hosts = new Set<string>();
    const walk = (name: string) => {
      if (seen.has(name)) return;
      seen.add(name);
      for (const h of inv.groups.get(name)?.hosts ?? []) hosts.add(h);
      for (const c of children.get(name) ?? []) walk(c);
    };
    walk(g);
    members.set(g, g === 'all' ? [...order.keys()] : [...hosts].sort((a, b) => order.get(a)! - order.get(b)!));
  }
  const index = { children, parents, depth, order, members };
  indexes.set(inv, index);
  return index;
}

function requireHost(inv: Inventory, host: string) {
  const h = inv.hosts.get(host);
  if (!h) throw new InputError(`host "${host}" is not in the inventory (${inv.source})`);
  return h;
}

/** Hosts in a group or any of its descendants, in inventory order (`groups['mail']` in templates). */
export function hostsOfGroup(inv: Inventory, group: string): string[] {
  return [...(indexOf(inv).members.get(group) ?? [])];
}

/** Hosts in inventory order, i.e. the order they first appear in the sources. */
export function inventoryOrder(inv: Inventory, hosts: Iterable<string>): string[] {
  const { order } = indexOf(inv);
  return [...new Set(hosts)].filter((h) => order.has(h)).sort((a, b) => order.get(a)! - order.get(b)!);
}

function layersOf(inv: Inventory): InventoryLayers | undefined {
  return (inv as Partial<LoadedInventory>).layers;
}

/** `ansible_group_priority` ranks groups of equal depth; it counts only where written in the inventory itself. */
function priorityOf(inv: Inventory, group: string): number {
  const layers = layersOf(inv);
  const raw = layers ? layers.inline.groups.get(group)?.ansible_group_priority : inv.groups.get(group)?.vars.ansible_group_priority;
  if (raw === undefined || raw === null) return 1;
  const n = typeof raw === 'number' ? raw : typeof raw === 'string' && /^\s*[-+]?\d+\s*$/.test(raw) ? Number(raw) : NaN;
  if (!Number.isInteger(n)) {
    throw new InputError(`ansible_group_priority of group "${group}" must be a whole number, got ${JSON.stringify(raw)}`);
  }
  return n;
}

/**
 * Every group the host is in, directly or through child groups, `all` included, in the order Ansible merges
 * their variables: by depth below `all`, then `ansible_group_priority`, then name — later ones win.
 */
export function allGroupsOf(inv: Inventory, host: string): string[] {
  const h = requireHost(inv, host);
  const { parents, depth } = indexOf(inv);
  const found = new Set<string>(['all']);
  const climb = (g: string) => {
    if (found.has(g)) return;
    found.add(g);
    for (const p of parents.get(g) ?? []) climb(p);
  };
  for (const g of h.groups) climb(g);
  const key = (g: string) => [depth.get(g) ?? 1, priorityOf(inv, g)] as const;
  return [...found].sort((a, b) => {
    const [da, pa] = key(a);
    const [db, pb] = key(b);
    return da - db || pa - pb || (a < b ? -1 : a > b ? 1 : 0);
  });
}

function combine(layers: (Vars | undefined)[]): Vars {
  const out: Vars = {};
  for (const layer of layers) {
    if (!layer) continue;
    for (const [k, v] of Object.entries(layer)) {
      Object.defineProperty(out, k, { value: v, enumerable: true, writable: true, configurable: true });
    }
  }
  return out;
}

/**
 * The host's inventory variables, merged with Ansible's precedence: group vars from the inventory file (`all`,
 * then the other groups in allGroupsOf order), then group_vars/ files in the same order, then host vars from
 * the inventory file, then host_vars/. Without layers, each group's and the host's merged `vars` are used.
 */
function inventoryVars(inv: Inventory, host: string): Vars {
  const h = requireHost(inv, host);
  const groups = allGroupsOf(inv, host);
  const layers = layersOf(inv);
  if (!layers) return combine([...groups.map((g) => inv.groups.get(g)?.vars), h.vars]);
  return combine([
    ...groups.map((g) => layers.inline.groups.get(g)),
    ...groups.map((g) => layers.files.groups.get(g)),
    layers.inline.hosts.get(host),
    layers.files.hosts.get(host),
  ]);
}

const sharedGroups = new WeakMap<Inventory, Readonly<Record<string, readonly string[]>>>();

/**
 * `groups` (every group → its hosts): one frozen object per inventory that every host's variables share. A copy
 * per host grows with hosts × hosts (500 hosts in `all` and `mail`: 500 000 list entries).
 */
function groupsOf(inv: Inventory): Readonly<Record<string, readonly string[]>> {
  let groups = sharedGroups.get(inv);
  if (!groups) {
    const { members } = indexOf(inv);
    const made: Record<string, readonly string[]> = {};
    for (const g of inv.groups.keys()) Object.defineProperty(made, g, { value: Object.freeze([...members.get(g)!]), enumerable: true });
    groups = Object.freeze(made);
    sharedGroups.set(inv, groups);
  }
  return groups;
}

/** The variables Ansible derives from the inventory itself and sets on every host. */
function magicVars(inv: Inventory, host: string): Vars {
  const groupNames = allGroupsOf(inv, host)
    .filter((g) => g !== 'all')
    .sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
  const magic: Vars = {
    inventory_hostname: host,
    inventory_hostname_short: host.split('.')[0],
    group_names: groupNames,
    groups: groupsOf(inv),
  };
  const file = layersOf(inv)?.hostFiles.get(host);
  if (file) {
    magic.inventory_file = file;
    magic.inventory_dir = path.dirname(file);
  }
  return magic;
}

/**
 * Everything the inventory says about a host, as templates see it: merged group and host variables plus
 * `inventory_hostname`, `inventory_hostname_short`, `group_names` (sorted, without `all`), `groups` (every
 * group → its hosts) and, for hosts read from a file, `inventory_file` and `inventory_dir`.
 */
export function hostVars(inv: Inventory, host: string): Vars {
  return { ...inventoryVars(inv, host), ...magicVars(inv, host) };
}

/** Plain objects with their keys sorted at every level, as `ansible-inventory` prints JSON. */
function sortKeys(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(sortKeys);
  if (value === null || typeof value !== 'object' || Object.getPrototypeOf(value) !== Object.prototype) return value;
  const keys = Object.keys(value).sort();
  return Object.fromEntries(keys.map((k) => [k, sortKeys((value as Vars)[k])]));
}

/** `provision inventory --host NAME`: the host's merged inventory variables (no magic variables), keys sorted. */
export function inventoryHost(inv: Inventory, host: string): Vars {
  return sortKeys(inventoryVars(inv, host)) as Vars;
}

/**
 * `provision inventory --list`, shaped like `ansible-inventory --list`: one entry per non-empty group with its
 * direct `hosts`, its `children` and its own `vars` (empty keys left out; `all` lists no hosts), and
 * `_meta.hostvars` with each host's merged variables. Keys are sorted; print it with JSON.stringify.
 */
export function inventoryList(inv: Inventory): Vars {
  const { children } = indexOf(inv);
  const out: Vars = {};
  for (const [name, group] of inv.groups) {
    const entry: Vars = {};
    if (name !== 'all' && group.hosts.length) entry.hosts = [...group.hosts];
    const kids = children.get(name) ?? [];
    if (kids.length) entry.children = [...kids];
    if (Object.keys(group.vars).length) entry.vars = group.vars;
    if (Object.keys(entry).length) out[name] = entry;
  }
  const hostvars: Vars = {};
  for (const host of inv.hosts.keys()) {
    const vars = inventoryVars(inv, host);
    if (Object.keys(vars).length) Object.defineProperty(hostvars, host, { value: vars, enumerable: true });
  }
  out._meta = { hostvars };
  return sortKeys(out) as Vars;
}

/**
 * `provision inventory --graph`, as `ansible-inventory --graph` draws it: groups as `@name:`, child groups
 * before hosts, each level indented by `  |`. Lines joined with "\n", no trailing newline.
 */
export function inventoryGraph(inv: Inventory, root = 'all'): string {
  if (!inv.groups.has(root)) throw new InputError(`--graph needs a group name; "${root}" is not a group`);
  const { children } = indexOf(inv);
  const lines: string[] = [];
  const indent = (depth: number, text: string) => (depth ? '  |'.repeat(depth) + '--' + text : text);
  const draw = (group: string, depth: number) => {
    lines.push(indent(depth, `@${group}:`));
    for (const child of children.get(group) ?? []) draw(child, depth + 1);
    if (group !== 'all') for (const host of inv.groups.get(group)!.hosts) lines.push(indent(depth + 1, host));
  };
  draw(root, 0);
  return lines.join('\n');
}

/**
 * The inventory under construction: what the INI and YAML parsers add as they read, in order, and Ansible's
 * implicit structure (`all`, `ungrouped`) applied at the end.
 */
import { InputError, type SourcePos } from '../errors.js';
import type { InventoryGroup, InventoryHost } from './types.js';

type Vars = Record<string, unknown>;

function defineVar(target: Vars, key: string, value: unknown): void {
  // defineProperty rather than assignment, so a variable named "__proto__" is stored as data.
  Object.defineProperty(target, key, { value, enumerable: true, writable: true, configurable: true });
}

/**
 * Collects hosts, groups, memberships and variables as parsers read sources, in order; checks child-group
 * cycles as edges are added; and finally applies Ansible's implicit rules (`all`, `ungrouped`).
 */
export class InventoryBuilder {
  private readonly hosts = new Map<string, { groups: string[]; vars: Vars; file: string | null }>();
  private readonly groups = new Map<string, { vars: Vars; children: string[]; hosts: string[] }>();
  /** the source being read, recorded as inventory_file of the hosts it defines first */
  file: string | null = null;
  /** what was skipped with a warning */
  readonly warnings: string[] = [];

  constructor() {
    this.addGroup('all');
    this.addGroup('ungrouped');
  }

  hasGroup(name: string): boolean {
    return this.groups.has(name);
  }

  addGroup(name: string): void {
    if (!this.groups.has(name)) this.groups.set(name, { vars: {}, children: [], hosts: [] });
  }

  /** Add a host (if new) to a group (which is created if needed). */
  addHost(name: string, group: string): void {
    this.addGroup(group);
    let host = this.hosts.get(name);
    if (!host) {
      host = { groups: [], vars: {}, file: this.file };
      this.hosts.set(name, host);
    }
    if (!host.groups.includes(group)) {
      host.groups.push(group);
      this.groups.get(group)!.hosts.push(name);
    }
  }

  setHostVar(host: string, key: string, value: unknown): void {
    defineVar(this.hosts.get(host)!.vars, key, value);
  }

  setGroupVar(group: string, key: string, value: unknown): void {
    this.addGroup(group);
    defineVar(this.groups.get(group)!.vars, key, value);
  }

  /** Make `child` a child of `parent`; `pos` is where the edge is written, reported if it closes a cycle. */
  addChild(parent: string, child: string, pos: SourcePos): void {
    if (child === 'all') throw new InputError('"all" contains every group and cannot be a child group', pos);
    if (parent === child) throw new InputError(`group "${parent}" cannot be a child of itself`, pos);
    this.addGroup(parent);
    this.addGroup(child);
    const loop = this.path(child, parent);
    if (loop) throw new InputError(`child groups form a cycle: ${[parent, ...loop].join(' → ')}`, pos);
    const kids = this.groups.get(parent)!.children;
    if (!kids.includes(child)) kids.push(child);
  }

  /** A chain of child edges from `from` down to `to`, if there is one. */
  private path(from: string, to: string): string[] | null {
    const seen = new Set<string>();
    const walk = (g: string): string[] | null => {
      if (g === to) return [g];
      if (seen.has(g)) return null;
      seen.add(g);
      for (const c of this.groups.get(g)?.children ?? []) {
        const rest = walk(c);
        if (rest) return [g, ...rest];
      }
      return null;
    };
    return walk(from);
  }

  /**
   * The inventory as parsed, with Ansible's implicit structure: every group without a parent is a child of
   * `all` (after `ungrouped`, which always is), a host in no group but `all` is in `ungrouped`, and a host that
   * is in some real group is not in `ungrouped`.
   */
  build(): { hosts: Map<string, InventoryHost>; groups: Map<string, InventoryGroup>; hostFiles: Map<string, string> } {
    const hasParent = new Set<string>();
    for (const g of this.groups.values()) for (const c of g.children) hasParent.add(c);
    const allKids = ['ungrouped', ...this.groups.get('all')!.children.filter((c) => c !== 'ungrouped')];
    for (const name of this.groups.keys()) {
      if (name !== 'all' && !hasParent.has(name) && !allKids.includes(name)) allKids.push(name);
    }

    const hosts = new Map<string, InventoryHost>();
    const hostFiles = new Map<string, string>();
    const members = new Map<string, string[]>([...this.groups].map(([g, v]) => [g, [...v.hosts]]));
    for (const [name, h] of this.hosts) {
      const real = h.groups.filter((g) => g !== 'all' && g !== 'ungrouped');
      const groups = real.length ? real : ['ungrouped'];
      if (!real.length && !members.get('ungrouped')!.includes(name)) members.get('ungrouped')!.push(name);
      hosts.set(name, { name, vars: { ...h.vars }, groups });
      if (h.file) hostFiles.set(name, h.file);
    }
    members.set('all', []);
    members.set('ungrouped', members.get('ungrouped')!.filter((h) => hosts.get(h)!.groups[0] === 'ungrouped'));

    const groups = new Map<string, InventoryGroup>();
    for (const [name, g] of this.groups) {
      groups.set(name, {
        name,
        vars: { ...g.vars },
        children: name === 'all' ? allKids : [...g.children],
        hosts: members.get(name)!,
      });
    }
    return { hosts, groups, hostFiles };
  }
}

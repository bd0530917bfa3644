/**
 * A host's variables and their precedence (Ansible's variable manager): the layers a run adds as it goes
 * (registered results, include_vars, the vars of the includes being run) over what the inventory, the play and
 * its roles define.
 */
import type { Facts } from '../facts/types.js';
import { searchPathOf } from '../playbook/lookups.js';
import { ansibleFactVars } from '../playbook/magic-vars.js';
import { mergeVars } from '../playbook/template.js';
import type { Play, Task } from '../playbook/types.js';

/** One layer of variables; `lazy`: templates in it render when used. */
export interface VarScope {
  vars: Record<string, unknown>;
  lazy: boolean;
}

/** The layers a run adds, shared by a host and its delegate on the controller. */
interface RunLayers {
  /** variables from register and set_fact (above play vars, below extra vars) */
  registered: Record<string, unknown>;
  /** variables from include_vars (below registered ones; templates in them render when used) */
  included: Record<string, unknown>;
  /** variables of the includes being run: their `vars:` and loop items, innermost last */
  scopes: VarScope[];
}

export class HostVars {
  /**
   * Ansible's magic variables of the play and batch this host is in (hostvars, play_hosts, ansible_play_batch,
   * omit, …; see playVars), set by the runner before each batch.
   */
  magic: Record<string, unknown> = {};
  private layers: RunLayers = { registered: {}, included: {}, scopes: [] };

  constructor(
    /** inventory variables of the host (groups merged, host vars on top) */
    private readonly inventoryVars: Record<string, unknown>,
    private readonly settings: { extraVars: Record<string, unknown>; check: boolean; playbookDir: string },
  ) {}

  /** Share the run's layers of `other` (a delegate sees and sets the same registered results). */
  shareWith(other: HostVars): void {
    this.layers = other.layers;
  }

  /**
   * Variables visible to templates, by Ansible's precedence: role defaults < inventory < play < role vars < role
   * parameters < block and task vars < include vars and loop items < include_vars < registered < extra.
   */
  vars(play: Play, task: Task | undefined, extra: Record<string, unknown>, facts: Facts | null): Record<string, unknown> {
    const role = task?.role;
    return mergeVars([
      { vars: play.roleDefaults, lazy: true },
      { vars: role?.defaults ?? {}, lazy: true },
      { vars: this.inventoryVars, lazy: true },
      { vars: play.vars, lazy: true },
      { vars: play.roleVars, lazy: true },
      { vars: role?.vars ?? {}, lazy: true },
      { vars: role?.params ?? {}, lazy: true },
      { vars: task?.vars ?? {}, lazy: true },
      ...this.layers.scopes,
      { vars: this.layers.included, lazy: true },
      { vars: this.layers.registered, lazy: false },
      { vars: this.settings.extraVars, lazy: true },
      {
        vars: {
          ...this.magic,
          ...(facts ? { facts, ...ansibleFactVars(facts) } : {}),
          ansible_check_mode: this.settings.check,
          playbook_dir: this.settings.playbookDir,
          ...(role ? { role_path: role.dir, role_name: role.name } : {}),
          ...(task ? { ansible_search_path: searchPathOf(task, this.settings.playbookDir) } : {}),
          ...extra,
        },
        lazy: false,
      },
    ]);
  }

  /** Run `body` with the variables of an include (its `vars:` and loop item) visible to its tasks. */
  async withScope<T>(scope: VarScope[], body: () => Promise<T>): Promise<T> {
    const scopes = this.layers.scopes;
    scopes.push(...scope);
    try {
      return await body();
    } finally {
      scopes.splice(scopes.length - scope.length, scope.length);
    }
  }

  /** A registered result (for run_once to hand to the batch's other hosts). */
  registeredValue(name: string): unknown {
    return this.layers.registered[name];
  }

  register(name: string, value: unknown): void {
    this.layers.registered[name] = value;
  }

  /** Variables a task set (set_fact, a module's result variables). */
  setRegistered(vars: Record<string, unknown>): void {
    Object.assign(this.layers.registered, vars);
  }

  /** Variables include_vars loaded. */
  setIncluded(vars: Record<string, unknown>): void {
    Object.assign(this.layers.included, vars);
  }
}

/** Who a task's commands run as: `become` of the task, else of the play, `-b`, or the inventory's ansible_become. */
import type { BecomeSpec } from '../connection/connection.js';
import { toBool } from '../playbook/template.js';
import type { Play, Task } from '../playbook/types.js';

/** What a host's become depends on besides the play and the task. */
export interface BecomeDefaults {
  /** `-b`: become for every task */
  become: boolean;
  becomeUser?: string;
  becomePassword?: string;
}

/** The become of `task` (or of the play alone) on a host with these inventory variables; undefined: none. */
export function becomeFor(play: Play, task: Task | undefined, inventoryVars: Record<string, unknown>, settings: BecomeDefaults): BecomeSpec | undefined {
  const on = task?.become ?? (play.become || settings.become || ansibleBool(inventoryVars.ansible_become));
  if (!on) return undefined;
  const user = task?.becomeUser ?? play.becomeUser ?? (inventoryVars.ansible_become_user as string | undefined) ?? settings.becomeUser ?? 'root';
  return { user, password: settings.becomePassword };
}

/** Ansible's reading of a boolean variable: INI inventories hand over `ansible_become=yes` as a string. */
function ansibleBool(v: unknown): boolean {
  return typeof v === 'string' ? toBool(v) : v === true || v === 1;
}

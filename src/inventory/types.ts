/** An Ansible-compatible inventory after parsing (INI or YAML) and merging host_vars/ and group_vars/. */

export interface InventoryHost {
  /** inventory hostname (`inventory_hostname`) */
  name: string;
  /** variables set on the host itself: inline INI vars, YAML host vars, host_vars/NAME */
  vars: Record<string, unknown>;
  /** groups the host belongs to directly (not through children) */
  groups: string[];
}

export interface InventoryGroup {
  name: string;
  /** [group:vars], YAML group vars, group_vars/NAME */
  vars: Record<string, unknown>;
  /** child group names ([group:children], YAML children) */
  children: string[];
  /** hosts listed directly in the group */
  hosts: string[];
}

export interface Inventory {
  /** the file (or comma list) it came from */
  source: string;
  /** hosts in the order they first appear in the inventory */
  hosts: Map<string, InventoryHost>;
  /** every group, including `all` and `ungrouped` */
  groups: Map<string, InventoryGroup>;
  /** what was skipped, as Ansible skips it with a warning ("file:line:col: …") */
  warnings?: string[];
}

/** The module registry: playbook key → module. `ansible.builtin.X` (and `ansible.legacy.X`) name module X too. */
import { blockinfileModule } from './blockinfile.js';
import { commandModule, shellModule } from './command.js';
import { assertModule, debugModule, failModule, metaModule, setFactModule } from './controller.js';
import { copyModule, templateModule } from './copy.js';
import { cronModule } from './cron.js';
import { debconfModule } from './debconf.js';
import { fileModule, statModule } from './file.js';
import { firewallModule } from './firewall.js';
import { groupModule } from './group.js';
import { includeVarsModule } from './include-vars.js';
import { iptablesModule } from './iptables.js';
import { lineinfileModule } from './lineinfile.js';
import { masterCfModule } from './master-cf.js';
import type { Module } from './module.js';
import { aptModule, dnfModule, packageModule, yumModule } from './package.js';
import { postconfModule } from './postconf.js';
import { replaceModule } from './replace.js';
import { serviceModule, systemdModule, systemdServiceModule } from './service.js';
import { smtpProbeModule } from './smtp-probe.js';
import { sysctlModule } from './sysctl.js';
import { userModule } from './user.js';
import { x509Module } from './x509.js';

const all: Module<never>[] = [
  postconfModule,
  masterCfModule,
  iptablesModule,
  firewallModule,
  serviceModule,
  systemdModule,
  systemdServiceModule,
  commandModule,
  shellModule,
  copyModule,
  templateModule,
  lineinfileModule,
  replaceModule,
  blockinfileModule,
  fileModule,
  statModule,
  assertModule,
  debugModule,
  failModule,
  setFactModule,
  metaModule,
  includeVarsModule,
  packageModule,
  aptModule,
  yumModule,
  dnfModule,
  x509Module,
  smtpProbeModule,
  sysctlModule,
  cronModule,
  groupModule,
  userModule,
  debconfModule,
] as Module<never>[];

const registry = new Map<string, Module>(all.map((m) => [m.name, m as unknown as Module]));

/** Collections whose modules of the same name we implement. */
const PREFIXES = ['ansible.builtin.', 'ansible.legacy.', 'community.crypto.'];
/** Modules of other collections, by their full name. */
const QUALIFIED = new Map([['ansible.posix.sysctl', 'sysctl']]);

export function findModule(key: string): Module | undefined {
  const direct = registry.get(key) ?? registry.get(QUALIFIED.get(key) ?? '');
  if (direct) return direct;
  const prefix = PREFIXES.find((p) => key.startsWith(p));
  return prefix ? registry.get(key.slice(prefix.length)) : undefined;
}

/** Full names of other collections under which a module is known (ansible.posix.sysctl for sysctl). */
export function qualifiedNames(name: string): string[] {
  return [...QUALIFIED].filter(([, n]) => n === name).map(([full]) => full);
}

export function moduleNames(): string[] {
  return [...registry.keys()];
}

export function allModules(): Module[] {
  return [...registry.values()];
}

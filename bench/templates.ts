/**
 * `npx tsx bench/templates.ts [--hosts 500]`: what templating costs on a run with nothing to change, where every
 * task's arguments and conditions are rendered on every host. Renders the SMTPS playbook's tasks and handlers for
 * N hosts (inventory variables, play variables, facts and the results its tasks register) and prints the time.
 */
import path from 'node:path';
import { parseInventoryText } from '../src/inventory/load.js';
import { hostVars } from '../src/inventory/vars.js';
import { evaluateCondition, mergeVars, renderDeep } from '../src/playbook/template.js';
import { allTasks } from '../src/playbook/types.js';
import { loadPlaybook } from '../src/playbook/validate.js';

const hostsArg = process.argv.indexOf('--hosts');
const hosts = hostsArg > 0 ? Number(process.argv[hostsArg + 1]) : 500;
const playbook = loadPlaybook(path.join(import.meta.dirname, '..', 'playbooks', 'smtps.yaml'));
const names = Array.from({ length: hosts }, (_x, i) => `mx${String(i + 1).padStart(4, '0')}.example.org`);
const inv = parseInventoryText(`[mail]\n${names.join('\n')}\n`, 'bench-inventory');

/** Facts as gather.ts reports them, RedHat and Debian hosts alternating. */
function factsFor(i: number): Record<string, unknown> {
  const redhat = i % 2 === 0;
  return {
    hostname: names[i]!.split('.')[0], fqdn: names[i], os_family: redhat ? 'RedHat' : 'Debian', distribution: redhat ? 'rhel' : 'debian',
    distribution_version: redhat ? '9.4' : '12', init: 'systemd', user: 'root', uid: 0, postfix_version: '3.7.11', postfix_config_dir: '/etc/postfix',
    firewall: redhat ? 'iptables-services' : 'netfilter-persistent', firewall_service: redhat ? 'iptables' : 'netfilter-persistent',
    iptables_rules_file: redhat ? '/etc/sysconfig/iptables' : '/etc/iptables/rules.v4', ip6tables_rules_file: null, iptables_version: 'iptables v1.8.9 (nf_tables)',
    tls_cert_dir: redhat ? '/etc/pki/tls/certs' : '/etc/ssl/certs', tls_key_dir: redhat ? '/etc/pki/tls/private' : '/etc/ssl/private',
  };
}

/** What the playbook's register: tasks leave behind on a healthy host. */
const registered = {
  smtps_cert: { changed: false, name_matches: true, expired: false, subject_alt_name: ['DNS:mx.example.org'], not_after: '2030-01-01T00:00:00Z' },
  smtps_key: { changed: false, stat: { exists: true, isreg: true, roth: false, woth: false } },
  smtps_sasldb: { changed: false, stat: { exists: true } },
};

const inventoryVars = names.map((n) => hostVars(inv, n));
let renders = 0;
let failures = 0;
const start = process.hrtime.bigint();
const cpu0 = process.cpuUsage();
for (let i = 0; i < hosts; i++) {
  for (const play of playbook.plays) {
    for (const task of [...allTasks(play), ...play.handlers]) {
      const vars = mergeVars([
        { vars: inventoryVars[i]!, lazy: true },
        { vars: play.vars, lazy: true },
        { vars: task.vars, lazy: true },
        { vars: registered, lazy: false },
        { vars: { facts: factsFor(i), ansible_check_mode: false, playbook_dir: playbook.dir }, lazy: false },
      ]);
      try {
        if (task.when !== undefined) evaluateCondition(task.when, vars);
        renderDeep(task.args, vars);
        renders++;
      } catch {
        failures++;
      }
    }
  }
}
const ms = Number(process.hrtime.bigint() - start) / 1e6;
const cpu = process.cpuUsage(cpu0);
const cpuMs = (cpu.user + cpu.system) / 1000;
console.log(`templating the SMTPS playbook: ${hosts} hosts, ${renders} task renders, ${failures} failed renders`);
console.log(`  wall ${ms.toFixed(0)} ms, CPU ${cpuMs.toFixed(0)} ms (${(cpuMs / hosts).toFixed(2)} ms per host, ${((cpuMs * 1000) / Math.max(1, renders)).toFixed(1)} µs per task)`);

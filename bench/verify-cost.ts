/**
 * `npx tsx bench/verify-cost.ts [--name NAME] [--rounds N]`: what comparing the live rules with the rules files
 * costs on a host after a guarded firewall restart, with the kernel as normaliser (the files loaded into a
 * throwaway network namespace and read back) and without it (the live rules and the files only). Times the
 * settle step's script inside each lab host (no SSH: the step runs in an exec the restart makes anyway), for the
 * lab's own small ruleset and for the largest real-world-shaped fixture. Needs a lab that is up
 * (`npm run lab -- up 2 --name NAME`); it leaves the hosts' rules as they were.
 */
import { readFileSync } from 'node:fs';
import { Command } from 'commander';
import { labExec, readLabState, type LabHost } from '../test/lab/lab.js';
import { rulesFilesOf, settleScript } from '../src/modules/service.js';
import type { Facts } from '../src/facts/types.js';

const program = new Command()
  .option('--name <name>', 'lab name', 'lab')
  .option('--rounds <n>', 'timed runs per host, case and mode', (v) => Number(v), 30)
  .parse();
const { name, rounds } = program.opts<{ name: string; rounds: number }>();

const state = readLabState(name);
if (!state) throw new Error(`lab "${name}" is not up: npm run lab -- up 2 --name ${name}`);

const FACTS: Partial<Record<LabHost['flavour'], Pick<Facts, 'firewall' | 'iptables_rules_file' | 'ip6tables_rules_file'>>> = {
  rhel: { firewall: 'iptables-services', iptables_rules_file: '/etc/sysconfig/iptables', ip6tables_rules_file: '/etc/sysconfig/ip6tables' },
  debian: { firewall: 'netfilter-persistent', iptables_rules_file: '/etc/iptables/rules.v4', ip6tables_rules_file: '/etc/iptables/rules.v6' },
};
const SERVICE: Partial<Record<LabHost['flavour'], string>> = { rhel: 'iptables', debian: 'netfilter-persistent' };
const BIG = readFileSync(new URL('../test/fixtures/iptables/real-world/university-department.rules', import.meta.url));

/** Milliseconds of `rounds` settle steps, measured inside the host with a monotonic clock (ns from date +%s%N). */
async function time(host: LabHost, normalise: boolean): Promise<number[]> {
  const files = rulesFilesOf(SERVICE[host.flavour]!, FACTS[host.flavour] as Facts);
  const out: number[] = [];
  for (let i = 0; i < rounds; i++) {
    const token = `bench${i}`;
    const script = settleScript({ token, mode: 'cancel', verify: files, normalise, dir: '/var/lib/provision' });
    const r = await labExec(
      host,
      `mkdir -p /var/lib/provision && : > /var/lib/provision/firewall-${token}.armed; pv_t0=$(date +%s%N); { ${script}\n} >/dev/null; echo $(( ($(date +%s%N) - pv_t0) / 1000 ))`,
      { timeoutMs: 60_000 },
    );
    if (r.code !== 0) throw new Error(`${host.name}: exit ${r.code}: ${r.stderr}`);
    out.push(Number(r.stdout.trim()) / 1000);
  }
  return out;
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

console.log(`settle step after a firewall restart, median of ${rounds} runs per host (ms, inside the host)`);
console.log('flavour | ruleset | files compared | without namespace | with namespace | cost');
for (const flavour of ['rhel', 'debian'] as const) {
  const host = state.hosts.find((h) => h.flavour === flavour);
  if (!host) continue;
  const file = FACTS[flavour]!.iptables_rules_file!;
  const saved = (await labExec(host, `cat ${file}`)).stdout;
  for (const [label, content] of [['lab (7 rules)', null], ['university gateway (2 tables, 26 rules)', BIG]] as const) {
    if (content) await labExec(host, `cat > ${file} && iptables-restore < ${file}`, { stdin: content });
    const files = rulesFilesOf(SERVICE[flavour]!, FACTS[flavour] as Facts).length;
    const without = median(await time(host, false));
    const withNs = median(await time(host, true));
    console.log(`${flavour} | ${label} | ${files} | ${without.toFixed(1)} | ${withNs.toFixed(1)} | +${(withNs - without).toFixed(1)}`);
  }
  await labExec(host, `cat > ${file} && iptables-restore < ${file}`, { stdin: saved });
}

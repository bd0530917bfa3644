import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { editNftConf, editUfwRules, editZone, nftHas, parseListAll, zoneHas } from '../../../src/formats/firewall-files.js';
import { type FirewallArgs, armScript, firewallModule, liveProblem, settleScript } from '../../../src/modules/firewall.js';
import { ModuleError, type Plan } from '../../../src/modules/module.js';
import { type FakeContext, type FakeOptions, fakeContext, rhelFacts } from '../../support/fake-context.js';

const fixture = (name: string) => readFileSync(fileURLToPath(new URL(`../../fixtures/firewall/${name}`, import.meta.url))).toString();
const labFile = (name: string) => readFileSync(fileURLToPath(new URL(`../../lab/files/${name}`, import.meta.url))).toString();

const RHEL9_PUBLIC = fixture('rhel9-public.xml');
const DEBIAN12_PUBLIC = fixture('debian12-public.xml');
const UFW_USER = fixture('ubuntu2204-user.rules');
const NFT_DEBIAN = fixture('debian12-nftables.conf');
const NFT_LAB = labFile('nftables.conf.ubuntu2404');
const smtps: FirewallArgs = { port: 465, protocol: 'tcp', service: 'smtps' };

/** `firewall-cmd --zone=public --list-all` on a RHEL 9 host with public.xml as shipped. */
const LIST_ALL = (services: string, ports = '') =>
  `public (active)\n  target: default\n  icmp-block-inversion: no\n  interfaces: eth0\n  sources: \n  services: ${services}\n  ports: ${ports}\n  protocols: \n  forward: yes\n  masquerade: no\n`;

function changed(plan: Plan): Extract<Plan, { changed: true }> {
  expect(plan.changed).toBe(true);
  return plan as Extract<Plan, { changed: true }>;
}

function firewalld(files: FakeOptions['files'], listAll: string, zone = 'public'): FakeContext {
  return fakeContext({
    facts: { ...rhelFacts, distribution: 'rhel', distribution_version: '9', firewall: 'firewalld', firewall_service: null, iptables_rules_file: null, ip6tables_rules_file: null, firewalld_zone: zone },
    files: { '/usr/lib/firewalld/services/smtps.xml': '<service/>', ...files },
    commands: { [`firewalld:list-all:${zone}`]: listAll },
  });
}

describe('firewalld zone XML', () => {
  it('adds smtps after the last service of public.xml as Debian 12 ships it, exactly as firewalld 1.3 wrote it', () => {
    expect(editZone(DEBIAN12_PUBLIC, { port: 465, protocol: 'tcp', service: 'smtps' }, true)).toBe(fixture('debian12-public.xml.after-add-service-smtps'));
  });

  it('adds a port after the services of public.xml as RHEL 9 ships it, and removes it again', () => {
    const o = { port: 465, protocol: 'tcp' as const };
    const after = editZone(RHEL9_PUBLIC, o, true);
    expect(after).toContain('  <service name="cockpit"/>\n  <port port="465" protocol="tcp"/>\n  <forward/>\n');
    expect(zoneHas(after, o)).toBe(true);
    expect(editZone(after, o, false)).toBe(RHEL9_PUBLIC);
  });

  it('leaves a rich rule that names the service alone, and adds the service among the top-level ones', () => {
    const rich = RHEL9_PUBLIC.replace(
      '  <forward/>\n',
      // firewalld writes rich rules after the services and ports, before interfaces, sources and forward.
      '  <rule family="ipv4">\n    <source address="192.0.2.0/24"/>\n    <service name="smtps"/>\n    <accept/>\n  </rule>\n  <forward/>\n',
    );
    const o = { port: 465, protocol: 'tcp' as const, service: 'smtps' };
    expect(zoneHas(rich, o)).toBe(false);
    const after = editZone(rich, o, true);
    expect(after).toContain('  <service name="cockpit"/>\n  <service name="smtps"/>\n  <rule family="ipv4">\n');
    expect(editZone(after, o, false)).toBe(rich);
  });

  it('reads services and ports from firewall-cmd --list-all', () => {
    expect(parseListAll(LIST_ALL('cockpit dhcpv6-client ssh', '465/tcp'))).toEqual({ services: ['cockpit', 'dhcpv6-client', 'ssh'], ports: ['465/tcp'] });
  });
});

describe('firewall module on firewalld (RHEL 9 public.xml)', () => {
  it('plans permanent and runtime, with the zone XML firewalld will write under /etc as the diff', async () => {
    const ctx = firewalld({ '/usr/lib/firewalld/zones/public.xml': RHEL9_PUBLIC }, LIST_ALL('cockpit dhcpv6-client ssh'));
    const plan = changed(await firewallModule.plan(ctx, smtps));
    expect(plan.msg).toBe('allow service smtps in firewalld zone public (permanent and runtime)');
    expect(plan.files).toHaveLength(1);
    expect(plan.files[0]!.path).toBe('/etc/firewalld/zones/public.xml');
    expect(plan.files[0]!.before).toBeNull();
    expect(plan.files[0]!.after.toString()).toContain('  <service name="cockpit"/>\n  <service name="smtps"/>\n');
    expect(plan.commands.map((c) => c.script)).toEqual(['firewall-cmd --permanent --zone=public --add-service=smtps', 'firewall-cmd --zone=public --add-service=smtps']);
  });

  it('only the runtime when the permanent zone already has it; nothing when both do', async () => {
    const etc = editZone(RHEL9_PUBLIC, { port: 465, protocol: 'tcp', service: 'smtps' }, true);
    const runtimeOnly = changed(await firewallModule.plan(firewalld({ '/etc/firewalld/zones/public.xml': etc }, LIST_ALL('cockpit dhcpv6-client ssh')), smtps));
    expect(runtimeOnly.files).toEqual([]);
    expect(runtimeOnly.commands.map((c) => c.script)).toEqual(['firewall-cmd --zone=public --add-service=smtps']);
    const none = await firewallModule.plan(firewalld({ '/etc/firewalld/zones/public.xml': etc }, LIST_ALL('cockpit dhcpv6-client smtps ssh')), smtps);
    expect(none).toMatchObject({ changed: false, msg: 'firewalld zone public allows service smtps (permanent and runtime)' });
  });

  it('uses the zone given, and refuses a zone or service firewalld does not have', async () => {
    const ctx = firewalld({ '/usr/lib/firewalld/zones/public.xml': RHEL9_PUBLIC }, LIST_ALL('ssh'), 'internal');
    await expect(firewallModule.plan(ctx, smtps)).rejects.toThrow('firewalld has no zone "internal"');
    const given = firewalld({ '/usr/lib/firewalld/zones/public.xml': RHEL9_PUBLIC }, LIST_ALL('ssh'), 'public');
    await expect(firewallModule.plan(given, { ...smtps, service: 'nosuch' })).rejects.toThrow('firewalld knows no service "nosuch"');
  });
});

describe('ufw user rules (as ufw 0.36 writes them on Ubuntu 22.04)', () => {
  it('`ufw allow 465/tcp` predicted byte for byte as ufw wrote it, and deleted again', () => {
    const o = { port: 465, protocol: 'tcp' as const };
    const after = editUfwRules(UFW_USER, o, 4, true);
    expect(after).toBe(fixture('ubuntu2204-user.rules.after-allow-465-tcp'));
    expect(editUfwRules(after, o, 4, false)).toBe(UFW_USER);
  });

  it('plans `ufw allow 465/tcp` with both user rules files as the diff; nothing once they hold it', async () => {
    const v6 = UFW_USER.replaceAll('ufw-', 'ufw6-').replace('0.0.0.0/0 any 0.0.0.0/0', '::/0 any ::/0');
    const facts = { firewall: 'ufw' as const, firewall_service: null, iptables_rules_file: null, ip6tables_rules_file: null, distribution: 'ubuntu', distribution_version: '22.04' };
    const ctx = fakeContext({ facts, files: { '/etc/ufw/user.rules': UFW_USER, '/etc/ufw/user6.rules': v6, '/etc/default/ufw': 'IPV6=yes\n' } });
    const plan = changed(await firewallModule.plan(ctx, smtps));
    expect(plan.msg).toBe('ufw allow 465/tcp');
    expect(plan.files.map((f) => f.path)).toEqual(['/etc/ufw/user.rules', '/etc/ufw/user6.rules']);
    expect(plan.files[1]!.after.toString()).toContain('### tuple ### allow tcp 465 ::/0 any ::/0 in\n-A ufw6-user-input -p tcp --dport 465 -j ACCEPT\n');
    expect(plan.commands.map((c) => c.script)).toEqual(['ufw allow 465/tcp']);
    await ctx.writeFiles(plan.files);
    expect(await firewallModule.plan(ctx, smtps)).toMatchObject({ changed: false, msg: 'ufw allows 465/tcp' });
  });
});

describe('nftables.conf', () => {
  const o = { port: 465, protocol: 'tcp' as const };

  it('adds the rule at the end of chain input of /etc/nftables.conf as Debian 12 ships it (no final reject)', () => {
    const after = editNftConf(NFT_DEBIAN, o, true);
    expect(after).toContain('\tchain input {\n\t\ttype filter hook input priority filter;\n\t\ttcp dport 465 accept\n\t}\n');
    expect(nftHas(after, o)).toBe(true);
    expect(editNftConf(after, o, false)).toBe(NFT_DEBIAN);
  });

  it('adds the rule above the final reject of a restrictive input chain, and moves one found below it', () => {
    const after = editNftConf(NFT_LAB, o, true);
    expect(after).toContain('\t\ttcp dport 25 accept\n\t\ttcp dport 465 accept\n\t\treject with icmpx type admin-prohibited\n');
    const below = NFT_LAB.replace('reject with icmpx type admin-prohibited\n', 'reject with icmpx type admin-prohibited\n\t\ttcp dport 465 accept\n');
    expect(nftHas(below, o)).toBe(false);
    expect(editNftConf(below, o, true)).toBe(after);
  });

  it('plans the file change with nft -c -f as validation, then loading it; nothing once it holds', async () => {
    const facts = { firewall: 'nftables' as const, firewall_service: null, iptables_rules_file: null, ip6tables_rules_file: null };
    const ctx = fakeContext({ facts, files: { '/etc/nftables.conf': NFT_LAB } });
    const plan = changed(await firewallModule.plan(ctx, smtps));
    expect(plan.files[0]!.validate?.[0]?.script).toBe('nft -c -f "$CANDIDATE"');
    expect(ctx.validated.map((f) => f.path)).toEqual(['/etc/nftables.conf']);
    expect(plan.commands.map((c) => c.script)).toEqual(['nft -f /etc/nftables.conf']);
    await ctx.writeFiles(plan.files);
    expect(await firewallModule.plan(ctx, smtps)).toMatchObject({ changed: false });
  });

  it('refuses a file without table inet filter, or a port opened in a set it would have to edit', async () => {
    expect(() => editNftConf('table ip nat {\n}\n', o, true)).toThrow('no "table inet filter');
    const set = NFT_LAB.replace('tcp dport 25 accept', 'tcp dport { 25, 465 } accept');
    expect(nftHas(set, o)).toBe(true);
    expect(() => editNftConf(set, o, false)).toThrow('in a set');
  });
});

describe('firewall module: choosing the firewall', () => {
  it('delegates to the iptables rule the SMTPS playbook always wrote on a CentOS 6 rules file', async () => {
    const rules = readFileSync(fileURLToPath(new URL('../../fixtures/iptables/rhel6-sysconfig-iptables', import.meta.url))).toString();
    const ctx = fakeContext({ facts: rhelFacts, files: { '/etc/sysconfig/iptables': { content: rules, mode: 0o600 } }, commands: { 'iptables-save:4': rules } });
    const plan = changed(await firewallModule.plan(ctx, smtps));
    expect(plan.msg).toBe('add "-A INPUT -p tcp -m conntrack --ctstate NEW -m tcp --dport 465 -j ACCEPT" to INPUT before the final REJECT');
  });

  it('refuses a host with no firewall it can manage', async () => {
    const ctx = fakeContext({ facts: { firewall: 'none' } });
    await expect(firewallModule.plan(ctx, smtps)).rejects.toThrow(ModuleError);
    await expect(firewallModule.plan(ctx, smtps)).rejects.toThrow('no firewall this module can manage');
  });
});

describe('firewall guard scripts', () => {
  const x = {
    backend: 'nftables' as const,
    opening: { port: 465, protocol: 'tcp' as const },
    present: true,
    action: ['nft -f /etc/nftables.conf'],
    undo: ['cat "$pv_b.conf" > /etc/nftables.conf'],
    verify: 'nft list chain inet filter input',
    predicted: [],
  };

  it('arms a detached undo before the action, and cancels with a check of the live chain', () => {
    const arm = armScript('t0', 30, x, Buffer.from('old'));
    expect(arm.indexOf('nohup')).toBeLessThan(arm.indexOf('nft -f /etc/nftables.conf'));
    expect(arm).toContain('printf %s b2xk | base64 -d');
    expect(settleScript('t0', 'cancel', x)).toContain('rm "$pv_b.armed"');
  });

  it("reads ufw's live chains from a cancel, and fails when the IPv4 chain cannot be listed", () => {
    const ufw = { ...x, backend: 'ufw' as const };
    const ok = '@@t1 cancelled\n@@t1 live -N ufw-user-input\n@@t1 live -A ufw-user-input -p tcp -m tcp --dport 465 -j ACCEPT\n';
    expect(liveProblem(ufw, ok, 't1')).toBeNull();
    expect(liveProblem(ufw, '@@t1 cancelled\n@@t1 live iptables: No chain/target/match by that name.\n', 't1')).toContain('cannot list the live ufw-user-input chain');
    expect(liveProblem(ufw, ok.replace('465', '466'), 't1')).toContain('lacks');
  });

  it('reads the live chain from a cancel', () => {
    const ok = '@@t0 cancelled\n@@t0 live table inet filter {\n@@t0 live \tchain input {\n@@t0 live \t\ttcp dport 465 accept\n';
    expect(liveProblem(x, ok, 't0')).toBeNull();
    expect(liveProblem(x, ok.replace('465', '466'), 't0')).toContain('lacks "tcp dport 465 accept"');
  });
});

import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { Ajv2020 } from 'ajv/dist/2020.js';
import { describe, expect, it } from 'vitest';
import { type IptablesArgs, iptablesModule } from '../../../src/modules/iptables.js';
import { ModuleError, type Plan } from '../../../src/modules/module.js';
import { type FakeOptions, fakeContext, rhelFacts } from '../../support/fake-context.js';

const fixture = (name: string) => readFileSync(fileURLToPath(new URL(`../../fixtures/iptables/${name}`, import.meta.url))).toString();

const RHEL6 = fixture('rhel6-sysconfig-iptables');
const DEBIAN = fixture('debian12.iptables-save');
const V4 = '/etc/iptables/rules.v4';
const SYSCONFIG = '/etc/sysconfig/iptables';
const smtps: IptablesArgs = { chain: 'INPUT', protocol: 'tcp', dport: 465, jump: 'ACCEPT' };

/** A Debian host whose rules file and live ruleset are given (live defaults to the file: no drift). */
function debian(file: string | null, opts: Partial<FakeOptions> & { live?: string } = {}) {
  return fakeContext({
    ...opts,
    files: file === null ? {} : { [V4]: { content: file, mode: 0o640 } },
    commands: { 'iptables-save:4': opts.live ?? file ?? '', ...opts.commands },
  });
}

function rhel(file: string, opts: Partial<FakeOptions> & { live?: string } = {}) {
  return fakeContext({
    ...opts,
    facts: rhelFacts,
    files: { [SYSCONFIG]: { content: file, mode: 0o600 } },
    commands: { 'iptables-save:4': opts.live ?? file, ...opts.commands },
  });
}

function changed(plan: Plan): Extract<Plan, { changed: true }> {
  expect(plan.changed).toBe(true);
  return plan as Extract<Plan, { changed: true }>;
}

/** Plan, write what it planned, plan again: the second plan must find nothing to do. */
async function applyAndReplan(ctx: ReturnType<typeof fakeContext>, args: IptablesArgs) {
  const first = changed(await iptablesModule.plan(ctx, args));
  await ctx.writeFiles(first.files);
  const second = await iptablesModule.plan(ctx, args);
  return { first, second, written: ctx.files.get(first.files[0]!.path)!.content!.toString() };
}

describe('iptables: adding a rule', () => {
  it.each([
    {
      name: 'RHEL 6 default: tcp/465 goes above the final REJECT of INPUT',
      ctx: () => rhel(RHEL6),
      args: smtps,
      path: SYSCONFIG,
      expected: RHEL6.replace(
        '-A INPUT -j REJECT',
        '-A INPUT -p tcp -m tcp --dport 465 -j ACCEPT\n-A INPUT -j REJECT',
      ),
      msg: 'add "-A INPUT -p tcp -m tcp --dport 465 -j ACCEPT" to INPUT before the final REJECT',
      again: 'INPUT accepts tcp/465 before the final REJECT',
    },
    {
      name: 'RHEL 6 default, new connections only, by service name',
      ctx: () => rhel(RHEL6),
      args: { ...smtps, dport: 'smtps', ctstate: ['NEW'] },
      path: SYSCONFIG,
      expected: RHEL6.replace(
        '-A INPUT -j REJECT',
        '-A INPUT -p tcp -m conntrack --ctstate NEW -m tcp --dport 465 -j ACCEPT\n-A INPUT -j REJECT',
      ),
      msg: 'add "-A INPUT -p tcp -m conntrack --ctstate NEW -m tcp --dport 465 -j ACCEPT" to INPUT before the final REJECT',
      again: 'INPUT accepts tcp/465 in state NEW before the final REJECT',
    },
    {
      name: 'Debian iptables-save output with a DROP policy and a final REJECT',
      ctx: () => debian(DEBIAN),
      args: { ...smtps, source: '198.19.0.0/255.255.0.0', comment: 'smtps from the lab' },
      path: V4,
      expected: DEBIAN.replace(
        '-A INPUT -j REJECT',
        '-A INPUT -s 198.19.0.0/16 -p tcp -m tcp --dport 465 -m comment --comment "smtps from the lab" -j ACCEPT\n-A INPUT -j REJECT',
      ),
      msg: 'add "-A INPUT -s 198.19.0.0/16 -p tcp -m tcp --dport 465 -m comment --comment "smtps from the lab" -j ACCEPT" to INPUT before the final REJECT',
      again: 'INPUT accepts tcp/465 from 198.19.0.0/255.255.0.0 before the final REJECT',
    },
    {
      name: 'position top',
      ctx: () => rhel(RHEL6),
      args: { chain: 'INPUT', source: '198.19.66.6', jump: 'DROP', position: 'top' as const },
      path: SYSCONFIG,
      expected: RHEL6.replace(':OUTPUT ACCEPT [0:0]\n', ':OUTPUT ACCEPT [0:0]\n-A INPUT -s 198.19.66.6/32 -j DROP\n'),
      msg: 'add "-A INPUT -s 198.19.66.6/32 -j DROP" at the top of INPUT',
      again: 'INPUT drops all traffic from 198.19.66.6',
    },
    {
      name: 'position bottom (after the final REJECT, as asked)',
      ctx: () => rhel(RHEL6),
      args: { chain: 'INPUT', jump: 'LOG', position: 'bottom' as const },
      path: SYSCONFIG,
      expected: RHEL6.replace('-A FORWARD', '-A INPUT -j LOG\n-A FORWARD'),
      msg: 'add "-A INPUT -j LOG" at the end of INPUT',
      again: 'INPUT logs all traffic',
    },
    {
      name: 'an unconditional DROP goes to the bottom by default',
      ctx: () => rhel(RHEL6),
      args: { chain: 'FORWARD', jump: 'DROP' },
      path: SYSCONFIG,
      expected: RHEL6.replace('COMMIT', '-A FORWARD -j DROP\nCOMMIT'),
      msg: 'add "-A FORWARD -j DROP" at the end of FORWARD',
      again: 'FORWARD drops all traffic',
    },
    {
      name: 'a chain without rules in a table without declarations',
      ctx: () => debian('*filter\n-A OUTPUT -j ACCEPT\nCOMMIT\n'),
      args: { chain: 'INPUT', protocol: 'udp', dport: 'domain', jump: 'ACCEPT' },
      path: V4,
      expected: '*filter\n-A INPUT -p udp -m udp --dport 53 -j ACCEPT\n-A OUTPUT -j ACCEPT\nCOMMIT\n',
      msg: 'add "-A INPUT -p udp -m udp --dport 53 -j ACCEPT" at the end of INPUT',
      again: 'INPUT accepts udp/53',
    },
    {
      name: 'a table the file does not have yet',
      ctx: () => debian(DEBIAN.replace(/# Generated[^\n]*\n\*nat[\s\S]*$/, '')),
      args: { table: 'raw' as const, chain: 'PREROUTING', protocol: 'udp', dport: 123, jump: 'ACCEPT' },
      path: V4,
      expected: `${DEBIAN.replace(/# Generated[^\n]*\n\*nat[\s\S]*$/, '')}*raw\n:PREROUTING ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n-A PREROUTING -p udp -m udp --dport 123 -j ACCEPT\nCOMMIT\n`,
      msg: 'add "-A PREROUTING -p udp -m udp --dport 123 -j ACCEPT" at the end of PREROUTING',
      again: 'PREROUTING accepts udp/123',
    },
  ])('$name', async ({ ctx: make, args, path, expected, msg, again }) => {
    const ctx = make();
    const { first, second, written } = await applyAndReplan(ctx, args);
    expect(first.msg).toBe(msg);
    expect(first.files).toHaveLength(1);
    expect(first.files[0]!.path).toBe(path);
    expect(first.commands).toEqual([]);
    expect(written).toBe(expected);
    expect(second).toMatchObject({ changed: false, msg: again });
    expect(ctx.warnings).toEqual([]);
  });

  it('validates the candidate with iptables-restore --test, in check mode too', async () => {
    const ctx = rhel(RHEL6, { check: true });
    const plan = changed(await iptablesModule.plan(ctx, smtps));
    expect(ctx.calls.filter((c) => c.op === 'validate')).toEqual([{ op: 'validate', arg: SYSCONFIG }]);
    expect(ctx.validated[0]!.after.toString()).toBe(plan.files[0]!.after.toString());
    expect(plan.files[0]!.validate).toEqual([{ script: 'iptables-restore --test < "$CANDIDATE"', description: 'iptables-restore --test' }]);
    expect(ctx.calls.some((c) => c.op === 'writeFile')).toBe(false);
  });

  it('fails the task when the candidate does not validate', async () => {
    const ctx = rhel(RHEL6, { validateError: 'validation failed (iptables-restore --test): Error occurred at line: 10' });
    await expect(iptablesModule.plan(ctx, smtps)).rejects.toThrow('Error occurred at line: 10');
  });

  it('uses ip6tables for ip_version 6', async () => {
    const v6 = fixture('debian12.ip6tables-save').replace('-A INPUT -s 2001:db8:19::/48 -p tcp -m tcp --dport 465 -j ACCEPT\n', '');
    const ctx = fakeContext({ files: { '/etc/iptables/rules.v6': v6 }, commands: { 'iptables-save:6': v6 } });
    const args: IptablesArgs = { ...smtps, ip_version: 6, source: '2001:DB8:19:0::/48' };
    const plan = changed(await iptablesModule.plan(ctx, args));
    expect(plan.msg).toBe('add "-A INPUT -s 2001:db8:19::/48 -p tcp -m tcp --dport 465 -j ACCEPT" to INPUT before the final REJECT');
    expect(plan.files[0]!.path).toBe('/etc/iptables/rules.v6');
    expect(plan.files[0]!.validate![0]!.script).toBe('ip6tables-restore --test < "$CANDIDATE"');
    expect(ctx.calls).toContainEqual({ op: 'readCommand', arg: 'iptables-save:6' });
    expect(plan.files[0]!.after.toString()).toBe(fixture('debian12.ip6tables-save'));
  });
});

describe('iptables: a rule that is already there', () => {
  it.each([
    ['-A INPUT -m state --state NEW -m tcp -p tcp --dport smtps -j ACCEPT', { ...smtps, ctstate: 'NEW' }, 'INPUT accepts tcp/465 in state NEW before the final REJECT'],
    ['-A INPUT -p 6 --dport 465 -m comment --comment "mail" -j ACCEPT', smtps, 'INPUT accepts tcp/465 before the final REJECT'],
    ['-A INPUT -j ACCEPT -p tcp --dport submissions', smtps, 'INPUT accepts tcp/465 before the final REJECT'],
  ])('%s is no change', async (line, args, msg) => {
    const file = RHEL6.replace('-A INPUT -j REJECT', `${line}\n-A INPUT -j REJECT`);
    const ctx = rhel(file);
    expect(await iptablesModule.plan(ctx, args)).toMatchObject({ changed: false, msg });
    expect(ctx.calls.some((c) => c.op === 'validate')).toBe(false);
  });

  it('is moved above the final REJECT when it sits below it, as written', async () => {
    const stray = '-A INPUT -p tcp --dport 465 -j ACCEPT';
    const file = RHEL6.replace('-A FORWARD', `${stray}\n-A FORWARD`);
    const ctx = rhel(file);
    const { first, second, written } = await applyAndReplan(ctx, smtps);
    expect(first.msg).toBe(
      'move "-A INPUT -p tcp -m tcp --dport 465 -j ACCEPT" above the final REJECT of INPUT (line 12 is below it and matches nothing)',
    );
    expect(written).toBe(RHEL6.replace('-A INPUT -j REJECT', `${stray}\n-A INPUT -j REJECT`));
    expect(second).toMatchObject({ changed: false });
  });

  it('below the final REJECT is fine when position is bottom', async () => {
    const file = RHEL6.replace('-A FORWARD', '-A INPUT -p tcp --dport 465 -j ACCEPT\n-A FORWARD');
    expect(await iptablesModule.plan(rhel(file), { ...smtps, position: 'bottom' })).toMatchObject({ changed: false, msg: 'INPUT accepts tcp/465' });
  });
});

describe('iptables: absent', () => {
  it('removes every equivalent rule, then has nothing to do', async () => {
    const file = RHEL6.replace('-A INPUT -j REJECT', '-A INPUT -p tcp -m conntrack --ctstate NEW --dport 22 -j ACCEPT\n-A INPUT -j REJECT');
    const ctx = rhel(file);
    const args: IptablesArgs = { chain: 'INPUT', protocol: 'tcp', dport: 'ssh', ctstate: 'NEW', jump: 'ACCEPT', state: 'absent' };
    const { first, second, written } = await applyAndReplan(ctx, args);
    expect(first.msg).toBe('remove 2 rules like "-A INPUT -p tcp -m conntrack --ctstate NEW -m tcp --dport 22 -j ACCEPT" from INPUT');
    expect(written).toBe(RHEL6.replace('-A INPUT -m state --state NEW -m tcp -p tcp --dport 22 -j ACCEPT\n', ''));
    expect(second).toMatchObject({ changed: false, msg: 'INPUT has no rule accepting tcp/22 in state NEW' });
  });

  it('leaves rules that only look alike', async () => {
    const ctx = rhel(RHEL6);
    const plan = await iptablesModule.plan(ctx, { chain: 'INPUT', protocol: 'tcp', dport: 22, jump: 'ACCEPT', state: 'absent' });
    expect(plan).toMatchObject({ changed: false, msg: 'INPUT has no rule accepting tcp/22' });
  });
});

describe('iptables: the rules file', () => {
  it('is created from the live ruleset when it does not exist', async () => {
    const ctx = debian(null, { live: DEBIAN });
    const plan = changed(await iptablesModule.plan(ctx, smtps));
    expect(plan.msg).toBe('create /etc/iptables/rules.v4 from the live ruleset: add "-A INPUT -p tcp -m tcp --dport 465 -j ACCEPT" to INPUT before the final REJECT');
    expect(plan.files[0]).toMatchObject({ before: null, beforeSha: null, mode: 0o640 });
    expect(plan.files[0]!.after.toString()).toBe(DEBIAN.replace('-A INPUT -j REJECT', '-A INPUT -p tcp -m tcp --dport 465 -j ACCEPT\n-A INPUT -j REJECT'));
  });

  it('is created even when the live ruleset already has the rule, so it survives a reboot', async () => {
    const live = DEBIAN.replace('-A INPUT -j REJECT', '-A INPUT -p tcp -m tcp --dport 465 -j ACCEPT\n-A INPUT -j REJECT');
    const plan = changed(await iptablesModule.plan(debian(null, { live }), smtps));
    expect(plan.msg).toBe('create /etc/iptables/rules.v4 from the live ruleset (INPUT already accepts tcp/465 before the final REJECT)');
    expect(plan.files[0]!.after.toString()).toBe(live);
  });

  it('is read from rules_file when given', async () => {
    const ctx = fakeContext({ files: { '/srv/fw.rules': RHEL6 }, commands: { 'iptables-save:4': RHEL6 } });
    const plan = changed(await iptablesModule.plan(ctx, { ...smtps, rules_file: '/srv/fw.rules' }));
    expect(plan.files[0]!.path).toBe('/srv/fw.rules');
  });

  it.each([
    ['*filter\n-A INPUT -j ACCEPT\n', '/etc/iptables/rules.v4: line 2: table filter has no COMMIT'],
  ])('refuses to edit %j', async (file, message) => {
    await expect(iptablesModule.plan(debian(file, { live: '' }), smtps)).rejects.toThrow(message);
  });

  describe('a rules file that builds INPUT with -I commands (web host rules written as a script of commands)', () => {
    const WEB = readFileSync(fileURLToPath(new URL('../../fixtures/iptables/real-world/web-host-inserted.rules', import.meta.url))).toString();
    /** What iptables-save printed after iptables-restore loaded WEB (INPUT only): the REJECT is rule 6. */
    const LOADED_INPUT = [
      '-A INPUT -i lo -j ACCEPT',
      '-A INPUT -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT',
      '-A INPUT -p tcp -m tcp --dport 22 -j ACCEPT',
      '-A INPUT -p tcp -m tcp --dport 25 -j ACCEPT',
      '-A INPUT -p tcp -m multiport --dports 80,443 -j WEB',
      '-A INPUT -j REJECT --reject-with icmp-host-prohibited',
    ];
    const live = `*filter\n:INPUT ACCEPT [0:0]\n:FORWARD DROP [0:0]\n:OUTPUT ACCEPT [0:0]\n:WEB - [0:0]\n${LOADED_INPUT.join('\n')}\nCOMMIT\n`;

    it('adds an -I line at the position iptables-restore gives the final REJECT, after every other command; a second plan changes nothing', async () => {
      const ctx = debian(WEB, { live });
      const { first, second, written } = await applyAndReplan(ctx, smtps);
      expect(first.msg).toBe(
        'add "-I INPUT 6 -p tcp -m tcp --dport 465 -j ACCEPT" to INPUT before the final REJECT (position 6 once the file\'s commands have run)',
      );
      expect(written).toBe(WEB.replace(/COMMIT\n$/, '-I INPUT 6 -p tcp -m tcp --dport 465 -j ACCEPT\nCOMMIT\n'));
      expect(second).toMatchObject({ changed: false, msg: 'INPUT accepts tcp/465 before the final REJECT' });
    });

    it('finds a rule the file inserts with -I as present', async () => {
      const plan = await iptablesModule.plan(debian(WEB, { live }), { chain: 'INPUT', protocol: 'tcp', dport: 22, jump: 'ACCEPT' });
      expect(plan).toMatchObject({ changed: false, msg: 'INPUT accepts tcp/22 before the final REJECT' });
    });

    it.each([
      [{ chain: 'INPUT', protocol: 'tcp', dport: 22, jump: 'ACCEPT', state: 'absent' } as IptablesArgs, 'removing a rule could move where the later ones land'],
      [{ chain: 'OUTPUT', protocol: 'tcp', dport: 25, jump: 'ACCEPT' } as IptablesArgs, null],
    ])('refuses what it cannot place exactly, with the reason and a hint: %j', async (args, reason) => {
      const attempt = iptablesModule.plan(debian(WEB, { live }), args);
      if (reason === null) {
        // OUTPUT has no commands of its own: plain -A editing applies.
        expect((await attempt).changed).toBe(true);
        return;
      }
      await expect(attempt).rejects.toThrow(
        `/etc/iptables/rules.v4 builds INPUT with commands (line 12): ${reason}; load it and save it in iptables-save form (iptables-restore < FILE; iptables-save > FILE) to edit it here`,
      );
    });
  });

  it('refuses a user chain the file does not have', async () => {
    await expect(iptablesModule.plan(rhel(RHEL6), { ...smtps, chain: 'SMTP' })).rejects.toThrow(
      new ModuleError('chain SMTP does not exist in table filter of /etc/sysconfig/iptables'),
    );
  });

  it('adds to a user chain the file declares', async () => {
    const plan = changed(await iptablesModule.plan(debian(DEBIAN), { chain: 'LOGDROP', source: '198.19.66.7', jump: 'RETURN', position: 'top' }));
    expect(plan.files[0]!.after.toString()).toBe(DEBIAN.replace('-A LOGDROP -m limit', '-A LOGDROP -s 198.19.66.7/32 -j RETURN\n-A LOGDROP -m limit'));
  });
});

describe('iptables: live ruleset', () => {
  it('reports drift when the file has the rule and the live ruleset does not', async () => {
    const file = RHEL6.replace('-A INPUT -j REJECT', '-A INPUT -p tcp -m tcp --dport 465 -j ACCEPT\n-A INPUT -j REJECT');
    const ctx = rhel(file, { live: fixture('rhel6-loaded.iptables-save') });
    expect(await iptablesModule.plan(ctx, smtps)).toMatchObject({ changed: false });
    expect(ctx.warnings).toEqual([
      'drift: INPUT accepting tcp/465: /etc/sysconfig/iptables has it, the live ruleset does not have it; restarting iptables loads the file',
    ]);
  });

  it('reports drift when only the live ruleset has the rule, and still adds it to the file', async () => {
    const live = fixture('rhel6-loaded.iptables-save').replace('-A INPUT -j REJECT', '-A INPUT -p tcp -m tcp --dport 465 -j ACCEPT\n-A INPUT -j REJECT');
    const ctx = rhel(RHEL6, { live });
    expect((await iptablesModule.plan(ctx, smtps)).changed).toBe(true);
    expect(ctx.warnings).toEqual([
      'drift: INPUT accepting tcp/465: /etc/sysconfig/iptables does not have it, the live ruleset has it; restarting iptables loads the file',
    ]);
  });

  it('reports a live rule that sits after the final REJECT', async () => {
    const file = RHEL6.replace('-A INPUT -j REJECT', '-A INPUT -p tcp -m tcp --dport 465 -j ACCEPT\n-A INPUT -j REJECT');
    const live = fixture('rhel6-loaded.iptables-save').replace('-A FORWARD', '-A INPUT -p tcp -m tcp --dport 465 -j ACCEPT\n-A FORWARD');
    const ctx = rhel(file, { live });
    await iptablesModule.plan(ctx, smtps);
    expect(ctx.warnings[0]).toContain('the live ruleset has it only after the final REJECT');
  });

  it('says nothing while the file this run changed waits for the firewall restart', async () => {
    const ctx = rhel(RHEL6);
    const { second } = await applyAndReplan(ctx, smtps);
    expect(second.changed).toBe(false);
    expect(ctx.warnings).toEqual([]);
  });

  it('warns when the live ruleset cannot be read, and goes on', async () => {
    const ctx = rhel(RHEL6, { commands: { 'iptables-save:4': { code: 1, stderr: Buffer.from('iptables-save: Permission denied (you must be root)') } } });
    expect((await iptablesModule.plan(ctx, smtps)).changed).toBe(true);
    expect(ctx.warnings).toEqual([
      'cannot compare /etc/sysconfig/iptables with the live ruleset: iptables-save exited 1: iptables-save: Permission denied (you must be root)',
    ]);
  });
});

describe('iptables: hosts it does not manage', () => {
  it.each([
    ['firewalld', 'firewalld is active'],
    ['ufw', 'ufw is enabled'],
    ['nftables', 'nftables only (no iptables command)'],
    ['none', 'no firewall tooling (neither iptables nor nft)'],
  ] as const)('%s is refused, naming what was found', async (firewall, found) => {
    const ctx = fakeContext({ facts: { firewall, firewall_service: null, iptables_rules_file: null, ip6tables_rules_file: null } });
    await expect(iptablesModule.plan(ctx, smtps)).rejects.toThrow(
      `unsupported firewall: ${found}; the iptables module edits iptables-services (/etc/sysconfig/iptables) or netfilter-persistent (/etc/iptables/rules.v4) rules files`,
    );
    expect(iptablesModule.reads!(smtps, ctx.facts)).toEqual({});
    expect(ctx.calls).toEqual([]);
  });
});

describe('iptables: arguments', () => {
  it('reads the rules file and the live ruleset in the prefetch', () => {
    expect(iptablesModule.reads!(smtps, rhelFacts)).toEqual({ files: [SYSCONFIG], commands: [{ key: 'iptables-save:4', script: 'iptables-save', dependsOn: [] }] });
    expect(iptablesModule.reads!({ ...smtps, ip_version: 6 }, rhelFacts)).toEqual({
      files: ['/etc/sysconfig/ip6tables'],
      commands: [{ key: 'iptables-save:6', script: 'ip6tables-save', dependsOn: [] }],
    });
  });

  it.each([
    [{ chain: 'INPUT', dport: 465, jump: 'ACCEPT' }, 'dport needs protocol tcp, udp, sctp, dccp'],
    [{ chain: 'INPUT', protocol: 'icmp', dport: 465 }, 'dport needs protocol tcp, udp, sctp, dccp'],
    [{ ...smtps, dport: 'smtps-ish' }, 'dport "smtps-ish" is not a port number, a range like 1024:65535, or a known service name; give the number'],
    [{ ...smtps, sport: '70000' }, 'sport "70000" is not a port number, a range like 1024:65535, or a known service name; give the number'],
    [{ ...smtps, source: 'mail.example.org' }, 'source "mail.example.org" is not an IPv4 address or network (host names resolve differently on each host; give the address)'],
    [{ ...smtps, destination: '2001:db8::1', ip_version: 4 }, 'destination "2001:db8::1" is not an IPv4 address or network (host names resolve differently on each host; give the address)'],
    [{ ...smtps, ctstate: 'NEW,OPEN' }, 'ctstate "OPEN" is not one of INVALID, NEW, RELATED, ESTABLISHED, UNTRACKED, SNAT, DNAT'],
    [{ ...smtps, reject_with: 'tcp-reset' }, 'reject_with needs jump: REJECT'],
    [{ chain: 'INPUT', jump: 'REJECT', reject_with: 'icmp6-adm-prohibited', ip_version: 'ipv4' }, 'reject_with "icmp6-adm-prohibited" is not an IPv4 REJECT reply'],
    [{ ...smtps, source: '198.19.0.0/16', destination: '2001:2::1' }, 'destination "2001:2::1" is not an IPv4 address or network (host names resolve differently on each host; give the address)'],
    [{ chain: 'INPUT', rule: '-p tcp --dport 465 -j ACCEPT', protocol: 'tcp' }, 'rule gives the whole rule: leave out protocol'],
    [{ chain: 'INPUT', rule: '-A INPUT -p tcp --dport 465 -j ACCEPT' }, 'rule is the words after "-A INPUT": leave out "-A"'],
    [{ chain: 'INPUT', rule: '-j ACCEPT\n-j DROP' }, 'rule must be one line'],
    [{ ...smtps, source: '198.19.0.0/16', ip_version: 'both' }, 'ip_version both needs a rule without addresses: "198.19.0.0/16" is of one family only; write one task per family'],
    [{ chain: 'INPUT', jump: 'REJECT', reject_with: 'icmp-host-prohibited', ip_version: 'both' }, 'reject_with "icmp-host-prohibited" exists for one family only; ip_version both needs tcp-reset or a task per family'],
    [{ ...smtps, comment: 'two\nlines' }, 'comment must be one line of at most 256 characters'],
    [{ ...smtps, chain: 'IN PUT' }, 'chain "IN PUT" is not a valid chain name'],
    [{ ...smtps, in_interface: 'eth0 -j DROP' }, 'in_interface "eth0 -j DROP" contains characters iptables does not accept'],
    [{ ...smtps, rules_file: 'rules.v4' }, 'rules_file "rules.v4" must be an absolute path'],
  ])('check(%j)', async (args, message) => {
    expect(iptablesModule.check!(args as IptablesArgs)).toBe(message);
    await expect(iptablesModule.plan(rhel(RHEL6), args as IptablesArgs)).rejects.toThrow(message);
  });

  it('accepts the arguments of the SMTPS playbook', () => {
    expect(iptablesModule.check!({ ...smtps, dport: 'smtps', ctstate: ['NEW'], comment: 'SMTPS', source: '198.19.0.0/16' })).toBeNull();
    expect(iptablesModule.check!({ chain: 'INPUT', jump: 'REJECT', reject_with: 'adm-prohibited', ip_version: 6 })).toBeNull();
  });

  it('has a schema that names and describes every argument and refuses unknown ones', () => {
    const ajv = new Ajv2020({ strict: true, allErrors: true });
    const validate = ajv.compile({ type: 'object', ...iptablesModule.schema });
    expect(validate({ ...smtps, dport: 'smtps' })).toBe(true);
    expect(validate({ ...smtps, ctstate: ['NEW', 'ESTABLISHED'], ip_version: 6, position: 'top', state: 'absent' })).toBe(true);
    expect(validate({ ...smtps, dprot: 465 })).toBe(false);
    expect(validate({ ...smtps, position: 'middle' })).toBe(false);
    expect(validate({ protocol: 'tcp' })).toBe(false);
    const props = iptablesModule.schema.properties as Record<string, { description?: string }>;
    expect(Object.keys(props).sort()).toEqual(
      ['chain', 'comment', 'ctstate', 'destination', 'dport', 'in_interface', 'ip_version', 'jump', 'out_interface', 'position', 'protocol', 'reject_with', 'rule', 'rules_file', 'source', 'sport', 'state', 'table'],
    );
    for (const [name, p] of Object.entries(props)) expect(p.description, name).toMatch(/\w/);
  });
});

describe('iptables: both families (issue 13)', () => {
  const V6 = '/etc/iptables/rules.v6';
  const DEBIAN6 = fixture('debian12.ip6tables-save');
  function dual(v4 = DEBIAN) {
    return fakeContext({
      facts: { ipv6_global: true },
      files: { [V4]: { content: v4, mode: 0o640 }, [V6]: { content: DEBIAN6, mode: 0o640 } },
      commands: { 'iptables-save:4': v4, 'iptables-save:6': DEBIAN6 },
    });
  }

  it.each([
    ['a global IPv6 address', { ipv6_global: true }, undefined, [4, 6]],
    ['an IPv6 rules file', { ip6tables_rules_exists: true }, undefined, [4, 6]],
    ['neither', { ipv6_global: false, ip6tables_rules_exists: false }, undefined, [4]],
    ['a global IPv6 address, ip_version ipv4', { ipv6_global: true }, 'ipv4', [4]],
    ['no IPv6 at all, ip_version both', {}, 'both', [4, 6]],
    ['no IPv6 at all, ip_version ipv6', {}, 'ipv6', [6]],
  ] as const)('a host with %s edits the families %j', async (_what, facts, ipVersion, families) => {
    const args: IptablesArgs = { ...smtps, ...(ipVersion ? { ip_version: ipVersion } : {}) };
    const reads = iptablesModule.reads!(args, { ...rhelFacts, ...facts });
    expect(reads.commands!.map((c) => c.key)).toEqual(families.map((f) => `iptables-save:${f}`));
    expect(reads.files).toEqual(families.map((f) => (f === 6 ? '/etc/sysconfig/ip6tables' : SYSCONFIG)));
  });

  it('a rule with an address stays in its own family', () => {
    const reads = iptablesModule.reads!({ ...smtps, source: '2001:2::/48' }, { ...rhelFacts, ipv6_global: true });
    expect(reads.files).toEqual(['/etc/sysconfig/ip6tables']);
  });

  it('opens 465 in rules.v4 and rules.v6 in one task, each before its final REJECT; a second plan changes nothing', async () => {
    const ctx = dual();
    const first = changed(await iptablesModule.plan(ctx, smtps));
    expect(first.msg).toBe('add "-A INPUT -p tcp -m tcp --dport 465 -j ACCEPT" to INPUT before the final REJECT (IPv4 and IPv6)');
    expect(first.files.map((f) => [f.path, f.validate?.[0]?.description])).toEqual([
      [V4, 'iptables-restore --test'],
      [V6, 'ip6tables-restore --test'],
    ]);
    const v6 = first.files[1]!.after.toString();
    expect(v6).toContain('-A INPUT -p tcp -m tcp --dport 465 -j ACCEPT\n-A INPUT -j REJECT --reject-with icmp6-adm-prohibited');
    await ctx.writeFiles(first.files);
    const second = await iptablesModule.plan(ctx, smtps);
    expect(second).toMatchObject({ changed: false, msg: 'INPUT accepts tcp/465 before the final REJECT (IPv4 and IPv6)' });
  });

  it('names the family when only one file needs the rule', async () => {
    const ctx = dual(DEBIAN.replace('-A INPUT -j REJECT', '-A INPUT -p tcp -m tcp --dport 465 -j ACCEPT\n-A INPUT -j REJECT'));
    const plan = changed(await iptablesModule.plan(ctx, smtps));
    expect(plan.msg).toBe('IPv4: INPUT accepts tcp/465 before the final REJECT; IPv6: add "-A INPUT -p tcp -m tcp --dport 465 -j ACCEPT" to INPUT before the final REJECT');
    expect(plan.files.map((f) => f.path)).toEqual([V6]);
  });
});

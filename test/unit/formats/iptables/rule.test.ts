import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { type RuleLine, parse, ruleText, splitArgs } from '../../../../src/formats/iptables/document.js';
import { canonicalRule, isFinalReject, modelUnderstands, ruleKey } from '../../../../src/formats/iptables/rule.js';
import { canonicalAddress, isAddress } from '../../../../src/formats/iptables/spellings.js';

const fixture = (name: string) => readFileSync(fileURLToPath(new URL(`../../../fixtures/iptables/${name}`, import.meta.url)));
const rules = (text: string) => parse(text).lines.filter((l): l is RuleLine => l.kind === 'rule');

describe('canonical spelling', () => {
  // normalisation.rules holds hand-written spellings; the .iptables-save file is what iptables-save printed after
  // loading it on this project's reference host, rule for rule.
  const cases = (input: string, saved: string, family: 4 | 6) => {
    const given = rules(fixture(input).toString());
    const printed = rules(fixture(saved).toString());
    expect(given).toHaveLength(printed.length);
    return given.map((g, i) => [g.raw, printed[i]!.raw, family] as const);
  };

  it.each([...cases('normalisation.rules', 'normalisation.iptables-save', 4), ...cases('normalisation6.rules', 'normalisation6.ip6tables-save', 6)])(
    '%s → %s',
    (given, printed, family) => {
      const g = parse(`*filter\n${given}\nCOMMIT\n`).lines[1] as RuleLine;
      const p = parse(`*filter\n${printed}\nCOMMIT\n`).lines[1] as RuleLine;
      expect(ruleText(g.chain, canonicalRule(g.args, family))).toBe(printed);
      expect(ruleKey(g.args, family)).toBe(ruleKey(p.args, family));
    },
  );

  it.each([
    ['198.19.1.1', '198.19.1.1/32'],
    ['198.19.7.9/16', '198.19.0.0/16'],
    ['198.19.0.0/255.255.0.0', '198.19.0.0/16'],
    ['1.2.3.4/255.0.255.0', '1.0.3.0/255.0.255.0'],
    ['0.0.0.0/0', null],
    ['2001:DB8:0:0:0:0:0:1', '2001:db8::1/128'],
    ['2001:db8::5/ffff:ffff::', '2001:db8::/32'],
    ['::ffff:1.2.3.4', '::ffff:1.2.3.4/128'],
    ['::2:3', '::0.2.0.3/128'],
    ['::1', '::1/128'],
    ['fe80::1:0:0:1/10', 'fe80::/10'],
    ['1:0:0:1:0:0:0:1', '1:0:0:1::1/128'],
    ['::/0', null],
    ['mail.example.org', 'mail.example.org'],
    // inet_pton reads the deprecated IPv4-compatible form as written, not as IPv4-mapped
    ['::1.2.3.4', '::1.2.3.4/128'],
    ['::ffff:198.19.7.9/112', '::ffff:198.19.0.0/112'],
    ['2001:db8::1/129', '2001:db8::1/129'],
    // a zone index is not part of an address iptables accepts
    ['fe80::1%eth0', 'fe80::1%eth0'],
  ])('canonicalAddress(%s) is %s', (given, printed) => {
    expect(canonicalAddress(given)).toBe(printed);
  });

  it.each([
    ['198.19.0.0/16', 4, true],
    ['198.19.0.0/33', 4, false],
    ['198.19.0.0/16', 6, false],
    ['2001:db8::/48', 6, true],
    ['mail.example.org', 4, false],
    ['1.2.3', 4, false],
  ] as const)('isAddress(%s, %i) is %s', (value, family, ok) => {
    expect(isAddress(value, family)).toBe(ok);
  });
});

describe('rule identity', () => {
  const words = (text: string) => splitArgs(text);
  it.each([
    ['-p tcp --dport 465 -j ACCEPT', '-p tcp -m tcp --dport 465 -j ACCEPT'],
    ['-p tcp --dport smtps -j ACCEPT', '-p tcp -m tcp --dport 465 -j ACCEPT'],
    ['-p tcp --dport submissions -j ACCEPT', '-p 6 --dport 465 -j ACCEPT'],
    ['-s 198.19.0.0/16 -p tcp --dport 465 -j ACCEPT', '-j ACCEPT --dport 465 -p tcp --source 198.19.0.0/255.255.0.0'],
    ['-m state --state ESTABLISHED,RELATED -j ACCEPT', '-m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT'],
    ['-m state --state NEW -m tcp -p tcp --dport 22 -j ACCEPT', '-p tcp -m tcp --dport 22 -m conntrack --ctstate NEW -j ACCEPT'],
    ['-p tcp --dport 465 -m comment --comment smtps -j ACCEPT', '-p tcp --dport 465 -j ACCEPT'],
    ['-j REJECT', '-j REJECT --reject-with icmp-port-unreachable'],
    ['-j REJECT --reject-with host-prohib', '-j REJECT --reject-with icmp-host-prohibited'],
    ['-p tcp --dport 1024: -j DROP', '-p tcp --dport 1024:65535 -j DROP'],
    ['-p tcp --syn -j DROP', '-p tcp --tcp-flags SYN,RST,ACK,FIN SYN -j DROP'],
    ['-s 198.19.1.1 -j DROP', '-s 198.19.1.1/32 -j DROP'],
    ['-j LOGDROP -p tcp --dport 25', '-p tcp -m tcp --dport 25 -j LOGDROP'],
  ])('%s ≡ %s', (a, b) => {
    expect(ruleKey(words(a), 4)).toBe(ruleKey(words(b), 4));
  });

  it.each([
    ['-p tcp --dport 465 -j ACCEPT', '-p tcp --dport 587 -j ACCEPT'],
    ['-p tcp --dport 465 -j ACCEPT', '-p udp --dport 465 -j ACCEPT'],
    ['-p tcp --dport 465 -j ACCEPT', '-p tcp --dport 465 -j DROP'],
    ['-p tcp --dport 22 -j ACCEPT', '-p tcp ! --dport 22 -j ACCEPT'],
    ['-s 198.19.0.0/16 -j ACCEPT', '-s 198.19.0.0/24 -j ACCEPT'],
    ['-m conntrack --ctstate NEW -j ACCEPT', '-m conntrack --ctstate NEW,ESTABLISHED -j ACCEPT'],
    ['-p tcp --dport 465 -j ACCEPT', '-p tcp --dport 465 -m conntrack --ctstate NEW -j ACCEPT'],
    ['-j REJECT --reject-with icmp-host-prohibited', '-j REJECT --reject-with tcp-reset'],
    ['-i eth0 -j ACCEPT', '-o eth0 -j ACCEPT'],
  ])('%s ≢ %s', (a, b) => {
    expect(ruleKey(words(a), 4)).not.toBe(ruleKey(words(b), 4));
  });

  it.each([
    ['-j REJECT --reject-with icmp-host-prohibited', true],
    ['-j DROP', true],
    ['-m comment --comment "everything else" -j REJECT', true],
    ['-p tcp -j REJECT --reject-with tcp-reset', false],
    ['-s 0.0.0.0/0 -j DROP', true],
    ['-i eth0 -j DROP', false],
    ['-j ACCEPT', false],
    ['-j LOGDROP', false],
  ])('isFinalReject(%s) is %s', (text, final) => {
    expect(isFinalReject(words(text), 4)).toBe(final);
  });
});

describe('what the model understands', () => {
  it.each([
    [['-p', 'tcp', '--dport', '22', '-j', 'ACCEPT'], true],
    [['-p', 'tcp', '--dport', 'smtps', '-j', 'ACCEPT'], true],
    [['-p', 'tcp', '-m', 'multiport', '--dports', 'smtp,submission,1024:', '-j', 'ACCEPT'], true],
    // a name outside the model's table is the host's /etc/services to resolve: the model does not guess
    [['-p', 'tcp', '--dport', 'xmpp-client', '-j', 'ACCEPT'], false],
    [['-p', 'tcp', '-m', 'multiport', '--dports', 'smtp,gopher', '-j', 'ACCEPT'], false],
  ] as const)('%j: %s', (args, understood) => {
    expect(modelUnderstands(args, 4, new Set())).toBe(understood);
  });
});

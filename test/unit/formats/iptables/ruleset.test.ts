import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { parse } from '../../../../src/formats/iptables/document.js';
import { loadedRuleset, verifyByModel } from '../../../../src/formats/iptables/ruleset.js';

const fixture = (name: string) => readFileSync(fileURLToPath(new URL(`../../../fixtures/iptables/${name}`, import.meta.url)));

describe('loaded ruleset and drift', () => {
  it('a hand-written RHEL 6 file matches what iptables-save prints once it is loaded', () => {
    expect(verifyByModel(parse(fixture('rhel6-sysconfig-iptables')), parse(fixture('rhel6-loaded.iptables-save')), 4)).toEqual({ mismatch: null, unverifiable: [] });
    expect(verifyByModel(parse(fixture('debian12.iptables-save')), parse(fixture('debian12-counters.iptables-save')), 4)).toEqual({ mismatch: null, unverifiable: [] });
  });

  it.each([
    [
      'a rule missing live',
      (t: string) => t.replace('-A INPUT -i lo -j ACCEPT\n', ''),
      'filter INPUT rule 3: the file has "-A INPUT -i lo -j ACCEPT" (line 9), the live ruleset has "-A INPUT -p tcp -m state --state NEW -m tcp --dport 22 -j ACCEPT"',
    ],
    [
      'an extra live rule at the end',
      (t: string) => t.replace('-A FORWARD -j REJECT --reject-with icmp-host-prohibited\n', '-A FORWARD -j REJECT --reject-with icmp-host-prohibited\n-A FORWARD -j ACCEPT\n'),
      'filter FORWARD rule 2: the live ruleset has "-A FORWARD -j ACCEPT", the file has no such rule',
    ],
    ['another policy', (t: string) => t.replace(':INPUT ACCEPT', ':INPUT DROP'), 'filter INPUT: policy ACCEPT in the file, DROP live'],
    ['an extra user chain', (t: string) => t.replace('COMMIT', ':EXTRA - [0:0]\nCOMMIT'), 'filter EXTRA: the live ruleset has this chain, the file does not'],
    ['no filter table at all', () => '', 'filter INPUT rule 1: the file has "-A INPUT -m state --state ESTABLISHED,RELATED -j ACCEPT" (line 7), the live ruleset has no such rule'],
  ])('names the first difference: %s', (_name, edit, message) => {
    const live = parse(edit(fixture('rhel6-loaded.iptables-save').toString()));
    expect(verifyByModel(parse(fixture('rhel6-sysconfig-iptables')), live, 4).mismatch).toBe(message);
  });

  it('follows -N, -I, -D and -P commands as iptables-restore does', () => {
    const doc = parse('*filter\n-N WEB\n-A INPUT -j DROP\n-I INPUT -p tcp --dport 80 -j WEB\n-I INPUT 2 -j LOG\n-D INPUT -j DROP\n-P FORWARD DROP\nCOMMIT\n');
    const loaded = loadedRuleset(doc).get('filter')!;
    expect(loaded.get('INPUT')!.rules.map((r) => r.text)).toEqual(['-A INPUT -p tcp --dport 80 -j WEB', '-A INPUT -j LOG']);
    expect(loaded.get('WEB')!.policy).toBe('-');
    expect(loaded.get('FORWARD')!.policy).toBe('DROP');
  });
});

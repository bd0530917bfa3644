import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import {
  IptablesSaveSyntaxError,
  type RuleLine,
  chainRules,
  chainSlot,
  ensureTable,
  formatArgs,
  insertLine,
  makeRuleLine,
  parse,
  print,
  removeLines,
  saveString,
  slotAbove,
  splitArgs,
} from '../../../../src/formats/iptables/document.js';

const fixture = (name: string) => readFileSync(fileURLToPath(new URL(`../../../fixtures/iptables/${name}`, import.meta.url)));
const rules = (text: string) => parse(text).lines.filter((l): l is RuleLine => l.kind === 'rule');

describe('round trip', () => {
  const files = [
    'rhel6-sysconfig-iptables',
    'rhel6-loaded.iptables-save',
    'debian12.iptables-save',
    'debian12-counters.iptables-save',
    'debian12.ip6tables-save',
    'normalisation.rules',
    'normalisation.iptables-save',
    'normalisation6.rules',
    'normalisation6.ip6tables-save',
  ];
  it.each(files)('%s prints back byte for byte', (name) => {
    const bytes = fixture(name);
    expect(print(parse(bytes)).equals(bytes)).toBe(true);
  });

  it.each([
    ['no final newline', '*filter\n:INPUT ACCEPT [0:0]\nCOMMIT'],
    ['CRLF line endings', '*filter\r\n:INPUT ACCEPT [0:0]\r\n-A INPUT -j ACCEPT\r\nCOMMIT\r\n'],
    ['blank and indented lines', '\n# top\n\n*filter\n  -A INPUT -j ACCEPT  \n\t\nCOMMIT\n\n'],
    ['empty file', ''],
    ['a lone newline', '\n'],
  ])('%s', (_name, text) => {
    expect(print(parse(text)).toString('utf8')).toBe(text);
  });

  it('keeps bytes that are not UTF-8', () => {
    const bytes = Buffer.concat([Buffer.from('# caf'), Buffer.from([0xe9, 0xff]), Buffer.from('\n*filter\n-A INPUT -m comment --comment "\xe9" -j ACCEPT\nCOMMIT\n', 'latin1')]);
    const doc = parse(bytes);
    expect(doc.encoding).toBe('latin1');
    expect(print(doc).equals(bytes)).toBe(true);
  });
});

describe('parse', () => {
  it('reads tables, policies, counters and rules of iptables-save -c output', () => {
    const doc = parse(fixture('debian12-counters.iptables-save'));
    const chains = doc.lines.filter((l) => l.kind === 'chain').map((l) => l.kind === 'chain' && `${l.table} ${l.chain} ${l.policy}`);
    expect(chains).toEqual([
      'filter INPUT DROP',
      'filter FORWARD ACCEPT',
      'filter OUTPUT ACCEPT',
      'filter LOGDROP -',
      'nat PREROUTING ACCEPT',
      'nat INPUT ACCEPT',
      'nat OUTPUT ACCEPT',
      'nat POSTROUTING ACCEPT',
    ]);
    const first = doc.lines.find((l): l is RuleLine => l.kind === 'rule')!;
    expect(first).toMatchObject({ table: 'filter', chain: 'INPUT', args: ['-i', 'lo', '-j', 'ACCEPT'], counters: { packets: '6', bytes: '300' } });
    const commented = doc.lines.find((l): l is RuleLine => l.kind === 'rule' && l.raw.includes('--comment'))!;
    expect(commented.args).toContain('ssh from anywhere');
  });

  it.each([
    ['-A INPUT -j ACCEPT\n', 1, 'command outside a table'],
    ['*filter\n-A INPUT -j ACCEPT\n', 2, 'table filter has no COMMIT'],
    ['*filter\n*nat\nCOMMIT\n', 2, 'table filter is not closed with COMMIT before *nat'],
    ['*filter\nACCEPT everything\nCOMMIT\n', 2, 'unrecognised line "ACCEPT everything"'],
    ['*filter\n:INPUT ACCEPT [x:0]\nCOMMIT\n', 2, 'bad counters "[x:0]"'],
    ['COMMIT\n', 1, 'COMMIT outside a table'],
    ['*filter\n-A\nCOMMIT\n', 2, 'rule without a chain'],
  ])('refuses %j at line %i', (text, line, reason) => {
    let error: unknown;
    try {
      parse(text);
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(IptablesSaveSyntaxError);
    expect(error).toMatchObject({ line, reason });
  });
});

describe('words', () => {
  // Each row was checked against what iptables-restore 1.8.9 accepted and iptables-save printed back.
  it.each([
    ['-m comment --comment "a \\"q\\" b\\\\c" -j ACCEPT', ['-m', 'comment', '--comment', 'a "q" b\\c', '-j', 'ACCEPT']],
    ['--comment ab"cd"', ['--comment', 'abcd']],
    ['--comment "ab"cd', ['--comment', 'ab', 'cd']],
    ['--comment "" -j ACCEPT', ['--comment', '', '-j', 'ACCEPT']],
    ['--comment "a\\tb"', ['--comment', 'atb']],
    ["--comment 'single quoted'", ['--comment', "'single", "quoted'"]],
    ['-p  tcp\t--dport 22', ['-p', 'tcp', '--dport', '22']],
  ])('splitArgs(%j)', (text, words) => {
    expect(splitArgs(text)).toEqual(words);
  });

  it.each([
    ['smtps', 'smtps'],
    ['smtps.lab', '"smtps.lab"'],
    ["it's", '"it\\\'s"'],
    ['a "q" b\\c', '"a \\"q\\" b\\\\c"'],
    ['', '""'],
    ['iptables drop: ', '"iptables drop: "'],
  ])('saveString(%j) is %s, as iptables-save prints it', (value, printed) => {
    expect(saveString(value)).toBe(printed);
    expect(splitArgs(printed)).toEqual([value]);
  });

  it('quotes only what needs it outside string options', () => {
    expect(formatArgs(['-s', '198.19.0.0/16', '-m', 'comment', '--comment', 'smtps.lab', '-j', 'ACCEPT'])).toBe(
      '-s 198.19.0.0/16 -m comment --comment "smtps.lab" -j ACCEPT',
    );
  });
});

describe('edits', () => {
  const rhel = () => parse(fixture('rhel6-sysconfig-iptables'));
  const line = (doc: ReturnType<typeof parse>, text: string) => makeRuleLine(doc, 'filter', 'INPUT', splitArgs(text));

  it('inserts above the final REJECT, keeping the comment that introduces it', () => {
    const doc = parse('*filter\n-A INPUT -p tcp --dport 22 -j ACCEPT\n# everything else\n-A INPUT -j REJECT\nCOMMIT\n');
    const final = chainRules(doc, 'filter', 'INPUT')[1]!;
    const out = insertLine(doc, slotAbove(doc, final.index), line(doc, '-p tcp -m tcp --dport 465 -j ACCEPT'));
    expect(print(out).toString()).toBe(
      '*filter\n-A INPUT -p tcp --dport 22 -j ACCEPT\n-A INPUT -p tcp -m tcp --dport 465 -j ACCEPT\n# everything else\n-A INPUT -j REJECT\nCOMMIT\n',
    );
  });

  it('puts the first rule of an empty chain after the rules of the chains declared before it', () => {
    const doc = parse('*filter\n:INPUT ACCEPT [0:0]\n:FORWARD ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n-A INPUT -j ACCEPT\n-A OUTPUT -j ACCEPT\nCOMMIT\n');
    const fwd = makeRuleLine(doc, 'filter', 'FORWARD', ['-j', 'DROP']);
    const out = insertLine(doc, chainSlot(doc, 'filter', 'FORWARD', 'bottom'), fwd);
    expect(print(out).toString()).toBe(
      '*filter\n:INPUT ACCEPT [0:0]\n:FORWARD ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n-A INPUT -j ACCEPT\n-A FORWARD -j DROP\n-A OUTPUT -j ACCEPT\nCOMMIT\n',
    );
  });

  it('puts a rule at the top and at the bottom of a chain', () => {
    const doc = rhel();
    const top = insertLine(doc, chainSlot(doc, 'filter', 'INPUT', 'top'), line(doc, '-s 198.19.9.9/32 -j DROP'));
    expect(rules(print(top).toString()).map((r) => r.raw)[0]).toBe('-A INPUT -s 198.19.9.9/32 -j DROP');
    const bottom = insertLine(doc, chainSlot(doc, 'filter', 'INPUT', 'bottom'), line(doc, '-j LOG'));
    const after = rules(print(bottom).toString()).map((r) => r.raw);
    expect(after.slice(4, 7)).toEqual(['-A INPUT -j REJECT --reject-with icmp-host-prohibited', '-A INPUT -j LOG', '-A FORWARD -j REJECT --reject-with icmp-host-prohibited']);
  });

  it('writes counters on new rules when the file keeps them, and keeps CRLF', () => {
    const counted = parse(fixture('debian12-counters.iptables-save'));
    expect(line(counted, '-j ACCEPT').raw).toBe('[0:0] -A INPUT -j ACCEPT');
    const crlf = parse('*filter\r\n-A INPUT -j DROP\r\nCOMMIT\r\n');
    expect(print(insertLine(crlf, 1, line(crlf, '-j ACCEPT'))).toString()).toBe('*filter\r\n-A INPUT -j ACCEPT\r\n-A INPUT -j DROP\r\nCOMMIT\r\n');
  });

  it('adds a missing table with its built-in chains', () => {
    const doc = ensureTable(parse('*filter\nCOMMIT'), 'nat');
    expect(print(doc).toString()).toBe('*filter\nCOMMIT\n*nat\n:PREROUTING ACCEPT [0:0]\n:INPUT ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n:POSTROUTING ACCEPT [0:0]\nCOMMIT\n');
    expect(ensureTable(doc, 'nat')).toBe(doc);
  });

  it('removes lines', () => {
    const doc = rhel();
    const icmp = chainRules(doc, 'filter', 'INPUT')[1]!;
    expect(print(removeLines(doc, [icmp.index])).toString()).toBe(fixture('rhel6-sysconfig-iptables').toString().replace('-A INPUT -p icmp -j ACCEPT\n', ''));
  });
});

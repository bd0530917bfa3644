import { describe, expect, it } from 'vitest';
import { parseIniValue } from '../../../src/inventory/ini.js';
import { PyFloat } from '../../../src/playbook/template/python.js';
import { parseInventoryText } from '../../../src/inventory/load.js';
import { inputErrorOf } from '../../support/errors.js';

const ini = (text: string) => parseInventoryText(text, 'hosts.ini', 'ini');

const errorOf = (text: string) => inputErrorOf(() => ini(text));

describe('INI values are typed like ast.literal_eval', () => {
  const cases: [string, unknown][] = [
    ['22', 22],
    ['0x1F', 31],
    ['0o17', 15],
    ['0b101', 5],
    ['1_000', 1000],
    ['-5', -5],
    ['- 5', -5],
    ['-(5)', -5],
    ['--5', '--5'],
    ['3.5', 3.5],
    // Python's literal_eval reads 1e3 and 2.0 as floats; a whole one is boxed so templates print 1000.0, 2.0.
    ['1e3', new PyFloat(1000)],
    ['2.0', new PyFloat(2)],
    ['-3.0', new PyFloat(-3)],
    ['[1.0, 2]', [new PyFloat(1), 2]],
    ['00', 0],
    ['08', '08'],
    ['1j', '1j'],
    ['12345678901234567890', '12345678901234567890'],
    ['True', true],
    ['False', false],
    ['None', null],
    ['true', 'true'],
    ['yes', 'yes'],
    ['FALSE', 'FALSE'],
    ["'quoted'", 'quoted'],
    ['"a" \'b\'', 'ab'],
    ["'a\\tb'", 'a\tb'],
    ["r'a\\tb'", 'a\\tb'],
    ["b'caf\\xc3\\xa9'", 'café'],
    ["'\\u00e9t\\u00e9'", 'été'],
    ['[1, "x", None]', [1, 'x', null]],
    ['[1, 2,]', [1, 2]],
    ['(1,)', [1]],
    ['(1)', 1],
    ['()', []],
    ['{"a": 1, 2: [3]}', { a: 1, '2': [3] }],
    ['{}', {}],
    ['{1, 2}', [1, 2]],
    ['25,465', [25, 465]],
    ['...', '...'],
    ['8080 # the web port', 8080],
    ['hello # not a comment here', 'hello # not a comment here'],
    ['/etc/postfix/main.cf', '/etc/postfix/main.cf'],
    ['permit_sasl_authenticated,reject', 'permit_sasl_authenticated,reject'],
    ['[1, 2', '[1, 2'],
    ['{[1]: 2}', '{[1]: 2}'],
    ["f'x'", "f'x'"],
    ['', ''],
  ];
  it.each(cases)('%j → %j', (text, expected) => {
    expect(parseIniValue(text)).toEqual(expected);
  });

  it('keeps a "__proto__" dict key as data', () => {
    const v = parseIniValue("{'__proto__': 1}") as Record<string, unknown>;
    expect(Object.getPrototypeOf(v)).toBe(Object.prototype);
    expect(Object.keys(v)).toEqual(['__proto__']);
  });
});

describe('INI host lines', () => {
  const cases: [string, string, Record<string, unknown>][] = [
    ['h1 a=1 b="x y" c=\'z w\'', 'h1', { a: 1, b: 'x y', c: 'z w' }],
    // shlex removes the quotes before literal_eval sees the value, so "22" is still a number
    ['h1 port="22"', 'h1', { port: 22 }],
    ['h1 port="\'22\'"', 'h1', { port: '22' }],
    ["h1 pw='p#ss' x=a#b", 'h1', { pw: 'p#ss', x: 'a' }],
    ["h1 msg=it\\'s", 'h1', { msg: "it's" }],
    ['h1 path="C:\\\\dir"', 'h1', { path: 'C:\\dir' }],
    ['h1 empty=""', 'h1', { empty: '' }],
    ['h1 ports="[25, 465]"', 'h1', { ports: [25, 465] }],
    ['h1 become=True user=root # trailing comment', 'h1', { become: true, user: 'root' }],
    ['h1 eq=a=b', 'h1', { eq: 'a=b' }],
    ['h1:2222', 'h1', { ansible_port: 2222 }],
    ['h1:2222 ansible_port=2200', 'h1', { ansible_port: 2200 }],
    ['198.19.0.5:22', '198.19.0.5', { ansible_port: 22 }],
    ['[2001:db8::1]:2222', '2001:db8::1', { ansible_port: 2222 }],
    ['2001:db8::1', '2001:db8::1', {}],
    ['  indented.lab.test\tx=1', 'indented.lab.test', { x: 1 }],
  ];
  it.each(cases)('%s', (line, host, vars) => {
    const inv = ini(`[g]\n${line}\n`);
    expect([...inv.hosts.keys()]).toEqual([host]);
    expect(inv.hosts.get(host)!.vars).toEqual(vars);
  });

  it('types [group:vars] values the same way, one whole value per line', () => {
    const inv = ini('[g]\nh1\n[g:vars]\nport = 465\nbanner = mail relay ready\nrestart=True\nflag=FALSE\nlist=[1, 2]\n');
    expect(inv.groups.get('g')!.vars).toEqual({ port: 465, banner: 'mail relay ready', restart: true, flag: 'FALSE', list: [1, 2] });
  });
});

describe('INI host ranges', () => {
  const cases: [string, string[]][] = [
    ['web[01:03]', ['web01', 'web02', 'web03']],
    ['web[8:10]', ['web8', 'web9', 'web10']],
    ['web[1:10:4]', ['web1', 'web5', 'web9']],
    ['web[001:010:5]', ['web001', 'web006']],
    ['x[:2]', ['x0', 'x1', 'x2']],
    ['db-[a:c]', ['db-a', 'db-b', 'db-c']],
    ['db-[y:B]', ['db-y', 'db-z', 'db-A', 'db-B']],
    ['r[1:2]-[a:b].lab.test', ['r1-a.lab.test', 'r1-b.lab.test', 'r2-a.lab.test', 'r2-b.lab.test']],
  ];
  it.each(cases)('%s', (pattern, names) => {
    expect([...ini(`[g]\n${pattern}\n`).hosts.keys()]).toEqual(names);
  });

  it('applies a port and inline vars to every host of a range', () => {
    const inv = ini('[g]\nmx[01:02].lab.test:2222 ansible_user=admin\n');
    for (const h of ['mx01.lab.test', 'mx02.lab.test']) {
      expect(inv.hosts.get(h)!.vars).toEqual({ ansible_port: 2222, ansible_user: 'admin' });
    }
  });
});

describe('INI structure', () => {
  it('skips # and ; comment lines and blank lines', () => {
    const inv = ini('# comment\n; another\n\n   # indented comment\nh1\n[g] # comment after a header\nh2\n');
    expect([...inv.hosts.keys()]).toEqual(['h1', 'h2']);
    expect(inv.groups.get('g')!.hosts).toEqual(['h2']);
  });

  it('puts hosts before any section in ungrouped, unless they join a group later', () => {
    const inv = ini('h1\nh2\n[web]\nh2\n');
    expect(inv.groups.get('ungrouped')!.hosts).toEqual(['h1']);
    expect(inv.hosts.get('h1')!.groups).toEqual(['ungrouped']);
    expect(inv.hosts.get('h2')!.groups).toEqual(['web']);
  });

  it('treats hosts of an explicit [all] section as ungrouped', () => {
    const inv = ini('[all]\nh1\n[all:vars]\nx=1\n');
    expect(inv.groups.get('all')!.hosts).toEqual([]);
    expect(inv.groups.get('ungrouped')!.hosts).toEqual(['h1']);
    expect(inv.groups.get('all')!.vars).toEqual({ x: 1 });
  });

  it('accepts [g:children] naming groups defined later, and [g:vars] before [g]', () => {
    const inv = ini('[mail:children]\ndebian\nrhel\n[debian:vars]\nfw=nft\n[debian]\nmx1\n[rhel]\nold1\n');
    expect(inv.groups.get('mail')!.children).toEqual(['debian', 'rhel']);
    expect(inv.groups.get('all')!.children).toEqual(['ungrouped', 'mail']);
    expect(inv.groups.get('debian')!.vars).toEqual({ fw: 'nft' });
  });

  it('merges inline vars of a host listed in several groups, the later line winning', () => {
    const inv = ini('[a]\nh1 x=1 y=1\n[b]\nh1 x=2\n');
    expect(inv.hosts.get('h1')!.vars).toEqual({ x: 2, y: 1 });
    expect(inv.hosts.get('h1')!.groups).toEqual(['a', 'b']);
  });

  it('accepts CRLF line endings and a byte-order mark', () => {
    const inv = ini('\uFEFF[g]\r\nh1 x=1\r\n');
    expect(inv.hosts.get('h1')!.vars).toEqual({ x: 1 });
  });
});

describe('INI errors say where and what', () => {
  const cases: [string, string, string][] = [
    ['[mail:var]\n', '1:7', 'unknown section type ":var" in [mail:var]; a section is [mail], [mail:vars] or [mail:children]'],
    ['[mail servers]\n', '1:1', 'invalid section header "[mail servers]"'],
    ['[mail] ; note\n', '1:1', 'invalid section header "[mail] ; note"'],
    ['[mail]\nmx1 foo\n', '2:5', 'expected key=value after the host name, got "foo"'],
    ['[mail]\nmx1 foo-bar=1\n', '2:5', '"foo-bar" is not a valid variable name'],
    ['[mail]\nmx1 =1\n', '2:5', 'empty variable name'],
    ['[mail]\nmx1 a=1 a=2\n', '2:9', 'variable "a" is set twice on this host line'],
    ['[mail]\nmx1 a="x\n', '2:7', 'unclosed " quote'],
    ["[mail]\nmx1 a='x\n", '2:7', "unclosed ' quote"],
    ['[web]\nweb[20:01]\n', '2:1', 'host range [20:01] counts down: 20 is after 01'],
    ['[web]\nweb[c:a]\n', '2:1', 'host range [c:a] counts down'],
    ['[web]\nweb[01:3]\n', '2:1', 'host range [01:3] pads to 2 digits, so its end must have 2 digits too'],
    ['[web]\nweb[1:5:0]\n', '2:1', 'host range [1:5:0] has step "0"'],
    ['[web]\nweb[1:x]\n', '2:1', 'host range [1:x] needs two numbers or two single letters'],
    ['[web]\nweb[1:]\n', '2:1', 'host range [1:] has no end'],
    ['[web]\nweb[1-3]\n', '2:1', 'host range [1-3] must be [begin:end] or [begin:end:step]'],
    ['[web]\nweb[1:3\n', '2:1', 'has "[" with no closing "]"'],
    ['[web]\nweb[1:999999]\n', '2:1', 'expands to more than 100000 hosts'],
    ['[web]\n  mx1:\n', '2:3', 'host "mx1:" ends in ":" with no port'],
    ['[web]\nmx1:ssh\n', '2:1', 'host "mx1:ssh" has port "ssh", which is not a number'],
    ['[web]\nmx1:99999\n', '2:1', 'host "mx1:99999" has port 99999, outside 1-65535'],
    ['---\nall:\n', '1:1', 'a host named "---" means this is a YAML file read as INI'],
    ['[mail:children]\ndebian\n', '2:1', 'group "debian" in [mail:children] is never defined (add a [debian] section)'],
    ['[mail:vars]\nx=1\n', '1:2', '[mail:vars] sets variables for group "mail", which is never defined (add a [mail] section)'],
    ['[mail:children]\ndebian # both\nmx1 x=1\n', '3:1', 'expected one group name per line in [mail:children], got "mx1 x=1"'],
    ['[a:children]\nb\n[b:children]\na\n', '4:1', 'child groups form a cycle: b → a → b'],
    ['[a:children]\na\n', '2:1', 'group "a" cannot be a child of itself'],
    ['[a:children]\nall\n', '2:1', '"all" contains every group and cannot be a child group'],
    ['[a]\nh1\n[a:vars]\nnovalue\n', '4:1', 'expected key=value in [a:vars], got "novalue"'],
    ['[a]\nh1\n[a:vars]\nx=1\n[a:vars]\nx=2\n', '6:1', 'variable "x" of group "a" is already set at line 4'],
  ];
  it.each(cases)('%j', (text, where, message) => {
    const err = errorOf(text);
    expect(err.message).toBe(`hosts.ini:${where}: ${err.reason}`);
    expect(err.reason).toContain(message);
  });
});

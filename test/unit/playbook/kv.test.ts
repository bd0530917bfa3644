import { describe, expect, it } from 'vitest';
import { decodeEscapes, kvBool, parseKv, splitArgs } from '../../../src/playbook/kv.js';

describe("free-form key=value shorthand, as Ansible's parse_kv reads it", () => {
  const cases: { name: string; text: string; raw: boolean; options: Record<string, string>; free: string | null }[] = [
    { name: 'service: name=postfix state=restarted', text: 'name=postfix state=restarted', raw: false, options: { name: 'postfix', state: 'restarted' }, free: null },
    { name: 'command: creates= is an option, the rest is the command', text: 'echo hi creates=/etc/x', raw: true, options: { creates: '/etc/x' }, free: 'echo hi' },
    { name: 'command: a=b that is not an option stays in the command', text: 'env A=b chdir=/tmp printenv A', raw: true, options: { chdir: '/tmp' }, free: 'env A=b printenv A' },
    { name: 'command: every option Ansible reads out of the line', text: 'x removes=/r executable=/bin/bash stdin=yes warn=no', raw: true, options: { removes: '/r', executable: '/bin/bash', stdin: 'yes', warn: 'no' }, free: 'x' },
    {
      name: 'lineinfile with quoted values and spaces',
      text: `dest=/etc/postfix/main.cf regexp='^myhostname\\s*=' line="myhostname = mail.example.org"`,
      raw: false,
      options: { dest: '/etc/postfix/main.cf', regexp: '^myhostname\\s*=', line: 'myhostname = mail.example.org' },
      free: null,
    },
    { name: 'Jinja blocks keep their spaces', text: 'msg="{{ a | default(\'x y\') }}" other={{ b + c }}', raw: false, options: { msg: "{{ a | default('x y') }}", other: '{{ b + c }}' }, free: null },
    { name: 'a word without = is free text', text: 'flush_handlers', raw: false, options: {}, free: 'flush_handlers' },
    { name: 'value with = inside', text: 'line=a=b', raw: false, options: { line: 'a=b' }, free: null },
    { name: 'escaped = is not a separator', text: 'a\\=b', raw: false, options: {}, free: 'a=b' },
    { name: 'escapes in values decode (content="x\\n")', text: 'content="x\\n" dest=/tmp/f', raw: false, options: { content: 'x\n', dest: '/tmp/f' }, free: null },
  ];
  for (const c of cases) {
    it(c.name, () => {
      expect(parseKv(c.text, c.raw)).toEqual({ options: c.options, free: c.free });
    });
  }

  it('an unbalanced quote is an error, not a guess', () => {
    expect(() => splitArgs('line="abc')).toThrow(/unbalanced " quote/);
  });

  it('booleans as Ansible reads them', () => {
    expect(['yes', 'True', 'on', '1'].map(kvBool)).toEqual([true, true, true, true]);
    expect(['no', 'false', 'off', '0'].map(kvBool)).toEqual([false, false, false, false]);
    expect(kvBool('maybe')).toBeUndefined();
  });

  it('decodes only the escapes Python decodes (\\s of a regexp stays)', () => {
    expect(decodeEscapes('a\\tb\\s\\\\c\\u00e9')).toBe('a\tb\\s\\cé');
  });
});

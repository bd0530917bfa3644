import { describe, expect, it } from 'vitest';
import { editReplace } from '../../../src/modules/replace.js';

/** main.cf lines as Debian 12 ships them, edited the way public Postfix roles use replace. */
const MAIN_CF = '#myhostname = host.domain.tld\nsmtpd_banner = $myhostname ESMTP $mail_name (Debian/GNU)\nbiff = no\ninet_interfaces = all\n';

describe('replace, as Ansible\'s module (Python re.sub, MULTILINE)', () => {
  const cases: { name: string; args: Parameters<typeof editReplace>[1]; text: string; expect: string; changed: boolean }[] = [
    { name: 'every match, ^ at each line', text: MAIN_CF, args: { path: 'x', regexp: '^biff = .*$', replace: 'biff = yes' }, expect: MAIN_CF.replace('biff = no', 'biff = yes'), changed: true },
    { name: 'numbered and named groups, \\g<name>', text: 'a=1\nb=2\n', args: { path: 'x', regexp: '^(?P<k>\\w)=(\\d)$', replace: '\\g<k> = \\2' }, expect: 'a = 1\nb = 2\n', changed: true },
    { name: 'no replace removes the matches', text: 'keep\n# drop\nkeep\n', args: { path: 'x', regexp: '^# drop\\n' }, expect: 'keep\nkeep\n', changed: true },
    { name: 'a $ in the replacement is literal', text: 'x\n', args: { path: 'x', regexp: 'x', replace: '$myhostname' }, expect: '$myhostname\n', changed: true },
    { name: 'already replaced: no change', text: MAIN_CF, args: { path: 'x', regexp: '^biff = no$', replace: 'biff = no' }, expect: MAIN_CF, changed: false },
    { name: 'only after the first match of after', text: 'v=1\n[s]\nv=1\n', args: { path: 'x', regexp: 'v=1', replace: 'v=2', after: '\\[s\\]' }, expect: 'v=1\n[s]\nv=2\n', changed: true },
    { name: 'only before before', text: 'v=1\n[s]\nv=1\n', args: { path: 'x', regexp: 'v=1', replace: 'v=2', before: '\\[s\\]' }, expect: 'v=2\n[s]\nv=1\n', changed: true },
    { name: 'between after and before', text: 'v\n<a>\nv\n<b>\nv\n', args: { path: 'x', regexp: 'v', replace: 'w', after: '<a>', before: '<b>' }, expect: 'v\n<a>\nw\n<b>\nv\n', changed: true },
    { name: 'escapes in the replacement (\\n)', text: 'a b\n', args: { path: 'x', regexp: ' ', replace: '\\n' }, expect: 'a\nb\n', changed: true },
  ];
  for (const c of cases) {
    it(c.name, () => {
      const r = editReplace(c.text, c.args);
      expect(r.text).toBe(c.expect);
      expect(r.changed).toBe(c.changed);
    });
  }

  it('refuses what JavaScript would read differently from Python', () => {
    expect(() => editReplace('x', { path: 'x', regexp: '\\Ax' })).toThrow(/\\A and \\Z are not supported yet/);
    expect(() => editReplace('x', { path: 'x', regexp: '(?i)x' })).toThrow(/inline flags \(\?i\) are not supported yet/);
    expect(() => editReplace('x', { path: 'x', regexp: 'x', replace: '\\3' })).toThrow(/no group 3/);
  });
});

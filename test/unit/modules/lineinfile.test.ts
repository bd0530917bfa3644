import { describe, expect, it } from 'vitest';
import { editLine, lineinfileModule, type LineinfileArgs } from '../../../src/modules/lineinfile.js';
import { fakeContext } from '../../support/fake-context.js';

const base = 'alpha\nbeta = 1\ngamma\n';

describe('lineinfile edits (Ansible semantics), each idempotent', () => {
  const cases: { name: string; text: string; args: Omit<LineinfileArgs, 'path'>; want: string; changed: boolean }[] = [
    { name: 'appends a missing line', text: base, args: { line: 'delta' }, want: `${base}delta\n`, changed: true },
    { name: 'no change when the line is present', text: base, args: { line: 'gamma' }, want: base, changed: false },
    { name: 'replaces the line the regexp matches', text: base, args: { regexp: '^beta', line: 'beta = 2' }, want: 'alpha\nbeta = 2\ngamma\n', changed: true },
    { name: 'replaces the last match by default', text: 'k=1\nk=2\n', args: { regexp: '^k=', line: 'k=3' }, want: 'k=1\nk=3\n', changed: true },
    { name: 'firstmatch replaces the first', text: 'k=1\nk=2\n', args: { regexp: '^k=', line: 'k=3', firstmatch: true }, want: 'k=3\nk=2\n', changed: true },
    { name: 'regexp matches nothing but the line is present: no change', text: base, args: { regexp: '^nomatch', line: 'gamma' }, want: base, changed: false },
    { name: 'regexp matches nothing: appended', text: base, args: { regexp: '^delta', line: 'delta = 4' }, want: `${base}delta = 4\n`, changed: true },
    { name: 'insertafter a regexp', text: base, args: { line: 'new', insertafter: '^alpha' }, want: 'alpha\nnew\nbeta = 1\ngamma\n', changed: true },
    { name: 'insertafter that matches nothing appends', text: base, args: { line: 'new', insertafter: '^zzz' }, want: `${base}new\n`, changed: true },
    { name: 'insertbefore a regexp', text: base, args: { line: 'new', insertbefore: '^gamma' }, want: 'alpha\nbeta = 1\nnew\ngamma\n', changed: true },
    { name: 'insertbefore BOF', text: base, args: { line: 'first', insertbefore: 'BOF' }, want: `first\n${base}`, changed: true },
    { name: 'backrefs rewrite the match', text: 'port = 25\n', args: { regexp: '^port = (\\d+)$', line: 'port = \\1 # checked', backrefs: true }, want: 'port = 25 # checked\n', changed: true },
    { name: 'backrefs with no match change nothing', text: base, args: { regexp: '^zzz(.*)', line: 'x\\1', backrefs: true }, want: base, changed: false },
    { name: 'Python named groups are accepted', text: 'a=1\n', args: { regexp: '^(?P<k>a)=', line: '\\g<k>=2', backrefs: true }, want: 'a=2\n', changed: true },
    { name: 'absent removes every matching line', text: 'x=1\ny\nx=2\n', args: { state: 'absent', regexp: '^x=' }, want: 'y\n', changed: true },
    { name: 'absent by exact line', text: base, args: { state: 'absent', line: 'gamma' }, want: 'alpha\nbeta = 1\n', changed: true },
    { name: 'absent when already absent', text: base, args: { state: 'absent', line: 'zzz' }, want: base, changed: false },
    { name: 'search_string matches literally', text: 'a.b=1\naxb=2\n', args: { search_string: 'a.b', line: 'a.b=9' }, want: 'a.b=9\naxb=2\n', changed: true },
    { name: 'a file without final newline gets one before the new line', text: 'a\nb', args: { line: 'c' }, want: 'a\nb\nc\n', changed: true },
    { name: 'CRLF files keep CRLF', text: 'a\r\nb\r\n', args: { line: 'c' }, want: 'a\r\nb\r\nc\r\n', changed: true },
    { name: 'an empty file', text: '', args: { line: 'only' }, want: 'only\n', changed: true },
  ];
  for (const c of cases) {
    it(c.name, () => {
      const args = { path: '/f', ...c.args } as LineinfileArgs;
      const r = editLine(c.text, args);
      expect(r.text).toBe(c.want);
      expect(r.changed).toBe(c.changed);
      const again = editLine(r.text, args);
      expect(again.changed).toBe(false);
      expect(again.text).toBe(r.text);
    });
  }
});

describe('lineinfile module', () => {
  it('plans a FileChange with validate, and no change once applied', async () => {
    const ctx = fakeContext({ files: { '/etc/x.conf': { content: 'a = 1\n', mode: 0o640, owner: 'root', group: 'postfix' } } });
    const args = { path: '/etc/x.conf', regexp: '^a =', line: 'a = 2', validate: 'check-it %s' };
    const plan = await lineinfileModule.plan(ctx, args);
    expect(plan.changed).toBe(true);
    if (!plan.changed) return;
    expect(plan.files[0]!.after.toString()).toBe('a = 2\n');
    expect(plan.files[0]!.validate?.[0]?.script).toBe('check-it "$CANDIDATE"');
    await ctx.writeFiles(plan.files);
    expect(ctx.files.get('/etc/x.conf')!.mode).toBe(0o640);
    expect((await lineinfileModule.plan(ctx, args)).changed).toBe(false);
  });

  it('refuses a missing file unless create is set', async () => {
    const ctx = fakeContext();
    await expect(lineinfileModule.plan(ctx, { path: '/nope', line: 'x' })).rejects.toThrow('/nope does not exist (set create: true to create it)');
    const plan = await lineinfileModule.plan(ctx, { path: '/nope', line: 'x', create: true });
    expect(plan.changed && plan.files[0]!.before).toBeNull();
  });

  it('keeps bytes that are not UTF-8', async () => {
    const latin1 = Buffer.from([0x63, 0x61, 0x66, 0xe9, 0x0a]); // "café\n" in latin1
    const ctx = fakeContext({ files: { '/f': { content: latin1 } } });
    const plan = await lineinfileModule.plan(ctx, { path: '/f', line: 'x' });
    expect(plan.changed && plan.files[0]!.after).toEqual(Buffer.concat([latin1, Buffer.from('x\n')]));
  });

  it('an attribute change alone rewrites the same content with the new mode', async () => {
    const ctx = fakeContext({ files: { '/f': { content: 'x\n', mode: 0o644 } } });
    const plan = await lineinfileModule.plan(ctx, { path: '/f', line: 'x', mode: '0600' });
    expect(plan.changed).toBe(true);
    if (!plan.changed) return;
    expect(plan.msg).toBe('/f: mode 0644 → 0600');
    expect(plan.files[0]!.mode).toBe(0o600);
    expect(plan.files[0]!.after.toString()).toBe('x\n');
  });
});

/** debconf as Ansible's module decides it, over debconf-show output as Debian 12's debconf 1.5.82 prints it. */
import { describe, expect, it } from 'vitest';
import { debconfModule, debconfReadScript, debconfValue, parseDebconfShow } from '../../../src/modules/debconf.js';
import type { TaskContext } from '../../../src/modules/module.js';

/** `debconf-show postfix` on Debian 12 after installing Postfix as "Internet Site" (seen questions marked *). */
const POSTFIX_SHOW = [
  '  postfix/rfc1035_violation: false',
  '  postfix/mailname: mail.example.org',
  '  postfix/recipient_delim: +',
  '* postfix/main_mailer_type: Internet Site',
  '  postfix/destinations: $myhostname, mail.example.org, localhost.example.org, localhost',
  '  postfix/chattr: false',
  '  postfix/mailbox_limit: 0',
  '  postfix/relayhost:',
  '  postfix/procmail:',
  '  postfix/protocols: all',
  '  postfix/mynetworks: 127.0.0.0/8 [::ffff:127.0.0.0]/104 [::1]/128',
  '',
].join('\n');

function ctx(out: string, opts: { family?: string; code?: number; stderr?: string } = {}): TaskContext {
  return {
    host: 'h1',
    facts: { os_family: opts.family ?? 'Debian' },
    check: false,
    readCommand: async () => ({ code: opts.code ?? 0, stdout: Buffer.from(out), stderr: Buffer.from(opts.stderr ?? '') }),
  } as unknown as TaskContext;
}
const plan = (out: string, args: Record<string, unknown>, opts?: { family?: string; code?: number; stderr?: string }) =>
  debconfModule.plan(ctx(out, opts), { name: 'postfix', ...args } as never);

describe('debconf', () => {
  it('reads debconf-show as Ansible does: seen mark dropped, values stripped, an empty answer is ""', () => {
    const m = parseDebconfShow(POSTFIX_SHOW);
    expect(m.get('postfix/main_mailer_type')).toBe('Internet Site');
    expect(m.get('postfix/relayhost')).toBe('');
    expect(m.get('postfix/mynetworks')).toBe('127.0.0.0/8 [::ffff:127.0.0.0]/104 [::1]/128');
    expect(m.size).toBe(11);
  });

  it('an answer already given is ok; another is set through debconf-set-selections on stdin', async () => {
    expect(await plan(POSTFIX_SHOW, { question: 'postfix/main_mailer_type', vtype: 'select', value: 'Internet Site' })).toMatchObject({ changed: false, msg: 'postfix/main_mailer_type is "Internet Site"' });
    const p = await plan(POSTFIX_SHOW, { question: 'postfix/mailname', vtype: 'string', value: 'mx.example.org' });
    expect(p).toMatchObject({
      changed: true,
      msg: 'set postfix/mailname (string) to "mx.example.org" (was "mail.example.org")',
      commands: [{ description: 'debconf-set-selections (postfix postfix/mailname string mx.example.org)' }],
      data: { current: { 'postfix/mailname': 'mx.example.org' }, previous: { 'postfix/mailname': 'mail.example.org' } },
    });
    const script = (p as { commands: { script: string }[] }).commands[0]!.script;
    expect(script).toContain(Buffer.from('postfix postfix/mailname string mx.example.org\n').toString('base64'));
    expect(script).not.toContain('mx.example.org');
  });

  it('a question not in the listing (preseeding before the package is installed) is changed, with previous ""', async () => {
    const p = await plan('', { question: 'postfix/main_mailer_type', vtype: 'select', value: 'No configuration', unseen: true });
    expect(p).toMatchObject({ changed: true, data: { previous: { 'postfix/main_mailer_type': '' } }, commands: [{ description: expect.stringMatching(/^debconf-set-selections -u /) }] });
    // Ansible 2.14 returns the package's other answers in previous too when the question was not there.
    const q = await plan(POSTFIX_SHOW, { question: 'postfix/new_one', vtype: 'string', value: 'x' });
    expect(q).toMatchObject({ data: { previous: { 'postfix/new_one': '', 'postfix/protocols': 'all' } } });
  });

  it('booleans compare in lower case; YAML true is "True" to Ansible and written "true"', async () => {
    expect(debconfValue('boolean', true)).toBe('true');
    expect(debconfValue('string', true)).toBe('True');
    expect(debconfValue('string', 25)).toBe('25');
    expect(await plan(POSTFIX_SHOW, { question: 'postfix/chattr', vtype: 'boolean', value: false })).toMatchObject({ changed: false });
    expect(await plan(POSTFIX_SHOW, { question: 'postfix/chattr', vtype: 'boolean', value: 'TRUE' })).toMatchObject({ changed: true });
  });

  it('a password answer is compared with the database\'s and never shown', async () => {
    const show = '* mysql-server/root_password: (password omitted)\n';
    const b64 = Buffer.from('s3cret').toString('base64');
    const same = await plan(`${show}@@PV-DEBCONF\nset ${b64}\n`, { question: 'mysql-server/root_password', vtype: 'password', value: 's3cret' });
    expect(same).toMatchObject({ changed: false, msg: 'mysql-server/root_password is ********' });
    expect(JSON.stringify(same)).not.toContain('s3cret');
    const other = await plan(`${show}@@PV-DEBCONF\nset ${b64}\n`, { question: 'mysql-server/root_password', vtype: 'password', value: 'n3w' });
    expect(other).toMatchObject({ changed: true, msg: 'set mysql-server/root_password (password) to ******** (was ********)', data: { current: { 'mysql-server/root_password': '********' }, previous: { 'mysql-server/root_password': '********' } } });
    expect(JSON.stringify({ ...other, commands: (other as { commands: { description: string }[] }).commands.map((c) => c.description) })).not.toContain('n3w');
    expect(debconfReadScript('mysql-server', 'mysql-server/root_password', true)).toMatch(/perl -e .*Debconf::Db.* -- mysql-server\/root_password/s);
    expect(debconfReadScript('postfix', 'postfix/mailname', false)).not.toContain('perl');
  });

  it('without a question: the package\'s answers, nothing changed', async () => {
    const p = await plan(POSTFIX_SHOW, {});
    expect(p).toMatchObject({ changed: false, msg: '11 answers for postfix', data: { current: { 'postfix/protocols': 'all' } } });
  });

  it('fails on a host that is not Debian-family, and with debconf-show\'s message', async () => {
    await expect(plan('', {}, { family: 'RedHat' })).rejects.toThrow('debconf: h1 is not a Debian-family host (os family RedHat): it has no debconf database');
    await expect(plan('', {}, { code: 127, stderr: 'Failed to find required executable debconf-show\n' })).rejects.toThrow('Failed to find required executable debconf-show');
  });

  it('arguments: question, vtype and value together; names checked; one line per answer', () => {
    expect(debconfModule.check!({ name: 'postfix', question: 'postfix/mailname' })).toBe('parameters are required together: question, vtype, value');
    expect(debconfModule.check!({ name: '-x' })).toMatch(/not a package name/);
    expect(debconfModule.check!({ name: 'postfix', question: 'a b', vtype: 'string', value: 'x' })).toMatch(/not a debconf question/);
    expect(debconfModule.check!({ name: 'postfix', question: 'postfix/mailname', vtype: 'string', value: 'a\nb' })).toMatch(/line break/);
    expect(debconfModule.aliases).toEqual({ pkg: 'name', selection: 'question', setting: 'question', answer: 'value' });
  });
});

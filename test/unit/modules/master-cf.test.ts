import { readFileSync } from 'node:fs';
import { beforeEach, describe, expect, it } from 'vitest';
import { parseMasterCf } from '../../../src/formats/master-cf.js';
import { type MasterCfArgs, masterCfModule, parseServices, splitService } from '../../../src/modules/master-cf.js';
import type { Plan } from '../../../src/modules/module.js';
import { clearNameCache } from '../../../src/modules/postfix-names.js';
import { type FakeOptions, debianFacts, fakeContext, rhelFacts } from '../../support/fake-context.js';

const fixture = (name: string) => readFileSync(new URL(`../../fixtures/postfix/${name}`, import.meta.url));
const postconfD = fixture('debian-12-postconf-d.txt').toString('utf8');
const DEBIAN = fixture('debian-12-master.cf').toString('latin1');
const CENTOS = fixture('centos-6-master.cf').toString('latin1');
const MASTER = '/etc/postfix/master.cf';

type Changed = Extract<Plan, { changed: true }>;

function host(master: string | null, extra: FakeOptions & { services?: string } = {}) {
  const files: FakeOptions['files'] = {
    [MASTER]: { content: master === null ? null : Buffer.from(master, 'latin1') },
    '/etc/postfix/main.cf': 'myhostname = mail.lab.test\n',
  };
  if (extra.services !== undefined) files['/etc/services'] = extra.services;
  return fakeContext({
    files,
    commands: { 'postconf-d:3.7.11': postconfD, 'postconf-d:2.6.6': postconfD },
    ...extra,
  });
}

const text = (ctx: ReturnType<typeof host>) => ctx.files.get(MASTER)!.content!.toString('latin1');
/** Each active entry as postconf -M shows it (one line, fields and arguments). */
const shown = (s: string) =>
  parseMasterCf(Buffer.from(s, 'latin1'))
    .entries.filter((e) => !e.commented)
    .map((e) => e.tokens.map((t) => t.text).join(' '));

/** Plan, write what the plan says, plan again: the second plan must find nothing to do. */
async function applyTwice(ctx: ReturnType<typeof host>, args: MasterCfArgs) {
  const first = await masterCfModule.plan(ctx, args);
  if (first.changed) await ctx.writeFiles(first.files);
  const second = await masterCfModule.plan(ctx, args);
  return { first, second, text: text(ctx) };
}

const RECIPE = {
  smtpd_tls_wrappermode: 'yes',
  smtpd_sasl_auth_enable: 'yes',
  smtpd_client_restrictions: 'permit_sasl_authenticated,reject',
};

beforeEach(() => clearNameCache());

describe('master_cf enables smtps', () => {
  it("uncomments CentOS 6's smtps template in place with the -o lines asked for; the milter macro stays a comment", async () => {
    const ctx = host(CENTOS, { facts: rhelFacts, services: 'smtp\t\t25/tcp\t\tmail\nsmtps\t\t465/tcp\t\t\t# SMTP over SSL\n' });
    const { first, second, text: out } = await applyTwice(ctx, { service: 'smtps', type: 'inet', options: RECIPE });
    expect(first).toMatchObject({
      changed: true,
      msg: `enable smtps/inet in ${MASTER}: uncomment the template at line 17; the template's -o milter_macro_daemon_name stays commented`,
    });
    expect(out).toBe(
      CENTOS.replace(
        '#smtps     inet  n       -       n       -       -       smtpd\n#  -o smtpd_tls_wrappermode=yes\n#  -o smtpd_sasl_auth_enable=yes\n#  -o smtpd_client_restrictions=permit_sasl_authenticated,reject\n#  -o milter_macro_daemon_name=ORIGINATING\n',
        'smtps     inet  n       -       n       -       -       smtpd\n  -o smtpd_tls_wrappermode=yes\n  -o smtpd_sasl_auth_enable=yes\n  -o smtpd_client_restrictions=permit_sasl_authenticated,reject\n#  -o milter_macro_daemon_name=ORIGINATING\n',
      ),
    );
    expect(second).toEqual({ changed: false, msg: `smtps/inet is enabled in ${MASTER}` });
  });

  it("uncomments Debian 12's submissions template when asked for smtps: same listener, same name", async () => {
    const ctx = host(DEBIAN);
    const args: MasterCfArgs = { service: 'smtps', type: 'inet', chroot: false, options: { syslog_name: 'postfix/smtps', ...RECIPE } };
    const { first, second, text: out } = await applyTwice(ctx, args);
    expect(first).toMatchObject({
      changed: true,
      msg:
        `enable submissions/inet (the smtps listener) in ${MASTER}: uncomment the template at line 37; chroot y → n; ` +
        '-o syslog_name=postfix/smtps (was postfix/submissions); -o smtpd_client_restrictions=permit_sasl_authenticated,reject (was empty); ' +
        "the template's -o lines for smtpd_reject_unlisted_recipient, smtpd_helo_restrictions, smtpd_sender_restrictions, " +
        'smtpd_relay_restrictions, smtpd_recipient_restrictions, milter_macro_daemon_name stay commented',
    });
    const lines = out.split('\n');
    const at = lines.indexOf('submissions     inet  n       -       n       -       -       smtpd');
    expect(at).toBe(36);
    expect(lines.slice(at + 1, at + 15)).toEqual([
      '  -o syslog_name=postfix/smtps',
      '  -o smtpd_tls_wrappermode=yes',
      '  -o smtpd_sasl_auth_enable=yes',
      '#  -o smtpd_reject_unlisted_recipient=no',
      '#     Instead of specifying complex smtpd_<xxx>_restrictions here,',
      '#     specify "smtpd_<xxx>_restrictions=$mua_<xxx>_restrictions"',
      '#     here, and specify mua_<xxx>_restrictions in main.cf (where',
      '#     "<xxx>" is "client", "helo", "sender", "relay", or "recipient").',
      '  -o smtpd_client_restrictions=permit_sasl_authenticated,reject',
      '#  -o smtpd_helo_restrictions=',
      '#  -o smtpd_sender_restrictions=',
      '#  -o smtpd_relay_restrictions=',
      '#  -o smtpd_recipient_restrictions=permit_sasl_authenticated,reject',
      '#  -o milter_macro_daemon_name=ORIGINATING',
    ]);
    expect(shown(out)).toContain(
      'submissions inet n - n - - smtpd -o syslog_name=postfix/smtps -o smtpd_tls_wrappermode=yes -o smtpd_sasl_auth_enable=yes -o smtpd_client_restrictions=permit_sasl_authenticated,reject',
    );
    // the loopback template above stays a comment, and the smtp listener on 25 gets no -o line
    expect(lines[35]).toBe('#127.0.0.1:submissions inet n  -       y       -       -       smtpd');
    expect(shown(out)[0]).toBe('smtp inet n - y - - smtpd');
    expect(shown(out).filter((s) => s.includes('inet'))).toHaveLength(2);
    expect(second).toEqual({ changed: false, msg: `submissions/inet (the smtps listener) is enabled in ${MASTER}` });
  });

  it('with options_exact removes active -o options the task does not name; template lines it never uncommented stay comments', async () => {
    const ctx = host(DEBIAN);
    await applyTwice(ctx, { service: 'smtps', type: 'inet', options: { syslog_name: 'postfix/smtps', ...RECIPE, milter_macro_daemon_name: 'ORIGINATING' } });
    const args: MasterCfArgs = { service: 'smtps', type: 'inet', options: { syslog_name: 'postfix/smtps', ...RECIPE }, options_exact: true };
    const { first, second, text: out } = await applyTwice(ctx, args);
    expect(first).toMatchObject({ changed: true, msg: `update submissions/inet (the smtps listener) in ${MASTER}: remove -o milter_macro_daemon_name=ORIGINATING` });
    expect(shown(out)).toContain(
      'submissions inet n - y - - smtpd -o syslog_name=postfix/smtps -o smtpd_tls_wrappermode=yes -o smtpd_sasl_auth_enable=yes -o smtpd_client_restrictions=permit_sasl_authenticated,reject',
    );
    expect(out).toContain('  -o smtpd_client_restrictions=permit_sasl_authenticated,reject\n#  -o smtpd_helo_restrictions=\n');
    expect(out).toContain('#  -o smtpd_recipient_restrictions=permit_sasl_authenticated,reject\n#628');
    expect(second.changed).toBe(false);
  });

  it("uncommenting a pipe template keeps its command arguments: Postfix 3.5's maildrop", async () => {
    const upstream = readFileSync(new URL('../../fixtures/postfix/stock/upstream-3.5/master.cf', import.meta.url)).toString('latin1');
    const ctx = host(upstream);
    const { first, second, text: out } = await applyTwice(ctx, { service: 'maildrop', type: 'unix' });
    expect(first).toMatchObject({ changed: true, msg: `enable maildrop/unix in ${MASTER}: uncomment the template at line 81` });
    expect(out).toContain('\nmaildrop  unix  -       n       n       -       -       pipe\n  flags=DRXhu user=vmail argv=/usr/local/bin/maildrop -d ${recipient}\n');
    expect(second.changed).toBe(false);
  });

  it('leaves out an option the task does not name that shares a line with an argument the service needs', async () => {
    const ctx = host('#relay2 unix - - n - - smtp\n#  -o smtp_helo_name=example.org flags=x -o syslog_name=postfix/relay2\n#  -o smtp_bind_address=198.19.0.1\n');
    const { first, second, text: out } = await applyTwice(ctx, { service: 'relay2', type: 'unix', options: { syslog_name: 'postfix/relay2' } });
    expect(first).toMatchObject({
      changed: true,
      msg:
        `enable relay2/unix in ${MASTER}: uncomment the template at line 1; leave out the template's -o smtp_helo_name=example.org; ` +
        "the template's -o smtp_bind_address stays commented",
    });
    expect(out).toBe('relay2 unix - - n - - smtp\n  flags=x -o syslog_name=postfix/relay2\n#  -o smtp_bind_address=198.19.0.1\n');
    expect(second.changed).toBe(false);
  });

  it('finds nothing to do when the active entry is already right', async () => {
    const master = 'smtp      inet  n       -       y       -       -       smtpd\nsmtps     inet  n       -       n       -       -       smtpd\n  -o smtpd_tls_wrappermode=yes\n';
    const ctx = host(master);
    const plan = await masterCfModule.plan(ctx, { service: 'smtps', type: 'inet', chroot: 'n', command: 'smtpd', options: { smtpd_tls_wrappermode: true } });
    expect(plan).toEqual({ changed: false, msg: `smtps/inet is enabled in ${MASTER}` });
    expect(ctx.calls.map((c) => c.op)).not.toContain('validate');
  });

  const listeners: { name: string; master: string; args: MasterCfArgs; msg: string; out: string }[] = [
    {
      name: 'an active 465 entry is the smtps listener',
      master: '465       inet  n       -       y       -       -       smtpd\n  -o smtpd_tls_wrappermode=no\n',
      args: { service: 'smtps', type: 'inet', options: { smtpd_tls_wrappermode: 'yes' } },
      msg: `update 465/inet (the smtps listener) in ${MASTER}: -o smtpd_tls_wrappermode=yes (was no)`,
      out: '465       inet  n       -       y       -       -       smtpd\n  -o smtpd_tls_wrappermode=yes\n',
    },
    {
      name: 'an active entry wins over a template',
      master: '#smtps     inet  n       -       n       -       -       smtpd\nsubmissions inet n - n - - smtpd\n',
      args: { service: 'smtps', type: 'inet', options: { smtpd_tls_wrappermode: 'yes' } },
      msg: `update submissions/inet (the smtps listener) in ${MASTER}: add -o smtpd_tls_wrappermode=yes`,
      out: '#smtps     inet  n       -       n       -       -       smtpd\nsubmissions inet n - n - - smtpd\n  -o smtpd_tls_wrappermode=yes\n',
    },
    {
      name: 'a loopback-only template becomes a listener on every address when asked without a host',
      master: '#127.0.0.1:smtps inet n - n - - smtpd\n',
      args: { service: 'smtps', type: 'inet' },
      msg: `enable smtps/inet in ${MASTER}: uncomment the template at line 1; service 127.0.0.1:smtps → smtps`,
      out: 'smtps           inet n - n - - smtpd\n',
    },
    {
      name: 'a listener on another address is another listener',
      master: '198.19.0.1:smtps inet n - n - - smtpd\n',
      args: { service: '198.19.0.2:smtps', type: 'inet', command: 'smtpd' },
      msg: `add 198.19.0.2:smtps/inet to ${MASTER}`,
      out: '198.19.0.1:smtps inet n - n - - smtpd\n198.19.0.2:smtps inet  n       -       -       -       -       smtpd\n',
    },
    {
      name: 'a new entry goes at the end, private n for inet',
      master: 'smtp      inet  n       -       y       -       -       smtpd\n#\n',
      args: { service: 'smtps', type: 'inet', chroot: 'n', command: 'smtpd', options: RECIPE },
      msg: `add smtps/inet to ${MASTER}`,
      out:
        'smtp      inet  n       -       y       -       -       smtpd\n#\n' +
        'smtps     inet  n       -       n       -       -       smtpd\n' +
        '  -o smtpd_tls_wrappermode=yes\n  -o smtpd_sasl_auth_enable=yes\n  -o smtpd_client_restrictions=permit_sasl_authenticated,reject\n',
    },
  ];
  it.each(listeners)('$name', async ({ master, args, msg, out }) => {
    const ctx = host(master);
    const { first, second, text: after } = await applyTwice(ctx, args);
    expect(first).toMatchObject({ changed: true, msg });
    expect(after).toBe(out);
    expect(second.changed).toBe(false);
  });

  it('warns when another active entry also listens on the port', async () => {
    const ctx = host('smtps inet n - n - - smtpd\n127.0.0.1:submissions inet n - n - - smtpd\n');
    await masterCfModule.plan(ctx, { service: 'smtps', type: 'inet', chroot: 'y' });
    expect(ctx.warnings).toEqual([`${MASTER} line 2 also listens as 127.0.0.1:submissions/inet`]);
  });
});

describe('master_cf on Postfix before 3.6', () => {
  const renamed =
    `enable 465/inet (the smtps listener) in ${MASTER}: uncomment the template at line 17; service smtps → 465; ` +
    "the template's -o milter_macro_daemon_name stays commented; Postfix 2.6.6 looks service names up in /etc/services, which does not map smtps to 465";
  const cases: [string, string, string, string][] = [
    ['keeps smtps when /etc/services knows it', 'smtps 465/tcp\n', 'smtps     inet  n       -       n       -       -       smtpd', `enable smtps/inet in ${MASTER}: uncomment the template at line 17; the template's -o milter_macro_daemon_name stays commented`],
    ['writes 465 when /etc/services does not know smtps', 'smtp 25/tcp mail\n# smtps 465/tcp\n', '465       inet  n       -       n       -       -       smtpd', renamed],
    ['writes 465 when smtps is another port there', 'smtps 8465/tcp\n', '465       inet  n       -       n       -       -       smtpd', renamed],
  ];
  it.each(cases)('%s', async (_, services, expected, msg) => {
    const ctx = host(CENTOS, { facts: rhelFacts, services });
    const { first, second, text: out } = await applyTwice(ctx, { service: 'smtps', type: 'inet', options: RECIPE });
    expect(first).toMatchObject({ changed: true, msg });
    expect(out.split('\n')[16]).toBe(expected);
    expect(second.changed).toBe(false);
  });

  it('reads /etc/services only where names are resolved through it', () => {
    expect(masterCfModule.reads!({ service: 'smtps', type: 'inet' }, rhelFacts).files).toEqual([MASTER, '/etc/postfix/main.cf', '/etc/services']);
    expect(masterCfModule.reads!({ service: 'smtps', type: 'inet' }, debianFacts).files).toEqual([MASTER, '/etc/postfix/main.cf']);
  });

  it('warns that Postfix 2.6 cannot check master.cf instead of validating', async () => {
    const ctx = host(CENTOS, { facts: rhelFacts, services: 'smtps 465/tcp\n' });
    const plan = (await masterCfModule.plan(ctx, { service: 'smtps', type: 'inet' })) as Changed;
    expect(plan.files[0]!.validate).toEqual([]);
    expect(ctx.warnings).toEqual([
      'Postfix 2.6.6 cannot check master.cf (postconf -M needs 2.9 or later); the edit is not validated on the host',
    ]);
  });

  it('refuses a value with spaces, which needs -o { } from Postfix 3.0', async () => {
    const ctx = host(CENTOS, { facts: rhelFacts, services: 'smtps 465/tcp\n' });
    await expect(masterCfModule.plan(ctx, { service: 'smtps', type: 'inet', options: { smtpd_banner: '$myhostname ESMTP' } })).rejects.toThrow(
      'option smtpd_banner: a value with spaces needs Postfix 3.0 or later (-o { name = value }); this host has 2.6.6',
    );
  });
});

describe('master_cf updates active entries', () => {
  const cases: { name: string; master: string; args: MasterCfArgs; msg: string; out: string }[] = [
    {
      name: 'fields and options in place, columns kept, comments kept',
      master: '# mine\nsmtps     inet  n       -       y       -       -       smtpd\n  -o smtpd_tls_wrappermode=no\n# keep\npickup    unix  n       -       y       60      1       pickup\n',
      args: { service: 'smtps', type: 'inet', chroot: 'n', maxproc: 10, options: { smtpd_tls_wrappermode: true } },
      msg: `update smtps/inet in ${MASTER}: chroot y → n; maxproc - → 10; -o smtpd_tls_wrappermode=yes (was no)`,
      out: '# mine\nsmtps     inet  n       -       n       -       10      smtpd\n  -o smtpd_tls_wrappermode=yes\n# keep\npickup    unix  n       -       y       60      1       pickup\n',
    },
    {
      name: 'a duplicated option: the last is set, the earlier removed',
      master: 'smtps inet n - n - - smtpd\n  -o a_b=1\n  -o syslog_name=x\n  -o syslog_name=y\n',
      args: { service: 'smtps', type: 'inet', options: { syslog_name: 'postfix/smtps' } },
      msg: `update smtps/inet in ${MASTER}: -o syslog_name=postfix/smtps (was y); remove the earlier -o syslog_name`,
      out: 'smtps inet n - n - - smtpd\n  -o a_b=1\n  -o syslog_name=postfix/smtps\n',
    },
    {
      name: 'a value with spaces as a brace group',
      master: 'smtps inet n - n - - smtpd\n',
      args: { service: 'smtps', type: 'inet', options: { smtpd_banner: '$myhostname ESMTP' } },
      msg: `update smtps/inet in ${MASTER}: add -o { smtpd_banner = $myhostname ESMTP }`,
      out: 'smtps inet n - n - - smtpd\n  -o { smtpd_banner = $myhostname ESMTP }\n',
    },
    {
      name: 'pipe arguments replaced, a new option before them',
      master: 'maildrop  unix  -       n       n       -       -       pipe\n  flags=DRXhu user=vmail argv=/usr/bin/maildrop -d ${recipient}\n',
      args: { service: 'maildrop', type: 'unix', args: ['flags=DRXhu', 'user=mail', 'argv=/usr/bin/maildrop', '-d', '${recipient}'], options: { syslog_name: 'postfix/maildrop' } },
      msg: `update maildrop/unix in ${MASTER}: add -o syslog_name=postfix/maildrop; arguments "flags=DRXhu user=vmail argv=/usr/bin/maildrop -d \${recipient}" → "flags=DRXhu user=mail argv=/usr/bin/maildrop -d \${recipient}"`,
      out: 'maildrop  unix  -       n       n       -       -       pipe\n  -o syslog_name=postfix/maildrop\n  flags=DRXhu user=mail argv=/usr/bin/maildrop -d ${recipient}\n',
    },
    {
      name: 'other services of the same name but another type are left alone',
      master: 'smtp inet n - y - - smtpd\nsmtp unix - - y - - smtp\n',
      args: { service: 'smtp', type: 'unix', options: { syslog_name: 'postfix/out' } },
      msg: `update smtp/unix in ${MASTER}: add -o syslog_name=postfix/out`,
      out: 'smtp inet n - y - - smtpd\nsmtp unix - - y - - smtp\n  -o syslog_name=postfix/out\n',
    },
  ];
  it.each(cases)('$name', async ({ master, args, msg, out }) => {
    const ctx = host(master);
    const { first, second, text: after } = await applyTwice(ctx, args);
    expect(first).toMatchObject({ changed: true, msg });
    expect(after).toBe(out);
    expect(second.changed).toBe(false);
  });

  it('keeps CRLF line ends and bytes that are not UTF-8', async () => {
    const master = '# caf\xe9\r\nsmtps inet n - n - - smtpd\r\n';
    const ctx = host(master);
    const { text: out } = await applyTwice(ctx, { service: 'smtps', type: 'inet', options: { smtpd_tls_wrappermode: 'yes' } });
    expect(out).toBe('# caf\xe9\r\nsmtps inet n - n - - smtpd\r\n  -o smtpd_tls_wrappermode=yes\r\n');
  });
});

describe('master_cf removes services', () => {
  it('removes the active entry with its -o lines and leaves the template', async () => {
    const master = 'smtp inet n - y - - smtpd\n#smtps inet n - n - - smtpd\nsmtps inet n - n - - smtpd\n  -o smtpd_tls_wrappermode=yes\npickup unix n - y 60 1 pickup\n';
    const ctx = host(master);
    const { first, second, text: out } = await applyTwice(ctx, { service: 'smtps', type: 'inet', state: 'absent' });
    expect(first).toMatchObject({ changed: true, msg: `remove smtps/inet (line 3) from ${MASTER}` });
    expect(out).toBe('smtp inet n - y - - smtpd\n#smtps inet n - n - - smtpd\npickup unix n - y 60 1 pickup\n');
    expect(second).toEqual({ changed: false, msg: `smtps/inet is not in ${MASTER}` });
  });

  it('without a host, removes every listener on the port', async () => {
    const ctx = host('submissions inet n - n - - smtpd\n127.0.0.1:465 inet n - n - - smtpd\n[::1]:smtps inet n - n - - smtpd\n');
    const plan = await masterCfModule.plan(ctx, { service: 'smtps', type: 'inet', state: 'absent' });
    expect(plan).toMatchObject({ msg: `remove submissions/inet (line 1), 127.0.0.1:465/inet (line 2), [::1]:smtps/inet (line 3) from ${MASTER}` });
    expect((plan as Changed).files[0]!.after.toString()).toBe('');
  });

  it('with a host, removes only that address', async () => {
    const ctx = host('submissions inet n - n - - smtpd\n127.0.0.1:465 inet n - n - - smtpd\n');
    const plan = (await masterCfModule.plan(ctx, { service: '127.0.0.1:smtps', type: 'inet', state: 'absent' })) as Changed;
    expect(plan.files[0]!.after.toString()).toBe('submissions inet n - n - - smtpd\n');
  });
});

describe('master_cf refuses', () => {
  it('an unknown option name, with a suggestion, before any validation and in check mode', async () => {
    const ctx = host(CENTOS, { check: true });
    const err = await masterCfModule
      .plan(ctx, { service: 'smtps', type: 'inet', options: { ...RECIPE, smtplib_client_restrictions: 'permit_sasl_authenticated,reject' } })
      .catch((e: Error) => e);
    expect((err as Error).message).toBe(
      'unknown Postfix parameter in the options of smtps/inet: "smtplib_client_restrictions" (did you mean "smtpd_client_restrictions"?); ' +
        'Postfix would ignore it with an "unused parameter" warning (list a name in allow_unknown if it is meant)',
    );
    expect(ctx.calls.map((c) => c.op)).not.toContain('validate');
  });

  it('accepts an option name in allow_unknown', async () => {
    const ctx = host(DEBIAN);
    await expect(masterCfModule.plan(ctx, { service: 'smtps', type: 'inet', options: { my_thing: 'x' }, allow_unknown: ['my_thing'] })).resolves.toMatchObject({ changed: true });
  });

  it('to edit a field a broken line does not have', async () => {
    const err = await masterCfModule.plan(host('smtp inet n - y - - smtpd\nsmtps inet n -\n'), { service: 'smtps', type: 'inet', chroot: 'n' }).catch((e: Error) => e);
    expect(err).toMatchObject({ name: 'ModuleError', message: `${MASTER} line 2: the entry has no chroot field` });
  });

  it('accepts an option name that main.cf refers to', async () => {
    const ctx = fakeContext({
      files: { [MASTER]: 'smtps inet n - n - - smtpd\n', '/etc/postfix/main.cf': 'smtpd_client_restrictions = $mua_client_restrictions\n' },
      commands: { 'postconf-d:3.7.11': postconfD },
    });
    await expect(masterCfModule.plan(ctx, { service: 'smtps', type: 'inet', options: { mua_client_restrictions: 'permit_sasl_authenticated,reject' } })).resolves.toMatchObject({ changed: true });
  });

  it('to add a service without a command', async () => {
    await expect(masterCfModule.plan(host(''), { service: 'smtps', type: 'inet' })).rejects.toThrow(
      `${MASTER} has no smtps/inet entry or commented template; "command" is needed to add one`,
    );
  });

  it('fields with state absent', () => {
    expect(masterCfModule.check!({ service: 'smtps', type: 'inet', state: 'absent', options: {} })).toBe(
      'state: absent removes the service; "options" cannot be used with it',
    );
    expect(masterCfModule.check!({ service: 'smtps', type: 'inet', state: 'absent' })).toBeNull();
  });

  it('a validation failure fails the task in check mode', async () => {
    const ctx = host(DEBIAN, { check: true, validateError: 'validation failed (postconf -M): postconf: warning: unused parameter' });
    await expect(masterCfModule.plan(ctx, { service: 'smtps', type: 'inet' })).rejects.toThrow(/unused parameter/);
  });
});

describe('master_cf validation and reads', () => {
  it('validates with postconf -M beside the current main.cf', async () => {
    const ctx = host(DEBIAN);
    const plan = (await masterCfModule.plan(ctx, { service: 'smtps', type: 'inet', backup: true })) as Changed;
    const f = plan.files[0]!;
    expect(f).toMatchObject({ path: MASTER, backup: true, beforeSha: ctx.files.get(MASTER)!.sha });
    expect(f.validate![0]).toMatchObject({ failOnStderr: 'warning:', description: 'postconf -M' });
    expect(f.validate![0]!.script).toContain('cp "$CANDIDATE" "$pv_pc/master.cf"');
    expect(f.validate![0]!.script).toContain('postconf -c "$pv_pc" -M');
    expect(f.validate![0]!.script).toContain(Buffer.from('myhostname = mail.lab.test\n').toString('base64'));
    expect(ctx.validated).toEqual([f]);
  });

  it('asks for postconf -d only when there are options and the version is not known yet', async () => {
    const withOptions: MasterCfArgs = { service: 'smtps', type: 'inet', options: RECIPE };
    expect(masterCfModule.reads!({ service: 'smtps', type: 'inet' }, debianFacts).commands).toEqual([]);
    expect(masterCfModule.reads!(withOptions, debianFacts).commands).toEqual([
      { key: 'postconf-d:3.7.11', script: 'PATH="$PATH:/usr/sbin:/sbin"; export PATH; postconf -d' },
    ]);
    await masterCfModule.plan(host(DEBIAN), withOptions);
    expect(masterCfModule.reads!(withOptions, debianFacts).commands).toEqual([]);
  });
});

describe('helpers', () => {
  it('splits a host: prefix off a service name', () => {
    expect(splitService('smtps')).toEqual({ host: '', port: 'smtps' });
    expect(splitService('127.0.0.1:smtps')).toEqual({ host: '127.0.0.1', port: 'smtps' });
    expect(splitService('[::1]:465')).toEqual({ host: '[::1]', port: '465' });
  });

  it('reads TCP names and aliases from /etc/services', () => {
    const m = parseServices('# c\nsmtp\t\t25/tcp\t\tmail\nsubmissions\t465/tcp\t\tssmtp smtps\t# SSL\nfoo 7/udp\n');
    expect([...m]).toEqual([['smtp', '25'], ['mail', '25'], ['submissions', '465'], ['ssmtp', '465'], ['smtps', '465']]);
  });
});

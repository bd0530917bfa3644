import { readFileSync } from 'node:fs';
import { beforeEach, describe, expect, it } from 'vitest';
import type { Plan } from '../../../src/modules/module.js';
import { type PostconfArgs, postconfModule } from '../../../src/modules/postconf.js';
import { clearNameCache } from '../../../src/modules/postfix-names.js';
import { type FakeOptions, debianFacts, fakeContext } from '../../support/fake-context.js';

const fixture = (name: string) => readFileSync(new URL(`../../fixtures/postfix/${name}`, import.meta.url));
const postconfD = fixture('debian-12-postconf-d.txt').toString('utf8');
const DEBIAN_MAIN = fixture('debian-12-main.cf');
const DEBIAN_MASTER = fixture('debian-12-master.cf');
const MAIN = '/etc/postfix/main.cf';

function host(main: string | Buffer | null = DEBIAN_MAIN, extra: FakeOptions = {}) {
  return fakeContext({
    files: { [MAIN]: { content: main }, '/etc/postfix/master.cf': { content: DEBIAN_MASTER } },
    commands: { 'postconf-d:3.7.11': postconfD },
    ...extra,
  });
}

type Changed = Extract<Plan, { changed: true }>;

/** Plan, write what the plan says, plan again: the second plan must find nothing to do. */
async function applyTwice(ctx: ReturnType<typeof host>, args: PostconfArgs) {
  const first = await postconfModule.plan(ctx, args);
  if (first.changed) await ctx.writeFiles(first.files);
  const second = await postconfModule.plan(ctx, args);
  return { first, second, text: ctx.files.get(MAIN)!.content!.toString('latin1') };
}

beforeEach(() => clearNameCache());

describe('postconf plans', () => {
  const cases: { name: string; main?: string; args: PostconfArgs; msg: string; contains?: string[]; lacks?: string[] }[] = [
    {
      name: 'adds the recipe settings at the end of Debian 12 main.cf',
      args: { settings: { smtpd_tls_loglevel: 1, smtpd_tls_session_cache_database: 'btree:${data_directory}/smtpd_scache' } },
      msg: `${MAIN}: add smtpd_tls_loglevel = 1; add smtpd_tls_session_cache_database = btree:\${data_directory}/smtpd_scache`,
      contains: ['inet_protocols = all\nsmtpd_tls_loglevel = 1\nsmtpd_tls_session_cache_database = btree:${data_directory}/smtpd_scache\n'],
    },
    {
      name: 'replaces a value in place and says what it was',
      args: { settings: { myorigin: '$mydomain' } },
      msg: `${MAIN}: set myorigin = $mydomain (was /etc/mailname)`,
      contains: ['#myorigin = /etc/mailname\n', 'alias_database = hash:/etc/aliases\nmyorigin = $mydomain\nmydestination'],
    },
    {
      name: 'writes YAML booleans as yes/no and lists joined with commas',
      args: { settings: { smtpd_sasl_auth_enable: true, smtpd_client_restrictions: ['permit_sasl_authenticated', 'reject'] } },
      msg: `${MAIN}: add smtpd_sasl_auth_enable = yes; add smtpd_client_restrictions = permit_sasl_authenticated, reject`,
      contains: ['smtpd_sasl_auth_enable = yes\nsmtpd_client_restrictions = permit_sasl_authenticated, reject\n'],
    },
    {
      name: 'puts a new name after its commented-out example',
      args: { settings: { delay_warning_time: '4h' } },
      msg: `${MAIN}: add delay_warning_time = 4h`,
      contains: ['#delay_warning_time = 4h\ndelay_warning_time = 4h\n\nreadme_directory'],
    },
    {
      name: 'comments out an earlier duplicate (Postfix would warn "overriding earlier entry")',
      main: 'smtpd_tls_loglevel = 0\nbiff = no\nsmtpd_tls_loglevel = 2\n',
      args: { settings: { smtpd_tls_loglevel: 1 } },
      msg: `${MAIN}: set smtpd_tls_loglevel = 1 (was 2); comment out 1 earlier smtpd_tls_loglevel line`,
      contains: ['#smtpd_tls_loglevel = 0\nbiff = no\nsmtpd_tls_loglevel = 1\n'],
    },
    {
      name: 'removes absent names with their continuation lines',
      main: 'biff = no\nsmtpd_tls_CApth = /etc/pki/tls/certs\n    /more\nsmtpd_tls_loglevel = 1\n',
      args: { absent: ['smtpd_tls_CApth'] },
      msg: `${MAIN}: remove smtpd_tls_CApth`,
      contains: ['biff = no\nsmtpd_tls_loglevel = 1\n'],
      lacks: ['/more'],
    },
    {
      name: 'fixes the recipe typo: the wrong name goes, the right one comes',
      main: 'biff = no\nsmtpd_tls_CApth = /etc/pki/tls/certs\n',
      args: { settings: { smtpd_tls_CApath: '/etc/pki/tls/certs' }, absent: ['smtpd_tls_CApth'] },
      msg: `${MAIN}: add smtpd_tls_CApath = /etc/pki/tls/certs; remove smtpd_tls_CApth`,
      contains: ['biff = no\nsmtpd_tls_CApath = /etc/pki/tls/certs\n'],
    },
    {
      name: 'keeps CRLF line ends',
      main: 'biff = no\r\nsmtpd_tls_loglevel = 0\r\n',
      args: { settings: { smtpd_tls_loglevel: 1, smtpd_tls_security_level: 'may' } },
      msg: `${MAIN}: set smtpd_tls_loglevel = 1 (was 0); add smtpd_tls_security_level = may`,
      contains: ['biff = no\r\nsmtpd_tls_loglevel = 1\r\nsmtpd_tls_security_level = may\r\n'],
    },
  ];

  it.each(cases)('$name, then finds nothing to do', async ({ main, args, msg, contains = [], lacks = [] }) => {
    const ctx = host(main);
    const { first, second, text } = await applyTwice(ctx, args);
    expect(first).toMatchObject({ changed: true, msg, commands: [] });
    for (const c of contains) expect(text).toContain(c);
    for (const l of lacks) expect(text).not.toContain(l);
    expect(second.changed).toBe(false);
  });

  it('says in the present tense what already holds', async () => {
    const ctx = host('smtpd_tls_loglevel = 1\nbiff = no\n');
    expect(await postconfModule.plan(ctx, { settings: { smtpd_tls_loglevel: '1' }, absent: ['smtpd_tls_CApth'] })).toEqual({
      changed: false,
      msg: `${MAIN} already sets smtpd_tls_loglevel = 1 and has no smtpd_tls_CApth`,
    });
    expect(ctx.calls.filter((c) => c.op === 'validate')).toEqual([]);
  });

  it('treats the same value laid out differently as no change', async () => {
    const ctx = host('mynetworks = 127.0.0.0/8\n        [::1]/128\n');
    const plan = await postconfModule.plan(ctx, { settings: { mynetworks: '127.0.0.0/8 [::1]/128' } });
    expect(plan.changed).toBe(false);
  });

  it('keeps bytes that are not UTF-8', async () => {
    const main = Buffer.from('# caf\xe9\nsmtpd_banner = h\xe9llo\n', 'latin1');
    const plan = await postconfModule.plan(host(main), { settings: { biff: 'no' } });
    expect((plan as Changed).files[0]!.after.equals(Buffer.concat([main, Buffer.from('biff = no\n')]))).toBe(true);
  });

  it('carries before, its hash, backup and a postconf -n validation in the file change', async () => {
    const ctx = host('biff = no\n');
    const plan = (await postconfModule.plan(ctx, { settings: { smtpd_tls_loglevel: 1 }, backup: true })) as Changed;
    const f = plan.files[0]!;
    expect(f).toMatchObject({ path: MAIN, backup: true, beforeSha: ctx.files.get(MAIN)!.sha });
    expect(f.before!.toString()).toBe('biff = no\n');
    expect(f.validate).toHaveLength(1);
    expect(f.validate![0]).toMatchObject({ failOnStderr: 'warning:', description: 'postconf -n' });
    const script = f.validate![0]!.script;
    expect(script).toContain('cp "$CANDIDATE" "$pv_pc/main.cf"');
    expect(script).toContain('postconf -c "$pv_pc" -n');
    expect(script).toContain('rm -rf "$pv_pc"');
    // the current master.cf travels inside the script, so the check sees what this play has made of it
    expect(script).toContain(DEBIAN_MASTER.toString('base64').slice(0, 76));
    expect(ctx.validated).toEqual([f]);
  });

  it('validates in check mode too, and a postconf warning fails the task', async () => {
    const ctx = host('biff = no\n', { check: true, validateError: 'validation failed (postconf -n): postconf: warning: unused parameter' });
    await expect(postconfModule.plan(ctx, { settings: { smtpd_tls_loglevel: 1 } })).rejects.toThrow(/unused parameter/);
    expect(ctx.calls.map((c) => c.op)).toContain('validate');
  });

  it('creates main.cf when there is none', async () => {
    const plan = (await postconfModule.plan(host(null), { settings: { biff: 'no' } })) as Changed;
    expect(plan.files[0]).toMatchObject({ before: null, beforeSha: null });
    expect(plan.files[0]!.after.toString()).toBe('biff = no\n');
  });

  it('edits main.cf in config_dir when given', async () => {
    const ctx = fakeContext({
      files: { '/etc/postfix-out/main.cf': 'biff = no\n', '/etc/postfix-out/master.cf': '' },
      commands: { 'postconf-d:3.7.11': postconfD },
    });
    const plan = await postconfModule.plan(ctx, { settings: { biff: 'yes' }, config_dir: '/etc/postfix-out/' });
    expect(plan).toMatchObject({ changed: true, msg: '/etc/postfix-out/main.cf: set biff = yes (was no)' });
  });
});

describe('postconf refuses unknown names', () => {
  it('suggests the nearest known name, before any validation, in check mode too', async () => {
    const ctx = host(undefined, { check: true });
    const err = await postconfModule.plan(ctx, { settings: { smtpd_tls_CApth: '/etc/pki/tls/certs', smtpd_tls_loglevel: 1 } }).catch((e: Error) => e);
    expect(err).toBeInstanceOf(Error);
    expect((err as Error).name).toBe('ModuleError');
    expect((err as Error).message).toBe(
      `unknown Postfix parameter in ${MAIN}: "smtpd_tls_CApth" (did you mean "smtpd_tls_CApath"?); Postfix would ignore it with an "unused parameter" warning (list a name in allow_unknown if it is meant)`,
    );
    expect(ctx.calls.map((c) => c.op)).not.toContain('validate');
  });

  const accepted: [string, string, PostconfArgs][] = [
    ['a name in allow_unknown', 'biff = no\n', { settings: { my_custom_thing: 'x' }, allow_unknown: ['my_custom_thing'] }],
    ['a name that a value refers to', 'smtpd_client_restrictions = $mua_client_restrictions\n', { settings: { mua_client_restrictions: 'permit_sasl_authenticated, reject' } }],
    ['a name the same task refers to', '', { settings: { mua_relay: 'permit', smtpd_relay_restrictions: '${mua_relay}' } }],
    ['a per-transport name of a master.cf service', '', { settings: { maildrop_destination_recipient_limit: 1 } }],
  ];
  it.each(accepted)('accepts %s', async (_, main, args) => {
    await expect(postconfModule.plan(host(main), args)).resolves.toMatchObject({ changed: true });
  });

  it('refuses a per-transport name of a service master.cf does not have', async () => {
    await expect(postconfModule.plan(host(''), { settings: { nosuch_destination_recipient_limit: 1 } })).rejects.toThrow(
      /unknown Postfix parameter .*"nosuch_destination_recipient_limit"/,
    );
  });

  it('lists every unknown name at once', async () => {
    await expect(postconfModule.plan(host(), { settings: { smtpd_tls_CApth: 'a', smtpd_tls_logleve: 1 } })).rejects.toThrow(
      /parameters in .*: "smtpd_tls_CApth" \(did you mean "smtpd_tls_CApath"\?\), "smtpd_tls_logleve" \(did you mean "smtpd_tls_loglevel"\?\); Postfix would ignore them/,
    );
  });

  it('does not check names it only removes', async () => {
    const ctx = host('smtpd_tls_CApth = x\n');
    await expect(postconfModule.plan(ctx, { absent: ['smtpd_tls_CApth'] })).resolves.toMatchObject({ changed: true });
    expect(ctx.calls.map((c) => c.op)).not.toContain('readCommand');
  });

  it('fails clearly when postconf -d does not work', async () => {
    const ctx = host(undefined, { commands: { 'postconf-d:3.7.11': { code: 127, stderr: Buffer.from('sh: postconf: not found') } } });
    await expect(postconfModule.plan(ctx, { settings: { biff: 'no' } })).rejects.toThrow('cannot list Postfix\'s parameter names with postconf -d: sh: postconf: not found');
  });
});

describe('postconf reads and names cache', () => {
  it('asks for both files and postconf -d (left out by the runner once the host gave its names); plan then reads no names again', async () => {
    const args: PostconfArgs = { settings: { biff: 'no' } };
    const files = [MAIN, '/etc/postfix/master.cf'];
    expect(postconfModule.reads!(args, debianFacts)).toEqual({
      files,
      commands: [{ key: 'postconf-d:3.7.11', script: 'PATH="$PATH:/usr/sbin:/sbin"; export PATH; postconf -d' }],
    });
    await postconfModule.plan(host(), args);
    const ctx = host();
    await postconfModule.plan(ctx, args);
    expect(ctx.calls.map((c) => c.op)).not.toContain('readCommand');
  });

  it('needs no postconf -d to remove names', () => {
    expect(postconfModule.reads!({ absent: ['x'] }, debianFacts).commands).toEqual([]);
  });

  it('fails when Postfix is not installed and no config_dir is given', async () => {
    const ctx = fakeContext({ facts: { postfix_config_dir: null, postfix_version: null } });
    expect(postconfModule.reads!({ settings: { biff: 'no' } }, ctx.facts)).toEqual({});
    await expect(postconfModule.plan(ctx, { settings: { biff: 'no' } })).rejects.toThrow(/Postfix is not installed/);
  });
});

describe('postconf check', () => {
  const cases: [string, PostconfArgs, string | null][] = [
    ['settings or absent is needed', {}, 'postconf needs "settings" or "absent"'],
    ['a name cannot be set and removed', { settings: { biff: 'no' }, absent: ['biff'] }, '"biff" cannot be both in settings and absent'],
    ['settings alone is fine', { settings: { biff: 'no' } }, null],
  ];
  it.each(cases)('%s', (_, args, message) => {
    expect(postconfModule.check!(args)).toBe(message);
  });
});

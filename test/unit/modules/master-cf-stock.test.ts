/**
 * master_cf on the stock files Postfix releases and distributions install (test/fixtures/postfix/stock, see its
 * README): enabling smtps/submissions as the SMTPS playbook asks, and submission on 587, passes the module's own
 * validation and this machine's real `postconf -c DIR -M`, which shows the listener with exactly the asked options;
 * a second plan finds nothing to do. `$name` references the stock main.cf does not define fail before any write.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, readFileSync, utimesSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { beforeEach, describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import type { Facts } from '../../../src/facts/types.js';
import { type MasterCfArgs, masterCfModule } from '../../../src/modules/master-cf.js';
import type { Plan } from '../../../src/modules/module.js';
import { clearNameCache } from '../../../src/modules/postfix-names.js';
import { debianFacts, fakeContext, rhelFacts } from '../../support/fake-context.js';
import { subDirs, tempDir } from '../../support/tmp.js';

const POSTCONF = '/usr/sbin/postconf';
const STOCK = new URL('../../fixtures/postfix/stock/', import.meta.url);
const stock = (rel: string) => readFileSync(new URL(rel, STOCK));
const MASTER = '/etc/postfix/master.cf';
const MAIN = '/etc/postfix/main.cf';
/** netbase's lines for the two ports: Postfix before 3.6 resolves the names through /etc/services */
const SERVICES = 'submission\t587/tcp\t\t\t\t# Submission [RFC4409]\nsubmissions\t465/tcp\t\tssmtp smtps\t# Submission over TLS [RFC8314]\n';

type Changed = Extract<Plan, { changed: true }>;

interface Shape {
  /** where the files come from, as the test names say it */
  name: string;
  /** master.cf under the stock directory */
  master: string;
  /** main.cf under the stock directory, or null: an empty main.cf (Postfix's defaults) */
  main: string | null;
  facts: Partial<Facts>;
  /** the chroot field of the stock submission template */
  chroot: 'y' | 'n';
}

const upstream = (release: string, dir: string, version: string): Shape => ({
  name: `Postfix ${release} conf/master.cf (upstream-${dir}) with an empty main.cf`,
  master: `upstream-${dir}/master.cf`,
  main: null,
  facts: { postfix_version: version },
  chroot: 'n',
});

/** Every release from 2.11 to 3.10, each with the directory of its master.cf shape. */
const RELEASES: Shape[] = [
  upstream('2.11', '2.11', '2.11.11'),
  upstream('3.0', '3.0', '3.0.15'),
  upstream('3.1', '3.0', '3.1.15'),
  upstream('3.2', '3.2', '3.2.22'),
  upstream('3.3', '3.3', '3.3.22'),
  upstream('3.4', '3.4', '3.4.29'),
  upstream('3.5', '3.5', '3.5.27'),
  upstream('3.6', '3.6', '3.6.20'),
  upstream('3.7', '3.7', '3.7.22'),
  upstream('3.8', '3.8', '3.8.20'),
  upstream('3.9', '3.8', '3.9.14'),
  upstream('3.10', '3.10', '3.10.13'),
];

const redhat = (name: string, dir: string, version: string, distributionVersion: string): Shape => ({
  name,
  master: `${dir}/master.cf`,
  main: `${dir}/main.cf`,
  facts: { ...rhelFacts, distribution: dir === 'centos6' ? 'centos' : 'rhel', distribution_version: distributionVersion, postfix_version: version },
  chroot: 'n',
});
const debian = (name: string, dir: string, version: string, distribution: string, distributionVersion: string): Shape => ({
  name,
  master: `${dir}/master.cf`,
  main: `${dir}/main.cf`,
  facts: { ...debianFacts, distribution, distribution_version: distributionVersion, postfix_version: version },
  chroot: 'y',
});

const FLAVOURS: Shape[] = [
  redhat('Postfix 2.6.6 files as CentOS 6 ships them', 'centos6', '2.6.6', '6'),
  redhat('Postfix 3.5 files as RHEL 9 ships them', 'rhel9', '3.5.25', '9'),
  debian('Postfix 3.5 files as Debian 11 ships them', 'debian11', '3.5.25', 'debian', '11'),
  debian('Postfix 3.7 files as Debian 12 ships them', 'debian12', '3.7.11', 'debian', '12'),
  debian('Postfix 3.6 files as Ubuntu 22.04 ships them', 'ubuntu2204', '3.6.4', 'ubuntu', '22.04'),
  debian('Postfix 3.8 files as Ubuntu 24.04 ships them', 'ubuntu2404', '3.8.6', 'ubuntu', '24.04'),
];

const SHAPES = [...RELEASES, ...FLAVOURS];

const playbook = parse(readFileSync(new URL('../../../playbooks/smtps.yaml', import.meta.url), 'utf8')) as { tasks: Record<string, unknown>[] }[];
/** The SMTPS playbook's own master_cf task. */
const SMTPS = playbook[0]!.tasks.find((t) => t.master_cf)!.master_cf as MasterCfArgs;

const SUBMISSION: MasterCfArgs = {
  service: 'submission',
  type: 'inet',
  options: {
    syslog_name: 'postfix/submission',
    smtpd_tls_security_level: 'encrypt',
    smtpd_sasl_auth_enable: 'yes',
    smtpd_client_restrictions: 'permit_sasl_authenticated,reject',
  },
};

const hasPostconf = existsSync(POSTCONF);
const postconfD = hasPostconf ? execFileSync(POSTCONF, ['-d'], { encoding: 'utf8' }) : '';
const dirs = subDirs(tempDir());

function host(shape: Shape, main?: string) {
  const version = shape.facts.postfix_version!;
  return fakeContext({
    facts: shape.facts,
    files: {
      [MASTER]: { content: stock(shape.master) },
      [MAIN]: { content: main !== undefined ? Buffer.from(main, 'latin1') : shape.main ? stock(shape.main) : Buffer.alloc(0) },
      '/etc/services': SERVICES,
    },
    commands: { [`postconf-d:${version}`]: postconfD },
  });
}

/** `postconf -c DIR -M` on the host's files as they are now: its stdout, and stderr (warnings), old-stamped files. */
function postconfM(ctx: ReturnType<typeof host>, ...args: string[]): { stdout: string; stderr: string } {
  const dir = dirs('conf');
  writeFileSync(path.join(dir, 'main.cf'), ctx.files.get(MAIN)!.content!);
  writeFileSync(path.join(dir, 'master.cf'), ctx.files.get(MASTER)!.content!);
  // postconf waits for a main.cf changed within the last seconds to "cool down"
  for (const f of ['main.cf', 'master.cf']) utimesSync(path.join(dir, f), 946684800, 946684800);
  const r = spawnSync(POSTCONF, ['-c', dir, '-M', ...args], { encoding: 'latin1' });
  expect(r.status).toBe(0);
  return { stdout: r.stdout, stderr: r.stderr };
}

/** Run the module's validation scripts on the candidate the way the host does: $CANDIDATE and $TARGET set. */
function runValidation(plan: Changed): void {
  for (const f of plan.files) {
    for (const v of f.validate ?? []) {
      const dir = dirs('candidate');
      const candidate = path.join(dir, 'master.cf');
      writeFileSync(candidate, f.after);
      const r = spawnSync('sh', ['-c', v.script], { encoding: 'utf8', env: { ...process.env, CANDIDATE: candidate, TARGET: f.path } });
      expect({ status: r.status, stderr: r.stderr }).toEqual({ status: 0, stderr: '' });
    }
  }
}

/** The listener postconf -M shows: its eight fields and its -o options in order. */
function listener(line: string): { fields: string[]; options: string[] } {
  const words = line.trim().split(/\s+/);
  const options: string[] = [];
  for (let i = 8; i < words.length; i += 2) {
    expect(words[i]).toBe('-o');
    options.push(words[i + 1]!);
  }
  return { fields: words.slice(0, 8), options };
}

const asOptions = (args: MasterCfArgs) => Object.entries(args.options!).map(([k, v]) => `${k}=${String(v)}`);

/** Plan, apply, check with the real postconf, plan again. */
async function enable(shape: Shape, args: MasterCfArgs) {
  const ctx = host(shape);
  const before = postconfM(ctx).stdout;
  const first = (await masterCfModule.plan(ctx, args)) as Changed;
  expect(first.changed).toBe(true);
  runValidation(first);
  await ctx.writeFiles(first.files);
  const after = postconfM(ctx);
  expect(after.stderr).toBe('');
  const second = await masterCfModule.plan(ctx, args);
  expect(second.changed).toBe(false);
  // every other active service reads the same to Postfix as before
  const added = after.stdout.split('\n').filter((l) => !before.split('\n').includes(l));
  expect(added).toHaveLength(1);
  return { ctx, first, second, entry: listener(added[0]!) };
}

beforeEach(() => clearNameCache());

describe.skipIf(!hasPostconf)('master_cf enables smtps/submissions on 465 as the SMTPS playbook asks, on stock files', () => {
  it('the playbook asks for a listener with five options, chroot n', () => {
    expect(SMTPS).toMatchObject({ service: 'smtps', type: 'inet', chroot: 'n', command: 'smtpd' });
    expect(Object.keys(SMTPS.options!)).toEqual(['syslog_name', 'smtpd_tls_wrappermode', 'smtpd_sasl_auth_enable', 'smtpd_client_restrictions', 'smtpd_recipient_restrictions']);
  });

  it.each(SHAPES)('$name', async (shape) => {
    const { first, second, entry } = await enable(shape, SMTPS);
    // from 3.7 the template on 465 is called submissions; it keeps its name (the same listener)
    const renamed = /^(3\.([7-9]|\d\d))/.test(shape.facts.postfix_version!);
    const name = renamed ? 'submissions' : 'smtps';
    expect(entry.fields).toEqual([name, 'inet', 'n', '-', 'n', '-', '-', 'smtpd']);
    expect([...entry.options].sort()).toEqual(asOptions(SMTPS).sort());
    expect(first.msg).toMatch(new RegExp(`^enable ${name}/inet.* in ${MASTER}: uncomment the template at line \\d+`));
    // the template's other -o lines (restrictions with $mua_*, the milter macro) are named, not uncommented
    expect(first.msg).toMatch(/; the template's -o .*milter_macro_daemon_name stays? commented$/);
    if (stock(shape.master).includes('$mua_client_restrictions')) expect(first.msg).toContain('(was $mua_client_restrictions)');
    expect(second.msg).toMatch(new RegExp(`^${name}/inet.* is enabled in ${MASTER}$`));
  });
});

describe.skipIf(!hasPostconf)('master_cf enables submission on 587 on stock files', () => {
  it.each(SHAPES)('$name', async (shape) => {
    const { entry } = await enable(shape, SUBMISSION);
    expect(entry.fields).toEqual(['submission', 'inet', 'n', '-', shape.chroot, '-', '-', 'smtpd']);
    expect([...entry.options].sort()).toEqual(asOptions(SUBMISSION).sort());
  });
});

describe.skipIf(!hasPostconf)('master_cf and $mua_* references on stock files', () => {
  const MUA: MasterCfArgs = { ...SMTPS, options: { ...SMTPS.options, smtpd_client_restrictions: '$mua_client_restrictions' } };

  it.each(SHAPES)('$name: refused before any write while main.cf does not define it', async (shape) => {
    const ctx = host(shape);
    const before = ctx.files.get(MASTER)!.content;
    await expect(masterCfModule.plan(ctx, MUA)).rejects.toThrow(
      /-o smtpd_client_restrictions refers to \$mua_client_restrictions, which \/etc\/postfix\/main\.cf does not set and Postfix does not define .*set it in main\.cf first \(a postconf task before this one, settings: \{ mua_client_restrictions: … \}\)/,
    );
    expect(ctx.validated).toEqual([]);
    expect(ctx.files.get(MASTER)!.content).toEqual(before);
  });

  it.each(SHAPES)('$name: enabled once main.cf defines it', async (shape) => {
    const main = `${(shape.main ? stock(shape.main) : Buffer.alloc(0)).toString('latin1')}mua_client_restrictions = permit_sasl_authenticated, reject\n`;
    const ctx = host(shape, main);
    const first = (await masterCfModule.plan(ctx, MUA)) as Changed;
    runValidation(first);
    await ctx.writeFiles(first.files);
    const shown = postconfM(ctx);
    expect(shown.stderr).toBe('');
    expect(shown.stdout).toMatch(/^(smtps|submissions) .* -o smtpd_client_restrictions=\$mua_client_restrictions( |$)/m);
    expect((await masterCfModule.plan(ctx, MUA)).changed).toBe(false);
  });
});

describe('master_cf and $name references', () => {
  const shape = FLAVOURS.find((s) => s.master.startsWith('debian12'))!;
  const ctx = () => host(shape);

  it('accepts references to Postfix built-ins and to options of the same entry', async () => {
    const args: MasterCfArgs = {
      ...SMTPS,
      options: { ...SMTPS.options, syslog_name: 'postfix/$service_name', local_mua_check: 'permit_sasl_authenticated,reject', smtpd_client_restrictions: '${local_mua_check}' },
      allow_unknown: ['local_mua_check'],
    };
    expect((await masterCfModule.plan(ctx(), args)).changed).toBe(true);
  });

  it('names every undefined parameter once, in $(name) and ${name?value} forms too', async () => {
    const args: MasterCfArgs = {
      ...SMTPS,
      options: { ...SMTPS.options, smtpd_client_restrictions: '$(mua_a)', smtpd_helo_restrictions: '${mua_b?reject}', smtpd_sender_restrictions: '$mua_a' },
    };
    await expect(masterCfModule.plan(ctx(), args)).rejects.toMatchObject({
      data: { undefined: ['mua_a', 'mua_b'] },
      message: expect.stringContaining('settings: { mua_a: …, mua_b: … }'),
    });
  });
});

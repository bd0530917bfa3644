/**
 * Postfix's parameter names on the controller: the names store a run keeps between runs (useNamesStore), and the
 * shell the facts exec runs to bring a host's names back only when the controller does not know its version.
 */
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { quote } from '../../../src/connection/shell-quote.js';
import { POSTFIX_VERSION_VAR } from '../../../src/facts/gather.js';
import {
  builtinNames,
  clearNameCache,
  hostNamesScript,
  isDefaultsCommand,
  knownNameVersions,
  listedValue,
  namesKeptFor,
  parseHostNames,
  parsePostconfNames,
  pendingNameReads,
  postconfDefaultsCommand,
  rememberNames,
  useNamesStore,
} from '../../../src/modules/postfix-names.js';
import { fakeContext } from '../../support/fake-context.js';
import { fakePostconf } from '../../support/fake-postconf.js';
import { subDirs, tempDir } from '../../support/tmp.js';

const root = tempDir('provision-names-');
const fresh = subDirs(root);
const postconfD = readFileSync(new URL('../../fixtures/postfix/debian-12-postconf-d.txt', import.meta.url), 'utf8');
const DEBIAN_NAMES = parsePostconfNames(postconfD);
/** The host the names come from (fakeContext's), and its directory in a store. */
const H = 'h1';
const hostDir = (store: string, host = H) => path.join(store, createHash('sha256').update(host).digest('hex').slice(0, 32));

beforeEach(() => {
  clearNameCache();
  useNamesStore(null);
});
afterEach(() => {
  clearNameCache();
  useNamesStore(null);
});

describe('which read-only commands are the names fetch', () => {
  it('recognises postconfDefaultsCommand by its key, and nothing else', () => {
    expect(isDefaultsCommand(postconfDefaultsCommand('3.7.11').key)).toBe(true);
    expect(isDefaultsCommand(postconfDefaultsCommand('').key)).toBe(true);
    for (const key of ['postconf-n:3.7.11', 'postconf-d', 'x:postconf-d:3.7.11', 'postfix-health', '']) expect(isDefaultsCommand(key), key).toBe(false);
  });
});

describe('names kept between runs (the names store)', () => {
  const names = new Set(['myhostname', 'smtpd_tls_loglevel']);

  it('rememberNames keeps the names for the process, and with a store on disk for the next process', () => {
    const dir = fresh('store');
    useNamesStore(dir);
    rememberNames(H, '3.7.11', names);
    expect(existsSync(path.join(hostDir(dir), '3.7.11.json'))).toBe(true);
    expect(knownNameVersions(H)).toEqual(['3.7.11']);

    // a new process with the same store: the version is known, its names come from disk, nothing is fetched
    clearNameCache();
    useNamesStore(dir);
    expect(knownNameVersions(H)).toEqual(['3.7.11']);
    expect(namesKeptFor(H, postconfDefaultsCommand('3.7.11').key)).toBe(true);
    expect(namesKeptFor(H, postconfDefaultsCommand('3.8.0').key)).toBe(false);
    expect(pendingNameReads('3.8.0')).toEqual([postconfDefaultsCommand('3.8.0')]);
    expect(pendingNameReads(null)).toEqual([]);
  });

  it('without a store the names live as long as the process', () => {
    rememberNames(H, '3.7.11', names);
    expect(knownNameVersions(H)).toEqual(['3.7.11']);
    expect(namesKeptFor(H, postconfDefaultsCommand('3.7.11').key)).toBe(true);
    clearNameCache();
    expect(knownNameVersions(H)).toEqual([]);
    expect(namesKeptFor(H, postconfDefaultsCommand('3.7.11').key)).toBe(false);
  });

  it('lists each version once, whether the process or the store has it', () => {
    const dir = fresh('store');
    useNamesStore(dir);
    rememberNames(H, '3.7.11', names);
    rememberNames(H, '2.6.6', names);
    useNamesStore(null);
    rememberNames(H, '3.9.1', names); // process only
    useNamesStore(dir);
    expect(knownNameVersions(H).sort()).toEqual(['2.6.6', '3.7.11', '3.9.1']);
  });

  it('builtinNames fetches `postconf -d` once, and a later process with the same store does not fetch it at all', async () => {
    const dir = fresh('store');
    useNamesStore(dir);
    const ctx = fakeContext({ commands: { 'postconf-d:3.7.11': postconfD } });
    expect(await builtinNames(ctx, '3.7.11')).toEqual(DEBIAN_NAMES);
    expect(await builtinNames(ctx, '3.7.11')).toEqual(DEBIAN_NAMES);
    expect(ctx.calls.filter((c) => c.op === 'readCommand')).toEqual([{ op: 'readCommand', arg: 'postconf-d:3.7.11' }]);

    clearNameCache();
    useNamesStore(dir);
    const later = fakeContext({ commands: {} });
    expect(await builtinNames(later, '3.7.11')).toEqual(DEBIAN_NAMES);
    expect(later.calls).toEqual([]);

    // a process without the store fetches again
    clearNameCache();
    useNamesStore(null);
    const alone = fakeContext({ commands: { 'postconf-d:3.7.11': postconfD } });
    await builtinNames(alone, '3.7.11');
    expect(alone.calls.map((c) => c.op)).toEqual(['readCommand']);
  });

  it('a failed fetch stores nothing', async () => {
    const dir = fresh('store');
    useNamesStore(dir);
    const ctx = fakeContext({ commands: { 'postconf-d:3.7.11': { code: 127, stderr: Buffer.from('sh: postconf: not found') } } });
    await expect(builtinNames(ctx, '3.7.11')).rejects.toThrow(/postconf: not found/);
    expect(knownNameVersions(H)).toEqual([]);
    expect(existsSync(path.join(hostDir(dir), '3.7.11.json'))).toBe(false);
  });

  it('a corrupt file in the store is fetched again and rewritten', async () => {
    const dir = fresh('store');
    mkdirSync(hostDir(dir), { recursive: true });
    writeFileSync(path.join(hostDir(dir), '3.7.11.json'), '{"format":1,"postfix":"3.7.11","names":["trunc');
    useNamesStore(dir);
    expect(namesKeptFor(H, postconfDefaultsCommand('3.7.11').key)).toBe(false);
    const ctx = fakeContext({ commands: { 'postconf-d:3.7.11': postconfD } });
    expect(await builtinNames(ctx, '3.7.11')).toEqual(DEBIAN_NAMES);
    clearNameCache();
    useNamesStore(null);
    useNamesStore(dir);
    expect(namesKeptFor(H, postconfDefaultsCommand('3.7.11').key)).toBe(true);
  });

  it('a store it cannot write costs only the fetch: the run goes on', async () => {
    const file = path.join(fresh('x'), 'a-file');
    writeFileSync(file, '');
    useNamesStore(path.join(file, 'postfix-names'));
    const ctx = fakeContext({ commands: { 'postconf-d:3.7.11': postconfD } });
    expect(await builtinNames(ctx, '3.7.11')).toEqual(DEBIAN_NAMES);
    expect(knownNameVersions(H)).toEqual(['3.7.11']);
  });

  it('a version a host reports that cannot name a file is kept for the process only', () => {
    const dir = fresh('store');
    useNamesStore(dir);
    rememberNames(H, '../evil', names);
    expect(knownNameVersions(H)).toEqual(['../evil']);
    expect(existsSync(path.join(path.dirname(dir), 'evil.json'))).toBe(false);
    expect(existsSync(path.join(dir, 'evil.json'))).toBe(false);
    expect(existsSync(path.join(hostDir(dir), '..', 'evil.json'))).toBe(false);
  });
});

describe('a host answers for itself only', () => {
  it('names a hostile host sends for a version are never used for another host of that version', async () => {
    const dir = fresh('store');
    useNamesStore(dir);
    // The hostile host claims Debian 12's version with a list that makes a typo look like a real parameter.
    rememberNames('evil.lab.test', '3.7.11', new Set(['myhostname', 'smtpd_tls_CApth']));
    expect(knownNameVersions('h1')).toEqual([]);
    expect(namesKeptFor('h1', postconfDefaultsCommand('3.7.11').key)).toBe(false);
    const honest = fakeContext({ commands: { 'postconf-d:3.7.11': postconfD } });
    const got = await builtinNames(honest, '3.7.11');
    expect(got.has('smtpd_tls_CApth')).toBe(false);
    expect(honest.calls.map((c) => c.op)).toEqual(['readCommand']);
    // Nor in a later process that reads the store.
    clearNameCache();
    useNamesStore(null);
    useNamesStore(dir);
    expect((await builtinNames(fakeContext({ commands: {} }), '3.7.11')).has('smtpd_tls_CApth')).toBe(false);
    expect(knownNameVersions('evil.lab.test')).toEqual(['3.7.11']);
  });

  it('hosts that send the same list (Debian 12 stock `postconf -d`) share one copy of it; a different list stays apart', async () => {
    // 500 hosts of one version would otherwise keep 500 copies of ~1000 names each until the run ends.
    const first = fakeContext({ commands: { 'postconf-d:3.7.11': postconfD } });
    const a = await builtinNames(first, '3.7.11');
    rememberNames('h2', '3.7.11', parsePostconfNames(postconfD));
    rememberNames('evil.lab.test', '3.7.11', new Set([...DEBIAN_NAMES, 'smtpd_tls_CApth']));
    const b = await builtinNames({ ...fakeContext({ commands: {} }), host: 'h2' }, '3.7.11');
    const evil = await builtinNames({ ...fakeContext({ commands: {} }), host: 'evil.lab.test' }, '3.7.11');
    expect(b).toBe(a);
    expect(a).toEqual(DEBIAN_NAMES);
    expect(evil).not.toBe(a);
    expect(evil.has('smtpd_tls_CApth')).toBe(true);
    expect(a.has('smtpd_tls_CApth')).toBe(false);
  });
});

describe('lists of one size are told apart name by name', () => {
  it('a list of the same size as Debian 12\'s with one name changed is not shared with it', async () => {
    // shared() compares lists of equal size name by name; a hostile host may send a list of exactly that size.
    const a = await builtinNames(fakeContext({ commands: { 'postconf-d:3.7.11': postconfD } }), '3.7.11');
    const swapped = new Set([...DEBIAN_NAMES].slice(1));
    swapped.add('smtpd_tls_CApth');
    expect(swapped.size).toBe(DEBIAN_NAMES.size);
    rememberNames('evil.lab.test', '3.7.11', swapped);
    rememberNames('h2', '3.7.11', new Set([...DEBIAN_NAMES].reverse()));
    const evil = await builtinNames({ ...fakeContext({ commands: {} }), host: 'evil.lab.test' }, '3.7.11');
    const h2 = await builtinNames({ ...fakeContext({ commands: {} }), host: 'h2' }, '3.7.11');
    expect(evil).not.toBe(a);
    expect(evil.has('smtpd_tls_CApth')).toBe(true);
    expect(a.has('smtpd_tls_CApth')).toBe(false);
    expect(h2).toBe(a);
  });
});

describe('parsePostconfNames', () => {
  /** The reading it replaced: each line cut out, and a name and " =" at its start. */
  const byLines = (s: string) => new Set(s.split('\n').flatMap((l) => /^([A-Za-z0-9_]+) =/.exec(l)?.[1] ?? []));

  it.each([
    ['Debian 12 `postconf -d`', postconfD],
    ['CRLF line ends', 'a_name = 1\r\nb_name = 2\r\n'],
    ['a carriage return inside a line', 'x \rc_name = 1\nd_name = 2'],
    ['no line end at the end', 'a_name = 1\nb_name ='],
    ['blank, indented and nameless lines', '\n\n  a_name = 1\nb-name = 2\n= 3\nc_name=4\nd_name =\n\n'],
    ['a value that looks like a line', 'a_name = x b_name = y\nc_name = $d_name = 1'],
    ['nothing', ''],
  ])('reads the names at the start of each line (%s)', (_, text) => {
    expect(parsePostconfNames(text)).toEqual(byLines(text));
  });
});

describe('the names a host sends in the facts exec', () => {
  /** Run hostNamesScript with the facts script's version variable set as a host with `version` would have it. */
  function runHost(version: string, known: string[], fake: ReturnType<typeof fakePostconf>): string {
    return execFileSync('/bin/sh', ['-c', `${POSTFIX_VERSION_VAR}=${quote(version)}\n${hostNamesScript(known)}`], { encoding: 'utf8', env: { PATH: fake.path } });
  }
  const names = ['alpha_param', 'beta_param', 'myhostname'];

  it('an unknown version: one `postconf -d`, sent as `@@N 0 <version>` and base64 on one line', () => {
    const fake = fakePostconf(fresh('bin'), { version: '9.9.9', configDir: '/etc/postfix', names });
    const out = runHost('9.9.9', ['3.7.11', '2.6.6'], fake);
    const lines = out.split('\n');
    expect(lines[0]).toBe('@@N 0 9.9.9');
    expect(lines[1]).toMatch(/^[A-Za-z0-9+/]+=*$/);
    expect(lines.slice(2)).toEqual(['']);
    expect(parseHostNames(out)).toEqual({ version: '9.9.9', names: new Set(names) });
    expect(fake.defaultsCalls()).toBe(1);
  });

  it('all of a real `postconf -d` (about 60 KB) comes back', () => {
    const fake = fakePostconf(fresh('bin'), { version: '3.7.11', configDir: '/etc/postfix', names: { text: postconfD } });
    expect(parseHostNames(runHost('3.7.11', [], fake))).toEqual({ version: '3.7.11', names: DEBIAN_NAMES });
    expect(DEBIAN_NAMES.size).toBeGreaterThan(500);
  });

  it('a known version: nothing printed, `postconf -d` not run', () => {
    const fake = fakePostconf(fresh('bin'), { version: '3.7.11', configDir: '/etc/postfix', names });
    const out = runHost('3.7.11', ['2.6.6', '3.7.11', '3.9.1'], fake);
    expect(out).toBe('');
    expect(parseHostNames(out)).toBeNull();
    expect(fake.defaultsCalls()).toBe(0);
  });

  it('no Postfix (an empty version): nothing printed, nothing run', () => {
    const fake = fakePostconf(fresh('bin'), { version: '', configDir: '', names });
    expect(runHost('', [], fake)).toBe('');
    expect(fake.calls()).toEqual([]);
  });

  it.each<[string, string, string[]]>([
    ['a prefix of a known version', '3.7.1', ['3.7.11']],
    ['a known version as a prefix', '3.7.11', ['3.7.1']],
    ['a glob among the known', '3.7.11', ['3.7.*', '*']],
    ['a glob as the version', '*', ['3.7.11']],
    ['a version with a space', '3.7 11', ['3.7', '11']],
    ['known versions with quotes', "3'7", ["3'7x", '"3\'7"']],
  ])('matches versions literally and whole: %s is unknown', (_, version, known) => {
    const fake = fakePostconf(fresh('bin'), { version, configDir: '/etc/postfix', names });
    expect(parseHostNames(runHost(version, known, fake))).toEqual({ version, names: new Set(names) });
  });

  it('matches a version with shell characters when it is known', () => {
    const version = "3.7'$(x)*";
    const fake = fakePostconf(fresh('bin'), { version, configDir: '/etc/postfix', names });
    expect(runHost(version, ['1', version, '2'], fake)).toBe('');
  });

  it('a failing `postconf -d` gives no names (the task that needs them fetches them and reports why it cannot)', () => {
    const fake = fakePostconf(fresh('bin'), { version: '3.7.11', configDir: '/etc/postfix', names, defaultsExit: 1 });
    const out = runHost('3.7.11', [], fake);
    expect(out.split('\n')[0]).toBe('@@N 1 3.7.11');
    expect(parseHostNames(out)).toBeNull();
  });

  it('a `postconf -d` that prints no names gives no names', () => {
    const fake = fakePostconf(fresh('bin'), { version: '3.7.11', configDir: '/etc/postfix', names: [] });
    const out = runHost('3.7.11', [], fake);
    expect(out.split('\n')[0]).toBe('@@N 0 3.7.11');
    expect(parseHostNames(out)).toBeNull();
  });
});

describe('parseHostNames', () => {
  const b64 = (s: string) => Buffer.from(s).toString('base64');

  it('reads the version and the names after the @@N line', () => {
    expect(parseHostNames(`@@N 0 3.7.11\n${b64('a_name = 1\nb_name =\n')}\n`)).toEqual({ version: '3.7.11', names: new Set(['a_name', 'b_name']) });
    expect(parseHostNames(`noise\n@@N 0 3.10-20240101\n${b64('a_name = 1\n')}\n`)).toEqual({ version: '3.10-20240101', names: new Set(['a_name']) });
  });

  it.each([
    ['nothing', ''],
    ['no @@N line', `${b64('a_name = 1\n')}\n`],
    ['a failed postconf', `@@N 1 3.7.11\n${b64('a_name = 1\n')}\n`],
    ['no exit status', `@@N  3.7.11\n${b64('a_name = 1\n')}\n`],
    ['no version', `@@N 0\n${b64('a_name = 1\n')}\n`],
    ['the names line missing (cut short)', '@@N 0 3.7.11\n'],
    ['the names line empty', '@@N 0 3.7.11\n\n'],
    ['no names in the output', `@@N 0 3.7.11\n${b64('postconf: fatal: whatever\n')}\n`],
  ])('gives null for %s', (_, out) => {
    expect(parseHostNames(out)).toBeNull();
  });

  it('reads the version, the config directory and the names from a listing after the @@P line', () => {
    const text = 'alpha = 1\nconfig_directory = /etc/postfix\nmail_version = 3.7.11\nzeta =\n';
    expect(parseHostNames(`@@P\n${b64(text)}\n`)).toEqual({
      version: '3.7.11',
      names: new Set(['alpha', 'config_directory', 'mail_version', 'zeta']),
      listedConfigDir: '/etc/postfix',
    });
    // an empty config_directory is a value (the facts then have none, as with `postconf -h`)
    expect(parseHostNames(`@@P\n${b64('config_directory =\nmail_version = 3.7.11\n')}\n`)?.listedConfigDir).toBe('');
  });

  it.each([
    ['no mail_version', 'alpha = 1\nconfig_directory = /etc/postfix\n'],
    ['an empty mail_version', 'config_directory = /etc/postfix\nmail_version =\n'],
    ['no config_directory', 'alpha = 1\nmail_version = 3.7.11\n'],
    ['a name that only starts like one', 'config_directory_x = /x\nmail_version_x = 1\n'],
    ['nothing', ''],
  ])('a listing with %s gives no names', (_, text) => {
    expect(parseHostNames(`@@P\n${b64(text)}\n`)).toBeNull();
  });

  it('listedValue: the value after "name = ", whole names only, an empty value for "name ="', () => {
    const text = 'a_name = x\nname = one two\nempty =\nlast = end';
    expect(listedValue(text, 'name')).toBe('one two');
    expect(listedValue(text, 'a_name')).toBe('x');
    expect(listedValue(text, 'empty')).toBe('');
    expect(listedValue(text, 'last')).toBe('end');
    expect(listedValue(text, 'nam')).toBeNull();
    expect(listedValue(text, 'missing')).toBeNull();
  });

  it('a names line cut short gives at most the names that came whole, never a made-up one', () => {
    const full = Array.from({ length: 50 }, (_, i) => `name_${i} = value`).join('\n');
    const line = b64(`${full}\n`);
    for (const cut of [4, 40, 400, line.length - 4]) {
      const got = parseHostNames(`@@N 0 3.7.11\n${line.slice(0, cut)}`);
      for (const name of got?.names ?? []) expect(name).toMatch(/^name_\d+$/);
    }
  });
});

// The facts take a controller's first list of a host's names from `postconf -C builtin,service` instead of
// `postconf -d` (gather.ts). That holds only if the two list the same names: checked here with the real postconf,
// on a config directory with a service of its own in master.cf (its service-defined names are in both) and a
// user-defined parameter in main.cf (in neither).
describe.skipIf(!existsSync('/usr/sbin/postconf'))('the real postconf: `-C builtin,service` lists the names `-d` lists', () => {
  it('with a service of its own and a user-defined parameter', () => {
    const conf = fresh('real-postconf');
    writeFileSync(path.join(conf, 'main.cf'), 'my_own_param = 1\nrelayhost = $my_own_param\ncompatibility_level = 3.6\n');
    writeFileSync(path.join(conf, 'master.cf'), 'smtp inet n - y - - smtpd\nmyrelay unix - - n - - smtp\n');
    const postconf = (...args: string[]) => execFileSync('/usr/sbin/postconf', ['-c', conf, ...args], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] });
    const defaults = parsePostconfNames(postconf('-d'));
    const listed = parsePostconfNames(postconf('-C', 'builtin,service'));
    expect([...listed].sort()).toEqual([...defaults].sort());
    expect(listed.has('myrelay_destination_concurrency_limit')).toBe(true);
    expect(listed.has('my_own_param')).toBe(false);
    expect(parsePostconfNames(postconf()).has('my_own_param')).toBe(true);
    // and the listing's values are what -h prints
    const [version, dir] = postconf('-h', 'mail_version', 'config_directory').trim().split('\n');
    const text = postconf('-C', 'builtin,service');
    expect(listedValue(text, 'mail_version')).toBe(version);
    expect(listedValue(text, 'config_directory')).toBe(dir);
  });
});

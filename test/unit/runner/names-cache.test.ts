/**
 * Postfix's parameter names kept on the controller between runs (RunOptions.cacheDir): a run whose cache already
 * holds the host's version does not run `postconf -d` on the host. A fake postconf first on PATH counts the calls.
 */
import { createHash } from 'node:crypto';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { clearNameCache } from '../../../src/modules/postfix-names.js';
import { fakePostconf } from '../../support/fake-postconf.js';
import { runLocal } from '../../support/run.js';
import { tempDir, writeFiles } from '../../support/tmp.js';

const dir = tempDir();
const VERSION = '9.9.9-test';
const fake = fakePostconf(tempDir('provision-fake-postconf-'), { version: VERSION, configDir: path.join(dir, 'unused'), names: ['alpha_param', 'beta_param', 'myhostname'] });
const inventory = '[all]\nh1 ansible_connection=local\n';
let n = 0;
const freshCache = () => path.join(dir, `cache${n++}`);
/** Where the cache keeps the names host h1 gave (one directory per host, named by a hash of its name). */
const hostStore = (cache: string) => path.join(cache, 'postfix-names', createHash('sha256').update('h1').digest('hex').slice(0, 32));
/** A Postfix config directory of its own, and a play that sets a parameter in it. */
function setup(settings = '{ alpha_param: 2 }') {
  const conf = path.join(dir, `conf${n++}`);
  writeFiles(conf, { 'main.cf': 'alpha_param = 1\n' });
  const playbook = `- hosts: all
  tasks:
    - name: set a parameter
      postconf: { config_dir: ${conf}, settings: ${settings} }
`;
  return { conf, playbook };
}

const PATH = process.env.PATH;
beforeAll(() => {
  process.env.PATH = `${fake.dir}:${PATH}`;
});
afterAll(() => {
  process.env.PATH = PATH;
});
// each run below stands for a new controller process: nothing kept in memory between them
beforeEach(() => clearNameCache());

describe("Postfix's parameter names in the controller cache", () => {
  it('a second run with the same cache does not list the names again; one with an empty cache does', async () => {
    const cache = freshCache();
    const { conf, playbook } = setup();

    const first = await runLocal(dir, playbook, inventory, { cacheDir: cache });
    // facts with the names and the reads, then the write (validated in the same exec)
    expect(first.report.hosts.h1).toMatchObject({ changed: 1, failed: 0, steps: 2 });
    expect(readFileSync(path.join(conf, 'main.cf'), 'utf8')).toBe('alpha_param = 2\n');
    // listed by the facts' one postconf run (`postconf -C builtin,service`), with the version and config directory
    expect(fake.namesCalls()).toBe(1);
    expect(fake.defaultsCalls()).toBe(0);
    const stored = JSON.parse(readFileSync(path.join(hostStore(cache), `${VERSION}.json`), 'utf8')) as { postfix: string; names: string[] };
    expect(stored).toMatchObject({ postfix: VERSION, names: ['alpha_param', 'beta_param', 'config_directory', 'mail_version', 'myhostname'] });

    clearNameCache();
    const second = await runLocal(dir, playbook, inventory, { cacheDir: cache });
    expect(second.report.hosts.h1).toMatchObject({ changed: 0, ok: 1, failed: 0, steps: 1 });
    expect(fake.namesCalls()).toBe(1);

    clearNameCache();
    const elsewhere = await runLocal(dir, playbook, inventory, { cacheDir: freshCache() });
    expect(elsewhere.report.hosts.h1).toMatchObject({ changed: 0, ok: 1, failed: 0, steps: 1 });
    expect(fake.namesCalls()).toBe(2);

    // without a cache directory (a library caller), nothing is kept beyond the process
    clearNameCache();
    await runLocal(dir, playbook, inventory);
    expect(fake.namesCalls()).toBe(3);
  });

  it('the names from the cache are the ones checked: an unknown name is refused with a suggestion, without asking the host', async () => {
    const cache = freshCache();
    await runLocal(dir, setup().playbook, inventory, { cacheDir: cache });
    const before = fake.namesCalls();
    clearNameCache();
    const { conf, playbook } = setup('{ alpah_param: 2 }');
    const { report, results } = await runLocal(dir, playbook, inventory, { cacheDir: cache });
    expect(report.hosts.h1).toMatchObject({ changed: 0, failed: 1 });
    expect(results.at(-1)!.msg).toContain('unknown Postfix parameter in');
    expect(results.at(-1)!.msg).toContain('(did you mean "alpha_param"?)');
    expect(fake.namesCalls()).toBe(before);
    expect(readFileSync(path.join(conf, 'main.cf'), 'utf8')).toBe('alpha_param = 1\n');
  });

  it('a corrupt cache file costs one fetch and is rewritten', async () => {
    const cache = freshCache();
    const { playbook } = setup();
    writeFiles(hostStore(cache), { [`${VERSION}.json`]: '{"format":1,"postfix":' });
    const before = fake.namesCalls();
    const { report } = await runLocal(dir, playbook, inventory, { cacheDir: cache });
    expect(report.hosts.h1).toMatchObject({ changed: 1, failed: 0 });
    expect(fake.namesCalls()).toBe(before + 1);
    expect(JSON.parse(readFileSync(path.join(hostStore(cache), `${VERSION}.json`), 'utf8'))).toMatchObject({ postfix: VERSION });
  });

  it('a cache directory that cannot be made does not fail the run', async () => {
    const file = path.join(dir, `not-a-dir${n++}`);
    writeFileSync(file, '');
    const { report } = await runLocal(dir, setup().playbook, inventory, { cacheDir: path.join(file, 'cache') });
    expect(report.hosts.h1).toMatchObject({ changed: 1, failed: 0, unreachable: 0 });
    expect(existsSync(path.join(file, 'cache'))).toBe(false);
  });
});

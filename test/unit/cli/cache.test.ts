/** The CLI keeps Postfix's parameter names in the controller cache (PROVISION_CACHE_DIR here, see cacheDir). */
import { createHash } from 'node:crypto';
import { existsSync, readdirSync, statSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { clearNameCache } from '../../../src/modules/postfix-names.js';
import { CACHE_DIR_ENV, cacheDir } from '../../../src/util/cache-dir.js';
import { runCli } from '../../support/cli.js';
import { fakePostconf } from '../../support/fake-postconf.js';
import { tempDir, writeFiles } from '../../support/tmp.js';

const dir = tempDir();
const VERSION = '9.9.9-cli-test';
const fake = fakePostconf(tempDir('provision-fake-postconf-'), { version: VERSION, configDir: path.join(dir, 'unused'), names: ['alpha_param', 'myhostname'] });
const inventory = writeFiles(dir, { hosts: '[local]\nlocalhost ansible_connection=local\n' });
writeFiles(dir, { 'conf/main.cf': 'alpha_param = 1\n' });
const playbook = writeFiles(dir, {
  'site.yaml': `- hosts: local
  tasks:
    - postconf: { config_dir: ${path.join(dir, 'conf')}, settings: { alpha_param: 2 } }
`,
});

const PATH = process.env.PATH;
beforeAll(() => {
  process.env.PATH = `${fake.dir}:${PATH}`;
});
afterAll(() => {
  process.env.PATH = PATH;
});

describe('the controller cache of the CLI', () => {
  it('run keeps the names in $PROVISION_CACHE_DIR/postfix-names, and the next run (a new process) uses them', async () => {
    const cache = process.env[CACHE_DIR_ENV]!;
    const userCache = cacheDir({ ...process.env, [CACHE_DIR_ENV]: undefined });
    expect(cache).not.toBe(userCache);
    // The user's own cache may hold an entry for localhost from a run by hand; the test must not write it.
    const hostDir0 = createHash('sha256').update('localhost').digest('hex').slice(0, 32);
    const userEntry = path.join(userCache, 'postfix-names', hostDir0);
    const stamp = () => (existsSync(userEntry) ? statSync(userEntry).mtimeMs : null);
    const before = stamp();

    expect((await runCli(['run', playbook, '-i', inventory, '--no-retry-file'])).code).toBe(0);
    expect(fake.namesCalls()).toBe(1);
    // One directory per host, named by a hash of its inventory name.
    const hostDir = createHash('sha256').update('localhost').digest('hex').slice(0, 32);
    expect(readdirSync(path.join(cache, 'postfix-names'))).toEqual([hostDir]);
    expect(readdirSync(path.join(cache, 'postfix-names', hostDir))).toEqual([`${VERSION}.json`]);
    expect(stamp()).toBe(before);

    clearNameCache();
    const again = await runCli(['run', playbook, '-i', inventory, '--no-retry-file', '--json']);
    expect(again.code).toBe(0);
    expect(again.events.at(-1)).toMatchObject({ type: 'recap', hosts: { localhost: { changed: 0, failed: 0, steps: 1 } } });
    expect(fake.namesCalls()).toBe(1);

    // check mode uses the cache too
    clearNameCache();
    expect((await runCli(['check', playbook, '-i', inventory])).code).toBe(0);
    expect(fake.namesCalls()).toBe(1);
  });
});

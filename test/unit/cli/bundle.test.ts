/**
 * The bundled CLI, as `npm run build` makes it (scripts/build.mjs): bundled here from the sources into a package
 * laid out as the real one (bin/, dist/bundle/, package.json), then run as a user runs it. Every file each command
 * loads is recorded, so a bundle that misses its generated validators (and compiles the schemas at every start),
 * or a validate that loads the runner's chunk, fails here rather than only in a timing.
 */
import { spawnSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { bundleCli, GENERATED_VALIDATORS } from '../../../scripts/build.mjs';
import { generatedValidators } from '../../../src/playbook/validators-build.js';
import { tempDir, writeFiles } from '../../support/tmp.js';

// Inside the project: the bundle finds ssh2 and ajv's runtime helpers in its node_modules, as the real one does.
const root = path.resolve(import.meta.dirname, '../../..');
const version = (JSON.parse(readFileSync(path.join(root, 'package.json'), 'utf8')) as { version: string }).version;
let pkg: string;
let bundle: string;

beforeAll(async () => {
  pkg = mkdtempSync(path.join(root, '.bundle-test-'));
  bundle = path.join(pkg, 'dist/bundle');
  await bundleCli({ entry: path.join(root, 'src/cli/main.ts'), outdir: bundle });
  const { structure, args } = generatedValidators();
  const [structureFile, argsFile] = GENERATED_VALIDATORS as [string, string];
  writeFileSync(path.join(bundle, structureFile), structure);
  writeFileSync(path.join(bundle, argsFile), args);
  mkdirSync(path.join(pkg, 'bin'));
  copyFileSync(path.join(root, 'bin/provision.js'), path.join(pkg, 'bin/provision.js'));
  writeFileSync(path.join(pkg, 'package.json'), JSON.stringify({ name: 'provision', version, type: 'module' }));
  // Records every file loaded: ES modules through a load hook, CommonJS ones from require's cache at exit.
  writeFileSync(
    path.join(pkg, 'trace-hooks.mjs'),
    "import { appendFileSync } from 'node:fs';\nexport async function load(url, context, next) {\n  appendFileSync(process.env.TRACE_FILE, `${url}\\n`);\n  return next(url, context);\n}\n",
  );
  writeFileSync(
    path.join(pkg, 'trace.mjs'),
    "import { appendFileSync } from 'node:fs';\nimport { createRequire, register } from 'node:module';\nimport { pathToFileURL } from 'node:url';\nregister('./trace-hooks.mjs', import.meta.url);\nconst cache = createRequire(import.meta.url).cache;\nprocess.on('exit', () => appendFileSync(process.env.TRACE_FILE, Object.keys(cache).map((f) => `${pathToFileURL(f).href}\\n`).join('')));\n",
  );
}, 120_000);
afterAll(() => rmSync(pkg, { recursive: true, force: true }));

interface Ran {
  code: number | null;
  stdout: string;
  stderr: string;
  /** project-relative paths of the files the process loaded (Node's own modules left out) */
  loaded: string[];
}

let runs = 0;
function provision(args: string[]): Ran {
  const trace = path.join(pkg, `trace-${runs++}.txt`);
  writeFileSync(trace, '');
  const r = spawnSync(process.execPath, ['--import', path.join(pkg, 'trace.mjs'), path.join(pkg, 'bin/provision.js'), ...args], {
    cwd: root,
    encoding: 'utf8',
    env: { ...process.env, TRACE_FILE: trace, NO_COLOR: '1' },
    timeout: 60_000,
  });
  const loaded = [
    ...new Set(
      readFileSync(trace, 'utf8')
        .split('\n')
        .filter((u) => u.startsWith('file:'))
        .map((u) => path.relative(root, fileURLToPath(u))),
    ),
  ];
  return { code: r.status, stdout: r.stdout, stderr: r.stderr, loaded };
}

const inBundle = (f: string) => f.startsWith(`${path.relative(root, bundle)}/`);

describe('the bundled CLI (what npm run build makes)', () => {
  it('validates the SMTPS playbook from the bundle and the generated validators alone', () => {
    const r = provision(['validate', 'playbooks/smtps.yaml']);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.stdout).toBe('playbooks/smtps.yaml: 1 play, 14 tasks and handlers: valid\n');
    // the generated validators were found beside the bundle, so ajv's compiler never loaded: only its runtime helpers
    for (const f of GENERATED_VALIDATORS) expect(r.loaded).toContain(`${path.relative(root, bundle)}/${f}`);
    const ours = [`${path.relative(root, pkg)}/bin/provision.js`, `${path.relative(root, pkg)}/trace.mjs`, `${path.relative(root, pkg)}/trace-hooks.mjs`];
    const outside = r.loaded.filter((f) => !inBundle(f) && !ours.includes(f) && !f.startsWith('node_modules/ajv/dist/runtime/'));
    expect(outside).toEqual([]);
    // validate reads files only: the chunk of run and check (SSH, reporters, the runner) stays unloaded
    expect(r.loaded.filter((f) => /\/commands-[^/]+\.js$/.test(f))).toEqual([]);
    expect(r.loaded.filter((f) => /\/inspect-[^/]+\.js$/.test(f))).toHaveLength(1);
  });

  it('refuses a bad playbook with one file:line:col message and exit 1; --debug shows the stack in the TypeScript sources', () => {
    const dir = tempDir();
    const pb = writeFiles(dir, { 'bad.yaml': '- hosts: all\n  tasks:\n    - name: typo\n      lineinfile: { path: /etc/x, line: a, state: presnt }\n' });
    const r = provision(['validate', pb]);
    expect(r.code).toBe(1);
    expect(r.stdout).toBe('');
    expect(r.stderr).toMatch(new RegExp(`^error: ${pb.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}:4:\\d+: `));
    expect(r.stderr.trim().split('\n')).toHaveLength(1);

    const missing = provision(['validate', path.join(dir, 'missing.yaml'), '--debug']);
    expect(missing.code).toBe(1);
    expect(missing.stderr).toMatch(/^error: cannot read playbook .*missing\.yaml/);
    expect(missing.stderr).toMatch(/src\/playbook\/load\.ts:\d+:\d+/);
  });

  it('runs a templated playbook over the local connection: check, run, and a second run with nothing to do', () => {
    const dir = tempDir();
    const conf = path.join(dir, 'app.conf');
    const inventory = writeFiles(dir, { hosts: '[local]\nlocalhost ansible_connection=local\n' });
    const pb = writeFiles(dir, {
      'site.yaml': `- hosts: local
  vars:
    ports: [25, 465]
  tasks:
    - name: listen on the submission ports
      lineinfile: { path: ${conf}, regexp: '^ports =', line: "ports = {{ ports | map('string') | join(',') }}", create: true }
`,
    });
    const check = provision(['check', pb, '-i', inventory, '--diff']);
    expect(check.stderr).toBe('');
    expect(check.code).toBe(8);
    expect(check.stdout).toContain('+ports = 25,465');
    expect(existsSync(conf)).toBe(false);
    // run loads its own chunk, and ssh2 from node_modules (it is left out of the bundle)
    expect(check.loaded.filter((f) => /\/commands-[^/]+\.js$/.test(f))).toHaveLength(1);
    expect(check.loaded.filter((f) => f.startsWith('node_modules/ssh2/')).length).toBeGreaterThan(0);

    const run = provision(['run', pb, '-i', inventory]);
    expect(run.code).toBe(0);
    expect(run.stdout).toMatch(/localhost\s+ok=0\s+changed=1/);
    expect(readFileSync(conf, 'utf8')).toBe('ports = 25,465\n');

    const again = provision(['run', pb, '-i', inventory, '--json']);
    expect(again.code).toBe(0);
    expect(JSON.parse(again.stdout.trim().split('\n').at(-1)!)).toMatchObject({ type: 'recap', exit_code: 0, hosts: { localhost: { changed: 0 } } });
  });

  it('--version is answered by bin/provision.js without the bundle; --help comes from the bundle', () => {
    const v = provision(['--version']);
    expect(v.stdout).toBe(`${version}\n`);
    expect(v.loaded.filter(inBundle)).toEqual([]);
    const help = provision(['--help']);
    expect(help.code).toBe(0);
    expect(help.stdout).toMatch(/^Usage: provision/);
    expect(help.loaded).toContain(`${path.relative(root, bundle)}/main.js`);
  });
});

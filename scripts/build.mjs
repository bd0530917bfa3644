/**
 * `npm run build`: what bin/provision.js runs.
 *
 *   1. tsc compiles src/ to dist/ (type errors fail the build);
 *   2. dist/playbook/validators-build.js writes the ajv standalone validators beside validators.js;
 *   3. esbuild bundles dist/cli/main.js and what it imports, dependencies included, into dist/bundle/.
 *
 * Why a bundle: a command that loads some 120 of our files and 300 of yaml's, nunjucks's and commander's spends
 * more time finding, reading and compiling files than working. The bundle is split where main.ts imports a
 * command on use, so `validate` loads its chunk and the code it shares with `run`, never SSH, reporters or the
 * runner. ssh2 stays outside (its optional native parts are found at run time, as without a bundle).
 *
 * The generated validators are loaded from beside the code that imports them (validators.ts resolves them from
 * its own URL), so they are copied into dist/bundle/ too; without them every start would compile the schemas.
 *
 * dist/bundle/ is removed first: after a failed build bin/provision.js finds no bundle and runs dist/cli/main.js,
 * never an older bundle.
 */
import { spawnSync } from 'node:child_process';
import { copyFileSync, rmSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

/** The validator files validators-build.js writes; validators.ts looks for them beside itself. */
export const GENERATED_VALIDATORS = ['validators-structure.generated.js', 'validators-args.generated.js'];

/** Packages left to Node's own resolution: ssh2 loads optional native code relative to its own files. */
const EXTERNAL = ['ssh2', 'cpu-features'];

/**
 * Code-split ES modules bundle of the CLI. The chunks get a CommonJS `require` of their own, for the bundled
 * CommonJS packages' require() of Node's built-in modules (and for ajv's compiler, loaded only when needed).
 */
export async function bundleCli({ entry, outdir }) {
  const { build } = await import('esbuild');
  rmSync(outdir, { recursive: true, force: true });
  return build({
    entryPoints: { main: entry },
    outdir,
    bundle: true,
    splitting: true,
    format: 'esm',
    platform: 'node',
    target: 'node20',
    external: EXTERNAL,
    banner: { js: "import { createRequire as __provisionCreateRequire } from 'node:module';\nconst require = __provisionCreateRequire(import.meta.url);" },
    sourcemap: 'linked',
    sourcesContent: false,
    logLevel: 'warning',
    metafile: true,
  });
}

function step(args) {
  const r = spawnSync(process.execPath, args, { cwd: ROOT, stdio: 'inherit' });
  if (r.status !== 0) process.exit(r.status ?? 1);
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const dist = path.join(ROOT, 'dist');
  const outdir = path.join(dist, 'bundle');
  rmSync(outdir, { recursive: true, force: true });
  step([path.join(ROOT, 'node_modules/typescript/bin/tsc'), '-p', 'tsconfig.build.json']);
  step([path.join(dist, 'playbook/validators-build.js')]);
  await bundleCli({ entry: path.join(dist, 'cli/main.js'), outdir });
  for (const f of GENERATED_VALIDATORS) copyFileSync(path.join(dist, 'playbook', f), path.join(outdir, f));
}

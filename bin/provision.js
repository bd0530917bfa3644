#!/usr/bin/env node
// `provision --version` is answered here, before any of the program loads: it is what scripts and CI call most.
import { existsSync, readFileSync } from 'node:fs';
import { setFlagsFromString } from 'node:v8';

/** V8's budget before it optimises a function, raised from its default of 67584 (see below and the README). */
const OPTIMISE_LATER = '--interrupt-budget=1000000';

const args = process.argv.slice(2);
if (args.length === 1 && (args[0] === '--version' || args[0] === '-V')) {
  let version = '0.0.0';
  try {
    version = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')).version;
  } catch {
    // the same fallback as the CLI's own --version
  }
  process.stdout.write(`${version}\n`);
} else {
  // Stack traces printed by --debug name the TypeScript sources, through the build's source maps.
  if (args.includes('--debug')) process.setSourceMapsEnabled(true);
  // A run is short and its JavaScript is mostly cold: V8 would spend about a quarter of the controller's CPU
  // compiling functions with its optimising compiler that run a few dozen times. A larger budget before that tier
  // keeps the compiler for code that is really hot (parsing a large ruleset, hundreds of hosts).
  setFlagsFromString(OPTIMISE_LATER);
  // `npm run build` bundles the CLI into dist/bundle/ (see scripts/build.mjs). A build whose type check failed
  // leaves only what tsc emitted, which runs the same code from its files, more slowly.
  const bundle = new URL('../dist/bundle/main.js', import.meta.url);
  const { main } = await import(existsSync(bundle) ? bundle.href : '../dist/cli/main.js');
  process.exitCode = await main(process.argv);
}

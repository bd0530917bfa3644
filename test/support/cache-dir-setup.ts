/**
 * vitest setupFiles of every project: each test file gets a fresh, empty controller cache (see
 * src/util/cache-dir.ts), removed after its tests. Runs of the CLI in-process (runCli) and CLI processes the tests
 * spawn (they inherit the environment) use it instead of the user's ~/.cache/provision, so that a test behaves the
 * same whatever earlier runs on this machine left there, and leaves nothing there itself.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll } from 'vitest';
import { CACHE_DIR_ENV } from '../../src/util/cache-dir.js';

const dir = mkdtempSync(path.join(os.tmpdir(), 'provision-cache-'));
process.env[CACHE_DIR_ENV] = dir;
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** Temporary directories for tests, removed after each test file. */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll } from 'vitest';

export function tempDir(prefix = 'provision-test-'): string {
  const dir = mkdtempSync(path.join(tmpdir(), prefix));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

/** Write files (relative path → content) under dir; returns the absolute path of the first. */
export function writeFiles(dir: string, files: Record<string, string | Buffer>): string {
  let first = '';
  for (const [rel, content] of Object.entries(files)) {
    const p = path.join(dir, rel);
    mkdirSync(path.dirname(p), { recursive: true });
    writeFileSync(p, content);
    first ||= p;
  }
  return first;
}

/** A function that makes a new, empty directory under `root` at each call, named after `what`. */
export function subDirs(root: string): (what: string) => string {
  let n = 0;
  return (what) => {
    const d = path.join(root, `${what}${n++}`);
    mkdirSync(d, { recursive: true });
    return d;
  };
}

/**
 * Shared by the hostile-input suite: each case gets its own directory with a local inventory
 * (`localhost ansible_connection=local`), runs the CLI in-process, and compares the directory before and after,
 * so "nothing was written" is checked on disk rather than assumed.
 */
import { readdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { expect } from 'vitest';
import { type CliResult, runCli } from '../../support/cli.js';
import { subDirs, tempDir, writeFiles } from '../../support/tmp.js';

export const FIXTURES = path.resolve(import.meta.dirname, '../../fixtures/hostile');

export function fixture(name: string): string {
  return readFileSync(path.join(FIXTURES, name), 'utf8');
}

const newCaseDir = subDirs(tempDir('provision-hostile-'));

/** A fresh directory for one case, removed after the file's tests. */
export function caseDir(): string {
  return newCaseDir('case');
}

/** Every file and directory under `dir` with its size and modification time, to prove nothing changed. */
export function snapshot(dir: string): string[] {
  const out: string[] = [];
  const walk = (d: string) => {
    for (const name of readdirSync(d).sort()) {
      const p = path.join(d, name);
      const st = statSync(p, { throwIfNoEntry: false });
      if (!st) continue;
      out.push(`${path.relative(dir, p)} ${st.isDirectory() ? 'dir' : st.size} ${st.mtimeMs} ${(st.mode & 0o7777).toString(8)}`);
      if (st.isDirectory()) walk(p);
    }
  };
  walk(dir);
  return out;
}

export const LOCAL_INVENTORY = 'localhost ansible_connection=local\n';

export interface HostileCase {
  /** files of the case, relative to its directory (playbook, inventory, vars files, templates…); DIR in text is replaced by the directory */
  files: Record<string, string | Buffer>;
  /** CLI arguments; DIR in them is replaced by the case directory */
  args: string[];
}

export interface Refusal extends CliResult {
  dir: string;
  /** stderr split into lines, without the trailing empty one */
  lines: string[];
}

/** Write a case's files into `dir`, DIR in their text replaced by it; returns the case's arguments, DIR replaced too. */
export function placeCase(c: HostileCase, dir: string): string[] {
  writeFiles(dir, Object.fromEntries(Object.entries(c.files).map(([k, v]) => [k, typeof v === 'string' ? v.replaceAll('DIR', dir) : v])));
  return c.args.map((a) => a.replaceAll('DIR', dir));
}

/** Run a case and check what every refusal must do: exit 1, only `error: ` lines, no stack trace, nothing written. */
export async function expectRefused(c: HostileCase, opts: { errors?: number } = {}): Promise<Refusal> {
  const dir = caseDir();
  const args = placeCase(c, dir);
  const before = snapshot(dir);
  const r = await runCli(args);
  const lines = r.stderr.split('\n').filter((l) => l !== '');
  expect(r.code, r.stderr || r.stdout).toBe(1);
  expect(r.stdout).toBe('');
  expect(lines.length).toBeGreaterThan(0);
  if (opts.errors !== undefined) expect(lines).toHaveLength(opts.errors);
  for (const l of lines) expect(l).toMatch(/^error: /);
  expect(r.stderr).not.toMatch(/^\s+at /m);
  expect(r.stderr).not.toMatch(/run with --debug/);
  expect(snapshot(dir)).toEqual(before);
  return { ...r, dir, lines };
}

/** The arguments of `provision run` for a case's playbook and local inventory. */
export function runArgs(playbook = 'DIR/play.yaml', ...more: string[]): string[] {
  return ['run', playbook, '-i', 'DIR/hosts', ...more];
}

/** Escape a string for use in a RegExp. */
export const re = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

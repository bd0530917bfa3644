import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { WriteStatus, writeScript } from '../../../src/runner/host-files.js';

const sha = (b: Buffer | string) => createHash('sha256').update(b).digest('hex');
const dirs: string[] = [];
afterEach(() => dirs.splice(0).forEach((d) => rmSync(d, { recursive: true, force: true })));

function tmp(): string {
  const d = mkdtempSync(path.join(os.tmpdir(), 'provision-write-'));
  dirs.push(d);
  return d;
}

/** The write script run by a real POSIX shell, as a host's `sh -s` runs it. */
function run(script: string): { code: number | null; stdout: string; stderr: string } {
  const r = spawnSync('/bin/sh', ['-s'], { input: script });
  return { code: r.status, stdout: r.stdout.toString(), stderr: r.stderr.toString() };
}

describe('the write script', () => {
  it('copy with mode 0640 over an existing 0600 file (the SMTPS job\'s sasldb shape): new content, the asked mode', () => {
    const f = path.join(tmp(), 'smtpd.conf');
    writeFileSync(f, 'old\n', { mode: 0o600 });
    const r = run(writeScript([{ path: f, before: Buffer.from('old\n'), after: Buffer.from('new\n'), beforeSha: sha('old\n'), mode: 0o640 }]));
    expect(r.code, r.stderr).toBe(0);
    expect(readFileSync(f, 'utf8')).toBe('new\n');
    expect(statSync(f).mode & 0o7777).toBe(0o640);
    expect(r.stdout).toMatch(/^@@W 0 640 /m);
  });

  it('without a mode the old file\'s mode is kept, and a new file gets 0644', () => {
    const d = tmp();
    const old = path.join(d, 'main.cf');
    writeFileSync(old, 'a = 1\n', { mode: 0o600 });
    const fresh = path.join(d, 'new.cf');
    const r = run(
      writeScript([
        { path: old, before: Buffer.from('a = 1\n'), after: Buffer.from('a = 2\n'), beforeSha: sha('a = 1\n') },
        { path: fresh, before: null, after: Buffer.from('b = 1\n'), beforeSha: null },
      ]),
    );
    expect(r.code, r.stderr).toBe(0);
    expect(statSync(old).mode & 0o7777).toBe(0o600);
    expect(statSync(fresh).mode & 0o7777).toBe(0o644);
  });

  it('a file changed on the host since it was read is not written (the hash is cut out by the shell)', () => {
    const f = path.join(tmp(), 'master.cf');
    writeFileSync(f, 'changed by someone else\n');
    const r = run(writeScript([{ path: f, before: Buffer.from('as read\n'), after: Buffer.from('new\n'), beforeSha: sha('as read\n'), mode: 0o644 }]));
    expect(r.code).toBe(WriteStatus.conflict);
    expect(r.stderr).toContain('changed on the host since it was read');
    expect(readFileSync(f, 'utf8')).toBe('changed by someone else\n');
  });
});

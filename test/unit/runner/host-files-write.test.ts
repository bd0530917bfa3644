import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { chmodSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { SCRATCH_VAR } from '../../../src/connection/session-remote.js';
import { postconfValidation } from '../../../src/modules/postfix-names.js';
import { parseReadOutput, parseWriteOutput, readScript, validateScript, WriteStatus, writeScript } from '../../../src/runner/host-files.js';

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
    expect(parseWriteOutput([{ path: f, before: null, after: Buffer.from('new\n'), beforeSha: null }], r.stdout)[0]).toMatchObject({ mode: 0o640, content: Buffer.from('new\n') });
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

  it('reports the metadata of every file written with one stat, matched by path (names with spaces too)', () => {
    const d = tmp();
    const files = ['a b.cf', 'c.cf'].map((n, i) => {
      const p = path.join(d, n);
      writeFileSync(p, 'old\n', { mode: 0o600 });
      return { path: p, before: Buffer.from('old\n'), after: Buffer.from(`new ${i}\n`), beforeSha: sha('old\n'), mode: i ? 0o640 : undefined };
    });
    const r = run(writeScript(files));
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout.match(/^@@M /gm)).toHaveLength(2);
    const states = parseWriteOutput(files, r.stdout);
    expect(states.map((s) => [s.path, s.mode, s.uid, s.content?.toString()])).toEqual([
      [files[0]!.path, 0o600, process.getuid!(), 'new 0\n'],
      [files[1]!.path, 0o640, process.getuid!(), 'new 1\n'],
    ]);
  });

  it('a path holding a newline gets its metadata from a stat of its own', () => {
    const d = tmp();
    const p = path.join(d, 'odd\nname.cf');
    const files = [{ path: p, before: null, after: Buffer.from('x\n'), beforeSha: null }];
    const r = run(writeScript(files));
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/^@@W 0 644 /m);
    expect(parseWriteOutput(files, r.stdout)[0]).toMatchObject({ path: p, mode: 0o644 });
  });

  it('a file whose metadata did not come back gets unknown metadata, not the old', () => {
    const files = [{ path: '/etc/x.cf', before: null, after: Buffer.from('x\n'), beforeSha: null }];
    expect(parseWriteOutput(files, '')[0]).toMatchObject({ path: '/etc/x.cf', exists: true, mode: null, uid: null, content: Buffer.from('x\n') });
  });
});

/**
 * The commands a script starts, counted by wrappers ahead of the real ones on PATH, with the session's scratch
 * prefix set as the session loop sets it (a line before the script) or not (a channel of its own).
 */
function runCounted(script: string, scratch: string | null, first = ''): { code: number | null; stdout: string; stderr: string; calls: string[] } {
  const d = tmp();
  const bin = path.join(d, 'bin');
  const log = path.join(d, 'calls');
  mkdirSync(bin);
  for (const cmd of ['mktemp', 'rm', 'grep', 'sync', 'stat', 'chmod', 'chown', 'sha256sum']) {
    const real = spawnSync('sh', ['-c', `command -v ${cmd}`]).stdout.toString().trim();
    writeFileSync(path.join(bin, cmd), `#!/bin/sh\necho ${cmd} >> '${log}'\nexec ${real} "$@"\n`);
    chmodSync(path.join(bin, cmd), 0o755);
  }
  const prefix = scratch === null ? '' : `${SCRATCH_VAR}=${scratch}/x-\n`;
  const r = spawnSync('/bin/sh', ['-s'], { input: prefix + script, env: { ...process.env, PATH: `${first}${bin}:${process.env.PATH}` } });
  let calls: string[] = [];
  try {
    calls = readFileSync(log, 'utf8').trim().split('\n').filter(Boolean);
  } catch {
    calls = [];
  }
  return { code: r.status, stdout: r.stdout.toString(), stderr: r.stderr.toString(), calls };
}

describe('scratch files on a session', () => {
  const change = (d: string) => {
    const p = path.join(d, 'main.cf');
    writeFileSync(p, 'a = 1\n');
    return { path: p, before: Buffer.from('a = 1\n'), after: Buffer.from('a = 2\n'), beforeSha: sha('a = 1\n'), validate: [{ script: 'cat "$CANDIDATE" >/dev/null', description: 'reads', failOnStderr: 'warning:' }] };
  };

  it('a write in a session makes no directory and removes nothing once renamed; grep and sync run only as needed', () => {
    const d = tmp();
    const scratch = mkdtempSync(path.join(d, 's'));
    const f = change(d);
    const r = runCounted(writeScript([f]), scratch);
    expect(r.code, r.stderr).toBe(0);
    expect(readFileSync(f.path, 'utf8')).toBe('a = 2\n');
    // mktemp for the temporary file beside the target; no `mktemp -d`, no `rm`, no grep of an empty stderr
    expect(r.calls.filter((c) => c === 'mktemp')).toHaveLength(1);
    expect(r.calls).not.toContain('rm');
    expect(r.calls).not.toContain('grep');
    expect(r.calls.filter((c) => c === 'sync')).toHaveLength(2);
    expect(readdirSync(d).filter((n) => n.includes('provision-'))).toEqual([]);
  });

  it('the owner is copied only when it is not already the shell\'s own; a set-group-ID mode survives the copy', () => {
    const d = tmp();
    const f = change(d);
    chmodSync(f.path, 0o2640);
    const mine = runCounted(writeScript([f]), null);
    expect(mine.code, mine.stderr).toBe(0);
    expect(mine.calls).not.toContain('chown');
    expect(statSync(f.path).mode & 0o7777).toBe(0o2640);
    if (process.getuid!() !== 0) return;
    // As root: a file of another owner (nobody's uid) gets a chown, and keeps that owner
    writeFileSync(f.path, 'a = 1\n');
    spawnSync('chown', ['65534:65534', f.path]);
    chmodSync(f.path, 0o2750);
    const theirs = runCounted(writeScript([f]), null);
    expect(theirs.code, theirs.stderr).toBe(0);
    expect(theirs.calls).toContain('chown');
    expect([statSync(f.path).uid, statSync(f.path).gid, statSync(f.path).mode & 0o7777]).toEqual([65534, 65534, 0o2750]);
  });

  it('renames every file even when the session\'s scratch directory is removed under it (the loop hung up)', () => {
    const d = tmp();
    const scratch = mkdtempSync(path.join(d, 's'));
    const a = change(d);
    const bPath = path.join(d, 'master.cf');
    writeFileSync(bPath, 'old\n');
    // the last validation stands for the loop ending: the scratch directory is gone before the renames
    const b = { path: bPath, before: Buffer.from('old\n'), after: Buffer.from('new\n'), beforeSha: sha('old\n'), validate: [{ script: `rm -rf '${scratch}'`, description: 'hangs up' }] };
    const r = runCounted(writeScript([a, b]), scratch);
    expect(r.code, r.stderr).toBe(0);
    expect([readFileSync(a.path, 'utf8'), readFileSync(bPath, 'utf8')]).toEqual(['a = 2\n', 'new\n']);
    expect(readdirSync(d).filter((n) => n.includes('provision-'))).toEqual([]);
  });

  it('a write on a channel of its own makes its scratch directory and removes it', () => {
    const d = tmp();
    const f = change(d);
    const r = runCounted(writeScript([f]), null);
    expect(r.code, r.stderr).toBe(0);
    expect(r.calls.filter((c) => c === 'mktemp')).toHaveLength(2);
    expect(r.calls).toContain('rm');
  });

  it('a session prefix that is not the shell\'s own private directory is not trusted (a symbolic link)', () => {
    const d = tmp();
    const real = mkdtempSync(path.join(d, 'real'));
    const link = path.join(d, 'link');
    spawnSync('ln', ['-s', real, link]);
    const r = runCounted(writeScript([change(d)]), link);
    expect(r.code, r.stderr).toBe(0);
    expect(readdirSync(real)).toEqual([]);
    expect(r.calls).toContain('rm');
  });

  it('a session prefix in a sticky directory (a shared /tmp) is not trusted', () => {
    const d = tmp();
    const sticky = mkdtempSync(path.join(d, 'sticky'));
    chmodSync(sticky, 0o1777);
    const r = runCounted(writeScript([change(d)]), sticky);
    expect(r.code, r.stderr).toBe(0);
    expect(readdirSync(sticky)).toEqual([]);
    expect(r.calls).toContain('rm');
  });

  it('a failed validation still removes the temporary file beside the target, and greps a stderr that has text', () => {
    const d = tmp();
    const scratch = mkdtempSync(path.join(d, 's'));
    const f = { ...change(d), validate: [{ script: 'echo "warning: bad" >&2', description: 'warns', failOnStderr: 'warning:' }] };
    const r = runCounted(writeScript([f]), scratch);
    expect(r.code).toBe(WriteStatus.invalid);
    expect(r.stderr).toContain('warning: bad');
    expect(r.calls).toContain('grep');
    expect(r.calls).toContain('rm');
    expect(readdirSync(d).filter((n) => n.includes('provision-'))).toEqual([]);
    expect(readFileSync(f.path, 'utf8')).toBe('a = 1\n');
  });

  // Issue 18 (host CPU per host): the hash re-check ran one sha256sum per file; a write of several files that were
  // there when read (the iptables module's rules files and its pending record) now runs one for all of them.
  it('re-checks the hashes of several files with one sha256sum, and still names the one that changed', () => {
    const d = tmp();
    const scratch = mkdtempSync(path.join(d, 's'));
    const names = ['rules.v4', 'back\\slash', 'new\nline', 'fresh'];
    const changes = names.map((n, i) => {
      const p = path.join(d, n);
      if (n !== 'fresh') writeFileSync(p, `old ${i}\n`);
      return { path: p, before: n === 'fresh' ? null : Buffer.from(`old ${i}\n`), after: Buffer.from(`new ${i}\n`), beforeSha: n === 'fresh' ? null : sha(`old ${i}\n`) };
    });
    const ok = runCounted(writeScript(changes), scratch);
    expect(ok.code, ok.stderr).toBe(0);
    expect(ok.calls.filter((c) => c === 'sha256sum')).toHaveLength(1);
    names.forEach((n, i) => expect(readFileSync(path.join(d, n), 'utf8')).toBe(`new ${i}\n`));
    const again = names.map((n, i) => ({ ...changes[i]!, before: Buffer.from(`new ${i}\n`), after: Buffer.from(`newer ${i}\n`), beforeSha: sha(`new ${i}\n`) }));
    writeFileSync(path.join(d, names[2]!), 'changed behind our back\n');
    const conflict = runCounted(writeScript(again), scratch);
    expect(conflict.code).toBe(WriteStatus.conflict);
    expect(conflict.stderr).toBe(`${path.join(d, names[2]!)} changed on the host since it was read; not written\n`);
    expect(readFileSync(path.join(d, names[0]!), 'utf8')).toBe('new 0\n');
    // A file that was absent when read and is there now is a conflict without any hash.
    const appeared = { path: path.join(d, 'appeared'), before: null, after: Buffer.from('x\n'), beforeSha: null };
    writeFileSync(appeared.path, 'planted\n');
    const both = runCounted(writeScript([again[0]!, again[1]!, appeared]), scratch);
    expect(both.code).toBe(WriteStatus.conflict);
    expect(both.stderr).toBe(`${appeared.path} changed on the host since it was read; not written\n`);
    expect(readFileSync(appeared.path, 'utf8')).toBe('planted\n');
  });

  // Issue 18 (host CPU per host): postconf's validation made and removed a directory of its own (mktemp -d, rm -rf)
  // for every candidate; under the session's scratch prefix one directory serves every validation of the session.
  it('postconf\'s validations share one directory under the session\'s scratch prefix: no mktemp, no rm, each sees its own files', () => {
    const d = tmp();
    const scratch = mkdtempSync(path.join(d, 's'));
    const fake = path.join(d, 'fake');
    mkdirSync(fake);
    // A postconf that warns about an unused parameter `bad` in main.cf, naming the file as Postfix does.
    writeFileSync(path.join(fake, 'postconf'), '#!/bin/sh\n[ "$1" = -c ] || exit 2\n[ -f "$2/master.cf" ] || exit 3\nif grep -q "^bad" "$2/main.cf"; then echo "postconf: warning: $2/main.cf: unused parameter: bad=1" >&2; fi\n', { mode: 0o755 });
    const master = Buffer.from('smtp inet n - y - - smtpd\n');
    const main = (after: string) => ({ ...change(d), after: Buffer.from(after), validate: [postconfValidation('main.cf', master, '-n')] });
    const good = runCounted(validateScript([main('a = 2\n')]), scratch, `${fake}:`);
    expect(good.code, good.stderr).toBe(0);
    const bad = runCounted(validateScript([main('bad = 1\n')]), scratch, `${fake}:`);
    expect(bad.code).toBe(WriteStatus.invalid);
    expect(bad.stderr).toContain(`validation failed (postconf -n): postconf: warning: ${d}/main.cf: unused parameter: bad=1`);
    const again = runCounted(validateScript([main('a = 3\n')]), scratch, `${fake}:`);
    expect(again.code, again.stderr).toBe(0);
    for (const r of [good, bad, again]) expect(r.calls.filter((c) => c === 'mktemp' || c === 'rm')).toEqual([]);
    expect(readdirSync(scratch)).toContain('x-postconf');
    // Without a session the script's own scratch directory holds it, and goes with it.
    const alone = runCounted(validateScript([main('bad = 1\n')]), null, `${fake}:`);
    expect(alone.code).toBe(WriteStatus.invalid);
    expect(alone.calls.filter((c) => c === 'mktemp')).toHaveLength(1);
    expect(alone.stderr).toContain(`postconf: warning: ${d}/main.cf: unused parameter`);
  });

  it('check mode\'s validation and a read with commands use the session\'s scratch prefix', () => {
    const d = tmp();
    const scratch = mkdtempSync(path.join(d, 's'));
    const v = runCounted(validateScript([change(d)]), scratch);
    expect(v.code, v.stderr).toBe(0);
    expect(v.calls).not.toContain('mktemp');
    expect(v.calls).not.toContain('rm');
    const req = { files: [path.join(d, 'main.cf')], stats: [], commands: [{ key: 'echo', script: 'printf "out"; printf "err" >&2; exit 3' }] };
    const r = runCounted(readScript(req), scratch);
    expect(r.code, r.stderr).toBe(0);
    expect(r.calls).not.toContain('mktemp');
    expect(r.calls).not.toContain('rm');
    const out = parseReadOutput(req, r.stdout);
    expect(out.commands.get('echo')).toMatchObject({ code: 3, stdout: Buffer.from('out'), stderr: Buffer.from('err') });
    expect(out.files.get(req.files[0]!)?.content?.toString()).toBe('a = 1\n');
  });
});

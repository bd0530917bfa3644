/**
 * What scripts write on a host goes to names no other local user can predict or plant: backups are copied into a
 * fresh mktemp file and renamed to their name (a planted symbolic link is replaced, not written through); a
 * command's stdin travels through a pipe, so a killed command leaves no file behind; the Postfix health check's
 * stderr goes to a mktemp file. Run on the local connection, where the host is this machine.
 */
import { lstatSync, mkdirSync, readdirSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { restartAndCheckScript } from '../../../src/modules/postfix-health.js';
import { writeScript } from '../../../src/runner/host-files.js';
import { runCli } from '../../support/cli.js';
import { caseDir, LOCAL_INVENTORY } from './support.js';

describe('backups', () => {
  it('a symbolic link planted at the predictable backup name is replaced, and its target is left alone', async () => {
    const dir = caseDir();
    const victim = path.join(dir, 'victim');
    writeFileSync(victim, 'root-owned file the link points to\n');
    writeFileSync(path.join(dir, 'app.conf'), 'old\n');
    // The backup is named after the UTC second of the run: plant a link for each of the next 60 seconds.
    const now = Date.now();
    for (let s = 0; s < 60; s++) {
      const iso = new Date(now + s * 1000).toISOString();
      symlinkSync(victim, path.join(dir, `app.conf.${iso.slice(0, 10)}@${iso.slice(11, 19)}~`));
    }
    writeFileSync(path.join(dir, 'hosts'), LOCAL_INVENTORY);
    writeFileSync(
      path.join(dir, 'play.yaml'),
      `- hosts: all\n  gather_facts: false\n  tasks:\n    - copy: { dest: ${dir}/app.conf, content: "new\\n", backup: true }\n`,
    );
    const r = await runCli(['run', path.join(dir, 'play.yaml'), '-i', path.join(dir, 'hosts'), '--no-retry-file']);
    expect(r.code, r.stdout + r.stderr).toBe(0);
    expect(readFileSync(victim, 'utf8')).toBe('root-owned file the link points to\n');
    expect(readFileSync(path.join(dir, 'app.conf'), 'utf8')).toBe('new\n');
    const backups = readdirSync(dir).filter((n) => n.endsWith('~') && lstatSync(path.join(dir, n)).isFile());
    expect(backups).toHaveLength(1);
    expect(readFileSync(path.join(dir, backups[0]!), 'utf8')).toBe('old\n');
    expect(readdirSync(dir).filter((n) => n.includes('.provision-'))).toEqual([]);
  });

  it('the write script renames with -T after --, so a directory at the target name is not written into', () => {
    const s = writeScript([{ path: '/etc/x', before: Buffer.from('a'), after: Buffer.from('b'), beforeSha: 'x', backup: true }], { backupSuffix: 'S' });
    expect(s).toMatch(/mv -f -T -- "\$pv_t0" \/etc\/x /);
    expect(s).toMatch(/mv -f -T -- "\$pv_bk" '\/etc\/x\.S~'/);
    expect(s).not.toMatch(/cp -p \/etc\/x/);
  });
});

describe("a command's stdin", () => {
  it('leaves no temporary file behind when the script running the command is killed', async () => {
    const dir = caseDir();
    const tmp = path.join(dir, 'tmp');
    mkdirSync(tmp);
    writeFileSync(path.join(dir, 'hosts'), LOCAL_INVENTORY);
    writeFileSync(
      path.join(dir, 'play.yaml'),
      `- hosts: all\n  gather_facts: false\n  tasks:\n    - name: killed\n      shell: { cmd: "cat >/dev/null; kill -KILL $PPID", stdin: "secret input" }\n      ignore_errors: true\n`,
    );
    const before = process.env.TMPDIR;
    process.env.TMPDIR = tmp;
    try {
      await runCli(['run', path.join(dir, 'play.yaml'), '-i', path.join(dir, 'hosts'), '--no-retry-file']);
    } finally {
      if (before === undefined) delete process.env.TMPDIR;
      else process.env.TMPDIR = before;
    }
    expect(readdirSync(tmp)).toEqual([]);
  });
});

describe('the Postfix health check', () => {
  it('keeps the restart\'s stderr in a file mktemp makes, not at a predictable name', () => {
    const s = restartAndCheckScript('service postfix restart', 'sysv', []);
    expect(s).not.toMatch(/\.provision-health|\$\$/);
    expect(s).toMatch(/pv_ef=\$\(mktemp/);
  });
});

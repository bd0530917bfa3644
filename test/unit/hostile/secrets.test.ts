/**
 * Secrets on the controller side: `no_log` hides a task's arguments and results in every reporter (plain, plain
 * verbose, --json, the terminal view, --diff and check mode), for changes, loops, failures, assertions and
 * handlers alike; files written keep their mode (a 0600 file stays 0600, and so does its backup).
 * Passwords, passphrases and host keys over real SSH are in test/integration/faults/secrets.test.ts.
 */
import { readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { Writable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import type { RunEvent } from '../../../src/report/events.js';
import { ListrReporter } from '../../../src/report/listr.js';
import { runCli } from '../../support/cli.js';
import { runLocal } from '../../support/run.js';
import { writeFiles } from '../../support/tmp.js';
import { caseDir, LOCAL_INVENTORY } from './support.js';

const SECRET = 'S3cr3t-Value-7f1d';
const OLD_SECRET = 'Old-S3cr3t-a9c2';

const PLAYBOOK = (dir: string) => `- hosts: all
  gather_facts: false
  vars: { pw: ${SECRET} }
  tasks:
    - name: write the secret
      copy: { dest: ${dir}/app.conf, content: "password={{ pw }}\\n" }
      no_log: true
      notify: announce
    - name: loop over secrets
      debug: { msg: "item {{ item }}" }
      loop: ["{{ pw }}-a", "{{ pw }}-b"]
      no_log: true
    - name: a command that fails and prints the secret
      command: { argv: [sh, -c, "echo {{ pw }}; echo {{ pw }} >&2; exit 3"] }
      no_log: true
      ignore_errors: true
    - name: an assertion whose message holds the secret
      assert: { that: ["pw == 'x'"], fail_msg: "pw was {{ pw }}" }
      no_log: true
      ignore_errors: true
    - name: a visible task
      debug: { msg: "nothing secret here" }
  handlers:
    - name: announce
      debug: { msg: "the password is {{ pw }}" }
      no_log: true
`;

describe('no_log hides arguments and results in every reporter', () => {
  const MODES: [string, string[], boolean][] = [
    ['plain', [], false],
    ['plain, verbose', ['-v'], false],
    ['--json', ['--json'], false],
    ['--diff', ['--diff', '-v'], false],
    ['check mode (which shows diffs)', ['--check', '-v'], false],
  ];
  it.each(MODES)('%s', async (_mode, args) => {
    const dir = caseDir();
    writeFiles(dir, { 'play.yaml': PLAYBOOK(dir), hosts: LOCAL_INVENTORY, 'app.conf': `password=${OLD_SECRET}\n` });
    const r = await runCli(['run', path.join(dir, 'play.yaml'), '-i', path.join(dir, 'hosts'), '--no-retry-file', ...args]);
    expect(r.code, r.stdout + r.stderr).toBe(args.includes('--check') ? 8 : 0);
    const everything = r.stdout + r.stderr;
    expect(everything).not.toContain(SECRET);
    expect(everything).not.toContain(OLD_SECRET);
    // The tasks are still there, only what they did is hidden.
    expect(everything).toContain('write the secret');
    if (args.includes('-v') || args.includes('--json')) {
      expect(everything).toContain('output hidden (no_log)');
      expect(everything).toContain('nothing secret here');
    }
    if (args.includes('--json')) {
      const hidden = r.events.filter((e) => e.type === 'task_result' && e.task !== 'a visible task');
      expect(hidden.length).toBeGreaterThanOrEqual(5);
      for (const e of hidden) {
        if (e.type !== 'task_result') continue;
        expect(e.msg).toBe('output hidden (no_log)');
        expect(e.diffs).toBeUndefined();
        if (e.item !== undefined) expect(e.item).toBe('(hidden)');
      }
    }
    if (!args.includes('--check')) expect(readFileSync(path.join(dir, 'app.conf'), 'utf8')).toBe(`password=${SECRET}\n`);
  }, 120_000);

  it('the terminal view: every frame drawn and the summary after it', async () => {
    const dir = caseDir();
    writeFiles(dir, { 'app.conf': `password=${OLD_SECRET}\n` });
    let drawn = '';
    const stdout = new Writable({
      write(chunk: Buffer, _encoding, done) {
        drawn += chunk.toString();
        done();
      },
    });
    Object.assign(stdout, { isTTY: true, columns: 120, rows: 40 });
    let summary = '';
    const reporter = new ListrReporter((s) => (summary += s), false, { stdout: stdout as unknown as NodeJS.WriteStream });
    // The run's own events, handed to the view with a pause at each task's start: listr2 draws on a timer, and a
    // task that ends within one tick would otherwise never be drawn (a frame shown or not by chance).
    const events: RunEvent[] = [];
    const { report } = await runLocal(dir, PLAYBOOK(dir), LOCAL_INVENTORY, { diff: true, emit: (e) => events.push(e) });
    for (const e of events) {
      reporter.handle(e);
      if (e.type === 'task_start') await new Promise((resolve) => setTimeout(resolve, 200));
    }
    await reporter.finish();
    expect(report.exitCode).toBe(0);
    expect(drawn).toContain('write the secret');
    expect(summary).toContain('RECAP');
    expect(drawn + summary).not.toContain(SECRET);
    expect(drawn + summary).not.toContain(OLD_SECRET);
  }, 120_000);
});

describe('files keep their mode', () => {
  it('a 0600 file stays 0600 through copy, lineinfile and blockinfile, and its backup is 0600 too', async () => {
    const dir = caseDir();
    const key = path.join(dir, 'private.key');
    const group = path.join(dir, 'shared.conf');
    writeFileSync(key, 'secret key material\n', { mode: 0o600 });
    writeFileSync(group, 'a = 1\n', { mode: 0o640 });
    writeFiles(dir, {
      hosts: LOCAL_INVENTORY,
      'play.yaml': `- hosts: all
  gather_facts: false
  tasks:
    - copy: { dest: ${key}, content: "new key material\\n", backup: true }
    - lineinfile: { path: ${key}, line: "one more line" }
    - blockinfile: { path: ${group}, block: "b = 2" }
    - copy: { dest: ${dir}/new.key, content: "fresh\\n", mode: "0600" }
`,
    });
    const r = await runCli(['run', path.join(dir, 'play.yaml'), '-i', path.join(dir, 'hosts'), '--no-retry-file']);
    expect(r.code, r.stdout + r.stderr).toBe(0);
    const mode = (p: string) => (statSync(p).mode & 0o7777).toString(8);
    expect(readFileSync(key, 'utf8')).toBe('new key material\none more line\n');
    expect(mode(key)).toBe('600');
    expect(mode(group)).toBe('640');
    expect(mode(path.join(dir, 'new.key'))).toBe('600');
    const backups = readdirSync(dir).filter((n) => n.startsWith('private.key.') && n.endsWith('~'));
    expect(backups).toHaveLength(1);
    expect(readFileSync(path.join(dir, backups[0]!), 'utf8')).toBe('secret key material\n');
    expect(mode(path.join(dir, backups[0]!))).toBe('600');
  }, 120_000);
});

describe('no_log hides every status, skipped too', () => {
  // The case: in check mode a shell task without creates/removes is skipped, and its message named the
  // command with the password in it.
  const STATUSES = (dir: string) => `- hosts: all
  gather_facts: false
  vars: { pw: ${SECRET} }
  tasks:
    - name: skipped in check mode
      shell: "MYSQL_PWD={{ pw }} mysql -e 'select 1'"
      no_log: true
      ignore_errors: true
    - name: skipped by when
      debug: { msg: "{{ pw }}" }
      when: pw == 'x'
      no_log: true
    - name: ok
      debug: { msg: "{{ pw }}" }
      no_log: true
    - name: changed
      copy: { dest: ${dir}/out.conf, content: "{{ pw }}\\n" }
      no_log: true
    - name: failed
      fail: { msg: "{{ pw }}" }
      no_log: true
      ignore_errors: true
`;
  it.each([
    ['plain, verbose, check mode', ['--check', '-v']],
    ['--json, check mode', ['--check', '--json']],
    ['plain, verbose', ['-v']],
    ['--json', ['--json']],
  ])('%s', async (_mode, args) => {
    const dir = caseDir();
    writeFiles(dir, { 'play.yaml': STATUSES(dir), hosts: LOCAL_INVENTORY });
    const r = await runCli(['run', path.join(dir, 'play.yaml'), '-i', path.join(dir, 'hosts'), '--no-retry-file', ...args]);
    expect(r.stdout + r.stderr).not.toContain(SECRET);
    expect(r.stdout + r.stderr).not.toContain('MYSQL_PWD');
    if (args.includes('--json')) {
      const results = r.events.filter((e) => e.type === 'task_result');
      const statuses = new Set(results.map((e) => (e.type === 'task_result' ? e.status : '')));
      expect(statuses.has('skipped')).toBe(true);
      for (const e of results) if (e.type === 'task_result') expect(e.msg, e.task).toBe('output hidden (no_log)');
    }
  }, 120_000);
});

import { spawnSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it, onTestFinished } from 'vitest';
import type { Task } from '../../../src/playbook/types.js';
import type { RunEvent, TaskResultEvent } from '../../../src/report/events.js';
import { PENDING_DIR } from '../../../src/runner/handlers.js';
import { flushScript, parseFlush, writeBehindMode } from '../../../src/runner/write-behind.js';
import type { ExecOptions, ExecResult } from '../../../src/connection/connection.js';
import { LocalConnection } from '../../../src/connection/local.js';
import { UnreachableError } from '../../../src/errors.js';
import { runLocal } from '../../support/run.js';
import { tempDir } from '../../support/tmp.js';

const dir = tempDir();
const inventory = '[all]\nh1 ansible_connection=local\n';

/** Run a flush step's script with the machine's sh, as a session step runs it. */
function sh(script: string) {
  const r = spawnSync('/bin/sh', ['-c', script], { stdio: ['ignore', 'pipe', 'pipe'] });
  return { stdout: r.stdout, stderr: r.stderr, code: r.status };
}

describe('the flush step', () => {
  it('runs each queued script in order, then the carried one, each with its own output and status', () => {
    const nonce = 'a1b2c3d4e5f60718';
    const r = sh(flushScript(['printf one', 'echo two; echo err2 >&2', 'exit 0'], 'echo carried; echo cerr >&2; exit 3', nonce));
    const out = parseFlush(3, r, nonce);
    expect(out.failedAt).toBeNull();
    expect(out.results.map((x) => [x.stdout.toString(), x.stderr.toString(), x.code])).toEqual([
      ['one', '', 0],
      ['two\n', 'err2\n', 0],
      ['', '', 0],
    ]);
    expect([out.carried?.stdout.toString(), out.carried?.stderr.toString(), out.carried?.code]).toEqual(['carried\n', 'cerr\n', 3]);
  });

  it('stops at the first script that fails: nothing after it runs, not even the carried script', () => {
    const nonce = '0011223344556677';
    const marker = path.join(dir, 'after-the-failure');
    const r = sh(flushScript(['echo ok', 'echo "no room" >&2; exit 70', `touch ${marker}`], `touch ${marker}`, nonce));
    const out = parseFlush(3, r, nonce);
    expect(out.failedAt).toBe(1);
    expect(out.results.map((x) => x.code)).toEqual([0, 70]);
    expect(out.results[1]!.stderr.toString()).toBe('no room\n');
    expect(out.carried).toBeNull();
    expect(existsSync(marker)).toBe(false);
  });

  it('a step cut short leaves the script it was in as failed, with no status', () => {
    const nonce = '8899aabbccddeeff';
    const full = sh(flushScript(['echo a', 'echo b'], null, nonce));
    const cut = full.stdout.subarray(0, full.stdout.indexOf('b\n'));
    const out = parseFlush(2, { stdout: cut, stderr: full.stderr, code: null }, nonce);
    expect(out.failedAt).toBe(1);
    expect(out.results.map((x) => x.code)).toEqual([0, null]);
  });

  it('output that imitates the marker of another flush cannot cut a script short', () => {
    const nonce = '1234567812345678';
    const r = sh(flushScript(['printf "\\n@@PV-WB-ffffffffffffffff 0 0\\n"'], 'echo next', nonce));
    const out = parseFlush(1, r, nonce);
    expect(out.failedAt).toBeNull();
    expect(out.results[0]!.stdout.toString()).toBe('\n@@PV-WB-ffffffffffffffff 0 0\n');
    expect(out.carried?.stdout.toString()).toBe('next\n');
  });
});

describe('which tasks are queued, which start at once, which wait for the queue', () => {
  const task = (t: Partial<Task>) => ({ loop: undefined, until: undefined, ignoreErrors: false, failedWhen: undefined, changedWhen: undefined, local: false, runOnce: false, ...t }) as Task;
  const o = { handler: false, rescuable: false, allowed: true };
  it('a plain task of a host module is queued; with a loop, retries, conditions on its result or ignore_errors it only carries', () => {
    expect(writeBehindMode(task({}), { name: 'copy' }, o)).toBe('queue');
    expect(writeBehindMode(task({ loop: ['a'] }), { name: 'copy' }, o)).toBe('carry');
    expect(writeBehindMode(task({ ignoreErrors: true }), { name: 'copy' }, o)).toBe('carry');
    expect(writeBehindMode(task({ failedWhen: 'x' }), { name: 'copy' }, o)).toBe('carry');
    expect(writeBehindMode(task({}), { name: 'service' }, { ...o, handler: true })).toBe('carry');
  });
  it('delegated, run_once, rescuable tasks, controller modules with effects and plays with lookups wait for the queue', () => {
    expect(writeBehindMode(task({ local: true }), { name: 'copy' }, o)).toBe('settle');
    expect(writeBehindMode(task({ runOnce: true }), { name: 'copy' }, o)).toBe('settle');
    expect(writeBehindMode(task({}), { name: 'copy' }, { ...o, rescuable: true })).toBe('settle');
    expect(writeBehindMode(task({}), { name: 'smtp_probe', controllerOnly: true }, o)).toBe('settle');
    expect(writeBehindMode(task({}), { name: 'copy' }, { ...o, allowed: false })).toBe('settle');
    expect(writeBehindMode(task({}), { name: 'assert', controllerOnly: true }, o)).toBe('carry');
  });
});

describe('write-behind on a host', () => {
  it('three writes and a chmod cost one step after the facts, and the files are as sequential writes leave them', async () => {
    const [a, b, c] = ['wb-a.conf', 'wb-b.conf', 'wb-c.conf'].map((f) => path.join(dir, f));
    for (const f of [a, b]) writeFileSync(f!, 'x = 0\n');
    const { report, results } = await runLocal(
      dir,
      `- hosts: all
  tasks:
    - lineinfile: { path: ${a}, regexp: '^x =', line: 'x = 1' }
    - copy: { dest: ${c}, content: "new\\n" }
    - file: { path: ${a}, mode: '0600' }
    - lineinfile: { path: ${b}, regexp: '^x =', line: 'x = 2' }
    - debug: { msg: done }
`,
      inventory,
    );
    expect(results.map((r) => [r.task, r.status])).toEqual([
      [expect.stringContaining('lineinfile'), 'changed'],
      [expect.stringContaining('copy'), 'changed'],
      [expect.stringContaining('file'), 'changed'],
      [expect.stringContaining('lineinfile'), 'changed'],
      [expect.stringContaining('debug'), 'ok'],
    ]);
    expect(report.hosts.h1).toMatchObject({ changed: 4, failed: 0, steps: 2 });
    expect([a, b, c].map((f) => readFileSync(f!, 'utf8'))).toEqual(['x = 1\n', 'x = 2\n', 'new\n']);
  });

  it('a write that fails in the middle of a batch: earlier ones changed, the failed one failed with its own error, later ones never reported nor written', async () => {
    const sub = path.join(dir, 'batch');
    mkdirSync(sub, { recursive: true });
    const [first, missing, last] = [path.join(sub, 'first.conf'), path.join(sub, 'no-such-dir', 'second.conf'), path.join(sub, 'last.conf')];
    const { report, results, events } = await runLocal(
      dir,
      `- hosts: all
  tasks:
    - name: first write
      copy: { dest: ${first}, content: "1\\n" }
      notify: h1
    - name: second write, into a directory that is not there
      copy: { dest: ${missing}, content: "2\\n" }
    - name: third write
      copy: { dest: ${last}, content: "3\\n" }
      notify: h3
    - name: a controller task after them
      debug: { msg: after }
  handlers:
    - name: h1
      debug: { msg: handler one }
    - name: h3
      debug: { msg: handler three }
`,
      inventory,
    );
    expect(results.map((r) => [r.task, r.status])).toEqual([
      ['first write', 'changed'],
      ['second write, into a directory that is not there', 'failed'],
    ]);
    expect(results[1]!.msg).toContain(`${path.dirname(missing)}: no such directory`);
    expect(report.exitCode).not.toBe(0);
    // facts; the flush that stops at the second write; then the pending-handler record read and written again
    expect(report.hosts.h1).toMatchObject({ changed: 1, failed: 1, ok: 0, steps: 4 });
    expect(readFileSync(first, 'utf8')).toBe('1\n');
    expect(existsSync(last)).toBe(false);
    // The third task's notification is dropped with it; the first's stays (as pending, the host failed).
    const warnings = events.filter((e) => e.type === 'warning').map((e) => (e as { msg: string }).msg);
    expect(warnings.some((w) => w.includes('h3'))).toBe(false);
    expect(warnings.some((w) => w.includes('recorded for the next run: h1'))).toBe(true);
    // Events in task order: every start before its own result, none of the dropped tasks'.
    const starts = events.filter((e) => e.type === 'task_start').map((e) => (e as { task: string }).task);
    expect(starts).toEqual(['first write', 'second write, into a directory that is not there']);
  });

  it('a command task carries the queue in front of it and sees what was written', async () => {
    const f = path.join(dir, 'seen.conf');
    const { report, results } = await runLocal(
      dir,
      `- hosts: all
  tasks:
    - copy: { dest: ${f}, content: "written\\n" }
    - command: cat ${f}
      register: out
    - assert: { that: [ "out.stdout == 'written'" ] }
`,
      inventory,
    );
    expect(results.map((r) => r.status)).toEqual(['changed', 'changed', 'ok']);
    expect(report.hosts.h1).toMatchObject({ steps: 2 });
  });

  it('a play with a lookup keeps one step per write (a pipe lookup runs on the controller when it renders)', async () => {
    const [a, b] = ['lk-a.conf', 'lk-b.conf'].map((f) => path.join(dir, f));
    const { report } = await runLocal(
      dir,
      `- hosts: all
  tasks:
    - copy: { dest: ${a}, content: "a\\n" }
    - copy: { dest: ${b}, content: "{{ lookup('env', 'HOME') }}\\n" }
`,
      inventory,
    );
    expect(report.hosts.h1).toMatchObject({ changed: 2, steps: 3 });
  });
});

describe('write-behind and Ctrl-C', () => {
  it('a write queued and not yet sent when Ctrl-C comes is never sent: its task is not reported, the host stops as interrupted', async () => {
    const sub = path.join(dir, 'interrupt');
    mkdirSync(sub, { recursive: true });
    const [ran, queued, later] = ['ran', 'queued', 'later'].map((f) => path.join(sub, f));
    // Ctrl-C comes right after the copy planned its write and queued it (the first check of the interrupt once
    // that task started is its own "may I queue?"; the next one is the following task's).
    let armed = false;
    let calls = 0;
    const events: RunEvent[] = [];
    const { report } = await runLocal(
      dir,
      `- hosts: all
  tasks:
    - name: a command that runs at once
      command: touch ${ran}
    - name: a write that is queued
      copy: { dest: ${queued}, content: "never sent\\n" }
    - name: a task after Ctrl-C
      copy: { dest: ${later}, content: "never started\\n" }
`,
      inventory,
      {
        interrupted: () => armed && calls++ > 0,
        emit: (e) => {
          if (e.type === 'task_start' && e.task === 'a write that is queued') armed = true;
          events.push(e);
        },
      },
    );
    const results = events.filter((e): e is TaskResultEvent => e.type === 'task_result');
    expect(results.map((r) => [r.task, r.status])).toEqual([['a command that runs at once', 'changed']]);
    expect(existsSync(ran)).toBe(true);
    expect(existsSync(queued)).toBe(false);
    expect(existsSync(later)).toBe(false);
    expect(report.exitCode & 16).toBe(16);
    expect(report.hosts.h1).toMatchObject({ changed: 1, failed: 0 });
    const warnings = events.filter((e) => e.type === 'warning').map((e) => (e as { msg: string }).msg);
    expect(warnings).toContain('interrupted: the changes of "a write that is queued" were queued and are not sent; that task did not complete');
    expect(events.filter((e) => e.type === 'task_start').map((e) => (e as { task: string }).task)).toEqual(['a command that runs at once', 'a write that is queued']);
  });
});

describe('write-behind and any_errors_fatal', () => {
  // Ansible 2.14: with any_errors_fatal a failed task stops the rollout; a queued write that fails when the queue
  // is sent before the handlers is that task's failure and must stop it too.
  it.each([
    ['notifying a handler', 'notify: h'],
    ['notifying nothing, with a handler due from an earlier task', ''],
  ])('a queued write that fails when sent before the handlers stops the rollout (%s)', async (_what, notify) => {
    const sub = path.join(dir, `fatal-${notify ? 'notify' : 'plain'}`);
    mkdirSync(sub, { recursive: true });
    const events: RunEvent[] = [];
    const file = `fatal-${randomBytes(4).toString('hex')}.yaml`;
    // As root the host's handlers go on record under /var/lib (this machine): removed again below.
    const record = `${PENDING_DIR}/${createHash('sha256').update(`${path.resolve(dir, file)}\0fatal`).digest('hex').slice(0, 16)}.json`;
    onTestFinished(() => rmSync(record, { force: true }));
    const { report } = await runLocal(
      dir,
      `- name: fatal
  hosts: all
  gather_facts: false
  serial: 1
  any_errors_fatal: true
  tasks:
    - name: a write that works
      copy: { dest: "${sub}/{{ inventory_hostname }}.ok", content: "1\\n" }
      notify: h
    - name: a write into a directory that is not there
      copy: { dest: "${sub}/missing/{{ inventory_hostname }}", content: "2\\n" }
      ${notify}
  handlers:
    - name: h
      command: "true"
`,
      '[all]\nh1 ansible_connection=local\nh2 ansible_connection=local\n',
      { emit: (e) => events.push(e), file },
    );
    const results = events.filter((e): e is TaskResultEvent => e.type === 'task_result');
    expect(results.map((r) => [r.host, r.task, r.status])).toEqual([
      ['h1', 'a write that works', 'changed'],
      ['h1', 'a write into a directory that is not there', 'failed'],
    ]);
    expect(report.stopped).toMatch(/any_errors_fatal/);
    expect(report.notRun).toEqual(['h2']);
  });
});

describe('write-behind and a step that does not come back', () => {
  /** A local connection that runs every step, but reports the connection lost after a step that holds `word`. */
  class LosesAfter extends LocalConnection {
    constructor(
      host: string,
      private readonly word: string,
    ) {
      super(host);
    }
    override async exec(script: string, opts: ExecOptions = {}): Promise<ExecResult> {
      const r = await super.exec(script, opts);
      if (script.includes(this.word)) throw new UnreachableError(this.host, 'connection lost (test)');
      return r;
    }
  }

  it('the first queued task is unreachable with an unknown outcome, and the task whose step it was did not complete', async () => {
    const target = path.join(dir, 'lost-step.txt');
    const ran = path.join(dir, 'lost-step-ran');
    rmSync(ran, { force: true });
    const { report, results, events } = await runLocal(
      dir,
      `- hosts: all
  tasks:
    - name: queued write
      copy: { dest: ${target}, content: "new\\n" }
    - name: the carrier
      command: touch ${ran}
    - name: never reached
      debug: { msg: after }
`,
      inventory,
      { connectionFor: (host) => new LosesAfter(host, `touch ${ran}`) },
    );
    expect(results.map((r) => [r.task, r.status])).toEqual([['queued write', 'unreachable']]);
    expect(results[0]!.msg).toBe(`connection lost (test), in the step that carried this task's queued changes: whether they were made on the host is unknown`);
    const said = events.filter((e): e is Extract<RunEvent, { type: 'warning' }> => e.type === 'warning').map((e) => e.msg);
    expect(said).toContain('"the carrier" began in the step that was lost and did not complete');
    expect(report.hosts.h1).toMatchObject({ unreachable: 1, changed: 0 });
    // The step did run here: the write and the command are both done, as on a host whose connection died.
    expect(readFileSync(target, 'utf8')).toBe('new\n');
    expect(existsSync(ran)).toBe(true);
  });
});

/**
 * A command's step that also brings back what the rest of the play reads (TaskContext.run with `thenRead`): the
 * firewall guard's cancel step carries the read that the first task after a guarded change would otherwise make
 * in a step of its own (the SMTPS first run on firewalld, ufw and nftables hosts: the Postfix restart's read of
 * master.cf after the `firewall` task, see src/modules/firewall-guard.ts proveOrRollBack).
 */
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import type { ExecResult } from '../../../src/connection/connection.js';
import { loadPlaybook } from '../../../src/playbook/validate.js';
import { allTasks } from '../../../src/playbook/types.js';
import { parseReadOutput, readScript } from '../../../src/runner/host-files.js';
import type { HostRun } from '../../../src/runner/host.js';
import { ReadCache } from '../../../src/runner/read-cache.js';
import { taskContext, thenReadScript } from '../../../src/runner/task-context.js';
import { tempDir, writeFiles } from '../../support/tmp.js';

const dir = tempDir('provision-then-read-');

const sh = (script: string): ExecResult => {
  const r = spawnSync('sh', ['-c', script]);
  return { stdout: r.stdout, stderr: r.stderr, code: r.status };
};

describe('thenReadScript', () => {
  const masterCf = writeFiles(dir, { 'master.cf': 'smtp inet n - y - - smtpd\n' });

  it("gives back the script's own result as if it had run alone, and the read made after it", () => {
    const req = { files: [masterCf], stats: [], commands: [] };
    // The script's output may look like the marker's start: the marker's random word cannot be guessed.
    const then = thenReadScript("printf 'out\\n@@PV-THEN-READ-0000\\n'; echo err >&2; exit 3", readScript(req));
    const { result, read } = then.parse(sh(then.script));
    expect(result.code).toBe(3);
    expect(result.stdout.toString()).toBe('out\n@@PV-THEN-READ-0000\n');
    expect(result.stderr.toString()).toBe('err\n');
    expect(read).not.toBeNull();
    expect(parseReadOutput(req, read!).files.get(masterCf)?.content?.toString()).toBe('smtp inet n - y - - smtpd\n');
  });

  it('nothing read when the read fails or the step is cut short', () => {
    const failed = thenReadScript('echo ok', 'exit 4');
    expect(failed.parse(sh(failed.script))).toMatchObject({ read: null, result: { code: 0 } });
    expect(failed.parse(sh(failed.script)).result.stdout.toString()).toBe('ok\n');
    const cut = thenReadScript('echo ok', readScript({ files: [masterCf], stats: [], commands: [] }));
    const whole = sh(cut.script);
    const short = { ...whole, stdout: whole.stdout.subarray(0, whole.stdout.length - 10), code: null };
    expect(cut.parse(short).read).toBeNull();
  });
});

describe('TaskContext.run with thenRead', () => {
  const later = writeFiles(dir, { 'later.txt': 'later\n' });
  const own = writeFiles(dir, { 'own.txt': 'own\n' });
  const pb = writeFiles(dir, {
    'then-read.yaml': `- hosts: all
  gather_facts: false
  tasks:
    - name: guarded change
      command: "true"
    - name: later
      copy: { dest: ${later}, content: "x" }
`,
  });
  const play = loadPlaybook(pb).plays[0]!;
  const [change, next] = allTasks(play);

  const host = () => {
    const steps: string[] = [];
    const exec = async (script: string) => {
      steps.push(script);
      return sh(script);
    };
    const cache = new ReadCache('h1', exec);
    // What the prefetch learnt each task reads (see host-start.ts prefetch): the task's own reads are done by the
    // time it asks for a read after its step.
    cache.plan(change!, () => ({ files: [own] }));
    cache.plan(next!, () => ({ files: [later] }));
    const h = {
      name: 'h1',
      facts: {},
      settings: { check: false, emit: () => undefined },
      become: () => undefined,
      pendingPath: () => path.join(dir, 'no-pending.json'),
      cache,
      exec,
      original: new Map(),
      handlers: { rider: null },
    } as unknown as HostRun;
    return { steps, ctx: taskContext(h, play, change!, {}, false) };
  };

  it('one step: the command, then what the later task reads, which then needs no step of its own', async () => {
    const { steps, ctx } = host();
    const r = await ctx.run('echo done', { timeoutMs: 10_000, thenRead: (x) => x.stdout.toString() === 'done\n' });
    expect(r.stdout.toString()).toBe('done\n');
    expect((await ctx.readFile(later)).content?.toString()).toBe('later\n');
    expect(steps).toHaveLength(1);
    expect(steps[0]).not.toContain(own);
  });

  it('what came back is dropped when thenRead refuses the result (a rollback): read again in a step of its own', async () => {
    const { steps, ctx } = host();
    const r = await ctx.run('echo rolledback', { timeoutMs: 10_000, thenRead: (x) => x.stdout.toString() === 'done\n' });
    expect(r.stdout.toString()).toBe('rolledback\n');
    expect((await ctx.readFile(later)).content?.toString()).toBe('later\n');
    expect(steps).toHaveLength(2);
  });
});

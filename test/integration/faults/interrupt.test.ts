/**
 * Ctrl-C on the controller, sent as SIGINT to the built CLI (compiled here into a private directory, so a
 * build by someone else cannot change it under the test). One Ctrl-C: no new task starts, the write in flight
 * finishes, the recap is printed and the exit code says "interrupted" (16). A second Ctrl-C: the CLI exits at
 * once (130) and the write it abandons is atomic: the file is old or new, never partial, no temporary file left.
 * Run: PROVISION_REQUIRE_LAB=1 npx vitest run --project lab test/integration/faults/interrupt.test.ts
 */
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { labReset, type LabHost } from '../../lab/lab.js';
import { hostSha, leftovers, poll, processes, randomText, sh, sha, waitQuiet, writePlaybook } from './support.js';
import { tempDir } from '../../support/tmp.js';

const lab = inject('lab');
const ROOT = fileURLToPath(new URL('../../../', import.meta.url));

const PLAYBOOK = `- hosts: all
  tasks:
    - name: in flight
      copy:
        dest: /root/faults/int/target
        src: new.txt
        validate: "sleep 3.5 && test -s %s"
    - name: queued with it
      copy:
        dest: /root/faults/int/later
        content: "planned before Ctrl-C, written in the same step\\n"
    # run_once flushes the queued writes as a step of their own first (see write-behind.ts): the step in flight
    # when Ctrl-C comes carries both writes above, and this task is the first that must not start.
    - name: never started
      run_once: true
      copy:
        dest: /root/faults/int/after
        content: "a task after Ctrl-C must not run\\n"
`;

interface Exited {
  code: number | null;
  stdout: string;
  stderr: string;
}

describe.skipIf(!lab)('Ctrl-C on the controller', () => {
  const state = lab!;
  const host = state?.hosts.find((h) => h.flavour === 'debian') as LabHost;
  const dir = tempDir('provision-faults-int-');
  const cli = path.join(dir, 'build', 'bin', 'provision.js');
  const children: ChildProcess[] = [];

  beforeAll(() => {
    const build = path.join(dir, 'build');
    mkdirSync(path.join(build, 'bin'), { recursive: true });
    // tsc emits even when a file someone is editing right now has a type error; what matters is that it emitted.
    spawnSync(process.execPath, [path.join(ROOT, 'node_modules/typescript/bin/tsc'), '-p', path.join(ROOT, 'tsconfig.build.json'), '--outDir', path.join(build, 'dist')], {
      cwd: ROOT,
      stdio: 'ignore',
      timeout: 300_000,
    });
    expect(existsSync(path.join(build, 'dist/cli/main.js'))).toBe(true);
    const pkg = JSON.parse(readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as { version: string };
    writeFileSync(path.join(build, 'package.json'), JSON.stringify({ name: 'provision', version: pkg.version, type: 'module' }));
    copyFileSync(path.join(ROOT, 'bin/provision.js'), cli);
    symlinkSync(path.join(ROOT, 'node_modules'), path.join(build, 'node_modules'));
  }, 300_000);

  afterAll(async () => {
    for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
    if (state) await labReset(state, [host]);
  });

  /** Start the built CLI on the playbook; resolves when it exits (killed after two minutes at most). */
  function start(pb: string): { child: ChildProcess; exited: Promise<Exited>; stderr: () => string } {
    const child = spawn(process.execPath, [cli, 'run', pb, '-i', state.inventory, '--ssh-config', state.sshConfig, '--limit', host.name, '--no-retry-file'], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    children.push(child);
    let stdout = '';
    let stderr = '';
    child.stdout!.on('data', (b: Buffer) => (stdout += b.toString()));
    child.stderr!.on('data', (b: Buffer) => (stderr += b.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), 120_000);
    const exited = new Promise<Exited>((resolve) => {
      child.on('close', (code) => {
        clearTimeout(timer);
        resolve({ code, stdout, stderr });
      });
    });
    return { child, exited, stderr: () => stderr };
  }

  async function prepare(name: string) {
    await sh(host, 'mkdir -p /root/faults/int && printf "old\\n" > /root/faults/int/target && rm -f /root/faults/int/later /root/faults/int/after');
    const content = randomText(32 * 1024, `written by ${name}`);
    const pb = writePlaybook(path.join(dir, name), 'int.yaml', PLAYBOOK, { 'files/new.txt': content });
    return { pb, content };
  }

  const validating = () => poll(async () => ((await processes(host)).some((p) => p.args === 'sleep 3.5') ? true : null), 120_000, 20);

  it('one Ctrl-C: the step in flight finishes (both queued writes it carries), no later task starts, the recap is printed, exit 16', async () => {
    const { pb, content } = await prepare('once');
    const run = start(pb);
    expect(await validating()).toBe(true);
    run.child.kill('SIGINT');
    const r = await run.exited;

    expect(r.code).toBe(16);
    expect(r.stderr).toContain('provision: stopping: no new tasks will start; tasks in flight finish (Ctrl-C again to quit now)');
    expect(r.stdout).toMatch(new RegExp(`changed\\s+${host.name.replace(/\./g, '\\.')}  in flight: update /root/faults/int/target`));
    expect(r.stdout).toMatch(new RegExp(`changed\\s+${host.name.replace(/\./g, '\\.')}  queued with it: create /root/faults/int/later`));
    expect(r.stdout).not.toContain('never started');
    expect(r.stdout).toContain('RECAP');
    expect(r.stdout).toContain('rollout stopped: interrupted');
    expect(r.stdout).toMatch(/exit code 16\n$/);
    expect(r.stdout + r.stderr).not.toMatch(/^\s+at /m);

    expect(await hostSha(host, '/root/faults/int/target')).toBe(sha(content));
    expect(await hostSha(host, '/root/faults/int/later')).toBe(sha('planned before Ctrl-C, written in the same step\n'));
    expect(await hostSha(host, '/root/faults/int/after')).toBe('absent');
    expect(await leftovers(host, '/root/faults/int')).toEqual([]);
  });

  it('a second Ctrl-C: exit 130 at once; the abandoned write is whole or not there, and leaves no temporary file', async () => {
    const { pb, content } = await prepare('twice');
    const run = start(pb);
    expect(await validating()).toBe(true);
    run.child.kill('SIGINT');
    expect(await poll(async () => (run.stderr().includes('provision: stopping') ? true : null), 30_000, 20)).toBe(true);
    run.child.kill('SIGINT');
    const r = await run.exited;

    expect(r.code).toBe(130);
    expect(r.stderr).toContain('provision: interrupted twice, exiting now');
    expect(await waitQuiet(host)).toBe(true);
    expect([sha('old\n'), sha(content)]).toContain(await hostSha(host, '/root/faults/int/target'));
    // The abandoned step may still finish on the host: each write in it is whole or not there.
    expect(['absent', sha('planned before Ctrl-C, written in the same step\n')]).toContain(await hostSha(host, '/root/faults/int/later'));
    expect(await hostSha(host, '/root/faults/int/after')).toBe('absent');
    expect(await leftovers(host, '/root/faults/int')).toEqual([]);
  });
});

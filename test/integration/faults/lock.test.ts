/**
 * Two runs against the same host at once. The second waits for the host's run lock up to --lock-timeout and then
 * fails clearly, naming the run that holds it; given long enough it runs after the first, never interleaved with
 * it. A run whose connection died leaves its write running on the host: the next run waits for that too.
 * Run: PROVISION_REQUIRE_LAB=1 npx vitest run --project lab test/integration/faults/lock.test.ts
 */
import { afterAll, describe, expect, inject, it } from 'vitest';
import { labReset, type LabHost } from '../../lab/lab.js';
import { hostSha, killSessions, leftovers, poll, processes, provision, randomText, results, sh, sha, writePlaybook } from './support.js';
import { tempDir } from '../../support/tmp.js';

const lab = inject('lab');

/** A run that logs its start, holds the host a while, and logs its end. */
const LOGGED = (who: string) => `- hosts: all
  tasks:
    - name: ${who} starts
      shell: echo "start ${who}" >> /root/faults/lock/log
    - name: ${who} works
      command: sleep 4
    - name: ${who} ends
      shell: echo "end ${who}" >> /root/faults/lock/log
`;

describe.skipIf(!lab)('two runs against the same host', () => {
  const state = lab!;
  const host = state?.hosts.find((h) => h.flavour === 'rhel') as LabHost;
  const dir = tempDir('provision-faults-lock-');

  afterAll(async () => {
    if (state) await labReset(state, [host]);
  });

  const logLines = async () => (await sh(host, 'cat /root/faults/lock/log 2>/dev/null || true')).split('\n').filter(Boolean);
  const started = (who: string) => poll(async () => ((await logLines()).includes(`start ${who}`) ? true : null), 120_000, 100);

  it('fails the second run after its lock timeout, naming the holder; the first finishes undisturbed', async () => {
    await sh(host, 'mkdir -p /root/faults/lock && rm -f /root/faults/lock/log');
    const a = provision(state, writePlaybook(dir, 'first.yaml', LOGGED('A')), ['--limit', host.name]);
    expect(await started('A')).toBe(true);

    const b = await provision(state, writePlaybook(dir, 'second.yaml', LOGGED('B')), ['--limit', host.name, '--lock-timeout', '1']);
    expect(b.code).toBe(2);
    const [refused] = results(b.events, host);
    expect(refused?.status).toBe('failed');
    expect(refused?.msg).toMatch(/^another provision run has held \/var\/lib\/provision\/lock for over 1s: provision run of first\.yaml by \S+ pid \d+ since \d{4}-\d\d-\d\dT/);
    expect(results(b.events, host)).toHaveLength(1);

    const first = await a;
    expect(first.code, first.stderr).toBe(0);
    expect(await logLines()).toEqual(['start A', 'end A']);
  });

  it('runs the second run after the first when it may wait long enough, never interleaved', async () => {
    await sh(host, 'rm -f /root/faults/lock/log');
    const a = provision(state, writePlaybook(dir, 'first.yaml', LOGGED('A')), ['--limit', host.name]);
    expect(await started('A')).toBe(true);
    const b = provision(state, writePlaybook(dir, 'second.yaml', LOGGED('B')), ['--limit', host.name, '--lock-timeout', '120']);
    const [ra, rb] = await Promise.all([a, b]);
    expect([ra.code, rb.code]).toEqual([0, 0]);
    expect(await logLines()).toEqual(['start A', 'end A', 'start B', 'end B']);
  });

  it("waits for the write a dead run left running, then finds the file up to date and runs the run's handler", async () => {
    await sh(host, 'mkdir -p /root/faults/lock && printf "old\\n" > /root/faults/lock/target && rm -f /root/faults/lock/handled');
    const content = randomText(64 * 1024, 'written by a run whose connection died');
    const pb = writePlaybook(
      dir,
      'orphan.yaml',
      `- hosts: all
  tasks:
    - name: write the target
      copy:
        dest: /root/faults/lock/target
        src: new.txt
        validate: "sleep 3.5 && test -s %s"
      notify: record
  handlers:
    - name: record
      shell: "sha256sum < /root/faults/lock/target | cut -c1-64 >> /root/faults/lock/handled"
`,
      { 'files/new.txt': content },
    );

    let finished = false;
    const first = provision(state, pb, ['--limit', host.name]).finally(() => (finished = true));
    const validating = await poll(async () => ((await processes(host)).some((p) => p.args === 'sleep 3.5') ? true : finished ? false : null), 120_000, 20);
    expect(validating).toBe(true);
    expect((await killSessions(host)).length).toBeGreaterThan(0);
    expect((await first).code & 4).toBe(4);

    // At once, while the dead run's write is still validating on the host.
    expect((await processes(host)).some((p) => p.args === 'sleep 3.5')).toBe(true);
    const again = await provision(state, pb, ['--limit', host.name]);
    expect(again.code, again.stderr).toBe(0);
    const got = results(again.events, host).map((e) => [e.task, e.status, e.msg]);
    // The handler the dead run left on record runs where this run's own handlers would: after the tasks.
    expect(got).toEqual([
      ['write the target', 'ok', '/root/faults/lock/target is up to date'],
      ['record', 'changed', expect.stringContaining('ran sha256sum')],
    ]);
    expect(await hostSha(host, '/root/faults/lock/target')).toBe(sha(content));
    expect((await sh(host, 'cat /root/faults/lock/handled')).trim()).toBe(sha(content));
    expect(await leftovers(host, '/root/faults/lock')).toEqual([]);
  });

  it('a dead run whose first handler carried the write leaves the record: the rerun runs both handlers, then removes it', async () => {
    await sh(host, 'mkdir -p /root/faults/lock && printf "old\\n" > /root/faults/lock/carried && rm -f /root/faults/lock/handled');
    const pb = writePlaybook(
      dir,
      'carried.yaml',
      `- hosts: all
  tasks:
    - name: write the file
      copy:
        dest: /root/faults/lock/carried
        content: "new\\n"
      notify: [first, second]
  handlers:
    - name: first
      shell: "sleep 3.7 && echo first >> /root/faults/lock/handled"
    - name: second
      shell: "echo second >> /root/faults/lock/handled"
`,
    );

    let finished = false;
    const dead = provision(state, pb, ['--limit', host.name]).finally(() => (finished = true));
    // The write and its record went in the first handler's step: kill the connection while that handler sleeps.
    const sleeping = await poll(async () => ((await processes(host)).some((p) => p.args === 'sleep 3.7') ? true : finished ? false : null), 120_000, 20);
    expect(sleeping).toBe(true);
    expect((await killSessions(host)).length).toBeGreaterThan(0);
    const lost = await dead;
    expect(lost.code & 4).toBe(4);
    // Which of the step's scripts completed is unknown: the first task whose write it carried takes the lost
    // connection, and the handler is not reported.
    expect(results(lost.events, host).map((e) => [e.task, e.status])).toEqual([['write the file', 'unreachable']]);
    expect(results(lost.events, host)[0]!.msg).toMatch(/lost, in the step that carried this task's queued changes: whether they were made on the host is unknown$/);

    // The step went on on the host: the file is new and the first handler ran, unseen; the second never ran, and
    // the record (whose removal only the second handler's step carries) names both.
    const again = await provision(state, pb, ['--limit', host.name]);
    expect(again.code, again.stderr).toBe(0);
    expect((await sh(host, 'cat /root/faults/lock/carried')).trim()).toBe('new');
    expect(results(again.events, host).map((e) => [e.task, e.status])).toEqual([
      ['write the file', 'ok'],
      ['first', 'changed'],
      ['second', 'changed'],
    ]);
    expect((await sh(host, 'cat /root/faults/lock/handled')).split('\n').filter(Boolean)).toEqual(['first', 'first', 'second']);
    expect((await sh(host, 'ls -A /var/lib/provision/pending 2>/dev/null; true')).trim()).toBe('');
    expect(await leftovers(host, '/root/faults/lock')).toEqual([]);
  });
});

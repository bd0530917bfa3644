/**
 * Handlers are on record on the host from the moment the file that needs them is written (in the same exec), so
 * a run that dies after the write still leaves them for the next run; once they have run, the record is gone.
 * And the write itself: once the first file of a plan is renamed into place, the script cannot be stopped.
 */
import { createHash, randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import type { TaskResultEvent } from '../../../src/report/events.js';
import { writeScript } from '../../../src/runner/host-files.js';
import { PENDING_DIR } from '../../../src/runner/handlers.js';
import { HostRun } from '../../../src/runner/host.js';
import { runLocal } from '../../support/run.js';
import { tempDir } from '../../support/tmp.js';

const dir = tempDir();
const LOCALHOST = 'localhost ansible_connection=local\n';
/** Where a play's pending handlers are recorded (named after the playbook file's absolute path and the play's name). */
const recordOf = (file: string, play: string) => `${PENDING_DIR}/${createHash('sha256').update(`${path.resolve(dir, file)}\0${play}`).digest('hex').slice(0, 16)}.json`;

/** Run a play named `play` from a playbook file of its own; `body` gets the path of the play's record. */
async function runPlay(play: string, body: (record: string) => string) {
  const name = `play-${randomBytes(4).toString('hex')}.yaml`;
  const record = recordOf(name, play);
  const result = await runLocal(dir, `- name: ${play}\n  hosts: all\n  gather_facts: true\n${body(record)}`, LOCALHOST, { file: name, forks: 1 });
  return { ...result, record };
}

// The record lives under /var/lib and is written as root only.
describe.skipIf(process.getuid?.() !== 0)('handlers on record ahead of the write', () => {
  it('the record names the handlers while they run, and is gone once they ran', async () => {
    const name = `pending-ahead-${randomBytes(4).toString('hex')}.yaml`;
    const play = 'record ahead';
    const record = recordOf(name, play);
    const playbook = `- name: ${play}
  hosts: all
  gather_facts: true
  tasks:
    - name: change
      copy: { dest: ${dir}/f.txt, content: "x" }
      notify: [look at the record, say what it names]
  handlers:
    - name: look at the record
      command: cat ${record}
      register: seen
    - name: say what it names
      debug: { msg: "{{ (seen.stdout | from_json).handlers | join(',') }}" }
`;
    const { report, events } = await runLocal(dir, playbook, LOCALHOST, { file: name, forks: 1 });
    expect(report.exitCode).toBe(0);
    const said = events.find((e): e is TaskResultEvent => e.type === 'task_result' && e.task === 'say what it names');
    expect(said?.msg).toBe('look at the record,say what it names');
    expect(existsSync(record)).toBe(false);
  });
});

describe.skipIf(process.getuid?.() !== 0)('handlers on record after a command ran', () => {
  it('a write that notifies still carries the record when a command emptied the read cache before it', async () => {
    const name = `pending-after-command-${randomBytes(4).toString('hex')}.yaml`;
    const play = 'record after a command';
    const record = recordOf(name, play);
    const playbook = `- name: ${play}
  hosts: all
  tasks:
    - name: a command first
      command: "true"
    - name: change
      copy: { dest: ${dir}/after-command.txt, content: "x" }
      notify: look at the record
  handlers:
    - name: look at the record
      command: cat ${record}
`;
    const { report, events } = await runLocal(dir, playbook, LOCALHOST, { file: name, forks: 1 });
    expect(report.exitCode).toBe(0);
    const seen = events.find((e): e is TaskResultEvent => e.type === 'task_result' && e.task === 'look at the record');
    expect(seen?.status).toBe('changed');
    expect(existsSync(record)).toBe(false);
  });
});

describe.skipIf(process.getuid?.() !== 0)('handlers left pending by an earlier run', () => {
  it('run once with the same handlers notified by this run, after the tasks', async () => {
    const name = `pending-merge-${randomBytes(4).toString('hex')}.yaml`;
    const play = 'merge pending';
    const record = recordOf(name, play);
    mkdirSync(PENDING_DIR, { recursive: true, mode: 0o700 });
    writeFileSync(record, JSON.stringify({ handlers: ['restart it'] }), { mode: 0o600 });
    const playbook = `- name: ${play}
  hosts: all
  tasks:
    - name: change
      copy: { dest: ${dir}/merge.txt, content: "x" }
      notify: restart it
  handlers:
    - name: restart it
      command: echo restarted
`;
    const { report, events } = await runLocal(dir, playbook, LOCALHOST, { file: name, forks: 1 });
    expect(report.exitCode).toBe(0);
    const order = events.filter((e): e is TaskResultEvent => e.type === 'task_result').map((e) => [e.task, e.status]);
    expect(order).toEqual([
      ['change', 'changed'],
      ['restart it', 'changed'],
    ]);
    expect(existsSync(record)).toBe(false);
  });
});

describe('the commit of a write', () => {
  it('ignores hangups and broken pipes from the first rename on, and prints nothing until every file is in place', () => {
    const script = writeScript([
      { path: '/etc/a.conf', before: null, after: Buffer.from('a'), beforeSha: null },
      { path: '/etc/b.conf', before: null, after: Buffer.from('b'), beforeSha: null },
    ]);
    const lines = script.split('\n');
    const trap = lines.indexOf("trap '' HUP INT TERM PIPE");
    const renames = lines.flatMap((l, i) => (l.startsWith('{ mv -f ') ? [i] : []));
    const prints = lines.flatMap((l, i) => (/@@[MW] /.test(l) ? [i] : []));
    expect(trap).toBeGreaterThan(0);
    expect(renames).toHaveLength(2);
    expect(prints).toHaveLength(1);
    expect(renames.every((i) => i > trap)).toBe(true);
    expect(prints.every((i) => i > renames.at(-1)!)).toBe(true);
    expect(lines.slice(trap, renames.at(-1)).some((l) => /printf|echo|cat /.test(l))).toBe(false);
  });
});

describe('pending-handler records are keyed by the playbook itself', () => {
  it('two playbooks with the same file name and play name in different directories keep records of their own', () => {
    const settings = (playbookFile: string) => ({ playbookFile }) as unknown as ConstructorParameters<typeof HostRun>[3];
    const play = { name: 'smtps' } as unknown as Parameters<HostRun['pendingPath']>[0];
    const at = (file: string) => new HostRun('h1', {}, {} as ConstructorParameters<typeof HostRun>[2], settings(file)).pendingPath(play);
    expect(at('/srv/team-a/site.yaml')).not.toBe(at('/srv/team-b/site.yaml'));
    expect(at('/srv/team-a/site.yaml')).toBe(at('/srv/team-a/./site.yaml'));
    expect(at('/srv/team-a/site.yaml')).toMatch(new RegExp(`^${PENDING_DIR}/[0-9a-f]{16}\\.json$`));
  });
});

describe.skipIf(process.getuid?.() !== 0)('the record removed by the last handler\'s step', () => {
  const playbook = (play: string, last: string) => `- name: ${play}
  hosts: all
  gather_facts: true
  tasks:
    - name: change
      copy: { dest: ${dir}/rider-${play.replace(/ /g, '-')}.txt, content: "x" }
      notify: [first, second]
  handlers:
    - name: first
      command: "true"
    - name: second
      command: "${last}"
`;

  it('when every handler succeeded, with no step of its own', async () => {
    const name = `rider-ok-${randomBytes(4).toString('hex')}.yaml`;
    const play = 'rider ok';
    const { report } = await runLocal(dir, playbook(play, 'true'), LOCALHOST, { file: name, forks: 1 });
    expect(report.exitCode).toBe(0);
    // facts; the write with the record, queued and carried by the first handler's step; the second handler, whose
    // step also removes the record
    expect(report.hosts.localhost).toMatchObject({ changed: 3, failed: 0, steps: 3 });
    expect(existsSync(recordOf(name, play))).toBe(false);
  });

  it('not when the last handler failed: the record stays for the next run', async () => {
    const name = `rider-failed-${randomBytes(4).toString('hex')}.yaml`;
    const play = 'rider failed';
    const record = recordOf(name, play);
    try {
      const { report } = await runLocal(dir, playbook(play, 'false'), LOCALHOST, { file: name, forks: 1 });
      expect(report.hosts.localhost).toMatchObject({ failed: 1 });
      expect(existsSync(record)).toBe(true);
      expect((JSON.parse(readFileSync(record, 'utf8')) as { handlers: string[] }).handlers).toEqual(['first', 'second']);
    } finally {
      rmSync(record, { force: true });
    }
  });
});

describe.skipIf(process.getuid?.() !== 0)('the record removed by the last handler of a flush that tasks follow', () => {
  // The shape of playbooks/smtps.yaml: handlers flush at the end of the tasks, and post_tasks follow them.

  it('goes with that handler\'s step: the post_tasks see no record, and no step of its own is spent on it', async () => {
    const { report, events, record } = await runPlay(
      'rider before post_tasks',
      (record) => `  tasks:
    - name: change
      copy: { dest: ${dir}/rider-post.txt, content: "x" }
      notify: h
  handlers:
    - name: h
      command: "true"
  post_tasks:
    - name: look for the record
      stat: { path: ${record} }
      register: between
    - name: say whether it is there
      debug: { msg: "record {{ 'present' if between.stat.exists else 'absent' }}" }
`,
    );
    expect(report.exitCode).toBe(0);
    const said = events.find((e): e is TaskResultEvent => e.type === 'task_result' && e.task === 'say whether it is there');
    expect(said?.msg).toBe('record absent');
    // facts; the write with the record; the handler (which also removes the record); the stat is answered by what
    // the handler's step left known, and no removal follows the post_tasks
    expect(report.hosts.localhost).toMatchObject({ changed: 2, failed: 0, steps: 3 });
    expect(existsSync(record)).toBe(false);
  });

  it('a write in the post_tasks that notifies again carries a new record, which goes once its handlers ran', async () => {
    const { report, events, record } = await runPlay(
      'record again',
      (record) => `  tasks:
    - name: first change
      copy: { dest: ${dir}/rider-again-1.txt, content: "1" }
      notify: h
  handlers:
    - name: h
      command: "true"
    - name: look at the record
      command: cat ${record}
      register: seen
    - name: say what it names
      debug: { msg: "{{ (seen.stdout | from_json).handlers | join(',') }}" }
  post_tasks:
    - name: second change
      copy: { dest: ${dir}/rider-again-2.txt, content: "2" }
      notify: [look at the record, say what it names]
`,
    );
    expect(report.exitCode).toBe(0);
    const said = events.find((e): e is TaskResultEvent => e.type === 'task_result' && e.task === 'say what it names');
    expect(said?.msg).toBe('look at the record,say what it names');
    expect(existsSync(record)).toBe(false);
  });
});

describe.skipIf(process.getuid?.() !== 0)('no handler runs in a step with a write its record guards', () => {
  it('a write queued after the record was written (the record already names the handler) is sent before the handler', async () => {
    const name = `guarded-${randomBytes(4).toString('hex')}.yaml`;
    const play = 'guarded';
    const { report } = await runLocal(
      dir,
      `- name: ${play}
  hosts: all
  gather_facts: true
  tasks:
    - name: first write, with the record
      copy: { dest: ${dir}/guarded-1.txt, content: "1" }
      notify: h
    - name: a command that sends the queue
      command: "true"
    - name: second write, the record names h already
      copy: { dest: ${dir}/guarded-2.txt, content: "2" }
      notify: h
  handlers:
    - name: h
      command: "true"
`,
      LOCALHOST,
      { file: name, forks: 1 },
    );
    expect(report.exitCode).toBe(0);
    // facts; the first write (with the record) carried by the command; a read again after the command; the second
    // write on its own; the handler (which also removes the record). Riding with the second write, the handler
    // would run, unseen by a run that died in that step, and take the record with it (4 steps).
    expect(report.hosts.localhost).toMatchObject({ changed: 4, failed: 0, steps: 5 });
    expect(existsSync(recordOf(name, play))).toBe(false);
  });
});

describe.skipIf(process.getuid?.() !== 0)('no step carries both a write the record guards and the record\'s removal', () => {
  it('the first of two handlers carries the write, and sees the record written ahead of it in that step', async () => {
    const { report, events, record } = await runPlay(
      'first handler carries',
      (record) => `  tasks:
    - name: change
      copy: { dest: ${dir}/carry-first.txt, content: "x" }
      notify: [look, last]
  handlers:
    - name: look
      command: cat ${record}
      register: seen
    - name: last
      command: "true"
  post_tasks:
    - name: say what the record named
      debug: { msg: "{{ (seen.stdout | from_json).handlers | join(',') }}" }
`,
    );
    expect(report.exitCode).toBe(0);
    // facts; the write and the record with the first handler; the last handler with the record's removal
    expect(report.hosts.localhost).toMatchObject({ changed: 3, failed: 0, steps: 3 });
    const said = events.find((e): e is TaskResultEvent => e.type === 'task_result' && e.task === 'say what the record named');
    expect(said?.msg).toBe('look,last');
    expect(existsSync(record)).toBe(false);
  });

  it('when the first handler does not run, the write goes on its own before the last one, which removes the record', async () => {
    const { report, record } = await runPlay(
      'last handler does not carry',
      () => `  tasks:
    - name: change
      copy: { dest: ${dir}/carry-last.txt, content: "x" }
      notify: [skipped, last]
  handlers:
    - name: skipped
      command: "false"
      when: false
    - name: last
      command: "true"
`,
    );
    expect(report.exitCode).toBe(0);
    // facts; the write with the record, on its own; the last handler with the record's removal (carried by it,
    // the write would be 2 steps)
    expect(report.hosts.localhost).toMatchObject({ changed: 2, failed: 0, steps: 3 });
    expect(existsSync(record)).toBe(false);
  });

  it('a failed write carried by the first handler: that handler and the last never run, and the write\'s task fails', async () => {
    const { report, events, record } = await runPlay(
      'carried write fails',
      () => `  tasks:
    - name: change
      copy: { dest: ${dir}/carry-refused.txt, content: "x", validate: "test ! -e %s" }
      notify: [first, last]
  handlers:
    - name: first
      command: "true"
    - name: last
      command: "true"
`,
    );
    try {
      expect(report.hosts.localhost).toMatchObject({ failed: 1, changed: 0 });
      const got = events.filter((e): e is TaskResultEvent => e.type === 'task_result').map((e) => [e.task, e.status]);
      // Refused on the host, in the step the first handler carried (the validation runs with the write).
      expect(got).toEqual([['change', 'failed']]);
      expect(report.hosts.localhost).toMatchObject({ steps: 2 });
      expect(existsSync(`${dir}/carry-refused.txt`)).toBe(false);
    } finally {
      rmSync(record, { force: true });
    }
  });
});

import { describe, expect, it } from 'vitest';
import type { Play, Task } from '../../../src/playbook/types.js';
import type { RunEvent } from '../../../src/report/events.js';
import { becomeFor } from '../../../src/runner/become.js';
import { absentState, fileState, sha256 } from '../../../src/runner/host-files.js';
import { tagged } from '../../../src/runner/tags.js';
import { emitTaskResult } from '../../../src/runner/task-events.js';

const play = (p: Partial<Play> = {}) => ({ tags: [], become: false, ...p }) as unknown as Play;
const task = (t: Partial<Task> = {}) => ({ tags: [], ...t }) as unknown as Task;

describe('tags', () => {
  const cases: { name: string; playTags?: string[]; taskTags: string[]; tags: string[]; skip: string[]; runs: boolean }[] = [
    { name: 'no --tags: an untagged task runs', taskTags: [], tags: [], skip: [], runs: true },
    { name: 'no --tags: a never task does not run', taskTags: ['never'], tags: [], skip: [], runs: false },
    { name: 'a never task runs when named', taskTags: ['never', 'x'], tags: ['x'], skip: [], runs: true },
    { name: 'an always task runs with other tags asked', taskTags: ['always'], tags: ['x'], skip: [], runs: true },
    { name: 'tagged selects tasks with any tag', taskTags: ['y'], tags: ['tagged'], skip: [], runs: true },
    { name: 'untagged selects tasks without tags', taskTags: [], tags: ['untagged'], skip: [], runs: true },
    { name: 'a play tag counts for its tasks', playTags: ['x'], taskTags: [], tags: ['x'], skip: [], runs: true },
    { name: '--skip-tags wins over --tags', taskTags: ['x'], tags: ['x'], skip: ['x'], runs: false },
    { name: '--skip-tags all keeps always tasks', taskTags: ['always'], tags: [], skip: ['all'], runs: true },
    { name: '--skip-tags always skips them too', taskTags: ['always'], tags: [], skip: ['always'], runs: false },
  ];
  for (const c of cases) {
    it(c.name, () => {
      expect(tagged(play({ tags: c.playTags ?? [] }), task({ tags: c.taskTags }), { tags: c.tags, skipTags: c.skip })).toBe(c.runs);
    });
  }
});

describe('become', () => {
  const none = { become: false };
  it('is off unless the task, the play, -b or the inventory turns it on', () => {
    expect(becomeFor(play(), task(), {}, none)).toBeUndefined();
    expect(becomeFor(play({ become: true }), task(), {}, none)).toEqual({ user: 'root', password: undefined });
    expect(becomeFor(play(), task(), {}, { become: true, becomePassword: 'pw' })).toEqual({ user: 'root', password: 'pw' });
    expect(becomeFor(play(), task(), { ansible_become: 'yes', ansible_become_user: 'postfix' }, none)).toEqual({ user: 'postfix', password: undefined });
  });

  it("the task's become wins, both ways", () => {
    expect(becomeFor(play({ become: true }), task({ become: false }), {}, none)).toBeUndefined();
    expect(becomeFor(play(), task({ become: true, becomeUser: 'mail' }), {}, { become: false, becomeUser: 'other' })).toEqual({ user: 'mail', password: undefined });
  });
});

describe('file states', () => {
  it('carry the checksum of their content, and none when only the metadata is known', () => {
    const meta = { mode: 0o644, owner: 'root', group: 'root', uid: 0, gid: 0 };
    const content = Buffer.from('x = 1\n');
    expect(fileState('/etc/a', 'file', content, meta)).toEqual({ path: '/etc/a', exists: true, kind: 'file', content, sha: sha256(content), ...meta });
    expect(fileState('/etc', 'directory', null, meta).sha).toBeNull();
    expect(absentState('/nope')).toMatchObject({ path: '/nope', exists: false, sha: null });
  });
});

describe('task results', () => {
  it('are emitted with their fields in one order, leaving out what does not apply', () => {
    const events: RunEvent[] = [];
    const base = { task: 't', module: 'copy', handler: false, status: 'ok' as const, msg: 'm', check: false, duration_ms: 3 };
    emitTaskResult((e) => events.push(e), 'h1', base);
    emitTaskResult((e) => events.push(e), 'h1', { ...base, at: 'p.yaml:3:5', item: 'a', ignored: true, diffs: [] });
    expect(Object.keys(events[0]!)).toEqual(['type', 'host', 'task', 'module', 'handler', 'status', 'msg', 'check', 'duration_ms']);
    expect(Object.keys(events[1]!)).toEqual(['type', 'host', 'task', 'module', 'handler', 'status', 'msg', 'diffs', 'item', 'ignored', 'check', 'duration_ms', 'at']);
  });
});

/**
 * A held script as the first, persistent step of the host's session (Connection.hold with a sessionScript): the
 * lock it takes lives in the session's shell, so a run opens one shell per host, and it is freed when the session
 * ends (release, close). Local connections run the same sessions as SSH ones.
 */
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { LocalConnection } from '../../../src/connection/local.js';
import { quote } from '../../../src/connection/shell-quote.js';
import { UnreachableError } from '../../../src/errors.js';
import { tempDir } from '../../support/tmp.js';

const dir = tempDir('provision-session-hold-');
let n = 0;
const MARK = '@@TEST_HELD';
/** The lock file of a test, and whether another process can take it now. */
const lockFile = () => path.join(dir, `lock${++n}`);
const free = (file: string) => spawnSync('flock', ['-n', file, 'true']).status === 0;
/** A held script in both forms: on a channel of its own it waits on stdin; in the session it returns. */
const scripts = (file: string, fail = '') => ({
  channel: `exec 9>${quote(file)}; flock 9; echo facts; echo ${MARK}; cat >/dev/null`,
  session: `${fail}command exec 9>${quote(file)}; flock 9; echo facts; echo ${MARK}`,
});

describe('hold in the session', () => {
  it('holds the lock in the session that later steps use: one shell in all, freed by release', async () => {
    const c = new LocalConnection('h');
    const file = lockFile();
    const s = scripts(file);
    const held = await c.hold(s.channel, MARK, { sessionScript: s.session });
    expect(held.held).toBe(true);
    expect(held.stdout.toString()).toBe('facts\n');
    expect(free(file)).toBe(false);
    // Steps do not inherit the lock's descriptor.
    expect((await c.exec('[ -e /proc/self/fd/9 ] && echo open || echo closed')).stdout.toString()).toBe('closed\n');
    expect([c.execs, c.steps]).toEqual([1, 2]);
    held.release();
    held.release();
    await c.close();
    expect(free(file)).toBe(true);
  });

  it('frees the lock when the connection closes without a release', async () => {
    const c = new LocalConnection('h');
    const file = lockFile();
    const s = scripts(file);
    expect((await c.hold(s.channel, MARK, { sessionScript: s.session })).held).toBe(true);
    expect(free(file)).toBe(false);
    await c.close();
    expect(free(file)).toBe(true);
  });

  it('reports a step that returns before the marker as not held, and the session goes on', async () => {
    const c = new LocalConnection('h');
    const s = scripts(lockFile(), 'echo busy >&2; return 75\n');
    const held = await c.hold(s.channel, MARK, { sessionScript: s.session });
    expect(held).toMatchObject({ held: false, code: 75 });
    expect(held.stderr.toString()).toBe('busy\n');
    expect((await c.exec('echo next')).stdout.toString()).toBe('next\n');
    expect(c.execs).toBe(1);
    await c.close();
  });

  it('without a session script, holds on a shell of its own as before', async () => {
    const c = new LocalConnection('h');
    const file = lockFile();
    const held = await c.hold(scripts(file).channel, MARK);
    expect(held.held).toBe(true);
    await c.exec('true');
    expect([c.execs, c.steps]).toEqual([2, 2]);
    held.release();
    await c.close();
    for (let i = 0; i < 50 && !free(file); i++) await new Promise((r) => setTimeout(r, 20));
    expect(free(file)).toBe(true);
  });

  it('does not replace a session that held the lock when it dies: its steps fail instead', async () => {
    const warnings: string[] = [];
    const c = new LocalConnection('h', (_h, m) => warnings.push(m));
    const file = lockFile();
    const s = scripts(file);
    expect((await c.hold(s.channel, MARK, { sessionScript: s.session })).held).toBe(true);
    // A step kills the session's shell (its parent), as someone on the host might.
    await expect(c.exec('kill -KILL $PPID; sleep 5')).rejects.toThrow(UnreachableError);
    await expect(c.exec('echo again')).rejects.toThrow(/the remote session that held the host lock ended/);
    expect(c.execs).toBe(1);
    expect(free(file)).toBe(true);
    await c.close();
  });
});

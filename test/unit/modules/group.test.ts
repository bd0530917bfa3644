/** group as Ansible's module decides it; `getent group` lines as glibc prints them (name:x:gid:members). */
import { describe, expect, it } from 'vitest';
import { groupModule, parseGroup } from '../../../src/modules/group.js';
import type { TaskContext } from '../../../src/modules/module.js';

const ctx = (out: string) => ({ readCommand: async () => ({ code: 0, stdout: Buffer.from(out), stderr: Buffer.alloc(0) }) }) as unknown as TaskContext;
const plan = (out: string, args: Record<string, unknown>) => groupModule.plan(ctx(out), { name: 'mailers', ...args } as never);

describe('group', () => {
  it('reads getent group output (with and without members); nothing when the group is not there', () => {
    expect(parseGroup('sasl:x:45:postfix\n')).toEqual({ name: 'sasl', gid: 45 });
    expect(parseGroup('mailers:x:1001:\n')).toEqual({ name: 'mailers', gid: 1001 });
    expect(parseGroup('')).toBeNull();
  });

  it('present: groupadd with -g, -o and -r in Ansible\'s order; exists: ok; another gid: groupmod', async () => {
    expect(await plan('', { gid: 1500, non_unique: true, system: true })).toMatchObject({ changed: true, msg: 'add group mailers with gid 1500 (system)', commands: [{ script: 'groupadd -g 1500 -o -r mailers' }] });
    expect(await plan('', {})).toMatchObject({ commands: [{ script: 'groupadd mailers' }] });
    expect(await plan('mailers:x:1001:\n', { system: true })).toEqual({ changed: false, msg: 'group mailers exists (gid 1001)', data: { name: 'mailers', state: 'present', gid: 1001, system: true } });
    expect(await plan('mailers:x:1001:\n', { gid: 1001 })).toMatchObject({ changed: false });
    expect(await plan('mailers:x:1001:\n', { gid: 1002 })).toMatchObject({ changed: true, commands: [{ script: 'groupmod -g 1002 mailers' }] });
  });

  it('absent: groupdel when it is there', async () => {
    expect(await plan('mailers:x:1001:\n', { state: 'absent' })).toMatchObject({ changed: true, commands: [{ script: 'groupdel mailers' }] });
    expect(await plan('', { state: 'absent' })).toMatchObject({ changed: false, msg: 'group mailers does not exist' });
  });

  it('refuses a name that is not one, and non_unique without gid', () => {
    expect(groupModule.check!({ name: '-g0' })).toMatch(/not a group name/);
    expect(groupModule.check!({ name: 'a', non_unique: true })).toBe('non_unique needs gid');
  });
});

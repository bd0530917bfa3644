import { execFile } from 'node:child_process';
import { chmodSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type FloorItem, parseFloorOutput, writeFloorPlan } from '../../../bench/floor-plan.js';
import { FLOOR_SCRIPT } from '../../../bench/tools.js';
import { keyPair, type Loopback, startLoopback } from '../connection/loopback-sshd.js';
import { tempDir } from '../../support/tmp.js';

const dir = tempDir();
const user = keyPair();
let sshd: Loopback;
let sshConfig: string;

beforeAll(async () => {
  sshd = await startLoopback({ authorized: [user] });
  const key = path.join(dir, 'id');
  writeFileSync(key, user.private);
  chmodSync(key, 0o600);
  writeFileSync(path.join(dir, 'known_hosts'), `[127.0.0.1]:${sshd.port} ${sshd.hostKey.public}\n`);
  sshConfig = path.join(dir, 'ssh_config');
  writeFileSync(
    sshConfig,
    ['a', 'b']
      .map((h) => `Host ${h}\n  HostName 127.0.0.1\n  Port ${sshd.port}\n  User tester\n  IdentityFile ${key}\n  IdentitiesOnly yes\n  UserKnownHostsFile ${dir}/known_hosts\n  StrictHostKeyChecking yes\n`)
      .join('\n'),
  );
});
afterAll(() => sshd.close());

/** The wanted state of host h: its own file with new content; the tail leaves a mark that it ran. */
function plan(planDir: string, hosts: string[]) {
  writeFloorPlan(
    planDir,
    hosts.map((h) => ({
      host: h,
      items: [{ kind: 'file', path: path.join(dir, `${h}.cf`) } satisfies FloorItem],
      want: [Buffer.from(`host = ${h}\n`).toString('base64')],
      tail: `echo restarted >> ${path.join(dir, `${h}.restarts`)}`,
    })),
  );
}

const floor = async (mode: 'run' | 'check', planDir: string, hosts: string[]) => {
  const { stdout } = await promisify(execFile)('/bin/bash', [FLOOR_SCRIPT, mode, sshConfig, planDir, '2', ...hosts]);
  return Object.fromEntries(parseFloorOutput(stdout));
};

describe('the floor (bench/floor.sh) over a real SSH connection', () => {
  it('reads in one exec per host, writes and restarts in a second over the same connection, only when needed', async () => {
    const planDir = path.join(dir, 'plan');
    plan(planDir, ['a', 'b']);
    writeFileSync(path.join(dir, 'a.cf'), 'host = old\n');
    writeFileSync(path.join(dir, 'b.cf'), 'host = b\n');

    const connections = sshd.connections;
    expect(await floor('run', planDir, ['a', 'b'])).toEqual({ a: { execs: 2, status: 'changed' }, b: { execs: 1, status: 'ok' } });
    expect(sshd.connections - connections).toBe(2);
    expect(readFileSync(path.join(dir, 'a.cf'), 'utf8')).toBe('host = a\n');
    expect(readFileSync(path.join(dir, 'a.restarts'), 'utf8')).toBe('restarted\n');

    expect(await floor('run', planDir, ['a', 'b'])).toEqual({ a: { execs: 1, status: 'ok' }, b: { execs: 1, status: 'ok' } });
    writeFileSync(path.join(dir, 'b.cf'), 'host = drifted\n');
    expect(await floor('check', planDir, ['a', 'b'])).toEqual({ a: { execs: 1, status: 'ok' }, b: { execs: 1, status: 'pending' } });
    expect(readFileSync(path.join(dir, 'b.cf'), 'utf8')).toBe('host = drifted\n');
  });
});

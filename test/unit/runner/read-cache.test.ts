import { chmodSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { runLocal } from '../../support/run.js';
import { tempDir } from '../../support/tmp.js';

const dir = tempDir();
const inventory = '[all]\nh1 ansible_connection=local\n';

describe('the per-host read cache', () => {
  it('after a command empties it, the next tasks read their files again in one exec between them', async () => {
    const [a, b, c] = ['a.conf', 'b.conf', 'c.conf'].map((f) => path.join(dir, f));
    for (const f of [a, b, c]) writeFileSync(f!, 'x = 0\n');
    const { report } = await runLocal(
      dir,
      `- hosts: all
  tasks:
    - lineinfile: { path: ${a}, regexp: '^x =', line: 'x = 1' }
    - command: "true"
    - lineinfile: { path: ${b}, regexp: '^x =', line: 'x = 2' }
    - lineinfile: { path: ${c}, regexp: '^x =', line: 'x = 3' }
`,
      inventory,
    );
    // facts with the reads, write a, the command, one read for b and c, write b, write c
    expect(report.hosts.h1).toMatchObject({ changed: 4, failed: 0, steps: 6 });
    expect([a, b, c].map((f) => readFileSync(f!, 'utf8'))).toEqual(['x = 1\n', 'x = 2\n', 'x = 3\n']);
  });

  // root reads a file whatever its mode
  it.skipIf(process.getuid?.() === 0)('a later task\'s unreadable file does not fail the task that reads again; that later task reports it', async () => {
    const ok = path.join(dir, 'ok.conf');
    const locked = path.join(dir, 'locked.conf');
    writeFileSync(ok, 'x = 0\n');
    writeFileSync(locked, 'x = 0\n');
    chmodSync(locked, 0o000);
    const { results } = await runLocal(
      dir,
      `- hosts: all
  tasks:
    - command: "true"
    - lineinfile: { path: ${ok}, regexp: '^x =', line: 'x = 1' }
    - lineinfile: { path: ${locked}, regexp: '^x =', line: 'x = 1' }
`,
      inventory,
    );
    expect(results.map((r) => r.status)).toEqual(['changed', 'changed', 'failed']);
    expect(results[2]!.msg).toContain(`cannot read ${locked}`);
  });
});

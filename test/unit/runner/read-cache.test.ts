import { chmodSync, linkSync, mkdirSync, readFileSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
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
    // facts with the reads; the command, with the write of a queued before it; one read for b and c; the
    // writes of b and c, queued, flushed at the end of the play
    expect(report.hosts.h1).toMatchObject({ changed: 4, failed: 0, steps: 4 });
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

  it('a file task forgets only what was read of its path: the tasks after it read nothing again', async () => {
    const [a, b, c] = ['t-a.conf', 't-b.conf', 't-c.conf'].map((f) => path.join(dir, f));
    for (const f of [a, b, c]) writeFileSync(f!, 'x = 0\n');
    chmodSync(c!, 0o644);
    const { report, results } = await runLocal(
      dir,
      `- hosts: all
  tasks:
    - lineinfile: { path: ${a}, regexp: '^x =', line: 'x = 1' }
    - file: { path: ${c}, mode: '0600' }
    - lineinfile: { path: ${b}, regexp: '^x =', line: 'x = 2' }
    - stat: { path: ${c} }
      register: st
    - assert: { that: [ "st.stat.mode == '0600'" ] }
`,
      inventory,
    );
    // facts with the reads; then write a, the file task and write b, queued (no read again in between), flushed in
    // front of the read of c the stat needs
    expect(results.map((r) => r.status)).toEqual(['changed', 'changed', 'changed', 'ok', 'ok']);
    expect(report.hosts.h1).toMatchObject({ changed: 3, failed: 0, steps: 2 });
    expect(statSync(c!).mode & 0o777).toBe(0o600);
    expect([a, b].map((f) => readFileSync(f!, 'utf8'))).toEqual(['x = 1\n', 'x = 2\n']);
  });

  it('a file task on a path another cached name reaches through a symbolic link or a hard link forgets everything', async () => {
    const real = path.join(dir, 'real');
    mkdirSync(real, { recursive: true });
    const f = path.join(real, 'f.conf');
    writeFileSync(f, 'x = 0\n');
    chmodSync(f, 0o644);
    const alias = path.join(dir, 'alias');
    symlinkSync(real, alias);
    const viaLink = path.join(alias, 'f.conf');
    const g = path.join(dir, 'g.conf');
    writeFileSync(g, 'x = 0\n');
    chmodSync(g, 0o644);
    const g2 = path.join(dir, 'g2.conf');
    linkSync(g, g2);
    const { results } = await runLocal(
      dir,
      `- hosts: all
  tasks:
    - stat: { path: ${viaLink} }
      register: before
    - stat: { path: ${g2} }
      register: gbefore
    - file: { path: ${f}, mode: '0600' }
    - file: { path: ${g}, mode: '0640' }
    - stat: { path: ${viaLink} }
      register: after
    - stat: { path: ${g2} }
      register: gafter
    - assert: { that: [ "before.stat.mode == '0644'", "after.stat.mode == '0600'", "gbefore.stat.mode == '0644'", "gafter.stat.mode == '0640'" ] }
`,
      inventory,
    );
    expect(results.map((r) => r.status)).toEqual(['ok', 'ok', 'changed', 'changed', 'ok', 'ok', 'ok']);
  });

  it('a directory made by a file task is seen by the tasks after it, and so are its parents', async () => {
    const top = path.join(dir, 'made');
    const deep = path.join(top, 'one', 'two');
    const { results } = await runLocal(
      dir,
      `- hosts: all
  tasks:
    - stat: { path: ${top} }
      register: before
    - file: { path: ${deep}, state: directory }
    - stat: { path: ${top} }
      register: after
    - file: { path: ${top}, state: absent }
    - stat: { path: ${deep} }
      register: gone
    - assert: { that: [ "not before.stat.exists", "after.stat.isdir", "not gone.stat.exists" ] }
`,
      inventory,
    );
    expect(results.map((r) => r.status)).toEqual(['ok', 'changed', 'ok', 'changed', 'ok', 'ok']);
  });
});

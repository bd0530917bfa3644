import { execFileSync } from 'node:child_process';
import { chmodSync, existsSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { fixScript, type FloorItem, parseFloorOutput, readScript } from '../../../bench/floor-plan.js';
import { tempDir } from '../../support/tmp.js';

const dir = tempDir();
const sh = (script: string) => execFileSync('/bin/sh', ['-c', script], { encoding: 'utf8' });
const lines = (items: FloorItem[]) => sh(readScript(items)).replace(/\n$/, '').split('\n');

describe("the floor's read and fix scripts", () => {
  it('read one line per item, and each fix makes its item read as wanted', () => {
    const conf = path.join(dir, 'main.cf');
    const created = path.join(dir, 'sasl', 'smtpd.conf');
    const meta = path.join(dir, 'sasldb2');
    writeFileSync(conf, 'old = 1\n');
    chmodSync(conf, 0o640);
    writeFileSync(meta, '');
    chmodSync(meta, 0o660);
    const items: FloorItem[] = [
      { kind: 'file', path: conf },
      { kind: 'file', path: created },
      { kind: 'meta', path: meta },
    ];
    const me = sh('id -un').trim();
    const group = sh('id -gn').trim();
    const want = [Buffer.from('new = 2\nwith \'quotes\' and $dollars\n').toString('base64'), Buffer.from('mech_list: PLAIN\n').toString('base64'), `640 ${me}:${group}`];
    expect(lines(items)).toEqual([Buffer.from('old = 1\n').toString('base64'), '-', `660 ${me}:${group}`]);

    sh(items.map((it, i) => fixScript(it, want[i]!)).join('\n'));

    expect(lines(items)).toEqual(want);
    expect(readFileSync(conf, 'utf8')).toBe("new = 2\nwith 'quotes' and $dollars\n");
    expect(statSync(conf).mode & 0o777).toBe(0o640);
    expect(existsSync(created)).toBe(true);
  });

  it('a fix to "absent" removes the file', () => {
    const gone = path.join(dir, 'gone.cf');
    writeFileSync(gone, 'x\n');
    sh(fixScript({ kind: 'file', path: gone }, '-'));
    expect(existsSync(gone)).toBe(false);
  });

  it("reads floor.sh's per-host status lines and ignores anything else", () => {
    const out = parseFloorOutput('@@host h1 2 changed\nnoise\n@@host h2 1 ok\n@@host h3 1 pending\n@@host h4 1 failed\n@@host h5 x ok\n');
    expect([...out]).toEqual([
      ['h1', { execs: 2, status: 'changed' }],
      ['h2', { execs: 1, status: 'ok' }],
      ['h3', { execs: 1, status: 'pending' }],
      ['h4', { execs: 1, status: 'failed' }],
    ]);
  });
});

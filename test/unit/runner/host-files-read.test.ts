import { execFileSync } from 'node:child_process';
import { chmodSync, mkdirSync, statSync, writeFileSync } from 'node:fs';
import { userInfo } from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { parseReadOutput, readScript, type ReadRequest } from '../../../src/runner/host-files.js';
import { tempDir } from '../../support/tmp.js';

const dir = tempDir();
const read = (req: ReadRequest) => parseReadOutput(req, execFileSync('/bin/sh', ['-c', readScript(req)], { encoding: 'utf8' }));

describe('reading files and commands on a host in one exec', () => {
  const plain = path.join(dir, 'main.cf');
  const spaced = path.join(dir, 'with space.cf');
  const newline = path.join(dir, 'new\nline.cf');
  const sub = path.join(dir, 'sasl');
  const missing = path.join(dir, 'absent.cf');
  writeFileSync(plain, 'a = 1\n');
  chmodSync(plain, 0o640);
  writeFileSync(spaced, 'b = 2\n');
  chmodSync(spaced, 0o600);
  writeFileSync(newline, 'c = 3\n');
  chmodSync(newline, 0o604);
  mkdirSync(sub, { mode: 0o750 });
  const me = userInfo().username;
  const uid = statSync(plain).uid;

  it.each([
    ['one stat for all paths', [plain, spaced, missing], [sub]],
    ['a stat per path when a path holds a newline', [plain, spaced, newline, missing], [sub]],
  ])('gives content, kind, mode and owner of every path (%s)', (_, files, stats) => {
    const r = read({ files, stats, commands: [] });
    expect(r.files.get(plain)).toMatchObject({ exists: true, kind: 'file', mode: 0o640, owner: me, uid, content: Buffer.from('a = 1\n') });
    expect(r.files.get(spaced)).toMatchObject({ exists: true, kind: 'file', mode: 0o600, owner: me, content: Buffer.from('b = 2\n') });
    expect(r.files.get(sub)).toMatchObject({ exists: true, kind: 'directory', mode: 0o750, owner: me, content: null });
    expect(r.files.get(missing)).toMatchObject({ exists: false, kind: null, mode: null });
    if (files.includes(newline)) expect(r.files.get(newline)).toMatchObject({ kind: 'file', mode: 0o604, owner: me, content: Buffer.from('c = 3\n') });
  });

  it("gives each read-only command's output, error output and exit status", () => {
    const r = read({
      files: [plain],
      stats: [],
      commands: [
        { key: 'ok', script: 'printf "out\\n"' },
        { key: 'bad', script: 'echo oops >&2; exit 3' },
      ],
    });
    expect(r.commands.get('ok')).toEqual({ stdout: Buffer.from('out\n'), stderr: Buffer.alloc(0), code: 0 });
    expect(r.commands.get('bad')).toEqual({ stdout: Buffer.alloc(0), stderr: Buffer.from('oops\n'), code: 3 });
  });
});

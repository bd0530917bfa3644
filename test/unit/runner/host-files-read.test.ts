import { execFileSync } from 'node:child_process';
import { chmodSync, linkSync, mkdirSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { userInfo } from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { parseReadOutput, readScript, type ReadRequest } from '../../../src/runner/host-files.js';
import { quote } from '../../../src/connection/shell-quote.js';
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

  const binary = path.join(dir, 'binary.db');
  writeFileSync(binary, Buffer.from([0, 1, 2, 255, 10, 0, 64, 64, 70, 32]));
  const hard = path.join(dir, 'main-hard.cf');
  linkSync(plain, hard);
  const link = path.join(dir, 'main-link.cf');
  symlinkSync('main.cf', link);
  const dangling = path.join(dir, 'dangling.cf');
  symlinkSync('absent.cf', dangling);
  const fifo = path.join(dir, 'fifo');
  execFileSync('mkfifo', [fifo]);

  /** A directory of the commands a read script starts, with `tar` as given (or none). */
  const binWith = (name: string, tar?: string) => {
    const bin = path.join(dir, name);
    mkdirSync(bin);
    for (const c of ['stat', 'base64', 'mktemp', 'rm']) symlinkSync(execFileSync('/bin/sh', ['-c', `command -v ${c}`], { encoding: 'utf8' }).trim(), path.join(bin, c));
    if (tar) writeFileSync(path.join(bin, 'tar'), tar, { mode: 0o755 });
    return bin;
  };
  const req: ReadRequest = {
    files: [plain, binary, hard, link, dangling, sub, fifo, missing],
    stats: [spaced],
    commands: [{ key: 'bin', script: 'printf "\\000\\377x"; printf "warn" >&2; exit 4' }],
  };
  const expectAnswers = (r: ReturnType<typeof read>) => {
    for (const p of [plain, hard, link]) expect(r.files.get(p), p).toMatchObject({ kind: 'file', mode: 0o640, owner: me, uid, content: Buffer.from('a = 1\n') });
    expect(r.files.get(binary)!.content).toEqual(Buffer.from([0, 1, 2, 255, 10, 0, 64, 64, 70, 32]));
    expect(r.files.get(dangling)).toMatchObject({ exists: false });
    expect(r.files.get(missing)).toMatchObject({ exists: false });
    expect(r.files.get(sub)).toMatchObject({ kind: 'directory', mode: 0o750, content: null });
    expect(r.files.get(fifo)).toMatchObject({ kind: 'other', content: null });
    expect(r.files.get(spaced)).toMatchObject({ kind: 'file', mode: 0o600, content: null });
    expect(r.commands.get('bin')).toEqual({ stdout: Buffer.from([0, 255, 120]), stderr: Buffer.from('warn'), code: 4 });
  };

  it('fetches content through one GNU tar archive: binary bytes exact, a hard link and a followed symbolic link to one file each whole', () => {
    const script = readScript(req);
    expect(script.match(/\btar \$pv_tb -chf/g)).toHaveLength(1);
    const out = execFileSync('/bin/sh', ['-c', script], { encoding: 'utf8' });
    expect(out).toMatch(/^@@R 0$/m);
    expectAnswers(parseReadOutput(req, out));
  });

  it.each([
    ['without tar on the host', undefined],
    ['when tar fails after writing part of an archive', '#!/bin/sh\nprintf "partial"; exit 2\n'],
  ])('gives the same answers %s, one base64 per item', (name, tar) => {
    const bin = binWith(`bin-${tar ? 'failing' : 'none'}`, tar);
    const out = execFileSync('/bin/sh', ['-c', readScript(req)], { encoding: 'utf8', env: { PATH: bin } });
    expect(out).not.toMatch(/^@@R 0$/m);
    expectAnswers(parseReadOutput(req, out));
  });

  // Issue 18 (host CPU per host): the stat without -L that the lean form runs for touched.ts gives the metadata of
  // every path that is not a symbolic link, so stat -L runs only for those that are.
  it('starts one stat when no path is a symbolic link, a second only for the links, with the same answers', () => {
    const logged = (name: string) => {
      const bin = binWith(name, `#!/bin/sh\nexec ${execFileSync('/bin/sh', ['-c', 'command -v tar'], { encoding: 'utf8' }).trim()} "$@"\n`);
      const real = execFileSync('/bin/sh', ['-c', 'command -v stat'], { encoding: 'utf8' }).trim();
      execFileSync('rm', [path.join(bin, 'stat')]);
      writeFileSync(path.join(bin, 'stat'), `#!/bin/sh\necho "$*" >> ${quote(path.join(bin, 'log'))}\nexec ${real} "$@"\n`, { mode: 0o755 });
      return { env: { PATH: bin }, calls: () => execFileSync('cat', [path.join(bin, 'log')], { encoding: 'utf8' }).trim().split('\n') };
    };
    const plainOnly: ReadRequest = { files: [plain, binary, hard, sub, fifo, missing, `${sub}/`], stats: [spaced], commands: [] };
    const a = logged('bin-stat-plain');
    const r = parseReadOutput(plainOnly, execFileSync('/bin/sh', ['-c', readScript(plainOnly)], { encoding: 'utf8', env: a.env }));
    expect(a.calls()).toHaveLength(1);
    expect(r.files.get(plain)).toMatchObject({ kind: 'file', mode: 0o640, owner: me, uid });
    expect(r.files.get(`${sub}/`)).toMatchObject({ kind: 'directory', mode: 0o750, owner: me });
    expect(r.files.get(spaced)).toMatchObject({ kind: 'file', mode: 0o600, owner: me });
    expect(r.links?.get(plain)).toEqual({ type: 'file', nlink: 2 });
    const b = logged('bin-stat-links');
    const r2 = parseReadOutput(req, execFileSync('/bin/sh', ['-c', readScript(req)], { encoding: 'utf8', env: b.env }));
    expect(b.calls()).toHaveLength(2);
    expect(b.calls().find((c) => c.startsWith('-L '))).toBe(`-L -c %a %u %g %U %G %n -- ${link} ${dangling}`);
    expectAnswers(r2);
    expect(r2.links?.get(link)).toEqual({ type: 'link', nlink: 0 });
  });

  it('takes an archive with fewer members than asked for as a read cut short', () => {
    const bin = binWith('bin-short', `#!/bin/sh\nshift 5; exec ${execFileSync('/bin/sh', ['-c', 'command -v tar'], { encoding: 'utf8' }).trim()} -chf - -- "$1" 2>/dev/null\n`);
    const out = execFileSync('/bin/sh', ['-c', readScript(req)], { encoding: 'utf8', env: { PATH: bin } });
    expect(out).toMatch(/^@@R 0$/m);
    expect(() => parseReadOutput(req, out)).toThrow(/cut short|members/);
  });
});


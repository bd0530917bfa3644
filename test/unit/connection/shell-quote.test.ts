import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { heredocTo, quote, quoteArgs } from '../../../src/connection/shell-quote.js';

/** Run a command line through a real POSIX shell and return what it printed. */
function sh(command: string, stdin?: Buffer): Buffer {
  const r = spawnSync('/bin/sh', ['-c', command], { input: stdin });
  if (r.status !== 0) throw new Error(`sh exited ${r.status}: ${r.stderr.toString()}`);
  return r.stdout;
}

const hostile: [string, string][] = [
  ['empty string', ''],
  ['plain word', 'main.cf'],
  ['spaces', 'a b  c'],
  ['single quote', "it's"],
  ['only quotes', "''"],
  ['double quotes', '"$HOME"'],
  ['command substitution', '$(touch /tmp/provision-pwned)'],
  ['backticks', '`id`'],
  ['variable', '$PATH ${IFS}'],
  ['newline', 'line1\nline2\n'],
  ['semicolon and pipe', 'a; rm -rf / | cat &'],
  ['glob', '*'],
  ['leading dash', '-n'],
  ['backslashes', 'a\\b\\\\c\\'],
  ['redirections', '>out <in 2>&1'],
  ['tab and carriage return', 'a\tb\rc'],
  ['unicode', 'smtps — 465/tcp ✓'],
  ['history and tilde', '!! ~root'],
  ['hash', '# not a comment'],
];

describe('quote', () => {
  it.each(hostile)('%s arrives literally through sh -c', (_name, value) => {
    expect(sh(`printf '%s' ${quote(value)}`).toString('utf8')).toBe(value);
  });

  it('keeps every argument separate in quoteArgs', () => {
    const args = hostile.map(([, v]) => v);
    const out = sh(`for a in ${quoteArgs(args)}; do printf '%s\\0' "$a"; done`).toString('utf8');
    expect(out.split('\0').slice(0, -1)).toEqual(args);
  });

  it('refuses a NUL byte', () => {
    expect(() => quote('a\0b')).toThrow('NUL');
  });

  it('leaves safe words unquoted and quotes numbers as words', () => {
    expect(quote('/etc/postfix/main.cf')).toBe('/etc/postfix/main.cf');
    expect(quote(465)).toBe('465');
    expect(quote("it's")).toBe(`'it'\\''s'`);
  });
});

describe('heredocTo', () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'provision-quote-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));
  const writeThroughShell = (name: string, content: Buffer | string): Buffer => {
    const file = path.join(dir, name);
    sh(heredocTo(quote(file), content));
    return readFileSync(file);
  };

  it('writes any bytes, including NUL and the terminator word, byte for byte', () => {
    const content = Buffer.concat([
      Buffer.from("PROVISION_EOF\n$(id) `id` 'q' \"d\"\n"),
      Buffer.from([0, 1, 2, 255, 254, 10, 13]),
      Buffer.from('\nno trailing newline'),
    ]);
    expect(writeThroughShell("a file's name with $(spaces)", content).equals(content)).toBe(true);
  });

  it('writes an empty file for empty content', () => {
    expect(writeThroughShell('empty', '').length).toBe(0);
  });
});

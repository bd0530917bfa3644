/**
 * Values full of shell metacharacters, quotes and newlines arrive literally in files and file names, and are
 * never run: a sentinel file that any of them would create if a shell interpreted it must not appear. Files with
 * bytes that are not UTF-8 (a main.cf in Latin-1) keep every byte they had when a module edits them.
 * These runs change files on purpose (local connection, in a temporary directory), so they check bytes rather
 * than "nothing written".
 */
import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { runCli } from '../../support/cli.js';
import { writeFiles } from '../../support/tmp.js';
import { caseDir, LOCAL_INVENTORY } from './support.js';

/** Everything a shell would act on, in one value; SENTINEL is the file it would create. */
const hostile = (sentinel: string) =>
  `it's "quoted" $(touch ${sentinel}) \`touch ${sentinel}\` $HOME \${IFS} ; touch ${sentinel} && true | cat\nPROVISION_EOF\n'; touch ${sentinel}; '\n\\\\ \t<end>\r\n`;

async function run(dir: string, playbook: string, inventory = LOCAL_INVENTORY, extra: string[] = []) {
  writeFiles(dir, { 'play.yaml': playbook, hosts: inventory });
  const r = await runCli(['run', path.join(dir, 'play.yaml'), '-i', path.join(dir, 'hosts'), '--no-retry-file', ...extra]);
  expect(r.code, r.stdout + r.stderr).toBe(0);
  return r;
}

const play = (vars: Record<string, unknown>, tasks: string) => `- hosts: all\n  gather_facts: false\n  vars: ${JSON.stringify(vars)}\n  tasks:\n${tasks}`;

describe('hostile values arrive literally and never run', () => {
  it('in file content (copy), byte for byte', async () => {
    const dir = caseDir();
    const value = hostile(path.join(dir, 'pwned'));
    await run(dir, play({ v: value }, `    - copy: { dest: ${JSON.stringify(path.join(dir, 'out.txt'))}, content: "{{ v }}" }\n`));
    expect(readFileSync(path.join(dir, 'out.txt'), 'utf8')).toBe(value);
    expect(existsSync(path.join(dir, 'pwned'))).toBe(false);
  });

  it('in a file name (copy dest and file touch)', async () => {
    const dir = caseDir();
    // A file name has no "/": a shell would create the sentinel in the working directory of the script.
    const sentinel = `provision-pwned-${path.basename(dir)}`;
    const name = `a b $(touch ${sentinel}) \`touch ${sentinel}\` 'c' "d";e.txt`;
    const touched = `t $(touch ${sentinel}).txt`;
    await run(
      dir,
      play({ n: name, t: touched, d: dir }, '    - copy: { dest: "{{ d }}/{{ n }}", content: "x" }\n    - file: { path: "{{ d }}/{{ t }}", state: touch }\n'),
    );
    expect(readdirSync(dir).sort()).toEqual([name, 'hosts', 'play.yaml', touched].sort());
    expect(existsSync(path.join(process.cwd(), sentinel))).toBe(false);
    expect(existsSync(path.join(dir, sentinel))).toBe(false);
  });

  it('in a line (lineinfile) and a block (blockinfile)', async () => {
    const dir = caseDir();
    const sentinel = path.join(dir, 'pwned');
    const line = `key = $(touch ${sentinel}) \`touch ${sentinel}\` '"; touch ${sentinel}`;
    const block = hostile(sentinel).replace(/\r/g, '');
    writeFileSync(path.join(dir, 'conf'), 'first\n');
    await run(
      dir,
      play(
        { line, block, f: path.join(dir, 'conf') },
        '    - lineinfile: { path: "{{ f }}", line: "{{ line }}" }\n    - blockinfile: { path: "{{ f }}", block: "{{ block }}" }\n',
      ),
    );
    const text = readFileSync(path.join(dir, 'conf'), 'utf8');
    expect(text.startsWith(`first\n${line}\n# BEGIN PROVISION MANAGED BLOCK\n`)).toBe(true);
    expect(text).toContain(block.replace(/\n$/, ''));
    expect(existsSync(sentinel)).toBe(false);
  });

  it('through a template file', async () => {
    const dir = caseDir();
    const value = hostile(path.join(dir, 'pwned'));
    writeFiles(dir, { 'templates/t.j2': 'value: {{ v }}|end\n' });
    await run(dir, play({ v: value }, `    - template: { src: t.j2, dest: ${JSON.stringify(path.join(dir, 'out.txt'))} }\n`));
    expect(readFileSync(path.join(dir, 'out.txt'), 'utf8')).toBe(`value: ${value}|end\n`);
    expect(existsSync(path.join(dir, 'pwned'))).toBe(false);
  });

  it('as command arguments (no shell): argv and a command line are passed as words', async () => {
    const dir = caseDir();
    const sentinel = path.join(dir, 'pwned');
    const word = `$(touch ${sentinel});\`touch ${sentinel}\`|touch ${sentinel}`;
    const r = await run(
      dir,
      play(
        { w: word, s: sentinel },
        '    - command: { argv: [printf, "%s", "{{ w }}"] }\n      register: a\n    - command: "echo $(touch {{ s }}) ; touch {{ s }}"\n      register: b\n    - debug: { msg: "{{ a.stdout }}|{{ b.stdout }}" }\n',
      ),
      LOCAL_INVENTORY,
      ['-v'],
    );
    expect(r.stdout).toContain(`${word}|$(touch ${sentinel}) ; touch ${sentinel}`);
    expect(existsSync(sentinel)).toBe(false);
  });

  it('from --extra-vars and from the inventory', async () => {
    const dir = caseDir();
    const sentinel = path.join(dir, 'pwned');
    const fromCli = `$(touch ${sentinel}) \`touch ${sentinel}\``;
    await run(
      dir,
      play({ d: dir }, '    - copy: { dest: "{{ d }}/cli.txt", content: "{{ e }}" }\n    - copy: { dest: "{{ d }}/inv.txt", content: "{{ i }}" }\n'),
      `localhost ansible_connection=local i="; touch ${sentinel} #"\n`,
      ['-e', `e='${fromCli}'`],
    );
    expect(readFileSync(path.join(dir, 'cli.txt'), 'utf8')).toBe(fromCli);
    expect(readFileSync(path.join(dir, 'inv.txt'), 'utf8')).toBe(`; touch ${sentinel} #`);
    expect(existsSync(sentinel)).toBe(false);
  });

  it('every byte value (a binary src file) arrives unchanged', async () => {
    const dir = caseDir();
    const bytes = Buffer.from(Array.from({ length: 4096 }, (_, i) => i % 256));
    writeFiles(dir, { 'files/all-bytes.bin': bytes });
    await run(dir, play({}, `    - copy: { src: all-bytes.bin, dest: ${JSON.stringify(path.join(dir, 'out.bin'))} }\n`));
    expect(readFileSync(path.join(dir, 'out.bin')).equals(bytes)).toBe(true);
  });
});

describe('files that are not UTF-8 keep their bytes', () => {
  const LATIN1 = Buffer.concat([
    Buffer.from('# caf'),
    Buffer.from([0xe9]),
    Buffer.from(' \xff\xfe comment\n', 'latin1'),
    Buffer.from('myhostname = host.example\nsmtpd_banner = $myhostname ESMTP '),
    Buffer.from([0xe9, 0x74, 0xe9]),
    Buffer.from('\n'),
  ]);

  it('postconf edits a Latin-1 main.cf and leaves every other byte as it was', async () => {
    const dir = caseDir();
    const pf = path.join(dir, 'postfix');
    writeFiles(pf, { 'main.cf': LATIN1, 'master.cf': readFileSync('/etc/postfix/master.cf') });
    await run(dir, play({}, `    - postconf: { config_dir: ${JSON.stringify(pf)}, settings: { smtpd_tls_loglevel: 1 } }\n`));
    expect(readFileSync(path.join(pf, 'main.cf')).equals(Buffer.concat([LATIN1, Buffer.from('smtpd_tls_loglevel = 1\n')]))).toBe(true);
  });

  it('lineinfile and blockinfile edit a Latin-1 file and keep its bytes', async () => {
    const dir = caseDir();
    const f = path.join(dir, 'latin1.conf');
    writeFileSync(f, LATIN1);
    await run(dir, play({ f }, '    - lineinfile: { path: "{{ f }}", line: "added = 1" }\n    - blockinfile: { path: "{{ f }}", block: "in the block" }\n'));
    const after = readFileSync(f);
    expect(after.subarray(0, LATIN1.length).equals(LATIN1)).toBe(true);
    expect(after.subarray(LATIN1.length).toString()).toBe('added = 1\n# BEGIN PROVISION MANAGED BLOCK\nin the block\n# END PROVISION MANAGED BLOCK\n');
  });
});

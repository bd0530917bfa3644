import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { buildPlaybookSchema } from '../../../src/playbook/schema.js';
import { runCli } from '../../support/cli.js';
import { tempDir, writeFiles } from '../../support/tmp.js';

const dir = tempDir();
const inventory = writeFiles(dir, { hosts: '[local]\nlocalhost ansible_connection=local\n' });
const conf = path.join(dir, 'app.conf');
const playbook = writeFiles(dir, {
  'site.yaml': `- hosts: local
  tasks:
    - name: set the port
      lineinfile: { path: ${conf}, regexp: '^port =', line: 'port = 465', create: true }
      notify: reload
  handlers:
    - name: reload
      debug: { msg: reloaded }
`,
});

describe('provision CLI (local connection)', () => {
  it('check exits 8 and writes nothing; run changes; the second run changes nothing; check then exits 0', async () => {
    const check = await runCli(['check', playbook, '-i', inventory]);
    expect(check.code).toBe(8);
    expect(check.stdout).toContain('+port = 465');
    expect(existsSync(conf)).toBe(false);

    const run = await runCli(['run', playbook, '-i', inventory]);
    expect(run.code).toBe(0);
    expect(run.stdout).toMatch(/localhost\s+ok=1\s+changed=1/);
    expect(readFileSync(conf, 'utf8')).toBe('port = 465\n');

    const again = await runCli(['run', playbook, '-i', inventory, '--json']);
    expect(again.code).toBe(0);
    const recap = again.events.at(-1)!;
    expect(recap).toMatchObject({ type: 'recap', exit_code: 0, hosts: { localhost: { changed: 0, failed: 0, unreachable: 0, steps: 1 } } });
    expect(again.events[0]).toMatchObject({ type: 'run_start', version: 1 });

    expect((await runCli(['check', playbook, '-i', inventory])).code).toBe(0);
  });

  it('every command has --help', async () => {
    for (const cmd of [[], ['run'], ['check'], ['validate'], ['inventory'], ['schema']]) {
      const r = await runCli([...cmd, '--help']);
      expect(r.code, cmd.join(' ')).toBe(0);
      expect(r.stdout, cmd.join(' ')).toMatch(/^Usage: provision/);
    }
    const run = await runCli(['run', '--help']);
    for (const flag of ['--check', '--diff', '--limit', '--forks', '--extra-vars', '--tags', '--skip-tags', '--json', '--debug', '--canary', '--retry-file', '--lock-timeout']) {
      expect(run.stdout).toContain(flag);
    }
  });

  it('usage mistakes exit 1 with one message', async () => {
    const r = await runCli(['run', playbook]);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain("required option '-i, --inventory <path>' not specified");
    expect((await runCli(['frobnicate'])).code).toBe(1);
    const forks = await runCli(['run', playbook, '-i', inventory, '-f', '0']);
    expect(forks.code).toBe(1);
    expect(forks.stderr).toBe('error: --forks must be a whole number of at least 1, got "0"\n');
  });

  it('bad input exits 1 with file:line:col and no stack trace', async () => {
    const bad = writeFiles(dir, { 'bad.yaml': '- hosts: local\n  tasks:\n    - lineinfile: { path: /x, lnie: y }\n' });
    const r = await runCli(['run', bad, '-i', inventory]);
    expect(r.code).toBe(1);
    expect(r.stderr).toBe(`error: ${bad}:3:31: task "lineinfile": lineinfile has no argument "lnie" (did you mean "line"?)\n`);
    expect(r.stdout).toBe('');
  });

  it('validate checks without connecting, and resolves hosts with an inventory', async () => {
    const r = await runCli(['validate', playbook, '-i', inventory]);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('1 play, 2 tasks and handlers: valid');
    expect(r.stdout).toContain('1 host (localhost)');
  });

  it('extra vars: key=value, YAML and @file; they win over play vars', async () => {
    const pb = writeFiles(dir, { 'vars.yaml': '- hosts: local\n  gather_facts: false\n  vars: { a: play }\n  tasks:\n    - debug: { msg: "{{ a }} {{ b }} {{ c }}" }\n' });
    const varsFile = writeFiles(dir, { 'extra.yaml': 'c: from-file\n' });
    const r = await runCli(['run', pb, '-i', inventory, '-e', 'a=extra b="two words"', '-e', `@${varsFile}`, '--json']);
    const result = r.events.find((e) => e.type === 'task_result');
    expect(result).toMatchObject({ msg: 'extra two words from-file' });
    const bad = await runCli(['run', pb, '-i', inventory, '-e', 'novalue']);
    expect(bad.code).toBe(1);
    expect(bad.stderr).toBe('error: --extra-vars: expected key=value, got "novalue"\n');
  });

  it('inventory --list, --graph and --host', async () => {
    const list = await runCli(['inventory', '-i', inventory, '--list']);
    expect(JSON.parse(list.stdout)).toMatchObject({ local: { hosts: ['localhost'] } });
    const graph = await runCli(['inventory', '-i', inventory, '--graph']);
    expect(graph.stdout).toBe('@all:\n  |--@ungrouped:\n  |--@local:\n  |  |--localhost\n');
    const host = await runCli(['inventory', '-i', inventory, '--host', 'localhost']);
    expect(JSON.parse(host.stdout)).toMatchObject({ ansible_connection: 'local' });
    expect((await runCli(['inventory', '-i', inventory])).code).toBe(1);
  });

  it('schema prints the playbook schema, and the committed copy is up to date', async () => {
    const r = await runCli(['schema']);
    expect(JSON.parse(r.stdout)).toEqual(buildPlaybookSchema());
    expect(JSON.parse(readFileSync('schema/playbook.schema.json', 'utf8'))).toEqual(buildPlaybookSchema());
  });

  it('a failing host gives exit 2 and a retry file that --limit @file accepts', async () => {
    const pb = writeFiles(dir, { 'fail.yaml': '- hosts: all\n  gather_facts: false\n  tasks:\n    - fail: { msg: nope }\n      when: inventory_hostname == "b"\n' });
    const inv = writeFiles(dir, { 'two': '[g]\na ansible_connection=local\nb ansible_connection=local\n' });
    const retry = path.join(dir, 'fail.retry');
    const r = await runCli(['run', pb, '-i', inv]);
    expect(r.code).toBe(2);
    expect(readFileSync(retry, 'utf8')).toBe('b\n');
    expect(r.stdout).toContain(`retry with: --limit @${retry}`);
    writeFileSync(retry, 'a\n');
    const again = await runCli(['run', pb, '-i', inv, '--limit', `@${retry}`, '--no-retry-file', '--json']);
    expect(again.code).toBe(0);
    expect(Object.keys((again.events.at(-1) as { hosts: object }).hosts)).toEqual(['a']);
  });
  it('a play with connection: local never contacts its hosts (as Ansible): tasks and handlers run on the controller', async () => {
    const out = path.join(dir, 'local-play');
    const pb = writeFiles(dir, {
      'local-play.yaml':
        `- hosts: all\n  connection: local\n  tasks:\n    - copy: { dest: "${out}-{{ inventory_hostname }}", content: "x\\n" }\n      notify: h\n  handlers:\n    - name: h\n      command: touch ${out}-handled\n`,
    });
    // The host name resolves nowhere: an SSH attempt would make it unreachable.
    const r = await runCli(['run', pb, '-i', 'nohost.invalid,', '--no-retry-file', '--json']);
    expect(r.code).toBe(0);
    expect(readFileSync(`${out}-nohost.invalid`, 'utf8')).toBe('x\n');
    expect(existsSync(`${out}-handled`)).toBe(true);
  });
});

describe('set_fact keeps whole floats (Ansible 2.14 prints sf=5.0 half=3.0 lst=[1.0, 2] n=3 sum=6.0)', () => {
  it('a variable set from a whole float prints as a float in later templates', async () => {
    const d = tempDir();
    const pb = writeFiles(d, {
      'sf.yaml':
        '- hosts: all\n  gather_facts: false\n  vars:\n    rd: 5.0\n  tasks:\n    - set_fact: { sf: "{{ rd }}", half: "{{ 6 / 2 }}", lst: "{{ [1.0, 2] }}", n: 3 }\n    - debug: msg="sf={{ sf }} half={{ half }} lst={{ lst }} n={{ n }} sum={{ sf + 1 }}"\n',
    });
    const inv = writeFiles(d, { hosts: 'localhost ansible_connection=local\n' });
    const r = await runCli(['run', pb, '-i', inv, '--no-retry-file', '--json']);
    expect(r.code).toBe(0);
    const msgs = (r.events as { type: string; msg?: string }[]).filter((e) => e.type === 'task_result').map((e) => e.msg);
    expect(msgs).toContain('sf=5.0 half=3.0 lst=[1.0, 2] n=3 sum=6.0');
  });
});

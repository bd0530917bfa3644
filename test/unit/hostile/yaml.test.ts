/**
 * Hostile YAML wherever provision reads YAML: the playbook, a YAML inventory, group_vars/ and host_vars/ files,
 * play vars_files and `-e @file`. Malformed text, alias bombs, nesting deep enough to exhaust a recursive parser,
 * and files of many megabytes. Every case: exit 1, one `error: FILE:LINE:COL: …` line, no stack trace, nothing
 * written (the case directory is compared before and after).
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { expectRefused, FIXTURES, fixture, LOCAL_INVENTORY, re, runArgs } from './support.js';

const PLAY = '- hosts: all\n  gather_facts: false\n  tasks:\n    - debug: { msg: hi }\n';
const bytes = (name: string) => readFileSync(path.join(FIXTURES, name));

/** Where YAML is read, and how a case puts its text there. */
const PLACES: Record<string, (text: string | Buffer) => { files: Record<string, string | Buffer>; args: string[]; file: string }> = {
  'YAML inventory': (text) => ({ files: { 'play.yaml': PLAY, 'hosts.yml': text }, args: ['run', 'DIR/play.yaml', '-i', 'DIR/hosts.yml'], file: 'hosts.yml' }),
  'group_vars file': (text) => ({ files: { 'play.yaml': PLAY, hosts: LOCAL_INVENTORY, 'group_vars/all.yml': text }, args: runArgs(), file: 'all.yml' }),
  'host_vars file': (text) => ({ files: { 'play.yaml': PLAY, hosts: LOCAL_INVENTORY, 'host_vars/localhost.yml': text }, args: runArgs(), file: 'localhost.yml' }),
  'play vars_files': (text) => ({
    files: { 'play.yaml': '- hosts: all\n  gather_facts: false\n  vars_files: [vars.yml]\n  tasks: []\n', hosts: LOCAL_INVENTORY, 'vars.yml': text },
    args: runArgs(),
    file: 'vars.yml',
  }),
  '-e @file': (text) => ({ files: { 'play.yaml': PLAY, hosts: LOCAL_INVENTORY, 'extra.yml': text }, args: runArgs('DIR/play.yaml', '-e', '@DIR/extra.yml'), file: 'extra.yml' }),
};

/** Malformed or hostile mappings (variables and inventories are mappings), with what the message must say. */
const MAPPINGS: [string, string | Buffer, RegExp][] = [
  ['an alias bomb', fixture('alias-bomb-vars.yaml'), /too many YAML alias expansions \(more than \d+\): refusing a possible alias bomb/],
  ['a tab in the indentation', 'a: 1\nb:\n\tc: 2\n', /YAML syntax error: (Tabs are not allowed as indentation|a tab indents this line)/],
  ['an unclosed quote', 'a: "open\nb: 2\n', /YAML syntax error: Missing closing "quote/],
  ['a duplicate key', 'a: 1\nb: 2\na: 3\n', /duplicate key "a"|Map keys must be unique/],
  ['two documents', 'a: 1\n---\nb: 2\n', /expected one YAML document, found more/],
  ['an ansible-vault file, without a password', fixture('vault.yaml'), /encrypted with ansible-vault: no vault password was given/],
  ['an unknown tag', 'secret: !custom |\n  text\n', /YAML tag !custom is not supported/],
  ['a list instead of a mapping', '- a\n- b\n', /mapping/],
  // Control bytes are shown escaped, never sent to the terminal as they are.
  ['binary bytes', bytes('binary.yaml'), /"\\u0000\\u0001\\u0002\ufffd\ufffd- hosts"/],
  ['500 nested flow lists', `a: ${'['.repeat(500)}${']'.repeat(500)}\n`, /nested more than 100 levels deep/],
  ['300 nested block mappings', Array.from({ length: 300 }, (_, i) => `${'  '.repeat(i)}k${i}:`).join('\n') + ' 1\n', /nested more than 100 levels deep/],
];

describe('hostile YAML in every file provision reads', () => {
  for (const [place, put] of Object.entries(PLACES)) {
    describe(place, () => {
      it.each(MAPPINGS)('refuses %s', async (_name, text, message) => {
        const c = put(text);
        const r = await expectRefused(c, { errors: 1 });
        expect(r.lines[0]).toMatch(message);
        expect(r.lines[0]).toMatch(new RegExp(`${re(c.file)}(:\\d+:\\d+)?:? `));
      });
    });
  }
});

describe('hostile playbooks', () => {
  const cases: [string, string | Buffer, RegExp][] = [
    ['an alias bomb', `- hosts: all\n  vars:\n${fixture('alias-bomb.yaml').replace(/^/gm, '    ')}\n  tasks: []\n`, /:1:1: too many YAML alias expansions/],
    ['a tab in the indentation', fixture('tab-indented.yaml'), /:4:1: YAML syntax error: a tab indents this line; YAML indentation must be spaces/],
    ['an unclosed quote', fixture('unclosed-quote.yaml'), /:\d+:\d+: YAML syntax error: Missing closing "quote/],
    ['an unclosed flow sequence', fixture('unclosed-flow.yaml'), /:\d+:\d+: YAML syntax error: /],
    ['a duplicate key', fixture('duplicate-key.yaml'), /:3:3: YAML syntax error: Map keys must be unique/],
    ['two documents', fixture('two-documents.yaml'), /:3:1: expected one YAML document, found more \(a second "---"\)/],
    ['an ansible-vault file, without a password', fixture('vault.yaml'), /:1:1: \S+ is encrypted with ansible-vault: no vault password was given/],
    ['an unknown tag', fixture('unknown-tag.yaml'), /:3:13: YAML tag !unsafe is not supported/],
    ['a mapping instead of a list of plays', fixture('not-a-list.yaml'), /:1:1: a playbook is a list of plays/],
    ['an empty file', '', /:1:1: a playbook is a list of plays/],
    ['binary bytes', bytes('binary.yaml'), /:1:1: /],
    ['100 000 nested flow lists', '['.repeat(100_000) + ']'.repeat(100_000), /:1:101: collections nested more than 100 levels deep/],
    ['3 000 nested block lists', Array.from({ length: 3000 }, (_, i) => `${' '.repeat(i)}- `).join('\n') + 'x\n', /:101:101: collections nested more than 100 levels deep/],
  ];
  it.each(cases)('refuses %s, at the place of the mistake', async (_name, text, message) => {
    const r = await expectRefused({ files: { 'play.yaml': text, hosts: LOCAL_INVENTORY }, args: runArgs() }, { errors: 1 });
    expect(r.lines[0]).toMatch(new RegExp(`^error: ${re(r.dir)}/play\\.yaml${message.source}`));
  });

  it('refuses the same deep nesting twice in one process (a parser that overflowed once must still work)', async () => {
    for (let i = 0; i < 2; i++) {
      const r = await expectRefused({ files: { 'play.yaml': '['.repeat(50_000) + ']'.repeat(50_000), hosts: LOCAL_INVENTORY }, args: runArgs() });
      expect(r.lines).toEqual([`error: ${r.dir}/play.yaml:1:101: collections nested more than 100 levels deep`]);
    }
  });
});

describe('files of many megabytes', () => {
  it('refuses a 40 MiB playbook before reading it', async () => {
    const r = await expectRefused({ files: { 'play.yaml': `# ${'x'.repeat(40 * 1024 * 1024)}\n`, hosts: LOCAL_INVENTORY }, args: runArgs() }, { errors: 1 });
    expect(r.lines[0]).toBe(`error: ${r.dir}/play.yaml:1:1: playbook is 40.0 MiB; the limit is 32 MiB`);
  });

  it('finds the one mistake at the end of a 2.5 MB playbook of 30 000 tasks, at its line', async () => {
    const tasks = Array.from({ length: 30_000 }, (_, i) => `    - name: task number ${i} of a long playbook\n      debug: { msg: "hello from task ${i}" }\n`).join('');
    const text = `- hosts: all\n  gather_facts: false\n  tasks:\n${tasks}    - name: the bad one\n      debug: { msgg: x }\n`;
    expect(text.length).toBeGreaterThan(2_500_000);
    const r = await expectRefused({ files: { 'play.yaml': text, hosts: LOCAL_INVENTORY }, args: runArgs() }, { errors: 1 });
    expect(r.lines[0]).toBe(`error: ${r.dir}/play.yaml:60005:16: task "the bad one": debug has no argument "msgg" (did you mean "msg"?)`);
  }, 180_000);

  it('refuses a 20 MiB INI inventory before reading it', async () => {
    const hosts = `[web]\n${'host.example.com a=1\n'.repeat(1_000_000)}`;
    const r = await expectRefused({ files: { 'play.yaml': PLAY, hosts }, args: runArgs() }, { errors: 1 });
    expect(r.lines[0]).toMatch(/^error: .*hosts" is \d+ bytes, too large for an inventory or vars file$/);
  });

  it('refuses a 20 MiB group_vars file before reading it', async () => {
    const vars = `big: "${'x'.repeat(20 * 1024 * 1024)}"\n`;
    const r = await expectRefused({ files: { 'play.yaml': PLAY, hosts: LOCAL_INVENTORY, 'group_vars/all.yml': vars }, args: runArgs() }, { errors: 1 });
    expect(r.lines[0]).toMatch(/^error: .*all\.yml" is \d+ bytes, too large for an inventory or vars file$/);
  });

  it('refuses an INI host range that expands to ten million hosts', async () => {
    const r = await expectRefused({ files: { 'play.yaml': PLAY, hosts: '[web]\nh[0:9999999].example.com\n' }, args: runArgs() }, { errors: 1 });
    expect(r.lines[0]).toBe(`error: ${r.dir}/hosts:2:1: host range [0:9999999] expands to more than 100000 hosts`);
  });
});

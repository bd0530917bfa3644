/**
 * Templates that read names nothing defines, or that try to leave the template context (JavaScript internals,
 * other files, lookup plugins provision does not have), or that are shaped to exhaust the template parser. All are found before any host is
 * touched: exit 1, one `error:` line at the string's place in the playbook (or in the template file), nothing
 * written. The counter-cases prove the check does not refuse what can work: names some host, a register, a
 * set_fact, a loop or --extra-vars define, and names a template only tests or defaults.
 */
import { existsSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { runCli } from '../../support/cli.js';
import { writeFiles } from '../../support/tmp.js';
import { caseDir, expectRefused, LOCAL_INVENTORY, runArgs } from './support.js';

const UNDEFINED = (name: string) => `undefined variable "${name}": nothing in this run defines it (inventory, play vars, vars_files, register, set_fact, loop or --extra-vars)`;
const task = (lines: string) => `- hosts: all\n  gather_facts: false\n  tasks:\n${lines}`;
const copyTo = (content: string) => task(`    - name: write\n      copy:\n        dest: DIR/out\n        content: ${JSON.stringify(content)}\n`);

/** [what, playbook, expected message after "play.yaml:"] */
const REFUSED: [string, string, string][] = [
  ['an undefined name in module arguments', copyTo('{{ nope }}'), `7:18: task "write": ${UNDEFINED('nope')}`],
  ['a misspelt name, with a suggestion', task('    - name: write\n      vars: { greeting: hi }\n      copy: { content: "{{ greting }}", dest: DIR/out }\n'), `6:24: task "write": ${UNDEFINED('greting')} (did you mean "greeting"?)`],
  ['an undefined name in when', task('    - debug: { msg: hi }\n      when: nope == 1\n'), `5:13: task "debug": ${UNDEFINED('nope')}`],
  ['an undefined name in loop', task('    - debug: { msg: "{{ item }}" }\n      loop: "{{ nope }}"\n'), `5:13: task "debug": ${UNDEFINED('nope')}`],
  ['an undefined name in assert', task('    - assert: { that: [nope] }\n'), `4:24: task "assert": ${UNDEFINED('nope')}`],
  ['an undefined name in debug var', task('    - debug: { var: nope.field }\n'), `4:21: task "debug": ${UNDEFINED('nope')}`],
  ['an undefined name in a templated notify', task('    - debug: { msg: hi }\n      notify: "{{ nope }}"\n') + '  handlers:\n    - name: h\n      debug: { msg: hi }\n', `5:15: task "debug": ${UNDEFINED('nope')}`],
  ['item outside a loop', copyTo('{{ item }}'), `7:18: task "write": ${UNDEFINED('item')}`],
  ['a lookup plugin provision does not have', copyTo("{{ lookup('dig', 'example.org') }}"), '7:18: task "write": invalid template: lookup plugin "dig" is not supported (supported: env, file, template, pipe, password, first_found)'],
  ['a filter reached through JavaScript\'s Object.prototype', copyTo("{{ 'a' | constructor }}"), '7:18: task "write": invalid template: unknown filter "constructor"'],
  ['a test reached through JavaScript\'s Object.prototype', copyTo("{{ 'a' is toString }}"), '7:18: task "write": invalid template: unknown test "toString" (did you mean "string"?)'],
  ["JavaScript's constructor", copyTo("{{ range.constructor('return process')() }}"), '7:18: task "write": invalid template: access to "constructor" is not allowed in templates'],
  ['__proto__', copyTo('{{ facts.__proto__ }}'), '7:18: task "write": invalid template: access to "__proto__" is not allowed in templates'],
  ["a function's call method", copyTo('{{ range.call(none) }}'), '7:18: task "write": invalid template: access to "call" is not allowed in templates'],
  ['an include of a file', copyTo("{% include '/etc/passwd' %}"), '7:18: task "write": invalid template: templates cannot load other templates ({% include %})'],
  ['an import of a file', copyTo("{% import '/etc/passwd' as x %}"), '7:18: task "write": invalid template: templates cannot load other templates ({% import %})'],
  ['an extends of a file', copyTo("{% extends '/etc/passwd' %}"), '7:18: task "write": invalid template: templates cannot load other templates ({% extends %})'],
  ['brackets nested 5 000 deep', copyTo(`{{ ${'('.repeat(5000)}1${')'.repeat(5000)} }}`), '7:18: task "write": invalid template: brackets nested more than 100 deep in a template'],
  ['a chain of 10 000 additions', copyTo(`{{ ${Array(10_000).fill('1').join(' + ')} }}`), '7:18: task "write": invalid template: a template expression longer than 1000 tokens'],
  ['5 000 nested if blocks', copyTo(`${'{% if true %}'.repeat(5000)}x${'{% endif %}'.repeat(5000)}`), '7:18: task "write": invalid template: template blocks nested more than 100 deep'],
  ['20 000 chained filters', copyTo(`{{ 'x'${' | upper'.repeat(20_000)} }}`), '7:18: task "write": invalid template: a template expression longer than 1000 tokens'],
];

describe('templates found wrong before any host is touched', () => {
  it.each(REFUSED)('refuses %s', async (_what, text, message) => {
    const r = await expectRefused({ files: { 'play.yaml': text, hosts: LOCAL_INVENTORY }, args: runArgs() }, { errors: 1 });
    expect(r.lines[0]).toBe(`error: ${r.dir}/play.yaml:${message}`);
    expect(existsSync(path.join(r.dir, 'out'))).toBe(false);
  });

  it('refuses an undefined name inside a template file, at its line and column there', async () => {
    const r = await expectRefused(
      {
        files: {
          'play.yaml': task('    - name: render\n      template: { src: main.cf.j2, dest: DIR/out }\n'),
          'templates/main.cf.j2': 'myhostname = {{ inventory_hostname }}\n{% for n in networks %}\nmynetworks = {{ n }}\n{% endfor %}\n',
          hosts: LOCAL_INVENTORY,
        },
        args: runArgs(),
      },
      { errors: 1 },
    );
    expect(r.lines[0]).toMatch(/^error: .*templates\/main\.cf\.j2:2:13: task "render": undefined variable "networks": nothing in this run defines it/);
  });

  it('refuses a template file that includes another file', async () => {
    const r = await expectRefused(
      { files: { 'play.yaml': task('    - name: render\n      template: { src: t.j2, dest: DIR/out }\n'), 'templates/t.j2': "a\n{% include '/etc/shadow' %}\n", hosts: LOCAL_INVENTORY }, args: runArgs() },
      { errors: 1 },
    );
    expect(r.lines[0]).toMatch(/^error: .*templates\/t\.j2:2:4: task "render": templates cannot load other templates \(\{% include %\}\)$/);
  });

  it('refuses a name that is only defined in a computed attribute at run time, with the same clear message (exit 2, nothing written)', async () => {
    // A key built at run time cannot be seen before: the template engine refuses it when the task runs.
    const dir = caseDir();
    writeFiles(dir, { 'play.yaml': copyTo("{{ ''['const' ~ 'ructor'] }}").replaceAll('DIR', dir), hosts: LOCAL_INVENTORY });
    const r = await runCli(['run', path.join(dir, 'play.yaml'), '-i', path.join(dir, 'hosts'), '--no-retry-file']);
    expect(r.code).toBe(2);
    expect(r.stdout).toContain('template error: access to "constructor" is not allowed in templates');
    expect(r.stdout).not.toMatch(/^\s+at /m);
    expect(existsSync(path.join(dir, 'out'))).toBe(false);
  });
});

describe('names that can be defined are not refused', () => {
  const ok: [string, string, string][] = [
    ['a name some host of the inventory defines', 'localhost ansible_connection=local greeting=hi\n', copyTo('{{ greeting }}')],
    ['a name only tested', LOCAL_INVENTORY, copyTo("{{ 'set' if nope is defined else 'unset' }}")],
    ['a name only defaulted', LOCAL_INVENTORY, copyTo("{{ nope | default('fallback') }}")],
    ['a name guarded by when', LOCAL_INVENTORY, task('    - copy: { dest: DIR/out, content: "{{ nope }}" }\n      when: nope is defined\n    - copy: { dest: DIR/out, content: "x" }\n')],
    ['a registered result', LOCAL_INVENTORY, task('    - debug: { msg: hi }\n      register: said\n    - copy: { dest: DIR/out, content: "{{ said.msg }}" }\n')],
    ['a set_fact', LOCAL_INVENTORY, task('    - set_fact: { word: hi }\n    - copy: { dest: DIR/out, content: "{{ word }}" }\n')],
    ['a loop variable', LOCAL_INVENTORY, task('    - copy: { dest: "DIR/{{ name }}", content: "{{ name }}" }\n      loop: [out]\n      loop_control: { loop_var: name }\n')],
    ['names a template sets itself', LOCAL_INVENTORY, copyTo('{% set w = "hi" %}{% for c in ["a"] %}{{ w }}{{ c }}{{ loop.index }}{% endfor %}')],
    ['facts and the magic variables', LOCAL_INVENTORY, copyTo('{{ inventory_hostname }} {{ group_names | length }} {{ playbook_dir | length > 0 }} {{ ansible_check_mode }}')],
  ];
  it.each(ok)('runs with %s', async (_what, inventory, text) => {
    const dir = caseDir();
    writeFiles(dir, { 'play.yaml': text.replaceAll('DIR', dir), hosts: inventory });
    const r = await runCli(['run', path.join(dir, 'play.yaml'), '-i', path.join(dir, 'hosts'), '--no-retry-file']);
    expect(r.code, r.stderr + r.stdout).toBe(0);
    expect(existsSync(path.join(dir, 'out'))).toBe(true);
  }, 120_000);

  it('runs with a name given by --extra-vars', async () => {
    const dir = caseDir();
    writeFiles(dir, { 'play.yaml': copyTo('{{ greeting }}').replaceAll('DIR', dir), hosts: LOCAL_INVENTORY });
    const r = await runCli(['run', path.join(dir, 'play.yaml'), '-i', path.join(dir, 'hosts'), '--no-retry-file', '-e', 'greeting=hi']);
    expect(r.code, r.stderr + r.stdout).toBe(0);
  }, 120_000);
});

import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { InputError, InputErrors } from '../../../src/errors.js';
import { loadPlaybook } from '../../../src/playbook/validate.js';
import { tempDir, writeFiles } from '../../support/tmp.js';

const dir = tempDir();
let n = 0;
function load(yaml: string) {
  const file = path.join(dir, `p${n++}.yaml`);
  writeFiles(dir, { [path.basename(file)]: yaml });
  return { file, run: () => loadPlaybook(file) };
}

function errorsOf(yaml: string): string[] {
  const { file, run } = load(yaml);
  try {
    run();
  } catch (e) {
    const list = e instanceof InputErrors ? e.errors : e instanceof InputError ? [e] : [];
    if (!list.length) throw e;
    return list.map((x) => x.message.replace(`${file}:`, 'P:'));
  }
  throw new Error('expected the playbook to be rejected');
}

const base = (tasks: string) => `- name: mail
  hosts: mail
  tasks:
${tasks}
  handlers:
    - name: restart postfix
      debug: { msg: restart }
`;

describe('playbook validation: every error has file:line:col, the task, and a suggestion', () => {
  const cases: { name: string; yaml: string; expect: string[] }[] = [
    {
      name: 'unknown module argument, with suggestion (the example from the issue)',
      yaml: base(`    - name: open 465
      iptables:
        chain: INPUT
        protocol: tcp
        dprt: 465
`.replace('iptables', 'lineinfile').replace('chain: INPUT', 'path: /etc/x').replace('protocol: tcp', 'line: y').replace('dprt: 465', 'lnie: 465')),
      expect: ['P:8:9: task "open 465": lineinfile has no argument "lnie" (did you mean "line"?)'],
    },
    {
      name: 'unknown module, with suggestion',
      yaml: base(`    - name: edit
      lineinfle: { path: /etc/x, line: y }
`),
      expect: ['P:5:7: task "edit": unknown module or keyword "lineinfle" (did you mean "lineinfile"?)'],
    },
    {
      name: 'misspelt task keyword',
      yaml: base(`    - name: edit
      copy: { dest: /etc/x, content: y }
      notfy: restart postfix
`),
      expect: ['P:6:7: task "edit": unknown module or keyword "notfy" (did you mean "notify"?)'],
    },
    {
      name: 'two modules in one task',
      yaml: base(`    - name: two
      copy: { dest: /etc/x, content: y }
      debug: { msg: hi }
`),
      expect: ['P:6:7: task "two": a task takes exactly one module, found "copy" and "debug"'],
    },
    {
      name: 'no module',
      yaml: base(`    - name: nothing
      when: true
`),
      expect: ['P:4:7: task "nothing": no module given (a task needs exactly one, e.g. "copy:" or "postconf:")'],
    },
    {
      name: 'wrong type',
      yaml: base(`    - name: t
      copy: { dest: /etc/x, content: y, backup: maybe }
`),
      expect: ['P:5:49: task "t": "backup" must be true or false'],
    },
    {
      name: 'bad enum with suggestion',
      yaml: base(`    - name: t
      lineinfile: { path: /etc/x, line: y, state: presnet }
`),
      expect: ['P:5:51: task "t": "state" must be one of "present", "absent" (did you mean "present"?)'],
    },
    {
      name: 'an Ansible option provision has not built (user generate_ssh_key: true) is refused by name',
      yaml: base(`    - name: t
      user: { name: bob, generate_ssh_key: true }
`),
      expect: ['P:5:26: task "t": "generate_ssh_key: true" is not supported yet (only false)'],
    },
    {
      name: 'missing required argument',
      yaml: base(`    - name: t
      lineinfile: { line: y }
`),
      expect: ['P:5:19: task "t": lineinfile needs argument "path"'],
    },
    {
      name: 'a notify that names no handler',
      yaml: base(`    - name: t
      copy: { dest: /etc/x, content: y }
      notify: restart postifx
`),
      expect: ['P:6:15: task "t": notifies "restart postifx", but no handler has that name or listen topic (did you mean "restart postfix"?)'],
    },
    {
      name: 'unknown play keyword',
      yaml: `- name: p
  hosts: all
  taks: []
`,
      expect: ['P:3:3: play "p": play has no keyword "taks" (did you mean "tasks"?)'],
    },
    {
      name: 'broken template',
      yaml: base(`    - name: t
      copy: { dest: "/etc/{{ x", content: y }
`),
      expect: ['P:5:21: task "t": invalid template: expected variable end'],
    },
    {
      name: 'broken when expression',
      yaml: base(`    - name: t
      debug: { msg: hi }
      when: x ==
`),
      expect: ['P:6:13: task "t": invalid expression in "when": unexpected token: )'],
    },
    {
      name: 'relation between arguments (module check)',
      yaml: base(`    - name: t
      copy: { dest: /etc/x }
`),
      expect: ['P:5:13: task "t": copy needs exactly one of "content" and "src"'],
    },
    {
      name: 'a handler without a name',
      yaml: `- hosts: all
  tasks: []
  handlers:
    - debug: { msg: x }
`,
      expect: ['P:4:7: handler: a handler needs a "name"'],
    },
  ];
  for (const c of cases) {
    it(c.name, () => {
      const got = errorsOf(c.yaml);
      for (const e of c.expect) expect(got).toContain(e);
    });
  }

  it('reports YAML syntax errors at their position', () => {
    const got = errorsOf('- hosts: all\n  tasks:\n    - name: x\n      debug: {msg: "a}\n');
    expect(got[0]).toMatch(/^P:\d+:\d+: YAML syntax error: /);
  });

  it('refuses duplicate keys', () => {
    const got = errorsOf('- hosts: all\n  hosts: web\n  tasks: []\n');
    expect(got[0]).toMatch(/^P:2:3: YAML syntax error: Map keys must be unique/);
  });

  it('refuses a YAML alias bomb without expanding it', () => {
    const lines = ['a0: &a0 [x, x, x, x, x, x, x, x, x, x]'];
    for (let i = 1; i < 12; i++) lines.push(`a${i}: &a${i} [${Array(10).fill(`*a${i - 1}`).join(', ')}]`);
    const got = errorsOf(`${lines.join('\n')}\n`);
    expect(got[0]).toContain('too many YAML alias expansions');
  });

  it('accepts templated values where the schema wants another type, and ansible.builtin names', () => {
    const { run } = load(base(`    - name: t
      ansible.builtin.lineinfile: { path: /etc/x, line: y, create: "{{ make_it }}" }
      notify: restart postfix
    - command: echo hi
`));
    const pb = run();
    expect(pb.plays[0]!.tasks.map((t) => t.module)).toEqual(['lineinfile', 'command']);
    expect(pb.plays[0]!.tasks[1]!.args).toEqual({ cmd: 'echo hi' });
    expect(pb.plays[0]!.tasks[1]!.name).toBe('command');
  });

  it('reads YAML 1.1 booleans and octal modes as Ansible does', () => {
    const { run } = load(`- hosts: all
  gather_facts: no
  become: yes
  tasks:
    - copy: { dest: /x, content: y, mode: 0640 }
`);
    const play = run().plays[0]!;
    expect(play.gatherFacts).toBe(false);
    expect(play.become).toBe(true);
    expect(play.tasks[0]!.args.mode).toBe(0o640);
  });

  it('says so when the file is missing or not a list of plays', () => {
    expect(() => loadPlaybook(path.join(dir, 'nope.yaml'))).toThrow(/cannot read playbook .*nope\.yaml: no such file/);
    expect(errorsOf('hosts: all\n')[0]).toBe('P:1:1: a playbook is a list of plays (each starting with "- hosts: …")');
  });
});

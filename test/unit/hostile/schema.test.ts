/**
 * Wrong types everywhere the schema lets a user make a mistake, and unknown keys: in plays, task keywords,
 * module arguments, handlers and inventories. Every case: exit 1, one `error:` line that names the file, line
 * and column of the mistake and what is wrong, no stack trace, nothing written.
 */
import { describe, expect, it } from 'vitest';
import { expectRefused, LOCAL_INVENTORY, re, runArgs } from './support.js';

const play = (body: string) => `- hosts: all\n  gather_facts: false\n${body}`;
const task = (lines: string) => play(`  tasks:\n${lines}`);

/** [what, playbook, expected message after "FILE:"] */
const PLAYBOOKS: [string, string, string][] = [
  // plays
  ['hosts as a number', '- hosts: 5\n  tasks: []\n', '1:10: play 1: "hosts" must be a string or a list'],
  ['tasks as a string', '- hosts: all\n  tasks: hello\n', '2:10: play 1: "tasks" must be a list'],
  ['serial below 1', '- hosts: all\n  serial: -1\n  tasks: []\n', '2:11: play 1: "serial" must be >= 1'],
  ['become as a word', '- hosts: all\n  become: maybe\n  tasks: []\n', '2:11: play 1: "become" must be true or false'],
  ['gather_facts as a word', '- hosts: all\n  gather_facts: sometimes\n  tasks: []\n', '2:17: play 1: "gather_facts" must be true or false'],
  ['vars as a list', '- hosts: all\n  vars: [a, b]\n  tasks: []\n', '2:9: play 1: "vars" must be a mapping'],
  ['a variable name with a space', "- hosts: all\n  vars: { 'a b': 1 }\n  tasks: []\n", '2:9: play 1: "vars": "a b" is not a valid name'],
  ['max_fail_percentage as a word', '- hosts: all\n  max_fail_percentage: lots\n  tasks: []\n', '2:24: play 1: "max_fail_percentage" must be a number'],
  ['max_fail_percentage over 100', '- hosts: all\n  max_fail_percentage: 150\n  tasks: []\n', '2:24: play 1: "max_fail_percentage" must be <= 100'],
  ['order unknown', '- hosts: all\n  order: random\n  tasks: []\n', '2:10: play 1: "order" must be one of "inventory", "sorted", "reverse_sorted", "shuffle"'],
  ['a play that is a string', '- just a string\n', '1:3: play 1 must be a mapping'],
  ['a play without hosts', '- name: no hosts\n  tasks: []\n', '1:3: play "no hosts" needs "hosts"'],
  ['an unknown play keyword', '- hosts: all\n  taks: []\n', '2:3: play 1: play has no keyword "taks" (did you mean "tasks"?)'],
  // task keywords
  ['when as a number', task('    - debug: { msg: hi }\n      when: 5\n'), '5:13: task "debug": "when" must be a string or true or false or a list'],
  ['notify as a mapping', task('    - debug: { msg: hi }\n      notify: { a: 1 }\n'), '5:15: task "debug": "notify" must be a string or a list'],
  ['loop as a number', task('    - debug: { msg: hi }\n      loop: 5\n'), '5:13: task "debug": "loop" must be a list or a string'],
  ['register with a dash', task("    - debug: { msg: hi }\n      register: 'a-b'\n"), '5:17: task "debug": "register" has an invalid value "a-b"'],
  ['ignore_errors as a word', task('    - debug: { msg: hi }\n      ignore_errors: perhaps\n'), '5:22: task "debug": "ignore_errors" has an invalid value "perhaps"'],
  ['no_log as a word', task('    - debug: { msg: hi }\n      no_log: sure\n'), '5:15: task "debug": "no_log" must be true or false'],
  ['an unknown task keyword', task('    - debug: { msg: hi }\n      whenn: x\n'), '5:7: task "debug": unknown module or keyword "whenn" (did you mean "when"?)'],
  ['an unknown loop_control key', task('    - debug: { msg: hi }\n      loop: [1]\n      loop_control: { lable: x }\n'), '6:23: task "debug": task "debug" has no argument "lable"'],
  ['a task that is a string', task('    - just a string\n'), '4:7: a task must be a mapping of keywords and one module'],
  ['a task with two modules', task('    - debug: { msg: hi }\n      copy: { dest: /tmp/x, content: x }\n'), '5:7: task "debug": a task takes exactly one module, found "debug" and "copy"'],
  ['a task with no module', task('    - name: nothing\n'), '4:7: task "nothing": no module given (a task needs exactly one, e.g. "copy:" or "postconf:")'],
  ['an unknown module', task('    - cpoy: { dest: /tmp/x, content: x }\n'), '4:7: task "cpoy": unknown module or keyword "cpoy" (did you mean "copy"?)'],
  ['a notify no handler answers', task('    - debug: { msg: hi }\n      notify: restart postfx\n') + '  handlers:\n    - name: restart postfix\n      debug: { msg: hi }\n', '5:15: task "debug": notifies "restart postfx", but no handler has that name or listen topic (did you mean "restart postfix"?)'],
  ['a handler without a name', play('  tasks: []\n  handlers:\n    - debug: { msg: hi }\n'), '5:7: handler: a handler needs a "name"'],
  ['listen on a task', task('    - debug: { msg: hi }\n      listen: x\n'), '5:7: task "debug": "listen" is only for handlers'],
  ['listen as a mapping', play('  tasks: []\n  handlers:\n    - name: h\n      debug: { msg: hi }\n      listen: { a: 1 }\n'), '7:15: task "h": "listen" must be a string or a list of strings'],
  ['a when that does not parse', task("    - debug: { msg: hi }\n      when: 'x ==== 1'\n"), '5:13: task "debug": invalid expression in "when": unexpected token: ='],
  ['a template that does not parse', task("    - debug: { msg: '{{ x ' }\n"), '4:21: task "debug": invalid template: expected variable end'],
  // module arguments
  ['copy dest as a list', task('    - copy: { dest: [a], content: x }\n'), '4:21: task "copy": "dest" must be a string'],
  ['copy without content or src', task('    - copy: { dest: /tmp/x }\n'), '4:13: task "copy": copy needs exactly one of "content" and "src"'],
  ['copy mode in letters', task('    - copy: { dest: /tmp/x, content: x, mode: rwxr }\n'), '4:47: task "copy": "mode" has an invalid value "rwxr"'],
  ['copy mode 644 read as decimal', task('    - copy: { dest: /tmp/x, content: x, mode: 644 }\n'), '4:13: task "copy": mode 644 is read as a decimal number; write it as a string, e.g. mode: "0644"'],
  ['an unknown copy argument', task("    - copy: { dest: /tmp/x, content: x, mdoe: '0644' }\n"), '4:41: task "copy": copy has no argument "mdoe" (did you mean "mode"?)'],
  ['copy arguments as a list', task('    - copy: [a, b]\n'), '4:13: task "copy": the arguments of copy must be a mapping'],
  ['copy shorthand without content or src', task('    - copy: dest=/tmp/x\n'), '4:13: task "copy": copy needs exactly one of "content" and "src"'],
  ['postconf settings as a list', task('    - postconf: { settings: [a, b] }\n'), '4:29: task "postconf": "settings" must be a mapping'],
  ['postconf with nothing to do', task('    - postconf: {}\n'), '4:17: task "postconf": postconf needs "settings" or "absent"'],
  ['a postconf name with a dash', task('    - postconf: { settings: { smtpd-tls: yes } }\n'), '4:29: task "postconf": "settings": "smtpd-tls" is not a valid name'],
  ['iptables dport as a word', task('    - iptables: { chain: INPUT, protocol: tcp, dport: abc, jump: ACCEPT }\n'), '4:17: task "iptables": dport "abc" is not a port number, a range like 1024:65535, or a known service name; give the number'],
  ['service state unknown', task('    - service: { name: postfix, state: bounced }\n'), '4:40: task "service": "state" must be one of "started", "stopped", "restarted", "reloaded"'],
  ['service rollback_timeout too long', task('    - service: { name: iptables, state: restarted, rollback_timeout: 9999 }\n'), '4:70: task "service": "rollback_timeout" must be <= 600'],
  ['master_cf options as a list', task('    - master_cf: { service: smtps, type: inet, command: smtpd, options: [a] }\n'), '4:73: task "master_cf": "options" must be a mapping'],
  ['lineinfile without a line', task('    - lineinfile: { path: /tmp/x }\n'), '4:19: task "lineinfile": lineinfile needs "line" when state is present'],
  ['file state unknown', task('    - file: { path: /tmp/x, state: gone }\n'), '4:36: task "file": "state" must be one of "file", "directory", "absent", "touch"'],
  ['command argv as a string', task('    - command: { argv: ls }\n'), '4:24: task "command": "argv" must be a list'],
  ['assert that as a mapping', task('    - assert: { that: { a: 1 } }\n'), '4:23: task "assert": "that" must be a string or true or false or a list'],
];

describe('wrong types and unknown keys in playbooks', () => {
  it.each(PLAYBOOKS)('refuses %s', async (_what, text, message) => {
    const r = await expectRefused({ files: { 'play.yaml': text, hosts: LOCAL_INVENTORY }, args: runArgs() }, { errors: 1 });
    expect(r.lines[0]).toBe(`error: ${r.dir}/play.yaml:${message}`);
  });

  it('lists every mistake of a file, one line each, and stops at 50', async () => {
    const tasks = Array.from({ length: 80 }, (_, i) => `    - name: t${i}\n      copy: { dest: /tmp/x, bogus${i}: 1, content: x }\n`).join('');
    const r = await expectRefused({ files: { 'play.yaml': task(tasks), hosts: LOCAL_INVENTORY }, args: runArgs() });
    expect(r.lines).toHaveLength(51);
    expect(r.lines[0]).toBe(`error: ${r.dir}/play.yaml:5:29: task "t0": copy has no argument "bogus0"`);
    expect(r.lines[50]).toBe('error: (more errors not shown)');
  });
});

/** [what, INI or YAML inventory file name, text, expected message after "FILE:" or the whole message] */
const INVENTORIES: [string, string, string, string][] = [
  ['an INI section without its bracket', 'hosts', '[web\nh1\n', 'hosts:1:1: invalid section header "[web": write [group], [group:vars] or [group:children], with no spaces in the brackets'],
  ['an INI variable without a value', 'hosts', '[web]\nh1 ansible_port\n', 'hosts:2:4: expected key=value after the host name, got "ansible_port"'],
  ['an INI variable name starting with a digit', 'hosts', '[web]\nh1 1abc=2\n', 'hosts:2:4: "1abc" is not a valid variable name (letters, digits and _, not starting with a digit)'],
  ['an INI host range that counts down', 'hosts', '[web]\nh[9:1]\n', 'hosts:2:1: host range [9:1] counts down: 9 is after 1'],
  ['INI child groups in a cycle', 'hosts', '[a:children]\nb\n[b:children]\na\n', 'hosts:4:1: child groups form a cycle: b → a → b'],
  ['an unknown INI section type', 'hosts', '[a:weird]\nb\n', 'hosts:1:4: unknown section type ":weird" in [a:weird]; a section is [a], [a:vars] or [a:children]'],
  ['an unclosed INI quote', 'hosts', '[web]\nh1 x="unterminated\n', 'hosts:2:6: unclosed " quote'],
  ['an INI port that is a word', 'hosts', '[web]\nh1:abc\n', 'hosts:2:1: host "h1:abc" has port "abc", which is not a number'],
  ['a NUL byte in a host name', 'hosts', '[web]\nh1\u0000\n', 'hosts:2:1: host name "h1\\u0000" contains a space or a control character'],
  ['a YAML inventory that is a list', 'hosts.yml', '- a\n- b\n', 'hosts.yml:1:1: a YAML inventory is a mapping of groups such as "all:", not a list'],
  ['an unknown YAML group key', 'hosts.yml', 'all:\n  hostz:\n    h1:\n', 'hosts.yml:2:3: unknown key "hostz" in group "all": expected hosts, vars or children'],
  ['YAML hosts as a list', 'hosts.yml', 'all:\n  hosts: [h1, h2]\n', 'hosts.yml:2:10: "hosts" of group "all" must be a mapping, not a list'],
  ['a duplicate YAML host', 'hosts.yml', 'all:\n  hosts:\n    h1:\n    h1:\n', 'hosts.yml:4:5: duplicate key "h1"'],
  ['an inventory plugin configuration', 'hosts.yml', 'plugin: aws_ec2\n', 'hosts.yml:1:1: this is an inventory plugin configuration ("plugin:"); only static inventories are supported'],
  ['an unsupported connection type', 'hosts', '[web]\nh1 ansible_connection=winrm\n', 'host "h1": ansible_connection "winrm" is not supported (use ssh or local)'],
  ['a port out of range', 'hosts', '[web]\nh1 ansible_port=99999\n', 'host "h1": ansible_port "99999" is not a port number (1-65535)'],
  ['a host address with shell syntax', 'hosts', '[web]\nh1 ansible_host="$(touch /tmp/provision-pwned)"\n', 'host "h1": ansible_host "$(touch /tmp/provision-pwned)" is not a host name or address'],
  ['a connect timeout that is a word', 'hosts', '[web]\nh1 ansible_ssh_timeout=soon\n', 'host "h1": ansible_ssh_timeout "soon" is not a positive whole number of seconds'],
];

describe('hostile inventories', () => {
  it.each(INVENTORIES)('refuses %s', async (_what, name, text, message) => {
    const r = await expectRefused({ files: { 'play.yaml': task('    - debug: { msg: hi }\n'), [name]: text }, args: ['run', 'DIR/play.yaml', '-i', `DIR/${name}`] }, { errors: 1 });
    const expected = message.startsWith('host "') ? `error: ${message}` : `error: ${r.dir}/${message}`;
    expect(r.lines[0]).toBe(expected);
    expect(r.lines[0]).toMatch(new RegExp(`^error: (${re(r.dir)}|host )`));
  });
});

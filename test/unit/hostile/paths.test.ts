/**
 * `src:` paths of copy and template that leave the playbook directory (`..`, absolute paths, symlinks that point
 * out) are refused before any host is touched, unless the task says `src_outside_playbook: true`: a playbook from
 * someone else must not ship the controller's files to a host. Every refusal: exit 1, one `error:` line at the
 * src value, nothing written.
 */
import { existsSync, mkdirSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { runCli } from '../../support/cli.js';
import { caseDir, expectRefused, LOCAL_INVENTORY, placeCase, runArgs } from './support.js';

/** A case directory holding the playbook in `pb/` and a secret beside it, outside the playbook directory. */
function layout(src: string, module = 'copy', extra = ''): { files: Record<string, string>; args: string[] } {
  return {
    files: {
      'pb/play.yaml': `- hosts: all\n  gather_facts: false\n  tasks:\n    - name: ship it\n      ${module}:\n        src: ${src}\n        dest: DIR/out\n${extra}`,
      'pb/hosts': LOCAL_INVENTORY,
      'secret.txt': 'the controller keeps this\n',
      'pb/files/fine.txt': 'inside\n',
    },
    args: runArgs('DIR/pb/play.yaml').map((a) => (a === 'DIR/hosts' ? 'DIR/pb/hosts' : a)),
  };
}

describe('src paths that leave the playbook directory', () => {
  const REFUSED: [string, string, string, RegExp][] = [
    ['copy ../secret.txt', '../secret.txt', 'copy', /pb\/play\.yaml:6:14: task "ship it": source \.\.\/secret\.txt is outside the playbook directory; set src_outside_playbook: true to allow it$/],
    ['copy files/../../secret.txt', 'files/../../secret.txt', 'copy', /pb\/play\.yaml:6:14: task "ship it": source files\/\.\.\/\.\.\/secret\.txt is outside the playbook directory/],
    ['copy an absolute path', '/etc/passwd', 'copy', /pb\/play\.yaml:6:14: task "ship it": source \/etc\/passwd is outside the playbook directory/],
    ['template ../secret.txt', '../secret.txt', 'template', /pb\/play\.yaml:6:14: task "ship it": source \.\.\/secret\.txt is outside the playbook directory/],
    ['copy a file that does not exist', 'missing.txt', 'copy', /pb\/play\.yaml:6:14: task "ship it": source missing\.txt not found \(looked in .*pb\/files\/missing\.txt, .*pb\/missing\.txt\)$/],
  ];
  it.each(REFUSED)('refuses %s', async (_what, src, module, message) => {
    const r = await expectRefused(layout(src, module), { errors: 1 });
    expect(r.lines[0]).toMatch(message);
    expect(existsSync(path.join(r.dir, 'out'))).toBe(false);
  });

  it('refuses a symlink inside the playbook directory that points outside it', async () => {
    const c = layout('files/link.txt');
    const dir = caseDir();
    const args = placeCase(c, dir);
    symlinkSync(path.join(dir, 'secret.txt'), path.join(dir, 'pb/files/link.txt'));
    const r = await runCli(args);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/^error: .*pb\/play\.yaml:6:14: task "ship it": source files\/link\.txt is outside the playbook directory; set src_outside_playbook: true to allow it\n$/);
    expect(existsSync(path.join(dir, 'out'))).toBe(false);
  });

  it('refuses at run time a templated src that renders outside (exit 2, nothing written)', async () => {
    const dir = caseDir();
    const c = layout('"{{ where }}"', 'copy', '      vars: { where: ../secret.txt }\n');
    const r = await runCli([...placeCase(c, dir), '--no-retry-file']);
    expect(r.code).toBe(2);
    expect(r.stdout).toContain('source ../secret.txt is outside the playbook directory; set src_outside_playbook: true to allow it');
    expect(existsSync(path.join(dir, 'out'))).toBe(false);
  });

  it('copies from outside when the task says src_outside_playbook: true, and from inside without it', async () => {
    const dir = caseDir();
    mkdirSync(path.join(dir, 'pb'), { recursive: true });
    const c = layout('../secret.txt', 'copy', '        src_outside_playbook: true\n');
    const args = placeCase(c, dir);
    writeFileSync(
      path.join(dir, 'pb/play.yaml'),
      `${readFileSync(path.join(dir, 'pb/play.yaml'), 'utf8')}    - copy: { src: fine.txt, dest: ${JSON.stringify(path.join(dir, 'fine-out'))} }\n`,
    );
    const r = await runCli([...args, '--no-retry-file']);
    expect(r.code, r.stdout + r.stderr).toBe(0);
    expect(readFileSync(path.join(dir, 'out'), 'utf8')).toBe('the controller keeps this\n');
    expect(readFileSync(path.join(dir, 'fine-out'), 'utf8')).toBe('inside\n');
  }, 120_000);
});

describe('paths and names on the host that a command would read as options', () => {
  const play = (task: string, vars = '') => ({
    files: { 'play.yaml': `- hosts: all\n  gather_facts: false\n${vars}  tasks:\n    - name: hostile\n      ${task}\n`, hosts: LOCAL_INVENTORY },
    args: runArgs(),
  });
  const REFUSED: [string, string, RegExp][] = [
    ['copy to -tout (was mv -t out)', 'copy: { dest: "-tout", content: "x" }', /dest "-tout" must be an absolute path on the host$/],
    ['copy to a relative path', 'copy: { dest: "out.txt", content: "x" }', /dest "out\.txt" must be an absolute path on the host$/],
    ['template to -f', 'template: { src: t.j2, dest: "-f" }', /dest "-f" must be an absolute path/],
    ['lineinfile on a relative path', 'lineinfile: { path: "etc/hosts", line: "x" }', /path "etc\/hosts" must be an absolute path/],
    ['blockinfile on -x', 'blockinfile: { path: "-x", block: "x" }', /path "-x" must be an absolute path/],
    ['file -rf', 'file: { path: "-rf", state: absent }', /path "-rf" must be an absolute path/],
    ['command in chdir -', 'command: { cmd: "true", chdir: "-" }', /chdir "-" must be an absolute path/],
    ['shell creates a relative path', 'shell: { cmd: "true", creates: "done" }', /creates "done" must be an absolute path/],
    ['postconf in a relative config_dir', 'postconf: { config_dir: "etc/postfix", settings: { a: b } }', /config_dir "etc\/postfix" must be an absolute path/],
    ['master_cf in -c', 'master_cf: { config_dir: "-c", service: smtps, type: inet }', /config_dir "-c" must be an absolute path/],
    ['a service named --version (was systemctl stop --version, reported "stopped")', 'service: { name: "--version", state: stopped }', /service name "--version" must start with a letter, digit, "_" or "@"$/],
    ['an owner -R', 'copy: { dest: /tmp/x, content: "x", owner: "-R" }', /owner "-R" is not a user or group name$/],
  ];
  it.each(REFUSED)('refuses %s before any host is touched', async (_what, task, message) => {
    const c = play(task);
    c.files = { ...c.files, 't.j2': 'x\n' } as typeof c.files;
    const r = await expectRefused(c, { errors: 1 });
    expect(r.lines[0]).toMatch(/play\.yaml:\d+:\d+: /);
    expect(r.lines[0]).toMatch(message);
  });

  it('refuses a templated dest that renders to an option after templating: the host fails, nothing is written', async () => {
    const dir = caseDir();
    const args = placeCase(play('copy: { dest: "{{ d }}", content: "x" }', '  vars: { d: "-tout" }\n'), dir);
    const r = await runCli([...args, '--json', '--no-retry-file']);
    expect(r.code).toBe(2);
    const failed = r.events.find((e) => e.type === 'task_result' && e.task === 'hostile');
    expect(failed).toMatchObject({ status: 'failed', msg: expect.stringContaining('dest "-tout" must be an absolute path on the host') });
    expect(existsSync(path.join(dir, 'out'))).toBe(false);
    expect(existsSync(path.join(process.cwd(), 'out'))).toBe(false);
  });
});

/**
 * sysctl as ansible.posix.sysctl decides and writes. File fixtures: Debian 12's stock /etc/sysctl.conf shape (a
 * commented header and commented `#net.ipv4.ip_forward=1` examples), a RHEL-style file with `key = value` spacing
 * and `;` comments, and a file holding a key twice.
 */
import { describe, expect, it } from 'vitest';
import { editSysctl, sameValue, sysctlModule, sysctlValue } from '../../../src/modules/sysctl.js';
import type { FileState, TaskContext } from '../../../src/modules/module.js';

const DEBIAN = [
  '#',
  '# /etc/sysctl.conf - Configuration file for setting system variables',
  '# See /etc/sysctl.d/ for additional system variables.',
  '# See sysctl.conf (5) for information.',
  '#',
  '',
  '#kernel.domainname = example.com',
  '',
  '# Uncomment the next line to enable packet forwarding for IPv4',
  '#net.ipv4.ip_forward=1',
  '',
].join('\n');

const RHEL = ['; kernel tuning', 'kernel.sysrq = 0', '   net.ipv4.tcp_syncookies = 1', 'vm.swappiness=10'].join('\n');

describe('sysctl: the file edit (as Ansible writes it)', () => {
  it('Debian stock file: the new key goes at the end; comments and blank lines stay', () => {
    const e = editSysctl(DEBIAN, 'net.ipv4.ip_forward', '1', 'present');
    expect(e.fileValue).toBeNull();
    expect(e.text).toBe(`${DEBIAN}net.ipv4.ip_forward=1\n`);
  });

  it('RHEL-style spacing: every key=value line is rewritten without spaces, lines stripped, no final newline added back twice', () => {
    const e = editSysctl(RHEL, 'vm.swappiness', '60', 'present');
    expect(e.fileValue).toBe('10');
    expect(e.text).toBe('; kernel tuning\nkernel.sysrq=0\nnet.ipv4.tcp_syncookies=1\nvm.swappiness=60\n');
  });

  it('a key written twice: the last value is what the file says; only the first line is kept', () => {
    const e = editSysctl('a.b = 1\nx=2\na.b = 3\n', 'a.b', '3', 'present');
    expect(e.fileValue).toBe('3');
    expect(e.text).toBe('a.b=3\nx=2\n');
  });

  it('absent removes every line of the key', () => {
    const e = editSysctl('a.b=1\nx=2\na.b=3\n', 'a.b', '', 'absent');
    expect(e.text).toBe('x=2\n');
  });

  it('values: yes/no/true/false/on/off become 1/0, YAML booleans too; others are trimmed', () => {
    expect([true, false, 'yes', 'Off', 1, ' 4096 87380 6291456 '].map((v) => sysctlValue(v))).toEqual(['1', '0', '1', '0', '1', '4096 87380 6291456']);
  });

  it('the kernel value compares word by word (sysctl -n prints tabs between words)', () => {
    expect(sameValue('4096\t87380\t6291456\n', '4096 87380 6291456')).toBe(true);
    expect(sameValue('1\n', '0')).toBe(false);
    expect(sameValue(null, '1')).toBe(false);
  });
});

function ctx(file: string | null, proc: { code: number; out: string }): TaskContext {
  const content = file === null ? null : Buffer.from(file);
  const state: FileState = { path: '/etc/sysctl.conf', exists: file !== null, kind: file === null ? null : 'file', content, sha: null, mode: 0o644, owner: 'root', group: 'root', uid: 0, gid: 0 };
  return {
    readFile: async () => state,
    readCommand: async () => ({ code: proc.code, stdout: Buffer.from(proc.out), stderr: Buffer.alloc(0) }),
  } as unknown as TaskContext;
}

describe('sysctl: the decision (as ansible.posix.sysctl makes it)', () => {
  const plan = (file: string | null, proc: string, args: Record<string, unknown>) =>
    sysctlModule.plan(ctx(file, { code: 0, out: proc }), { name: 'net.ipv4.ip_forward', ...args } as never);

  it('file and kernel agree: ok, nothing to run', async () => {
    expect(await plan('net.ipv4.ip_forward=1\n', '1\n', { value: 1 })).toEqual({ changed: false, msg: 'net.ipv4.ip_forward in /etc/sysctl.conf is 1, and the running kernel has it' });
  });

  it('a new key: the file is written and reloaded', async () => {
    const p = await plan(DEBIAN, '0\n', { value: 'yes' });
    expect(p).toMatchObject({ changed: true, msg: 'set net.ipv4.ip_forward in /etc/sysctl.conf to 1; reload /etc/sysctl.conf' });
    if (!p.changed) throw new Error();
    expect(p.files[0]!.after.toString()).toBe(`${DEBIAN}net.ipv4.ip_forward=1\n`);
    expect(p.commands.map((c) => c.script)).toEqual(["LC_ALL=C sysctl -p /etc/sysctl.conf"]);
  });

  it('file right, kernel not: reload only; with reload: false nothing (unless sysctl_set)', async () => {
    const p = await plan('net.ipv4.ip_forward=1\n', '0\n', { value: 1 });
    expect(p).toMatchObject({ changed: true, files: [], msg: 'reload /etc/sysctl.conf (the running net.ipv4.ip_forward is 0)' });
    expect(await plan('net.ipv4.ip_forward=1\n', '0\n', { value: 1, reload: false })).toMatchObject({ changed: false });
    const set = await plan('net.ipv4.ip_forward=1\n', '0\n', { value: 1, reload: false, sysctl_set: true });
    expect(set).toMatchObject({ changed: true, commands: [{ script: "LC_ALL=C sysctl -w net.ipv4.ip_forward=1" }] });
  });

  it('a missing file is created 0644; ignoreerrors reloads with -e; another sysctl_file', async () => {
    const p = await plan(null, '0\n', { value: 1, ignoreerrors: true, sysctl_file: '/etc/sysctl.d/90-forward.conf' });
    if (!p.changed) throw new Error();
    expect(p.files[0]).toMatchObject({ before: null, mode: 0o644 });
    expect(p.commands.map((c) => c.script)).toEqual(["LC_ALL=C sysctl -e -p /etc/sysctl.d/90-forward.conf"]);
  });

  it('absent: a key not in the file is ok', async () => {
    expect(await plan(DEBIAN, '1\n', { state: 'absent' })).toMatchObject({ changed: false });
    expect(await plan('net.ipv4.ip_forward=1\n', '1\n', { state: 'absent' })).toMatchObject({ changed: true, msg: 'remove net.ipv4.ip_forward in /etc/sysctl.conf; reload /etc/sysctl.conf' });
  });

  it('refuses what it cannot do exactly', () => {
    expect(sysctlModule.check!({ name: '-a' })).toMatch(/not a kernel parameter name/);
    expect(sysctlModule.check!({ name: 'vm.swappiness' })).toBe('sysctl needs "value" when state is present');
    expect(sysctlModule.check!({ name: 'vm.swappiness', value: 1, sysctl_file: 'rel/x.conf' })).toMatch(/sysctl_file/);
  });
});

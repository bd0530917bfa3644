import { execFile, execFileSync, spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, readlinkSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import tls from 'node:tls';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { causeOf, inetListeners, parseHealth, restartAndCheckScript, restartPostfixChecked } from '../../../src/modules/postfix-health.js';
import { fakeContext } from '../../support/fake-context.js';

describe('postfix health check', () => {
  it('finds the active inet listeners of a master.cf, with loopback for wildcard addresses', () => {
    const master = Buffer.from(
      [
        'smtp      inet  n       -       y       -       -       smtpd',
        '#submission inet n       -       y       -       -       smtpd',
        'smtps     inet  n       -       n       -       -       smtpd',
        '  -o smtpd_tls_wrappermode=yes',
        '127.0.0.1:10025 inet n  -       n       -       -       smtpd',
        '[::1]:submission inet n -       n       -       -       smtpd',
        'pickup    unix  n       -       y       60      1       pickup',
        '',
      ].join('\n'),
    );
    expect(inetListeners(master)).toEqual([
      { service: 'smtp', host: '127.0.0.1', port: '25' },
      { service: 'smtps', host: '127.0.0.1', port: '465', tls: true },
      { service: '127.0.0.1:10025', host: '127.0.0.1', port: '10025' },
      { service: '[::1]:submission', host: '::1', port: '587' },
    ]);
  });

  it("reads Debian's own master.cf: only smtp is active", () => {
    expect(inetListeners(readFileSync('test/fixtures/postfix/debian-12-master.cf'))).toEqual([{ service: 'smtp', host: '127.0.0.1', port: '25' }]);
  });

  it('parses the report and picks the most telling log line', () => {
    const r = parseHealth(
      [
        '@@health fail smtps (127.0.0.1:465) closed the connection without a greeting',
        '@@log Nov 28 10:00:01 h1 postfix/smtps/smtpd[123]: warning: something minor',
        '@@log Nov 28 10:00:01 h1 postfix/smtps/smtpd[123]: fatal: no SASL authentication mechanisms',
        '@@log Nov 28 10:00:02 h1 postfix/master[100]: warning: process /usr/lib/postfix/sbin/smtpd pid 123 exit status 1',
      ].join('\n'),
    );
    expect(r.ok).toBe(false);
    expect(r.reason).toBe('smtps (127.0.0.1:465) closed the connection without a greeting');
    expect(causeOf(r.log)).toBe('fatal: no SASL authentication mechanisms');
    expect(parseHealth('@@health ok\n').ok).toBe(true);
  });

  it('names the warning that gives the cause, not the later ones that point back at it', () => {
    const mismatch = 'warning: RSA private key in /etc/ssl/private/h2.key does not match public key in /etc/ssl/certs/h2.crt: disabling TLS support';
    const dropped = 'warning: Wrapper-mode request dropped from localhost[127.0.0.1] for service smtps. TLS context initialization failed. For details see earlier warnings in your logs.';
    const log = [`h2 postfix/smtps/smtpd[7]: ${mismatch}`, ...Array.from({ length: 4 }, () => `h2 postfix/smtps/smtpd[7]: ${dropped}`)];
    expect(causeOf(log)).toBe(mismatch);
    expect(causeOf([`h2 postfix/smtps/smtpd[7]: ${dropped}`])).toBe(dropped);
  });

  it('keeps the first and the last five logged problems for the cause', () => {
    const script = restartAndCheckScript('true', 'sysv', []);
    const filter = /\| (awk '[^']*')(; fi)?$/m.exec(script)![1]!;
    const lines = Array.from({ length: 12 }, (_, i) => `line ${i + 1}`).join('\n');
    expect(execFileSync('sh', ['-c', filter], { input: `${lines}\n` }).toString().trim().split('\n')).toEqual(
      ['1', '2', '3', '4', '5', '8', '9', '10', '11', '12'].map((n) => `@@log line ${n}`),
    );
  });

  it('proves a wrapper-mode listener by its TLS answer to a ClientHello; one that closes, at once or at the handshake, is not healthy', async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'provision-health-'));
    execFileSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '2', '-subj', '/CN=mx.test', '-keyout', path.join(dir, 'k.pem'), '-out', path.join(dir, 'c.pem')], { stdio: 'ignore' });
    const tlsServer = tls.createServer({ key: readFileSync(path.join(dir, 'k.pem')), cert: readFileSync(path.join(dir, 'c.pem')) }, (s) => s.on('error', () => undefined));
    const closing = net.createServer((s) => s.destroy());
    // Silent until the client speaks, then gone: an smtpd that dies when the handshake starts.
    const dropsHandshake = net.createServer((s) => s.once('data', () => s.destroy()).on('error', () => undefined));
    const port = (srv: net.Server) => new Promise<number>((resolve) => srv.listen(0, '127.0.0.1', () => resolve((srv.address() as net.AddressInfo).port)));
    try {
      const [good, bad, drops] = [await port(tlsServer), await port(closing), await port(dropsHandshake)];
      const listener = /^pv_listeners\(\) \{\n[\s\S]*?\n\}$/m.exec(restartAndCheckScript('true', 'sysv', []))![0];
      const probe = (p: number) =>
        promisify(execFile)('sh', ['-c', `${listener}\npv_listeners '127.0.0.1 ${p} smtps tls'`]).then(
          (r) => ({ code: 0, out: r.stdout.trim() }),
          (e: { code: number; stdout: string }) => ({ code: e.code, out: e.stdout.trim() }),
        );
      expect(await probe(good)).toEqual({ code: 0, out: '' });
      expect(await probe(bad)).toEqual({ code: 1, out: `smtps (127.0.0.1:${bad}) closed the connection without a greeting` });
      expect(await probe(drops)).toEqual({ code: 1, out: `smtps (127.0.0.1:${drops}) closed the connection without a greeting` });
      // All listeners in one bash: the first that fails is named, after the ones before it passed.
      const both = await promisify(execFile)('sh', ['-c', `${listener}\npv_listeners '127.0.0.1 ${good} smtps tls' '127.0.0.1 ${bad} submission'`]).then(
        () => ({ code: 0, out: '' }),
        (e: { code: number; stdout: string }) => ({ code: e.code, out: e.stdout.trim() }),
      );
      expect(both).toEqual({ code: 1, out: `submission (127.0.0.1:${bad}) closed the connection without a greeting` });
    } finally {
      tlsServer.close();
      closing.close();
      dropsHandshake.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it("the listener probe's bash does not read ~/.bashrc as bash under sshd would (a costly login: pyenv's or conda's init, as in the lab's costly shape)", async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'provision-health-'));
    const greeter = net.createServer((s) => s.end('220 mx.test ESMTP\r\n'));
    try {
      const marker = path.join(dir, 'read');
      writeFileSync(path.join(dir, '.bashrc'), `echo bashrc > ${marker}\necho "from bashrc"\n`);
      writeFileSync(path.join(dir, 'env.sh'), `echo env > ${marker}\n`);
      const port = await new Promise<number>((resolve) => greeter.listen(0, '127.0.0.1', () => resolve((greeter.address() as net.AddressInfo).port)));
      const listener = /^pv_listeners\(\) \{\n[\s\S]*?\n\}$/m.exec(restartAndCheckScript('true', 'sysv', []))![0];
      // Without --norc, bash -c under these variables reads $HOME/.bashrc (bash's SSH_SOURCE_BASHRC, Debian's build).
      const env = { ...process.env, HOME: dir, SSH_CLIENT: '198.19.0.1 40000 22', SHLVL: '0', BASH_ENV: path.join(dir, 'env.sh') };
      const r = await promisify(execFile)('sh', ['-c', `${listener}\npv_listeners '127.0.0.1 ${port} smtp'`], { env });
      expect(r.stdout).toBe('');
      expect(() => readFileSync(marker)).toThrow();
    } finally {
      greeter.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('Postfix 3.7 `postconf maillog_file queue_directory daemon_directory`: one run gives the log, pid and binary paths', () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'provision-health-'));
    try {
      const paths = /^pv_log= pv_qdir=[\s\S]*?\nPV_EOF\n/m.exec(restartAndCheckScript('true', 'sysv', []))![0];
      // What Postfix 3.7 prints, and what a Postfix before 3.4 prints (no maillog_file: a warning on stderr).
      const postconf = (out: string) =>
        execFileSync('sh', ['-c', `postconf() { printf '%s' "$PV_OUT"; echo 'postconf: warning: maillog_file: unknown parameter' >&2; }\n${paths}\necho "$pv_log|$pv_qdir|$pv_ddir"`], {
          env: { ...process.env, PV_OUT: out },
        })
          .toString()
          .trim();
      expect(postconf('maillog_file =\nqueue_directory = /var/spool/postfix\ndaemon_directory = /usr/lib/postfix/sbin\n')).toBe('|/var/spool/postfix|/usr/lib/postfix/sbin');
      expect(postconf('maillog_file = /var/log/postfix.log\nqueue_directory = /q\ndaemon_directory = /d\n')).toBe('/var/log/postfix.log|/q|/d');
      expect(postconf('queue_directory = /var/spool/postfix\ndaemon_directory = /usr/libexec/postfix\n')).toBe('|/var/spool/postfix|/usr/libexec/postfix');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it("the master check without forks: postfix-script's pid file naming a live master; a stale or reused pid falls back to `postfix status`", async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'provision-health-'));
    // A stand-in master: a long sleep whose executable the fake daemon_directory/master links to.
    const sleeper = spawn('sleep', ['60'], { stdio: 'ignore' });
    // Another program holding a pid the file could name after a reuse.
    const other = spawn(process.execPath, ['-e', 'setTimeout(() => {}, 60000)'], { stdio: 'ignore' });
    try {
      const sleepBin = readlinkSync(`/proc/${sleeper.pid}/exe`);
      mkdirSync(path.join(dir, 'q/pid'), { recursive: true });
      mkdirSync(path.join(dir, 'd'));
      symlinkSync(sleepBin, path.join(dir, 'd/master'));
      const master = /^pv_master\(\) \{\n[\s\S]*?\n\}$/m.exec(restartAndCheckScript('true', 'sysv', []))![0];
      // `postfix status` stands in as a function that says where it was asked, and answers PV_STATUS.
      const check = (pid: string, qdir = `${dir}/q`, status = 1) => {
        writeFileSync(path.join(dir, 'q/pid/master.pid'), pid);
        rmSync(path.join(dir, 'asked'), { force: true });
        const script = `postfix() { : > "$PV_ASKED"; return "$PV_STATUS"; }\npv_qdir=$1 pv_ddir=$2\n${master}\nif pv_master; then r=running; else r=down; fi; [ -e "$PV_ASKED" ] && echo asked; echo $r`;
        return execFileSync('sh', ['-c', script, 'sh', qdir, `${dir}/d`], { env: { ...process.env, PV_STATUS: String(status), PV_ASKED: path.join(dir, 'asked') } })
          .toString()
          .trim()
          .split('\n');
      };
      // As the master writes it: the pid right-aligned in 30 columns.
      expect(check(`${String(sleeper.pid).padStart(30)}\n`)).toEqual(['running']);
      expect(check(`${other.pid}\n`)).toEqual(['asked', 'down']);
      expect(check('')).toEqual(['asked', 'down']);
      expect(check('12a\n')).toEqual(['asked', 'down']);
      // A value postconf printed unexpanded: only postfix status can say.
      expect(check(`${sleeper.pid}\n`, '$queue_directory')).toEqual(['asked', 'down']);
      // The fallback's yes stands: postfix status knows best when the quick test cannot tell.
      expect(check(`${other.pid}\n`, `${dir}/q`, 0)).toEqual(['asked', 'running']);
      const gone = sleeper.pid!;
      sleeper.kill('SIGKILL');
      await new Promise((r) => sleeper.once('exit', r));
      expect(check(`${gone}\n`)).toEqual(['asked', 'down']);
    } finally {
      sleeper.kill('SIGKILL');
      other.kill('SIGKILL');
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('a check that fails without a word is a failure, not a pass', () => {
    const script = restartAndCheckScript('true', 'sysv', []);
    const decide = /^pv_ok=; if \[ "\$pv_rc"[\s\S]*?\n(if \[ -n "\$pv_ok" \].*)$/m.exec(script)![0];
    const run = (check: string) =>
      execFileSync('sh', ['-c', `sleep() { :; }\npv_rc=0\npv_check() { ${check}; }\n${decide}`]).toString().trim();
    expect(run('return 1')).toBe('@@health fail the health check failed without saying why');
    expect(run('echo "postfix is not running"; return 1')).toBe('@@health fail postfix is not running');
    expect(run('return 0')).toBe('@@health ok');
  });

  it('the check script quotes every listener and uses the init system', () => {
    const s = restartAndCheckScript('service postfix restart', 'systemd', [{ service: "x'y", host: '127.0.0.1', port: '25' }]);
    expect(s).toContain('systemctl is-active --quiet postfix');
    expect(s).not.toContain('pv_master');
    expect(restartAndCheckScript('service postfix restart', 'sysv', [])).toContain('pv_check() {\n  pv_master ||');
    expect(s).toContain(`'127.0.0.1 25 x'\\''y'`);
  });

  it('on failure restores the changed files, removes created ones, restarts, and fails with the cause', async () => {
    const ctx = fakeContext({
      files: { '/etc/postfix/master.cf': 'smtp inet n - y - - smtpd\n', '/etc/postfix/main.cf': 'new\n', '/etc/postfix/sasl/smtpd.conf': 'x\n' },
    });
    await ctx.writeFiles([{ path: '/etc/postfix/main.cf', before: Buffer.from('old\n'), after: Buffer.from('new\n'), beforeSha: ctx.files.get('/etc/postfix/main.cf')!.sha }]);
    // The fake records the first change; pretend the sasl file was created by this run.
    (ctx.changedFiles() as Map<string, unknown>).set('/etc/postfix/sasl/smtpd.conf', { path: '/etc/postfix/sasl/smtpd.conf', before: null, after: Buffer.from('x\n'), beforeSha: null });
    let runs = 0;
    ctx.run = async (script: string) => {
      ctx.calls.push({ op: 'run', arg: script });
      runs++;
      const out = script.startsWith('rm -f') ? '' : runs === 1 ? '@@health fail smtp (127.0.0.1:25) refuses connections\n@@log postfix/master[1]: fatal: bind 0.0.0.0 port 25: Address already in use\n' : '@@health ok\n';
      return { stdout: Buffer.from(out), stderr: Buffer.alloc(0), code: 0 };
    };
    await expect(restartPostfixChecked(ctx, 'service postfix restart', 'restarted')).rejects.toThrow(
      'postfix failed after it was restarted: smtp (127.0.0.1:25) refuses connections — mail log: fatal: bind 0.0.0.0 port 25: Address already in use; restored /etc/postfix/main.cf, /etc/postfix/sasl/smtpd.conf (removed) and restarted postfix: it runs again with the previous configuration',
    );
    expect(ctx.files.get('/etc/postfix/main.cf')!.content!.toString()).toBe('old\n');
    expect(ctx.calls.some((c) => c.op === 'run' && c.arg === "rm -f -- /etc/postfix/sasl/smtpd.conf")).toBe(true);
  });
});

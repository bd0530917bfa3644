/** The facts script with more shell after it in the same exec (factsScript), and taking its output apart. */
import { spawn, spawnSync } from 'node:child_process';
import { chmodSync, chownSync, existsSync, lstatSync, mkdirSync, readFileSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it, vi } from 'vitest';
import { quote } from '../../../src/connection/shell-quote.js';
import {
  FACTS_END_MARKER,
  FACTS_SCRIPT,
  factsScript,
  busyLocked,
  HELD_MARKER,
  LOCK_BUSY,
  lockedFactsScript,
  parseFacts,
  POSTFIX_VERSION_VAR,
  sessionLockedFactsScript,
  splitFactsOutput,
  STATE_DIR_REFUSED,
} from '../../../src/facts/gather.js';
import { fakePostconf } from '../../support/fake-postconf.js';
import { tempDir } from '../../support/tmp.js';

const scratch = tempDir('provision-facts-');
let dirs = 0;
/** A state directory path under the scratch directory that does not exist yet. */
const stateDir = () => path.join(scratch, `state${++dirs}`);
const fake = fakePostconf(scratch, { version: '3.9.1', configDir: '/etc/postfix-test', names: ['myhostname'] });
const sh = (script: string, PATH = fake.path) => spawnSync('/bin/sh', ['-c', script], { encoding: 'utf8', env: { PATH }, input: '' });

describe('factsScript', () => {
  it('is the plain facts script when nothing follows it', () => {
    expect(factsScript()).toBe(FACTS_SCRIPT);
    expect(factsScript('')).toBe(FACTS_SCRIPT);
    expect(sh(FACTS_SCRIPT).stdout).not.toContain(FACTS_END_MARKER);
  });

  it('prints the facts, the end marker, then what runs after them, which sees the Postfix version', () => {
    const r = sh(factsScript(`echo "after: $${POSTFIX_VERSION_VAR}"`));
    expect(r.status).toBe(0);
    const { facts, after } = splitFactsOutput(r.stdout);
    expect(after).toBe('after: 3.9.1\n');
    expect(parseFacts(facts)).toMatchObject({ postfix_version: '3.9.1', postfix_config_dir: '/etc/postfix-test' });
    expect(parseFacts(facts)).toEqual(parseFacts(sh(FACTS_SCRIPT).stdout));
  });

  it('leaves the version variable empty without Postfix, even when the environment sets it', () => {
    const r = spawnSync('/bin/sh', ['-c', factsScript(`echo "[$${POSTFIX_VERSION_VAR}]"`)], {
      encoding: 'utf8',
      env: { PATH: '/usr/bin:/bin', [POSTFIX_VERSION_VAR]: '3.7.11' },
    });
    const { facts, after } = splitFactsOutput(r.stdout);
    expect(after).toBe('[]\n');
    expect(parseFacts(facts).postfix_version).toBeNull();
  });

  // Issue 18 (host CPU per host): the first exec ran `pidof firewalld` twice on a host without systemd, once for
  // the facts and once in firewall.ts's guard of the zone listing that the reads carry along.
  it.each([
    ['running', '4242 4243', 0],
    ['not running', '', 1],
  ])('answers `pidof firewalld` after the facts from the facts\' own run when firewalld is %s', (_, pids, rc) => {
    if (existsSync('/run/systemd/system') || existsSync('/var/run/firewalld.pid')) return; // the facts ask systemd, or need no pidof
    const bin = path.join(scratch, `pidof-${rc}`);
    mkdirSync(bin);
    writeFileSync(path.join(bin, 'firewalld'), '#!/bin/sh\n', { mode: 0o755 });
    const log = path.join(bin, 'log');
    const pidof = `#!/bin/sh\necho "$*" >> ${quote(log)}\nif [ "$*" = firewalld ]; then [ -z ${quote(pids)} ] || echo ${quote(pids)}; exit ${rc}; fi\nexit 1\n`;
    writeFileSync(path.join(bin, 'pidof'), pidof, { mode: 0o755 });
    const after = 'pidof firewalld; echo "rc=$?"; ( pidof firewalld >/dev/null 2>&1 ); echo "sub=$?"; pidof -s firewalld; echo "s=$?"; pidof sshd; echo "other=$?"';
    const r = sh(factsScript(after), `${bin}:${fake.path}`);
    const { facts, after: out } = splitFactsOutput(r.stdout);
    expect(parseFacts(facts).firewall === 'firewalld').toBe(rc === 0);
    expect(out).toBe(`${pids ? `${pids}\n` : ''}rc=${rc}\nsub=${rc}\ns=1\nother=1\n`);
    // Once for the facts; `pidof -s firewalld` and `pidof sshd` are not the facts' question and go to the command.
    expect(readFileSync(log, 'utf8')).toBe('firewalld\n-s firewalld\nsshd\n');
  });

  it('exits 0 whatever the commands after the facts return', () => {
    const r = sh(factsScript('false'));
    expect(r.status).toBe(0);
    expect(splitFactsOutput(r.stdout).after).toBe('');
  });
});

describe('splitFactsOutput', () => {
  it('splits at the marker line', () => {
    expect(splitFactsOutput(`a=1\nb=2\n${FACTS_END_MARKER}\nrest\nmore\n`)).toEqual({ facts: 'a=1\nb=2', after: 'rest\nmore\n' });
    expect(splitFactsOutput(`${FACTS_END_MARKER}\nrest\n`)).toEqual({ facts: '', after: 'rest\n' });
    expect(splitFactsOutput(`a=1\n${FACTS_END_MARKER}\n`)).toEqual({ facts: 'a=1', after: '' });
  });

  it('takes the first marker line, so the part after may hold another', () => {
    expect(splitFactsOutput(`a=1\n${FACTS_END_MARKER}\nx\n${FACTS_END_MARKER}\n`)).toEqual({ facts: 'a=1', after: `x\n${FACTS_END_MARKER}\n` });
  });

  it('has nothing after when the marker is missing, cut short, or not a line of its own', () => {
    for (const out of ['a=1\nb=2\n', `a=1\n${FACTS_END_MARKER}`, `a=1\n${FACTS_END_MARKER.slice(0, 10)}`, `a=x${FACTS_END_MARKER}\nrest\n`, `a=1\n${FACTS_END_MARKER}x\nrest\n`, '']) {
      expect(splitFactsOutput(out), JSON.stringify(out)).toEqual({ facts: out, after: null });
    }
  });
});

describe('lockedFactsScript', () => {
  it('runs what follows the facts under the lock, before the held marker', () => {
    const r = sh(lockedFactsScript(30, quote('unit test of the facts script'), `echo "after: $${POSTFIX_VERSION_VAR}"`, quote(stateDir())));
    expect(r.status, r.stderr).toBe(0);
    const held = r.stdout.indexOf(`${HELD_MARKER}\n`);
    expect(held).toBeGreaterThan(0);
    const { facts, after } = splitFactsOutput(r.stdout.slice(0, held));
    expect(after).toBe('after: 3.9.1\n');
    expect(parseFacts(facts).postfix_version).toBe('3.9.1');
  });

  it('without anything to follow, prints the facts and no end marker', () => {
    const r = sh(lockedFactsScript(30, quote('unit test of the facts script'), '', quote(stateDir())));
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout).toContain(`${HELD_MARKER}\n`);
    expect(r.stdout).not.toContain(FACTS_END_MARKER);
  });
});

describe('the state directory and the lock in it (a local user must not reach either)', () => {
  const run = (dir: string, holder = 'unit test') => sh(lockedFactsScript(5, quote(holder), '', quote(dir)));
  const mode = (p: string) => (statSync(p).mode & 0o7777).toString(8);

  it('is created 0700, with the lock files 0600 in it and the holder recorded there', () => {
    const d = stateDir();
    const r = run(d, 'provision run of site.yaml by op@ctl pid 1');
    expect(r.status, r.stderr).toBe(0);
    expect(mode(d)).toBe('700');
    expect(mode(path.join(d, 'lock'))).toBe('600');
    expect(mode(path.join(d, 'lock.busy'))).toBe('600');
    expect(readFileSync(path.join(d, 'lock'), 'utf8')).toMatch(/^provision run of site\.yaml by op@ctl pid 1 since \d{4}-/);
  });

  // Issue 18 (host CPU per host): a lock taken at once is held since the controller sent the script, so the holder
  // line takes the controller's time and the host starts no `date`; a run that waited takes the host's own time.
  it('dates the holder line with the time the controller made the script when both locks were free at once', async () => {
    vi.useFakeTimers({ now: new Date('2001-02-03T04:05:06.789Z'), toFake: ['Date'] });
    const d = stateDir();
    let script: string;
    try {
      script = lockedFactsScript(5, quote('provision run'), '', quote(d));
    } finally {
      vi.useRealTimers();
    }
    expect(sh(script).status).toBe(0);
    expect(readFileSync(path.join(d, 'lock'), 'utf8')).toBe('provision run since 2001-02-03T04:05:06Z\n');
    // The busy lock held for a moment by a dead run's command: the run waits, and the time is the host's.
    const busy = spawn('flock', ['-s', path.join(d, 'lock.busy'), 'sleep', '1'], { stdio: 'ignore' });
    await new Promise((resolve) => setTimeout(resolve, 300));
    expect(sh(script).status).toBe(0);
    busy.kill();
    expect(readFileSync(path.join(d, 'lock'), 'utf8')).toMatch(new RegExp(`^provision run since ${new Date().getUTCFullYear()}-`));
  });

  it('refuses a state directory that is a symbolic link, and writes nothing through it', () => {
    const d = stateDir();
    const target = path.join(scratch, `planted-target-${dirs}`);
    mkdirSync(target, { mode: 0o700 });
    symlinkSync(target, d);
    const r = run(d);
    expect(r.status).toBe(77);
    expect(r.stderr.trim()).toBe(`refusing provision's state directory ${d} on this host: it is a symbolic link`);
    expect(r.stdout).not.toContain(HELD_MARKER);
    expect(existsSync(path.join(target, 'lock'))).toBe(false);
  });

  it('makes no missing parent (which would come out private too)', () => {
    const d = path.join(stateDir(), 'state');
    const r = run(d);
    expect(r.status).toBe(77);
    expect(r.stderr).toContain('it cannot be created');
    expect(existsSync(path.dirname(d))).toBe(false);
  });

  it('refuses a state directory that is a file', () => {
    const d = stateDir();
    writeFileSync(d, 'x');
    expect(run(d).stderr).toContain('it is not a directory');
  });

  it('refuses a directory other users can write to, and tightens one they can only read', () => {
    const open = stateDir();
    mkdirSync(open);
    chmodSync(open, 0o1777);
    const r = run(open);
    expect(r.status).toBe(77);
    expect(r.stderr).toContain('it is writable by other users (mode 1777)');
    expect(existsSync(path.join(open, 'lock'))).toBe(false);
    const readable = stateDir();
    mkdirSync(readable);
    chmodSync(readable, 0o755);
    expect(run(readable).status).toBe(0);
    expect(mode(readable)).toBe('700');
  });

  it.skipIf(process.getuid?.() !== 0)("refuses another user's directory", () => {
    const d = stateDir();
    mkdirSync(d, { mode: 0o700 });
    chownSync(d, 65534, 65534);
    const r = run(d);
    expect(r.status).toBe(77);
    expect(r.stderr).toMatch(/it is owned by uid 65534, not by root \(uid 0\)/);
    expect(lstatSync(d).uid).toBe(65534);
    expect(existsSync(path.join(d, 'lock'))).toBe(false);
  });

  it('takes no lock and creates nothing with a world-writable umask', () => {
    expect(lockedFactsScript(5, 'x', '', '/d')).not.toMatch(/umask 0\b|umask 000/);
    expect(lockedFactsScript(5, 'x', '', '/d')).not.toMatch(/\/tmp|\/run\/lock|\/var\/lock/);
  });

  it('gives up after the timeout when another run holds the lock, showing the holder line', async () => {
    const d = stateDir();
    expect(run(d, 'first run').status).toBe(0);
    const holder = spawn('flock', [path.join(d, 'lock'), 'sleep', '20'], { stdio: 'ignore' });
    try {
      await new Promise((resolve) => setTimeout(resolve, 300));
      const r = sh(lockedFactsScript(1, quote('second'), '', quote(d)));
      expect(r.status).toBe(LOCK_BUSY);
      expect(r.stderr).toMatch(/another provision run has held .*\/lock for over 1s: first run since/);
    } finally {
      holder.kill();
    }
  });

  it('an exec under the lock waits a bounded time for the busy lock', () => {
    expect(busyLocked('true', '/d')).toMatch(/flock -s -w \d+ 8/);
  });
});

describe('sessionLockedFactsScript (the lock as the first, persistent step of a session)', () => {
  /**
   * Dot-source the script as a session's loop does, in `shell`, then report from that same shell: the step's
   * status, whether fds 8 and 9 are open, the umask, a loop variable, and whether the lock can be taken from
   * outside while the shell lives.
   */
  const inLoop = (shell: string, script: string, dir: string) => {
    const file = path.join(scratch, `step${++dirs}.sh`);
    writeFileSync(file, script);
    const probe = [
      'umask 022; _pv_n=keep',
      `command . ${quote(file)} </dev/null >${quote(file)}.out 2>${quote(file)}.err`,
      'echo "rc=$?"',
      'for fd in 8 9; do if [ -e /proc/$$/fd/$fd ]; then echo "fd$fd=open"; else echo "fd$fd=closed"; fi; done',
      'echo "umask=$(umask) loop=$_pv_n"',
      `pv_l=${quote(path.join(dir, 'lock'))}`,
      'if [ ! -e "$pv_l" ]; then echo outside=none; elif flock -n "$pv_l" true; then echo outside=free; else echo outside=taken; fi',
    ].join('\n');
    const r = spawnSync(shell, ['-c', probe], { encoding: 'utf8', env: { PATH: `${fake.path}:/usr/bin:/bin` }, input: '' });
    return { ...r, out: readFileSync(`${file}.out`, 'utf8'), err: readFileSync(`${file}.err`, 'utf8') };
  };
  const shells = ['/bin/sh', '/bin/dash', '/bin/bash'].filter((s) => existsSync(s));

  it('neither waits on stdin nor exits (but from the facts, which run in a subshell)', () => {
    const s = sessionLockedFactsScript(5, 'x', '', '/d').replace(`( ${FACTS_SCRIPT} )`, '');
    expect(s).not.toMatch(/\bcat\b|\bexit\b/);
    expect(s).not.toMatch(/_pv_/);
  });

  for (const shell of shells) {
    it(`holds the lock on fd 9 of the shell that ran it, which goes on, its umask unchanged (${shell})`, () => {
      const d = stateDir();
      const r = inLoop(shell, sessionLockedFactsScript(5, quote('session run'), `echo "after: $${POSTFIX_VERSION_VAR}"`, quote(d)), d);
      expect(r.stdout, r.stderr + r.err).toBe('rc=0\nfd8=closed\nfd9=open\numask=0022 loop=keep\noutside=taken\n');
      const held = r.out.indexOf(`${HELD_MARKER}\n`);
      expect(held).toBeGreaterThan(0);
      expect(splitFactsOutput(r.out.slice(0, held)).after).toBe('after: 3.9.1\n');
      expect(mode(d)).toBe('700');
      expect(mode(path.join(d, 'lock'))).toBe('600');
      expect(readFileSync(path.join(d, 'lock'), 'utf8')).toMatch(/^session run since \d{4}-/);
    });

    it(`returns STATE_DIR_REFUSED for a symbolic link, and the shell goes on without the lock (${shell})`, () => {
      const d = stateDir();
      const target = path.join(scratch, `planted-session-${dirs}`);
      mkdirSync(target, { mode: 0o700 });
      symlinkSync(target, d);
      const r = inLoop(shell, sessionLockedFactsScript(5, quote('x'), '', quote(d)), target);
      expect(r.stdout).toBe(`rc=${STATE_DIR_REFUSED}\nfd8=closed\nfd9=closed\numask=0022 loop=keep\noutside=none\n`);
      expect(r.err.trim()).toBe(`refusing provision's state directory ${d} on this host: it is a symbolic link`);
      expect(r.out).not.toContain(HELD_MARKER);
      expect(existsSync(path.join(target, 'lock'))).toBe(false);
    });

    it(`returns LOCK_BUSY when another run holds the lock, closing what it opened (${shell})`, async () => {
      const d = stateDir();
      expect(run(d, 'first run').status).toBe(0);
      const holder = spawn('flock', [path.join(d, 'lock'), 'sleep', '20'], { stdio: 'ignore' });
      try {
        await new Promise((resolve) => setTimeout(resolve, 300));
        const r = inLoop(shell, sessionLockedFactsScript(1, quote('second'), '', quote(d)), d);
        expect(r.stdout).toBe(`rc=${LOCK_BUSY}\nfd8=closed\nfd9=closed\numask=0022 loop=keep\noutside=taken\n`);
        expect(r.err).toMatch(/another provision run has held .*\/lock for over 1s: first run since/);
      } finally {
        holder.kill();
      }
    });
  }
  const run = (dir: string, holder = 'unit test') => sh(lockedFactsScript(5, quote(holder), '', quote(dir)));
  const mode = (p: string) => (statSync(p).mode & 0o7777).toString(8);
});

describe('facts read by the shell itself', () => {
  /** A PATH with an `ip` that prints two default routes and two addresses, and no `id`, `sed` or `head`. */
  const bin = path.join(scratch, 'bin-no-id');
  mkdirSync(bin);
  writeFileSync(
    path.join(bin, 'ip'),
    [
      '#!/bin/sh',
      'case "$*" in',
      '  "-4 route show default") printf "default via 10.0.0.1 dev eth0 proto dhcp metric 100\\ndefault via 10.0.1.1 dev eth1 metric 200\\n" ;;',
      '  "-o -4 addr show dev eth0") printf "2: eth0    inet 10.0.0.5/24 brd 10.0.0.255 scope global eth0\\\\       valid_lft forever\\n2: eth0    inet 10.0.0.6/24 scope global secondary eth0\\n" ;;',
      'esac',
    ].join('\n'),
    { mode: 0o755 },
  );

  it('gives the user and uid `id` gives, without running id', () => {
    const facts = parseFacts(sh(FACTS_SCRIPT, bin).stdout);
    const id = (flag: string) => spawnSync('id', [flag], { encoding: 'utf8' }).stdout.trim();
    expect(facts.uid).toBe(Number(id('-u')));
    expect(facts.user).toBe(id('-un'));
  });

  it("takes the first default route and the first address of its interface, without sed or head", () => {
    expect(parseFacts(sh(FACTS_SCRIPT, bin).stdout).default_ipv4).toEqual({
      address: '10.0.0.5',
      interface: 'eth0',
      alias: 'eth0',
      gateway: '10.0.0.1',
      netmask: '255.255.255.0',
      network: '10.0.0.0',
      prefix: '24',
      broadcast: '10.0.0.255',
    });
  });
});

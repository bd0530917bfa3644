/**
 * The first exec on a host: facts, Postfix's names when the controller does not know the host's version, and
 * the reads guessed for the play, in one exec. The scripts run here with a real sh and a fake postconf.
 */
import { execFileSync } from 'node:child_process';
import { chmodSync, mkdirSync, symlinkSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { factsScript, FACTS_END_MARKER, parseFacts } from '../../../src/facts/gather.js';
import { postconfDefaultsCommand } from '../../../src/modules/postfix-names.js';
import { renderString } from '../../../src/playbook/template.js';
import {
  factsAgree,
  firstExecTail,
  guessFacts,
  parseFirstExec,
  READS_END_MARKER,
  READS_MARKER,
  unionOfReads,
  watchedFacts,
} from '../../../src/runner/first-exec.js';
import { parseReadOutput, readScript, type ReadRequest } from '../../../src/runner/host-files.js';
import { debianFacts, rhelFacts } from '../../support/fake-context.js';
import { fakePostconf } from '../../support/fake-postconf.js';
import { subDirs, tempDir } from '../../support/tmp.js';

const dir = tempDir('provision-first-exec-');
const fresh = subDirs(dir);

describe('guessFacts', () => {
  it('without known versions: a Debian-like and a RHEL-like host without a Postfix version', () => {
    const [deb, rhel] = guessFacts('mx1.example.org', []);
    expect(deb).toMatchObject({ hostname: 'mx1', fqdn: 'mx1.example.org', os_family: 'Debian', postfix_version: null, iptables_rules_file: '/etc/iptables/rules.v4' });
    expect(rhel).toMatchObject({ hostname: 'mx1', fqdn: 'mx1.example.org', os_family: 'RedHat', postfix_version: null, iptables_rules_file: '/etc/sysconfig/iptables' });
    expect(guessFacts('mx1.example.org', [])).toHaveLength(2);
  });

  it('guesses the newest known version for Debian-like hosts and the oldest for RHEL-like ones', () => {
    const known = ['3.7.11', '2.6.6', '3.10.1', '3.9.0'];
    const [deb, rhel] = guessFacts('h1', known);
    expect(deb!.postfix_version).toBe('3.10.1');
    expect(rhel!.postfix_version).toBe('2.6.6');
    expect(known).toEqual(['3.7.11', '2.6.6', '3.10.1', '3.9.0']);
    expect(guessFacts('h1', ['3.7.11']).map((f) => f.postfix_version)).toEqual(['3.7.11', '3.7.11']);
  });

  it('gives complete facts, with the same keys as gathered ones', () => {
    const gathered = parseFacts('os_id=debian\niptables_version=iptables v1.8.9 (nf_tables)\nrules_v4=1\n');
    for (const f of guessFacts('10.0.0.1', ['3.7.11'])) {
      expect(Object.keys(f).sort()).toEqual(Object.keys(gathered).sort());
      expect(f.postfix_config_dir).toBe('/etc/postfix');
    }
    expect(guessFacts('10.0.0.1', [])[0]!.hostname).toBe('10');
  });
});

describe('watchedFacts and factsAgree', () => {
  it('records each fact read, tested or listed, and reads like the facts themselves', () => {
    const { facts, used } = watchedFacts(debianFacts);
    expect(used.size).toBe(0);
    expect(facts.os_family).toBe('Debian');
    expect('tls_cert_dir' in facts).toBe(true);
    expect([...used].sort()).toEqual(['os_family', 'tls_cert_dir']);
    expect(JSON.parse(JSON.stringify(facts))).toEqual(debianFacts);
    for (const k of Object.keys(debianFacts)) expect(used.has(k), k).toBe(true);
  });

  it('sees what a template looked at', () => {
    const dirOnly = watchedFacts(debianFacts);
    expect(renderString('{{ facts.postfix_config_dir }}/main.cf', { facts: dirOnly.facts })).toBe('/etc/postfix/main.cf');
    expect(dirOnly.used.has('postfix_config_dir')).toBe(true);
    expect(dirOnly.used.has('os_family')).toBe(false);
    // the guessed hosts agree on the config directory: one rendering serves both
    const [deb, rhel] = guessFacts('h1', ['3.7.11', '2.6.6']);
    expect(factsAgree(deb!, rhel!, dirOnly.used)).toBe(true);

    const byFamily = watchedFacts(debianFacts);
    renderString('{{ facts.tls_cert_dir }}/{{ facts.hostname }}.pem', { facts: byFamily.facts });
    expect(factsAgree(deb!, rhel!, byFamily.used)).toBe(false);
  });

  it('factsAgree compares exactly the facts given', () => {
    expect(factsAgree(debianFacts, rhelFacts, new Set())).toBe(true);
    expect(factsAgree(debianFacts, rhelFacts, new Set(['hostname', 'postfix_config_dir']))).toBe(true);
    expect(factsAgree(debianFacts, rhelFacts, new Set(['hostname', 'os_family']))).toBe(false);
    expect(factsAgree(debianFacts, { ...debianFacts, postfix_version: null }, new Set(['postfix_version']))).toBe(false);
    expect(factsAgree(debianFacts, debianFacts, new Set(['no_such_fact']))).toBe(true);
  });
});

describe('unionOfReads', () => {
  it('asks for each path and command once, a path wanted whole not also stat\'ed', () => {
    const req = unionOfReads([
      { files: ['/etc/postfix/main.cf', '/etc/postfix/master.cf'], stats: ['/etc/ssl/certs/h1.pem'] },
      { files: ['/etc/postfix/main.cf'], stats: ['/etc/postfix/master.cf', '/etc/ssl/private/h1.key', '/etc/ssl/private/h1.key'] },
      { commands: [{ key: 'k1', script: 'echo one' }] },
      { commands: [{ key: 'k1', script: 'echo other' }, { key: 'k2', script: 'echo two' }] },
      {},
    ]);
    expect(req).toEqual({
      files: ['/etc/postfix/main.cf', '/etc/postfix/master.cf'],
      stats: ['/etc/ssl/certs/h1.pem', '/etc/ssl/private/h1.key'],
      commands: [
        { key: 'k1', script: 'echo one' },
        { key: 'k2', script: 'echo two' },
      ],
    });
  });

  it("leaves out Postfix's names (the first exec asks for them its own way) and paths holding the exec's markers", () => {
    const req = unionOfReads([
      { files: ['/a', `/x/${READS_END_MARKER}`, `/y\n${READS_MARKER}\n`], stats: [`/${FACTS_END_MARKER}`], commands: [postconfDefaultsCommand('3.7.11'), { key: 'k', script: 'true' }] },
    ]);
    expect(req).toEqual({ files: ['/a'], stats: [], commands: [{ key: 'k', script: 'true' }] });
  });
});

describe('the first exec, run with sh', () => {
  const files = fresh('host');
  const main = path.join(files, 'main.cf');
  const master = path.join(files, 'master.cf');
  const certs = path.join(files, 'certs');
  const missing = path.join(files, 'absent.cf');
  writeFileSync(main, 'myhostname = h1\n');
  writeFileSync(master, 'smtp inet n - y - - smtpd\n');
  mkdirSync(certs);
  const req: ReadRequest = { files: [main, master, missing], stats: [certs], commands: [{ key: 'hello', script: 'echo hello; echo oops >&2; exit 3' }] };
  const names = ['alpha_param', 'beta_param', 'myhostname'];
  const expectedReads = parseReadOutput(req, execFileSync('/bin/sh', ['-c', readScript(req)], { encoding: 'utf8' }));

  const run = (known: string[], fake: { path: string }, request = req) =>
    execFileSync('/bin/sh', ['-c', factsScript(firstExecTail(known, request))], { encoding: 'utf8', env: { PATH: fake.path } });

  it('an unknown Postfix version: the facts, the names and the reads', () => {
    const fake = fakePostconf(fresh('bin'), { version: '9.9.9', configDir: files, names });
    const out = run(['3.7.11', '2.6.6'], fake);
    const first = parseFirstExec(out, req);
    expect(first.facts).toEqual(parseFacts(out.slice(0, out.indexOf(FACTS_END_MARKER))));
    expect(first.facts).toMatchObject({ postfix_version: '9.9.9', postfix_config_dir: files });
    expect(first.names).toEqual({ version: '9.9.9', names: new Set(names) });
    expect(first.reads).toEqual(expectedReads);
    expect(first.reads!.files.get(main)!.content).toEqual(Buffer.from('myhostname = h1\n'));
    expect(first.reads!.files.get(certs)).toMatchObject({ kind: 'directory', content: null });
    expect(first.reads!.files.get(missing)).toMatchObject({ exists: false });
    expect(first.reads!.commands.get('hello')).toEqual({ stdout: Buffer.from('hello\n'), stderr: Buffer.from('oops\n'), code: 3 });
    expect(fake.defaultsCalls()).toBe(1);
  });

  it('a known Postfix version: no names printed, `postconf -d` not run, the reads all the same', () => {
    const fake = fakePostconf(fresh('bin'), { version: '9.9.9', configDir: files, names });
    const out = run(['3.7.11', '9.9.9'], fake);
    expect(out).not.toContain('@@N ');
    const first = parseFirstExec(out, req);
    expect(first.facts.postfix_version).toBe('9.9.9');
    expect(first.names).toBeNull();
    expect(first.reads).toEqual(expectedReads);
    expect(fake.defaultsCalls()).toBe(0);
  });

  it('a host without Postfix: no names, the reads all the same', () => {
    const first = parseFirstExec(run([], { path: '/usr/local/bin:/usr/bin:/bin' }), req);
    expect(first.facts.postfix_version).toBeNull();
    expect(first.names).toBeNull();
    expect(first.reads).toEqual(expectedReads);
  });

  it('a failing `postconf -d`: no names, the reads all the same', () => {
    const fake = fakePostconf(fresh('bin'), { version: '9.9.9', configDir: files, names, defaultsExit: 1 });
    const first = parseFirstExec(run([], fake), req);
    expect(first.names).toBeNull();
    expect(first.reads).toEqual(expectedReads);
  });

  it('nothing to read: an empty read, not a missing one', () => {
    const fake = fakePostconf(fresh('bin'), { version: '9.9.9', configDir: files, names });
    const none: ReadRequest = { files: [], stats: [], commands: [] };
    const out = run(['9.9.9'], fake, none);
    expect(out.slice(out.indexOf(`${FACTS_END_MARKER}\n`))).toBe(`${FACTS_END_MARKER}\n${READS_MARKER}\n${READS_END_MARKER}\n`);
    expect(parseFirstExec(out, none).reads).toEqual({ files: new Map(), commands: new Map() });
  });

  it('paths with spaces and newlines (a stat per path) read the same', () => {
    const odd = [path.join(files, 'with space.cf'), path.join(files, 'new\nline.cf')];
    for (const p of odd) writeFileSync(p, `content of ${p}\n`);
    const oddReq = unionOfReads([{ files: odd, stats: [main] }]);
    const fake = fakePostconf(fresh('bin'), { version: '9.9.9', configDir: files, names });
    const first = parseFirstExec(run([], fake, oddReq), oddReq);
    expect(first.names?.version).toBe('9.9.9');
    for (const p of odd) expect(first.reads!.files.get(p)!.content!.toString()).toBe(`content of ${p}\n`);
    expect(first.reads!.files.get(main)).toMatchObject({ kind: 'file', content: null });
  });

  it('output cut short anywhere: the facts so far, and names and reads either whole or null, never partial', () => {
    const fake = fakePostconf(fresh('bin'), { version: '9.9.9', configDir: files, names });
    const out = run([], fake);
    const whole = parseFirstExec(out, req);
    expect(whole.names).not.toBeNull();
    expect(whole.reads).not.toBeNull();
    const seen = { names: 0, reads: 0, neither: 0 };
    for (let cut = 0; cut < out.length; cut++) {
      const part = parseFirstExec(out.slice(0, cut), req);
      if (part.names === null) expect(part.reads).toBeNull();
      else expect(part.names).toEqual(whole.names);
      if (part.reads !== null) expect(part.reads).toEqual(whole.reads);
      if (part.reads) seen.reads++;
      else if (part.names) seen.names++;
      else seen.neither++;
    }
    // cut anywhere before the line that ends the reads, the reads are missing
    expect(seen.reads).toBe(0);
    expect(seen.names).toBeGreaterThan(0);
    expect(seen.neither).toBeGreaterThan(0);
    // the places that matter: in the facts, in the names, in the reads
    const cutAt = (marker: string, extra = 0) => parseFirstExec(out.slice(0, out.indexOf(marker) + extra), req);
    expect(cutAt(FACTS_END_MARKER)).toMatchObject({ names: null, reads: null, facts: { postfix_version: '9.9.9' } });
    expect(cutAt('@@N ', 20)).toMatchObject({ names: null, reads: null });
    expect(cutAt(`${READS_MARKER}\n`)).toMatchObject({ names: null, reads: null });
    expect(cutAt(`${READS_MARKER}\n`, READS_MARKER.length + 1).names).toEqual(whole.names);
    expect(cutAt(`${READS_MARKER}\n`, READS_MARKER.length + 1).reads).toBeNull();
    expect(cutAt(`${READS_END_MARKER}\n`).reads).toBeNull();
    expect(cutAt(`${READS_END_MARKER}\n`, READS_END_MARKER.length).reads).toBeNull();
    expect(cutAt(`${READS_END_MARKER}\n`, READS_END_MARKER.length + 1).reads).toEqual(whole.reads);
  });

  // Issue 18 (host CPU on first contact): a controller that knew none of a host's names had it run postconf twice,
  // `-h mail_version config_directory` for the facts and `-d` for the names, about 9 ms of CPU each.
  describe('a controller that knows no names: the facts list them, in one postconf run', () => {
    const listing = (known: string[], fake: { path: string }, request = req) =>
      execFileSync('/bin/sh', ['-c', factsScript(firstExecTail(known, request), { listPostfix: true })], { encoding: 'utf8', env: { PATH: fake.path } });

    it('Postfix 2.9 and later: `postconf -C builtin,service` gives the version, the config directory and the names', () => {
      const fake = fakePostconf(fresh('bin'), { version: '9.9.9', configDir: files, names });
      const out = listing([], fake);
      expect(out).toContain('\npostfix_listed=1\n');
      expect(out).not.toMatch(/^postfix_version=/m);
      const first = parseFirstExec(out, req);
      expect(first.facts).toMatchObject({ postfix_version: '9.9.9', postfix_config_dir: files });
      expect(first.names).toEqual({ version: '9.9.9', names: new Set([...names, 'config_directory', 'mail_version']), listedConfigDir: files });
      expect(first.reads).toEqual(expectedReads);
      expect(fake.calls()).toEqual(['-C builtin,service']);
    });

    it('the same facts as the two runs give, apart from the line that says where the version is', () => {
      const fake = fakePostconf(fresh('bin'), { version: '9.9.9', configDir: files, names });
      const listed = parseFirstExec(listing([], fake), req);
      const asked = parseFirstExec(run([], fake), req);
      expect(listed.facts).toEqual(asked.facts);
      expect(fake.calls()).toEqual(['-C builtin,service', '-h mail_version config_directory', '-d']);
    });

    it('a Postfix before 2.9 (no -C): `postconf -h` and `postconf -d`, as without the listing', () => {
      const fake = fakePostconf(fresh('bin'), { version: '2.6.6', configDir: files, names, classes: false });
      const first = parseFirstExec(listing([], fake), req);
      expect(first.facts).toMatchObject({ postfix_version: '2.6.6', postfix_config_dir: files });
      expect(first.names).toEqual({ version: '2.6.6', names: new Set(names) });
      expect(fake.calls()).toEqual(['-C builtin,service', '-h mail_version config_directory', '-d']);
    });

    it('no base64 to send the listing with: `postconf -h` as usual, and no listing run', () => {
      const fake = fakePostconf(fresh('bin'), { version: '9.9.9', configDir: files, names });
      // a PATH with sh's commands but no base64: only what the facts need, linked one by one
      const bin = fresh('nobase64');
      for (const c of ['cat', 'hostname', 'id', 'stat', 'tar', 'mktemp', 'rm', 'head', 'cut', 'grep']) {
        try {
          symlinkSync(execFileSync('/bin/sh', ['-c', `command -v ${c}`], { encoding: 'utf8' }).trim(), path.join(bin, c));
        } catch {
          // not on this machine: the facts do without it
        }
      }
      const out = execFileSync('/bin/sh', ['-c', factsScript(firstExecTail([], req), { listPostfix: true })], { encoding: 'utf8', env: { PATH: `${fake.dir}:${bin}` } });
      expect(parseFirstExec(out, req).facts).toMatchObject({ postfix_version: '9.9.9', postfix_config_dir: files });
      expect(fake.calls()[0]).toBe('-h mail_version config_directory');
    });

    it('a listing that did not come back with facts that say it would: an error, not a host without Postfix', () => {
      const fake = fakePostconf(fresh('bin'), { version: '9.9.9', configDir: files, names });
      const out = listing([], fake);
      for (const cut of [out.indexOf(FACTS_END_MARKER), out.indexOf('@@P\n') + 4, out.indexOf(`${READS_MARKER}\n`)]) {
        expect(() => parseFirstExec(out.slice(0, cut), req)).toThrow(/Postfix parameters .* did not come back/);
      }
      expect(parseFirstExec(out.slice(0, out.indexOf(`${READS_MARKER}\n`) + READS_MARKER.length + 1), req).facts.postfix_version).toBe('9.9.9');
    });
  });

  it('the facts script alone (an older controller, or a failed tail): facts only', () => {
    const fake = fakePostconf(fresh('bin'), { version: '9.9.9', configDir: files, names });
    const out = execFileSync('/bin/sh', ['-c', factsScript()], { encoding: 'utf8', env: { PATH: fake.path } });
    expect(parseFirstExec(out, req)).toEqual({ facts: parseFacts(out), names: null, reads: null });
  });

  // root reads a file whatever its mode
  it.skipIf(process.getuid?.() === 0)('an unreadable file is left out of the reads (its task reads it again and says why), the rest is kept', () => {
    const locked = path.join(fresh('locked'), 'locked.cf');
    writeFileSync(locked, 'secret\n');
    chmodSync(locked, 0o000);
    const lockedReq: ReadRequest = { files: [main, locked], stats: [], commands: [] };
    const fake = fakePostconf(fresh('bin'), { version: '9.9.9', configDir: files, names });
    const first = parseFirstExec(run(['9.9.9'], fake, lockedReq), lockedReq);
    expect(first.reads!.files.has(locked)).toBe(false);
    expect(first.reads!.files.get(main)!.content).toEqual(Buffer.from('myhostname = h1\n'));
  });
});

describe('parseFirstExec on output it cannot take for whole', () => {
  const req: ReadRequest = { files: ['/a'], stats: [], commands: [] };
  const facts = 'hostname=h1\nuid=0\npostfix_version=3.7.11\n';
  const b64 = (s: string) => Buffer.from(s).toString('base64');

  it('reads that do not match the request give no reads, and never throw', () => {
    for (const reads of ['@@F f7 f\n\n', '@@C c0 0\n\n\n', '', 'garbage\n']) {
      const out = `${facts}${FACTS_END_MARKER}\n${READS_MARKER}\n${reads}${READS_END_MARKER}\n`;
      expect(parseFirstExec(out, req), JSON.stringify(reads)).toMatchObject({ facts: { hostname: 'h1' }, reads: null });
    }
  });

  it('an unreadable file is left out; a file with no answer at all means the reads were cut short', () => {
    const two: ReadRequest = { files: ['/a', '/b'], stats: [], commands: [] };
    const unreadable = parseFirstExec(`${facts}${FACTS_END_MARKER}\n${READS_MARKER}\n@@F f0 ! permission denied\n\n@@F f1 -\n\n${READS_END_MARKER}\n`, two);
    expect([...unreadable.reads!.files.keys()]).toEqual(['/b']);
    const silent = parseFirstExec(`${facts}${FACTS_END_MARKER}\n${READS_MARKER}\n@@F f1 -\n\n${READS_END_MARKER}\n`, two);
    expect(silent.reads).toBeNull();
  });

  it('names without the reads marker after them are not taken', () => {
    const out = `${facts}${FACTS_END_MARKER}\n@@N 0 3.7.11\n${b64('a_name = 1\n')}\n`;
    expect(parseFirstExec(out, req)).toMatchObject({ names: null, reads: null });
    expect(parseFirstExec(`${out}${READS_MARKER}\n`, req)).toMatchObject({ names: { version: '3.7.11', names: new Set(['a_name']) }, reads: null });
  });

  it('a marker inside a line is not a marker', () => {
    const out = `${facts}${FACTS_END_MARKER}\nx${READS_MARKER}\n@@F f0 -\n\nx${READS_END_MARKER}\n`;
    expect(parseFirstExec(out, req).reads).toBeNull();
  });

  it('facts come back even when nothing after them does', () => {
    expect(parseFirstExec(facts, req)).toEqual({ facts: parseFacts(facts), names: null, reads: null });
  });
});

describe('parseReadOutput with skipUnreadable', () => {
  const req: ReadRequest = { files: ['/a', '/b'], stats: ['/c'], commands: [{ key: 'k', script: 'true' }] };
  const out = ['@@F f0 ! permission denied', '', '@@F f1 -', '', '@@F s0 -', '', '@@C c0 0', '', ''].join('\n');

  it('without it, an unreadable file fails the read, naming the file and why', () => {
    expect(() => parseReadOutput(req, out)).toThrow('cannot read /a: permission denied');
  });

  it('with it, the file is left out and the rest is read', () => {
    const r = parseReadOutput(req, out, { skipUnreadable: true });
    expect([...r.files.keys()].sort()).toEqual(['/b', '/c']);
    expect(r.commands.get('k')).toEqual({ stdout: Buffer.alloc(0), stderr: Buffer.alloc(0), code: 0 });
  });

  it('still fails on a path or a command with no answer (the read was cut short)', () => {
    const noB = out.replace('@@F f1 -\n\n', '');
    expect(() => parseReadOutput(req, noB, { skipUnreadable: true })).toThrow('no answer for /b: the read was cut short');
    const noCommand = out.replace('@@C c0 0\n\n', '');
    expect(() => parseReadOutput(req, noCommand, { skipUnreadable: true })).toThrow('no answer for "k": the read was cut short');
  });
});

describe('firstExecTail', () => {
  it('asks for the names, then reads in a subshell whose stdin is closed, between the markers', () => {
    const req: ReadRequest = { files: ['/etc/postfix/main.cf'], stats: [], commands: [] };
    const tail = firstExecTail(['3.7.11'], req);
    const lines = tail.split('\n');
    expect(lines.indexOf(`echo ${READS_MARKER}`)).toBeGreaterThan(0);
    expect(lines.at(-1)).toBe(`echo ${READS_END_MARKER}`);
    expect(tail).toContain(`( ${readScript(req)}\n) </dev/null`);
    expect(firstExecTail([], { files: [], stats: [], commands: [] })).not.toContain('pv_file');
  });

  it('a read that exits early (no temporary directory) does not end the exec: the end marker still comes, the reads are null', () => {
    const req: ReadRequest = { files: [], stats: [], commands: [{ key: 'k', script: 'true' }] };
    // mktemp fails: the read script exits 70 in its subshell
    const out = execFileSync('/bin/sh', ['-c', factsScript(firstExecTail([], req))], {
      encoding: 'utf8',
      env: { PATH: '/usr/local/bin:/usr/bin:/bin', TMPDIR: '/nonexistent/tmp' },
      stdio: ['ignore', 'pipe', 'ignore'],
    });
    expect(out.endsWith(`${READS_END_MARKER}\n`)).toBe(true);
    expect(parseFirstExec(out, req)).toMatchObject({ reads: null });
  });
});

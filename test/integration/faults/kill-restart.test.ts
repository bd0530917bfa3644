/**
 * The SSH connection dies while Postfix is being restarted by a handler (the sshd session serving provision is
 * killed inside the host while `service postfix restart` or the health check after it runs). Every trial checks
 * that main.cf is entirely old or entirely new, that the host is reported unreachable or failed, and that a
 * rerun converges. The handler was on record on the host before the file was written, and the record goes only
 * in the restart's own step once its health check passed on the host (the step runs on after the connection
 * died): so either the record is still there and the rerun runs the restart the dead run could not finish, or
 * the dead run's restart did finish, healthy, after main.cf was written, and the rerun has nothing to do. Either
 * way Postfix runs and serves port 25, and a further run changes nothing.
 * Run: PROVISION_REQUIRE_LAB=1 npx vitest run --project lab test/integration/faults/kill-restart.test.ts
 */
import { afterAll, describe, expect, inject, it } from 'vitest';
import { labReset, type LabHost } from '../../lab/lab.js';
import { hostSha, killSessions, leftovers, poll, processes, provision, results, sh, sleep, waitQuiet, writePlaybook } from './support.js';
import { banner } from '../../support/net.js';
import { tempDir } from '../../support/tmp.js';

const lab = inject('lab');

const TRIALS = 20;
const MAX_ATTEMPTS = 40;

const PLAYBOOK = `- hosts: all
  tasks:
    - name: TLS log level
      postconf:
        settings:
          smtpd_tls_loglevel: "{{ level }}"
      notify: restart postfix

  handlers:
    - name: restart postfix
      service:
        name: postfix
        state: restarted
`;


describe.skipIf(!lab)('the connection dies while a handler restarts Postfix', () => {
  const state = lab!;
  const host = state?.hosts.find((h) => h.flavour === 'debian') as LabHost;
  const dir = tempDir('provision-faults-restart-');
  const tally = { old: 0, new: 0, partial: 0, missed: 0, postfixDownAfterKill: 0, finishedOnHost: 0 };

  afterAll(async () => {
    if (state) await labReset(state, [host]);
    console.log(
      `kill during the postfix restart: ${tally.old + tally.new} kills → main.cf ${tally.old} entirely old, ${tally.new} entirely new, ${tally.partial} partial; ` +
        `postfix left stopped by the dead run ${tally.postfixDownAfterKill} times, running after every rerun; ` +
        `the dead run's restart finished healthy on the host ${tally.finishedOnHost} times; ${tally.missed} runs finished before the kill`,
    );
  });

  it(`leaves main.cf whole and a rerun restarts Postfix (${TRIALS} kills)`, async () => {
    const pb = writePlaybook(dir, 'restart.yaml', PLAYBOOK);
    const mainCf = '/etc/postfix/main.cf';
    for (let attempt = 0; attempt < MAX_ATTEMPTS && tally.old + tally.new + tally.partial < TRIALS; attempt++) {
      const level = String(attempt % 2 === 0 ? 1 : 0);
      const before = await hostSha(host, mainCf);

      let finished = false;
      const run = provision(state, pb, ['--limit', host.name, '-e', `level=${level}`]).finally(() => (finished = true));
      const due = await poll(async () => ((await processes(host)).some((p) => /postfix (restart|start|stop)/.test(p.args)) ? true : finished ? false : null), 300_000, 20);
      // Spread the kills over the stop, the start and the health check that follows.
      if (due) await sleep(Math.floor(Math.random() * 600));
      const killed = due ? await killSessions(host) : [];
      const first = await run;
      const handler = results(first.events, host).find((e) => e.task === 'restart postfix');
      // A late poll can kill after the handler ended: no trial then, but the host must still converge below.
      const inRestart = killed.length > 0 && (handler?.status === 'unreachable' || handler?.status === 'failed');
      if (!inRestart) tally.missed++;
      const lost = results(first.events, host).some((e) => e.status === 'unreachable' || e.status === 'failed');
      if (lost) expect(first.code & 6).not.toBe(0);
      else expect(first.code, first.stderr).toBe(0);
      if (!inRestart && first.code === 0) continue;

      expect(await waitQuiet(host)).toBe(true);
      const now = await hostSha(host, mainCf);
      const wanted = (await sh(host, 'postconf -h smtpd_tls_loglevel')).trim();
      // main.cf was written before the handler started: it is the new one, whole (postconf parses it).
      if (inRestart) {
        if (now === before) tally.old++;
        else if (wanted === level) tally.new++;
        else tally.partial++;
      }
      expect(wanted === level || now === before).toBe(true);
      expect(await leftovers(host, '/etc/postfix')).toEqual([]);
      const up = (await sh(host, 'postfix status >/dev/null 2>&1 && echo up || echo down')).trim() === 'up';
      if (!up) tally.postfixDownAfterKill++;
      const recorded = (await sh(host, 'ls -A /var/lib/provision/pending 2>/dev/null; true')).trim() !== '';
      if (inRestart && !recorded) {
        // The record went with the restart's step: that step finished on the host and its health check passed, so
        // Postfix runs, was started after main.cf was written, and serves port 25.
        tally.finishedOnHost++;
        expect(wanted).toBe(level);
        expect(up).toBe(true);
        const ages = (await sh(host, 'echo $(( $(date +%s) - $(stat -c %Y /etc/postfix/main.cf) )) $(ps -o etimes= -p $(cat /var/spool/postfix/pid/master.pid))')).trim().split(/\s+/).map(Number);
        expect(ages[1]!).toBeLessThanOrEqual(ages[0]!);
        expect(await banner(host.ip, 25)).toMatch(/^220 /);
      }

      const again = await provision(state, pb, ['--limit', host.name, '-e', `level=${level}`]);
      expect(again.code, again.stderr).toBe(0);
      // The restart the dead run could not see through runs again, from the record written with main.cf; a restart
      // that finished healthy on the host took the record with it, and there is nothing left to do.
      const restarted = results(again.events, host).filter((e) => e.task === 'restart postfix');
      if (inRestart) expect(restarted.map((e) => e.status)).toEqual(recorded ? ['changed'] : []);
      expect((await sh(host, 'postconf -h smtpd_tls_loglevel')).trim()).toBe(level);
      expect((await sh(host, 'postfix status >/dev/null 2>&1 && echo up || echo down')).trim()).toBe('up');
      expect(await banner(host.ip, 25)).toMatch(/^220 /);
    }
    expect(tally.partial).toBe(0);
    expect(tally.old + tally.new).toBe(TRIALS);

    // Converged: nothing left to do, no handler runs again.
    const settled = (await sh(host, 'postconf -h smtpd_tls_loglevel')).trim();
    const quiet = await provision(state, pb, ['--limit', host.name, '-e', `level=${settled}`]);
    expect(quiet.code).toBe(0);
    expect(results(quiet.events, host).map((e) => [e.task, e.status])).toEqual([['TLS log level', 'ok']]);
  }, 2_400_000);
});

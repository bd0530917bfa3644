/**
 * The SSH connection dies while Postfix is being restarted by a handler (the sshd session serving provision is
 * killed inside the host while `service postfix restart` or the health check after it runs). Every trial checks
 * that main.cf is entirely old or entirely new, that the host is reported unreachable or failed, and that a
 * rerun converges: it runs the restart the dead run could not finish (the handler was on record on the host
 * before the file was written), Postfix runs and serves port 25, and a further run changes nothing.
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
  const tally = { old: 0, new: 0, partial: 0, missed: 0, postfixDownAfterKill: 0 };

  afterAll(async () => {
    if (state) await labReset(state, [host]);
    console.log(
      `kill during the postfix restart: ${tally.old + tally.new} kills → main.cf ${tally.old} entirely old, ${tally.new} entirely new, ${tally.partial} partial; ` +
        `postfix left stopped by the dead run ${tally.postfixDownAfterKill} times, running after every rerun; ${tally.missed} runs finished before the kill`,
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
      if ((await sh(host, 'postfix status >/dev/null 2>&1 && echo up || echo down')).trim() === 'down') tally.postfixDownAfterKill++;

      const again = await provision(state, pb, ['--limit', host.name, '-e', `level=${level}`]);
      expect(again.code, again.stderr).toBe(0);
      // The restart the dead run could not see through runs again, from the record written with main.cf.
      const restarted = results(again.events, host).filter((e) => e.task === 'restart postfix');
      if (inRestart) expect(restarted.map((e) => e.status)).toEqual(['changed']);
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

/**
 * The SSH connection dies in the middle of a file write: the sshd session serving provision is killed inside the
 * host, at three moments of the write (while the script and its content are still arriving, while the temporary
 * file is being filled, while the new content is being validated). Every trial checks that the file is entirely
 * the old or entirely the new content with no temporary file left, that the host is reported unreachable or
 * failed, and that a rerun converges: the new content, and the handler the write notified has run on it.
 * Run: PROVISION_REQUIRE_LAB=1 npx vitest run --project lab test/integration/faults/kill-write.test.ts
 */
import path from 'node:path';
import { afterAll, describe, expect, inject, it } from 'vitest';
import { labReset, type LabHost } from '../../lab/lab.js';
import { hostSha, killSessions, leftovers, poll, processes, provision, randomText, results, scripts, sh, sha, waitQuiet, writePlaybook } from './support.js';
import { tempDir } from '../../support/tmp.js';

const lab = inject('lab');

/** Kills per moment; three moments make the 20+ trials the issue asks for. */
const TRIALS = 8;
/** Runs that ended before the kill landed do not count; give up after this many attempts per moment. */
const MAX_ATTEMPTS = 30;
const DIR = '/root/faults/faults';
const TARGET = `${DIR}/target`;

type Moment = 'script arriving' | 'temporary file' | 'validation';

const PLAYBOOK = (validate: boolean) => `- hosts: all
  tasks:
    - name: write the target
      copy:
        dest: ${TARGET}
        src: "{{ payload }}"${validate ? '\n        validate: "sleep 2.5 && test -s %s"' : ''}
      notify: record the target

  handlers:
    - name: record the target
      shell: "sha256sum < ${TARGET} | cut -c1-64 >> ${DIR}/handled"
`;

describe.skipIf(!lab)('the connection dies in the middle of a file write', () => {
  const state = lab!;
  const host = state?.hosts.find((h) => h.flavour === 'rhel') as LabHost;
  const dir = tempDir('provision-faults-write-');
  /** Kills that landed in the write (old/new/partial), and runs the kill missed: over before it, or hit before or after the write. */
  const tally: Record<Moment, { old: number; new: number; partial: number; missed: number }> = {
    'script arriving': { old: 0, new: 0, partial: 0, missed: 0 },
    'temporary file': { old: 0, new: 0, partial: 0, missed: 0 },
    validation: { old: 0, new: 0, partial: 0, missed: 0 },
  };

  afterAll(async () => {
    if (state) await labReset(state, [host]);
    for (const [moment, t] of Object.entries(tally)) {
      console.log(`kill during ${moment}: ${t.old + t.new + t.partial} kills in the write → ${t.old} entirely old, ${t.new} entirely new, ${t.partial} partial; ${t.missed} more runs where the kill missed the write (each also checked and rerun)`);
    }
  });

  /** When to kill: the moment has come on the host (checked by polling it while the run goes on). */
  const arrived: Record<Moment, () => Promise<boolean>> = {
    // The write's script carries the 4 MiB content (5.4 MiB of base64): a script that has read over 1.5 MiB is
    // receiving it (the facts script, which holds the lock with a waiting `cat`, reads about half a MiB).
    'script arriving': async () => {
      const ps = await processes(host);
      const holders = new Set(ps.filter((p) => p.args === 'cat').map((p) => p.ppid));
      return scripts(ps).some((p) => p.read > 1.5 * 1024 * 1024 && !holders.has(p.pid));
    },
    // The here-document that fills the temporary file is decoded by base64 -d.
    'temporary file': async () => (await processes(host)).some((p) => p.args === 'base64 -d'),
    validation: async () => (await processes(host)).some((p) => p.args === 'sleep 2.5'),
  };

  async function trials(moment: Moment, size: number) {
    const pb = writePlaybook(path.join(dir, moment.replace(/ /g, '-')), 'write.yaml', PLAYBOOK(moment === 'validation'));
    await sh(host, `mkdir -p ${DIR} && rm -f ${DIR}/handled && printf 'the first content\\n' > ${TARGET}`);
    let old: Buffer = Buffer.from('the first content\n');
    const t = tally[moment];
    for (let attempt = 0; attempt < MAX_ATTEMPTS && t.old + t.new + t.partial < TRIALS; attempt++) {
      const next = randomText(size, `${moment} attempt ${attempt}`);
      const payload = `new-${attempt}.bin`;
      writePlaybook(path.dirname(pb), path.basename(pb), PLAYBOOK(moment === 'validation'), { [`files/${payload}`]: next });

      let finished = false;
      const run = provision(state, pb, ['--limit', host.name, '-e', `payload=${payload}`]).finally(() => (finished = true));
      const due = await poll(async () => ((await arrived[moment]()) ? true : finished ? false : null), 300_000, 20);
      const killed = due ? await killSessions(host) : [];
      const first = await run;
      const write = results(first.events, host).find((e) => e.task === 'write the target');
      // Polling a loaded machine can be late or early: a kill that hit the connection before the write started
      // (write not reported) or after it ended (changed) is no trial, but the file must be right all the same.
      const inWrite = killed.length > 0 && (write?.status === 'unreachable' || write?.status === 'failed');
      if (!inWrite) t.missed++;
      // A lost connection is reported as such (unreachable, exit code bit 4, or failed, bit 2), never as a clean run.
      const lost = results(first.events, host).some((e) => e.status === 'unreachable' || e.status === 'failed');
      if (inWrite) expect(lost).toBe(true);
      if (lost) expect(first.code & 6).not.toBe(0);
      else expect(first.code, first.stderr).toBe(0);

      // Whatever the dead connection had started ends on its own; then the file is one or the other, whole.
      expect(await waitQuiet(host)).toBe(true);
      const now = await hostSha(host, TARGET);
      if (inWrite) {
        if (now === sha(old)) t.old++;
        else if (now === sha(next)) t.new++;
        else t.partial++;
      }
      expect([sha(old), sha(next)]).toContain(now);
      if (write?.status === 'changed') expect(now).toBe(sha(next));
      if (!write) expect(now).toBe(sha(old));
      expect(await leftovers(host, DIR)).toEqual([]);

      // A rerun converges: the new content, and the notified handler ran on it (even when the dead run had
      // already written the file, and so the rerun finds nothing to change).
      const again = await provision(state, pb, ['--limit', host.name, '-e', `payload=${payload}`]);
      expect(again.code, again.stderr).toBe(0);
      expect(await hostSha(host, TARGET)).toBe(sha(next));
      const handled = (await sh(host, `cat ${DIR}/handled`)).trim().split('\n');
      expect(handled.at(-1)).toBe(sha(next));
      old = next;
    }
    expect(t.partial).toBe(0);
    expect(t.old + t.new).toBe(TRIALS);
  }

  it(`while the script and its content arrive (${TRIALS} kills)`, async () => trials('script arriving', 4 * 1024 * 1024), 1_200_000);

  // base64 -d fills the temporary file from a script that has fully arrived: 4 MiB took it a few tens of ms, which
  // the 20 ms poll of the host's process list often missed; 16 MiB keeps it running long enough to be seen.
  it(`while the temporary file is filled (${TRIALS} kills)`, async () => trials('temporary file', 16 * 1024 * 1024), 1_200_000);

  it(`while the new content is validated (${TRIALS} kills)`, async () => trials('validation', 64 * 1024), 1_200_000);
});

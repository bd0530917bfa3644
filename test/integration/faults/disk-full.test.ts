/**
 * The target filesystem is full: a small tmpfs is mounted over the target directory inside the host and filled.
 * The task fails with the reason, the original file is intact (content, mode), and no temporary file is left.
 * Run: PROVISION_REQUIRE_LAB=1 npx vitest run --project lab test/integration/faults/disk-full.test.ts
 */
import { afterAll, describe, expect, inject, it } from 'vitest';
import { labReset, type LabHost } from '../../lab/lab.js';
import { hostSha, leftovers, provision, results, sh, writePlaybook } from './support.js';
import { tempDir } from '../../support/tmp.js';

const lab = inject('lab');

describe.skipIf(!lab)('the target filesystem is full', () => {
  const state = lab!;
  const host = state?.hosts.find((h) => h.flavour === 'debian') as LabHost;
  const dir = tempDir('provision-faults-full-');

  afterAll(async () => {
    if (!state) return;
    await sh(host, 'for m in /etc/postfix /root/faults/full; do mountpoint -q $m && umount $m; done; true');
    await labReset(state, [host]);
  });

  /** Mount a `sizeKb` tmpfs over `mount` (keeping what was there), then fill it up. */
  async function fill(mount: string, sizeKb: number) {
    await sh(
      host,
      `set -e; mkdir -p ${mount}; keep=$(mktemp -d); cp -a ${mount}/. "$keep"/
mount -t tmpfs -o size=${sizeKb}k tmpfs ${mount}; cp -a "$keep"/. ${mount}/; rm -rf "$keep"
dd if=/dev/zero of=${mount}/.filler bs=1k 2>/dev/null || true
dd if=/dev/zero of=${mount}/.filler2 bs=1 2>/dev/null || true`,
    );
    expect((await sh(host, `df -k --output=avail ${mount} | tail -1`)).trim()).toBe('0');
  }

  it('fails a copy with "No space left on device" and leaves the original and its mode as they were', async () => {
    await sh(host, 'mkdir -p /root/faults/full && printf "the original\\n" > /root/faults/full/app.conf && chmod 0600 /root/faults/full/app.conf');
    await fill('/root/faults/full', 256);
    const before = await hostSha(host, '/root/faults/full/app.conf');
    const pb = writePlaybook(dir, 'copy.yaml', `- hosts: all\n  tasks:\n    - name: write app.conf\n      copy:\n        dest: /root/faults/full/app.conf\n        content: "{{ 'x' * 100000 }}"\n`);

    const r = await provision(state, pb, ['--limit', host.name]);

    expect(r.code).toBe(2);
    const [write] = results(r.events, host);
    expect(write?.status).toBe('failed');
    expect(write?.msg).toMatch(/^cannot write \/root\/faults\/full\/app\.conf: .*No space left on device$/);
    expect(await hostSha(host, '/root/faults/full/app.conf')).toBe(before);
    expect((await sh(host, 'stat -c %a /root/faults/full/app.conf')).trim()).toBe('600');
    expect(await leftovers(host, '/root/faults/full')).toEqual([]);
  });

  it('fails a main.cf edit the same way: main.cf intact, postfix still reads it, no temporary file', async () => {
    const before = await hostSha(host, '/etc/postfix/main.cf');
    await fill('/etc/postfix', 1024);
    const pb = writePlaybook(dir, 'postconf.yaml', '- hosts: all\n  tasks:\n    - name: TLS log level\n      postconf:\n        settings:\n          smtpd_tls_loglevel: 1\n');

    const r = await provision(state, pb, ['--limit', host.name]);

    expect(r.code).toBe(2);
    const [edit] = results(r.events, host);
    expect(edit?.status).toBe('failed');
    expect(edit?.msg).toMatch(/^cannot write \/etc\/postfix\/main\.cf: .*No space left on device$/);
    expect(await hostSha(host, '/etc/postfix/main.cf')).toBe(before);
    expect((await sh(host, 'postconf -h smtpd_tls_loglevel')).trim()).toBe('0');
    expect(await leftovers(host, '/etc/postfix')).toEqual([]);
  });
});

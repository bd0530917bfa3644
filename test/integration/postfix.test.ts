/**
 * Issue 4: the postconf and master_cf modules on the lab's real hosts of both flavours, through the CLI over real
 * SSH. What the files hold and what Postfix makes of them is read inside the hosts (labExec), not through the
 * connection under test.
 * Run: PROVISION_REQUIRE_LAB=1 npx vitest run --project lab test/integration/postfix.test.ts
 */
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, inject, it } from 'vitest';
import { labExec, labReset, type LabHost } from '../lab/lab.js';
import { labArgs, runCli } from '../support/cli.js';
import { recap, results } from '../support/events.js';

const lab = inject('lab');

const PLAYBOOKS = fileURLToPath(new URL('../fixtures/playbooks/', import.meta.url));
const MAIN_TASK = "main.cf offers TLS with the host's certificate";
const MASTER_TASK = 'master.cf runs smtpd on 465 with implicit TLS and SASL';

/** What a lab host's flavour puts where, and the master.cf edit the smtps task makes there. */
interface Flavoured {
  certDir: string;
  keyFile: (h: LabHost) => string;
  /** the name the 465 listener keeps in master.cf */
  listener: string;
  /** the commented template, as the lab ships it */
  template: string[];
  /** the same lines after the task */
  enabled: string[];
}

// Only the lab's first two flavours run here (the lab's default).
const FLAVOURS = {
  rhel: {
    certDir: '/etc/pki/tls/certs',
    keyFile: (h) => `/etc/pki/tls/private/${h.name}.key.nopasswd`,
    listener: 'smtps',
    template: [
      '#smtps     inet  n       -       n       -       -       smtpd',
      '#  -o smtpd_tls_wrappermode=yes',
      '#  -o smtpd_sasl_auth_enable=yes',
      '#  -o smtpd_client_restrictions=permit_sasl_authenticated,reject',
      '#  -o milter_macro_daemon_name=ORIGINATING',
    ],
    enabled: [
      'smtps     inet  n       -       n       -       -       smtpd',
      '  -o smtpd_tls_wrappermode=yes',
      '  -o smtpd_sasl_auth_enable=yes',
      '  -o smtpd_client_restrictions=permit_sasl_authenticated,reject',
      '#  -o milter_macro_daemon_name=ORIGINATING',
    ],
  },
  debian: {
    certDir: '/etc/ssl/certs',
    keyFile: (h) => `/etc/ssl/private/${h.name}.key`,
    listener: 'submissions',
    template: [
      '#submissions     inet  n       -       y       -       -       smtpd',
      '#  -o syslog_name=postfix/submissions',
      '#  -o smtpd_tls_wrappermode=yes',
      '#  -o smtpd_sasl_auth_enable=yes',
      '#  -o smtpd_reject_unlisted_recipient=no',
      '#     Instead of specifying complex smtpd_<xxx>_restrictions here,',
      '#     specify "smtpd_<xxx>_restrictions=$mua_<xxx>_restrictions"',
      '#     here, and specify mua_<xxx>_restrictions in main.cf (where',
      '#     "<xxx>" is "client", "helo", "sender", "relay", or "recipient").',
      '#  -o smtpd_client_restrictions=',
      '#  -o smtpd_helo_restrictions=',
      '#  -o smtpd_sender_restrictions=',
      '#  -o smtpd_relay_restrictions=',
      '#  -o smtpd_recipient_restrictions=permit_sasl_authenticated,reject',
      '#  -o milter_macro_daemon_name=ORIGINATING',
    ],
    // The service line and the three -o lines the task names are uncommented in place (chroot y → n, the empty
    // client restrictions set); the template's other -o lines and its explanation stay comments.
    enabled: [
      'submissions     inet  n       -       n       -       -       smtpd',
      '#  -o syslog_name=postfix/submissions',
      '  -o smtpd_tls_wrappermode=yes',
      '  -o smtpd_sasl_auth_enable=yes',
      '#  -o smtpd_reject_unlisted_recipient=no',
      '#     Instead of specifying complex smtpd_<xxx>_restrictions here,',
      '#     specify "smtpd_<xxx>_restrictions=$mua_<xxx>_restrictions"',
      '#     here, and specify mua_<xxx>_restrictions in main.cf (where',
      '#     "<xxx>" is "client", "helo", "sender", "relay", or "recipient").',
      '  -o smtpd_client_restrictions=permit_sasl_authenticated,reject',
      '#  -o smtpd_helo_restrictions=',
      '#  -o smtpd_sender_restrictions=',
      '#  -o smtpd_relay_restrictions=',
      '#  -o smtpd_recipient_restrictions=permit_sasl_authenticated,reject',
      '#  -o milter_macro_daemon_name=ORIGINATING',
    ],
  },
} as Record<LabHost['flavour'], Flavoured>;

/** The main.cf lines postfix-smtps.yaml adds (none of them is in the lab's main.cf, so all go at the end). */
function mainLines(h: LabHost): string[] {
  const f = FLAVOURS[h.flavour];
  return [
    'smtpd_tls_security_level = may',
    `smtpd_tls_cert_file = ${f.certDir}/${h.name}.crt`,
    `smtpd_tls_key_file = ${f.keyFile(h)}`,
    `smtpd_tls_CApath = ${f.certDir}`,
    'smtpd_tls_loglevel = 1',
  ];
}

const block = (lines: string[]) => `${lines.join('\n')}\n`;

/** The removed (`-`) or added (`+`) lines of a unified diff, without the sign. */
function diffLines(diff: string, sign: '-' | '+'): string[] {
  return diff
    .split('\n')
    .filter((l) => l.startsWith(sign) && !l.startsWith(`${sign.repeat(3)} `))
    .map((l) => l.slice(1));
}

async function sh(host: LabHost, script: string): Promise<string> {
  const r = await labExec(host, script, { timeoutMs: 60_000 });
  if (r.code !== 0) throw new Error(`${host.name}: ${script} exited ${r.code}: ${r.stderr}`);
  return r.stdout;
}

/**
 * Content, inode, size and times of both files and of /etc/postfix itself: any write (a temporary file, a rename,
 * a touch) changes one of them.
 */
function fingerprint(host: LabHost): Promise<string> {
  return sh(host, "cd /etc/postfix && sha256sum main.cf master.cf && stat -c '%n %i %s %y %z' . main.cf master.cf");
}

describe.skipIf(!lab)('postconf and master_cf on lab hosts (issue 4)', () => {
  const state = lab!;
  const rhel = state?.hosts.find((h) => h.flavour === 'rhel');
  const debian = state?.hosts.find((h) => h.flavour === 'debian');
  const hosts = [rhel!, debian!];

  const provision = (command: 'run' | 'check', playbook: string, extra: string[] = []) =>
    runCli([
      command,
      path.join(PLAYBOOKS, playbook),
      ...labArgs(state),
      '--limit',
      hosts.map((h) => h.name).join(','),
      '--json',
      '--no-retry-file',
      ...extra,
    ]);

  afterEach(async () => {
    await labReset(state, hosts);
  });

  it('check shows the diffs and writes nothing; the run then writes exactly those diffs', async () => {
    const before = await Promise.all(hosts.map(fingerprint));

    const check = await provision('check', 'postfix-smtps.yaml');
    expect(check.stderr).toBe('');
    expect(check.code).toBe(8);
    expect(await Promise.all(hosts.map(fingerprint))).toEqual(before);
    for (const h of hosts) {
      const f = FLAVOURS[h.flavour];
      const r = results(check.events, h);
      expect(r.map((x) => [x.task, x.status, x.check])).toEqual([
        [MAIN_TASK, 'changed', true],
        [MASTER_TASK, 'changed', true],
      ]);
      const [main, master] = r.map((x) => x.diffs ?? []);
      expect(main!.map((d) => d.path)).toEqual(['/etc/postfix/main.cf']);
      for (const line of mainLines(h)) expect(main![0]!.diff).toContain(`\n+${line}\n`);
      expect(master!.map((d) => d.path)).toEqual(['/etc/postfix/master.cf']);
      // The lines that stay the same (comments inside the template) are context, not part of the change.
      expect(diffLines(master![0]!.diff, '-')).toEqual(f.template.filter((l, i) => l !== f.enabled[i]));
      expect(diffLines(master![0]!.diff, '+')).toEqual(f.enabled.filter((l, i) => l !== f.template[i]));
    }

    const run = await provision('run', 'postfix-smtps.yaml', ['--diff']);
    expect(run.code).toBe(0);
    for (const h of hosts) {
      expect(results(run.events, h).map((x) => x.diffs)).toEqual(results(check.events, h).map((x) => x.diffs));
    }
  });

  it('edits main.cf and master.cf in place, Postfix reads the result without a warning, and a second run changes nothing', async () => {
    const original = new Map<LabHost, { main: string; master: string }>();
    for (const h of hosts) original.set(h, { main: await sh(h, 'cat /etc/postfix/main.cf'), master: await sh(h, 'cat /etc/postfix/master.cf') });

    const first = await provision('run', 'postfix-smtps.yaml');
    expect(first.stderr).toBe('');
    expect(first.code).toBe(0);

    for (const h of hosts) {
      const f = FLAVOURS[h.flavour];
      const was = original.get(h)!;
      expect(results(first.events, h).map((x) => [x.task, x.status])).toEqual([
        [MAIN_TASK, 'changed'],
        [MASTER_TASK, 'changed'],
      ]);

      // The bytes: main.cf gains the five settings at its end, master.cf has the template enabled where it was.
      expect(await sh(h, 'cat /etc/postfix/main.cf')).toBe(`${was.main}${block(mainLines(h))}`);
      expect(was.master).toContain(block(f.template));
      expect(await sh(h, 'cat /etc/postfix/master.cf')).toBe(was.master.replace(block(f.template), () => block(f.enabled)));

      // What Postfix itself reads, and that it has nothing to complain about.
      const n = await labExec(h, 'postconf -n');
      expect([n.code, n.stderr]).toEqual([0, '']);
      expect(n.stdout.split('\n')).toEqual(expect.arrayContaining(mainLines(h)));

      const m = await labExec(h, 'postconf -M');
      expect([m.code, m.stderr]).toEqual([0, '']);
      const on465 = m.stdout.split('\n').filter((l) => /^(smtps|submissions|465)\s/.test(l));
      expect(on465).toHaveLength(1);
      expect(on465[0]!.split(/\s+/).slice(0, 8)).toEqual([f.listener, 'inet', 'n', '-', 'n', '-', '-', 'smtpd']);

      // exactly the options the task asks for: none of the template's others came along
      const p = await labExec(h, 'postconf -P');
      expect([p.code, p.stderr]).toEqual([0, '']);
      expect(p.stdout.split('\n').filter((l) => l.startsWith(`${f.listener}/inet/`))).toEqual([
        `${f.listener}/inet/smtpd_client_restrictions = permit_sasl_authenticated,reject`,
        `${f.listener}/inet/smtpd_sasl_auth_enable = yes`,
        `${f.listener}/inet/smtpd_tls_wrappermode = yes`,
      ]);

      const check = await labExec(h, 'postfix check 2>&1');
      expect([check.code, check.stdout]).toEqual([0, '']);
    }

    const written = await Promise.all(hosts.map(fingerprint));
    const second = await provision('run', 'postfix-smtps.yaml');
    expect(second.code).toBe(0);
    for (const h of hosts) {
      expect(results(second.events, h).map((x) => [x.task, x.status])).toEqual([
        [MAIN_TASK, 'ok'],
        [MASTER_TASK, 'ok'],
      ]);
      expect(recap(second.events).hosts[h.name]).toMatchObject({ changed: 0, failed: 0 });
    }
    expect(await Promise.all(hosts.map(fingerprint))).toEqual(written);
  });

  it.each([
    {
      playbook: 'postfix-typo-capth.yaml',
      task: 'main.cf offers TLS',
      module: 'postconf',
      message: 'unknown Postfix parameter in /etc/postfix/main.cf: "smtpd_tls_CApth" (did you mean "smtpd_tls_CApath"?)',
    },
    {
      playbook: 'postfix-typo-smtplib.yaml',
      task: 'master.cf runs smtpd on 465 with implicit TLS and SASL',
      module: 'master_cf',
      message: 'unknown Postfix parameter in the options of smtps/inet: "smtplib_client_restrictions" (did you mean "smtpd_client_restrictions"?)',
    },
  ])('$playbook fails in $module before any write, suggesting the right name', async ({ playbook, task, module, message }) => {
    const before = await Promise.all(hosts.map(fingerprint));

    const r = await provision('run', playbook);
    expect(r.code).toBe(2);
    for (const h of hosts) {
      // Only the failing task ran: the failure stops the host, so no later task wrote anything either.
      const got = results(r.events, h);
      expect(got.map((x) => [x.task, x.module, x.status])).toEqual([[task, module, 'failed']]);
      expect(got[0]!.msg).toContain(message);
      expect(recap(r.events).hosts[h.name]).toMatchObject({ changed: 0, failed: 1 });
    }
    expect(await Promise.all(hosts.map(fingerprint))).toEqual(before);
  });
});

/**
 * Secrets over real SSH, with the lab's sudo user `deploy`: the sudo password, the SSH password and a key's
 * passphrase are given through the secrets prompter (what --ask-become-pass, --ask-pass and an encrypted key ask
 * on a terminal) and must never appear in any reporter's output (plain, --json, the terminal view), in the events,
 * in error messages, or in a process list on the host while sudo runs. Files written through sudo keep their mode
 * and owner. A host whose key is not in known_hosts is refused by default, and only accepted when asked.
 * Run: PROVISION_REQUIRE_LAB=1 npx vitest run --project lab test/integration/faults/secrets.test.ts
 */
import { execFileSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { Writable } from 'node:stream';
import { afterAll, describe, expect, inject, it } from 'vitest';
import { createSecrets, type Prompter } from '../../../src/connection/secrets.js';
import { createSshRunState, SshConnection } from '../../../src/connection/ssh.js';
import { loadSshConfig } from '../../../src/connection/ssh-config.js';
import { resolveSshTarget } from '../../../src/connection/ssh-target.js';
import { parseInventoryText } from '../../../src/inventory/load.js';
import { loadPlaybook } from '../../../src/playbook/validate.js';
import type { RunEvent } from '../../../src/report/events.js';
import { JsonReporter } from '../../../src/report/json.js';
import { ListrReporter } from '../../../src/report/listr.js';
import { PlainReporter } from '../../../src/report/plain.js';
import { runPlaybook } from '../../../src/runner/run.js';
import { labReset, type LabHost } from '../../lab/lab.js';
import { runCli } from '../../support/cli.js';
import { hostSha, poll, processes, results, sh, writePlaybook } from './support.js';
import { tempDir } from '../../support/tmp.js';

const lab = inject('lab');

interface SecretRun {
  code: number | null;
  /** everything every reporter printed, and the message of an error the run threw */
  text: string;
  events: RunEvent[];
  /** the prompts the run asked */
  prompts: string[];
}

describe.skipIf(!lab)('secrets over SSH and sudo', () => {
  const state = lab!;
  const host = state?.hosts.find((h) => h.flavour === 'debian') as LabHost;
  const dir = tempDir('provision-faults-secrets-');
  const sudoPassword = state?.sudoUser.password ?? '';

  afterAll(async () => {
    if (state) await labReset(state, [host]);
  });

  /** An ssh_config with one block for the host; `lines` replace the identity and host key settings. */
  function sshConfig(name: string, lines: string[]): string {
    const file = path.join(dir, name);
    writeFileSync(file, [`Host ${host.name}`, `  HostName ${host.ip}`, '  ConnectTimeout 10', ...lines.map((l) => `  ${l}`), ''].join('\n'));
    return file;
  }

  /**
   * Run a playbook through the runner with every reporter listening, answering prompts from `answers` (keyed by
   * the start of the prompt). Errors the run throws are caught and their message kept with the output.
   */
  async function run(opts: { playbook: string; config: string; vars?: string; answers: Record<string, string>; askPass?: boolean; askBecomePass?: boolean }): Promise<SecretRun> {
    const prompts: string[] = [];
    const prompter: Prompter = async (prompt) => {
      prompts.push(prompt);
      const key = Object.keys(opts.answers).find((k) => prompt.startsWith(k));
      if (key === undefined) throw new Error(`unexpected prompt ${prompt}`);
      return opts.answers[key]!;
    };
    let text = '';
    const collect = (s: string) => (text += s);
    const terminal = new Writable({
      write(chunk: Buffer, _encoding, done) {
        text += chunk.toString();
        done();
      },
    });
    Object.assign(terminal, { isTTY: true, columns: 120, rows: 40 });
    const reporters = [new JsonReporter(collect), new PlainReporter(collect, false, true), new ListrReporter(collect, false, { stdout: terminal as unknown as NodeJS.WriteStream })];
    const events: RunEvent[] = [];
    const secrets = createSecrets({ interactive: true, askPass: opts.askPass, askBecomePass: opts.askBecomePass, prompter });
    const ssh = createSshRunState(secrets, { retryDelayMs: 200 });
    const config = loadSshConfig(opts.config);
    let code: number | null = null;
    try {
      const becomePassword = opts.askBecomePass ? await secrets.password('become') : undefined;
      const report = await runPlaybook({
        playbook: loadPlaybook(writePlaybook(dir, 'secrets.yaml', opts.playbook)),
        inventory: parseInventoryText(`${host.name} ${opts.vars ?? ''}\n`, path.join(dir, 'hosts'), 'ini'),
        check: false,
        diff: true,
        forks: 5,
        extraVars: {},
        tags: [],
        skipTags: [],
        become: false,
        becomePassword,
        canary: 0,
        retryFile: null,
        connectionFor: (name, vars) => new SshConnection(resolveSshTarget(name, vars, {}, config), ssh),
        emit: (e) => {
          events.push(e);
          for (const r of reporters) r.handle(e);
        },
      });
      code = report.exitCode;
    } catch (e) {
      text += `${(e as Error).message}\n`;
    }
    for (const r of reporters) await r.finish();
    return { code, text: text + JSON.stringify(events), events, prompts };
  }

  const labKeyConfig = () => sshConfig('ssh_config_key', [`User ${state.sudoUser.name}`, `IdentityFile ${state.key}`, 'IdentitiesOnly yes', `UserKnownHostsFile ${state.knownHosts}`]);

  it('the sudo password: used, never shown, never in a process list on the host; files keep mode and owner', async () => {
    await sh(host, 'mkdir -p /root/faults/sec && printf "key = old\\n" > /root/faults/sec/private.conf && chmod 0600 /root/faults/sec/private.conf && printf "a = 1\\n" > /root/faults/sec/shared.conf && chgrp ssl-cert /root/faults/sec/shared.conf && chmod 0640 /root/faults/sec/shared.conf');
    const playbook = `- hosts: all
  become: true
  tasks:
    - name: rewrite a 0600 file
      copy: { dest: /root/faults/sec/private.conf, content: "key = new\\n" }
    - name: edit a root:ssl-cert 0640 file
      lineinfile: { path: /root/faults/sec/shared.conf, line: "b = 2" }
    - name: hold sudo for a while
      command: sleep 4
`;
    const pending = run({ playbook, config: labKeyConfig(), answers: { 'BECOME password': sudoPassword }, askBecomePass: true });
    // While sudo runs on the host, no process there has the password in its arguments or its environment.
    const seen = await poll(async () => ((await processes(host)).some((p) => p.args === 'sleep 4') ? true : null), 120_000, 50);
    expect(seen).toBe(true);
    // The pattern comes on stdin, so that this grep's own command line does not hold it.
    const exposed = await sh(host, 'grep -l -F -f /dev/stdin /proc/[0-9]*/cmdline /proc/[0-9]*/environ 2>/dev/null || true', `${sudoPassword}\n`);
    const args = (await processes(host)).map((p) => p.args).join('\n');
    const r = await pending;

    expect(r.code, r.text).toBe(0);
    expect(r.prompts).toEqual(['BECOME password: ']);
    expect(args).toContain('sudo -S -p ');
    expect(args).not.toContain(sudoPassword);
    expect(exposed.trim()).toBe('');
    expect(r.text).not.toContain(sudoPassword);
    // Nor on the controller: the password travels inside this process only.
    expect(execFileSync('ps', ['-eo', 'args'], { encoding: 'utf8' })).not.toContain(sudoPassword);

    expect((await sh(host, 'stat -c "%a %U %G" /root/faults/sec/private.conf /root/faults/sec/shared.conf')).trim().split('\n')).toEqual(['600 root root', '640 root ssl-cert']);
    expect(await sh(host, 'cat /root/faults/sec/private.conf /root/faults/sec/shared.conf')).toBe('key = new\na = 1\nb = 2\n');
  });

  it('a wrong sudo password fails the host with a message that does not repeat it', async () => {
    const wrong = 'Wr0ng-sudo-pa55word';
    const r = await run({ playbook: '- hosts: all\n  become: true\n  tasks:\n    - command: id -u\n', config: labKeyConfig(), answers: { 'BECOME password': wrong }, askBecomePass: true });
    expect(r.code).toBe(2);
    const failure = results(r.events).find((e) => e.status === 'failed');
    expect(failure?.msg).toMatch(/sudo refused: .*\(use --ask-become-pass\)|incorrect password|Sorry, try again/);
    expect(r.text).not.toContain(wrong);
    expect(r.text).not.toContain(sudoPassword);
  });

  it('the SSH password: logs in, never shown; a wrong one is refused without being repeated', async () => {
    const config = sshConfig('ssh_config_password', [`User ${state.sudoUser.name}`, `IdentityFile ${path.join(dir, 'no-such-key')}`, 'IdentitiesOnly yes', `UserKnownHostsFile ${state.knownHosts}`]);
    const playbook = '- hosts: all\n  tasks:\n    - command: id -un\n      register: who\n    - debug: { msg: "{{ who.stdout }}" }\n';
    const ok = await run({ playbook, config, answers: { 'SSH password': sudoPassword }, askPass: true });
    expect(ok.code, ok.text).toBe(0);
    expect(ok.prompts).toEqual(['SSH password: ']);
    expect(results(ok.events).at(-1)?.msg).toBe(state.sudoUser.name);
    expect(ok.text).not.toContain(sudoPassword);

    const wrong = 'Wr0ng-ssh-pa55word';
    const bad = await run({ playbook, config, answers: { 'SSH password': wrong }, askPass: true });
    expect(bad.code).toBe(4);
    expect(results(bad.events)[0]?.msg).toMatch(/^authentication failed for deploy@/);
    expect(bad.text).not.toContain(wrong);
  });

  it("an encrypted key's passphrase: asked once, never shown; a wrong one is refused without being repeated", async () => {
    const key = path.join(dir, 'id_passphrase');
    const passphrase = 'Passphrase-of-the-key-42';
    execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', passphrase, '-C', 'provision-faults', '-f', key]);
    const pub = readFileSync(`${key}.pub`, 'utf8').trim();
    await sh(host, `cat >> ~${state.sudoUser.name}/.ssh/authorized_keys`, `${pub}\n`);
    const config = sshConfig('ssh_config_passphrase', [`User ${state.sudoUser.name}`, `IdentityFile ${key}`, 'IdentitiesOnly yes', `UserKnownHostsFile ${state.knownHosts}`]);
    const playbook = '- hosts: all\n  tasks:\n    - command: id -un\n';

    const ok = await run({ playbook, config, answers: { 'Enter passphrase for key': passphrase } });
    expect(ok.code, ok.text).toBe(0);
    expect(ok.prompts).toEqual([`Enter passphrase for key '${key}': `]);
    expect(ok.text).not.toContain(passphrase);

    const wrong = 'Not-the-passphrase-17';
    const bad = await run({ playbook, config, answers: { 'Enter passphrase for key': wrong, 'Bad passphrase': wrong } });
    expect(bad.code).toBe(4);
    expect(bad.prompts).toHaveLength(3);
    expect(bad.text).toContain('wrong passphrase');
    expect(bad.text).not.toContain(wrong);
    expect(bad.text).not.toContain(passphrase);
  });

  it('refuses a host whose key is not in known_hosts by default, writing nothing; accept-new is opt-in', async () => {
    const knownHosts = path.join(dir, 'known_hosts_empty');
    writeFileSync(knownHosts, '');
    const config = sshConfig('ssh_config_unknown', ['User root', `IdentityFile ${state.key}`, 'IdentitiesOnly yes', `UserKnownHostsFile ${knownHosts}`]);
    const pb = writePlaybook(dir, 'hostkey.yaml', '- hosts: all\n  tasks:\n    - copy: { dest: /root/faults/sec/hostkey, content: "written\\n" }\n');
    const inventory = path.join(dir, 'hostkey-hosts');
    writeFileSync(inventory, `${host.name}\n`);

    const refused = await runCli(['run', pb, '-i', inventory, '--ssh-config', config, '--json', '--no-retry-file']);
    expect(refused.code).toBe(4);
    const [connect] = results(refused.events);
    expect(connect?.status).toBe('unreachable');
    expect(connect?.msg).toMatch(/host key|known_hosts/i);
    expect(readFileSync(knownHosts, 'utf8')).toBe('');
    expect(await hostSha(host, '/root/faults/sec/hostkey')).toBe('absent');

    const accepted = await runCli(['run', pb, '-i', inventory, '--ssh-config', config, '--json', '--no-retry-file', '--host-key-checking', 'accept-new']);
    expect(accepted.code, accepted.stderr).toBe(0);
    expect(readFileSync(knownHosts, 'utf8')).toContain('ssh-ed25519 ');
    expect(await hostSha(host, '/root/faults/sec/hostkey')).not.toBe('absent');
  });
});

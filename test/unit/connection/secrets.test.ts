import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { createSecrets } from '../../../src/connection/secrets.js';

/** A prompter that answers from a list and records every prompt it was shown. */
function scripted(answers: string[]) {
  const prompts: string[] = [];
  return {
    prompts,
    prompter: async (prompt: string) => {
      prompts.push(prompt);
      await new Promise((r) => setTimeout(r, 5));
      const next = answers.shift();
      if (next === undefined) throw new Error('asked too often');
      return next;
    },
  };
}

describe('passphrases', () => {
  it('asks once for fifty hosts that need the same key at the same time', async () => {
    const s = scripted(['right']);
    const secrets = createSecrets({ interactive: true, prompter: s.prompter });
    const all = await Promise.all(Array.from({ length: 50 }, () => secrets.passphrase('/k/id_ed25519', (p) => p === 'right')));
    expect(new Set(all)).toEqual(new Set(['right']));
    expect(s.prompts).toEqual(["Enter passphrase for key '/k/id_ed25519': "]);
  });

  it('asks again after a wrong passphrase, three tries in all, without showing it in the error', async () => {
    const s = scripted(['wrong-1', 'wrong-2', 'wrong-3']);
    const secrets = createSecrets({ interactive: true, prompter: s.prompter });
    const error = await secrets.passphrase('/k/a', () => false).catch((e: Error) => e);
    expect((error as Error).message).toBe('wrong passphrase for /k/a (3 tries)');
    expect(s.prompts).toEqual([
      "Enter passphrase for key '/k/a': ",
      "Bad passphrase, try again for '/k/a': ",
      "Bad passphrase, try again for '/k/a': ",
    ]);

    const t = scripted(['nope', 'yes']);
    const again = createSecrets({ interactive: true, prompter: t.prompter });
    expect(await again.passphrase('/k/a', (p) => p === 'yes')).toBe('yes');
  });

  it('asks for different keys one at a time, never interleaved', async () => {
    let open = 0;
    let overlapped = false;
    const secrets = createSecrets({
      interactive: true,
      prompter: async (prompt) => {
        overlapped ||= open > 0;
        open++;
        await new Promise((r) => setTimeout(r, 10));
        open--;
        return prompt.includes('/k/1') ? 'one' : 'two';
      },
    });
    const [a, b] = await Promise.all([secrets.passphrase('/k/1', () => true), secrets.passphrase('/k/2', () => true)]);
    expect([a, b, overlapped]).toEqual(['one', 'two', false]);
  });

  it('fails clearly when nobody can be asked', async () => {
    const secrets = createSecrets({ interactive: false, prompter: async () => 'never' });
    await expect(secrets.passphrase('/k/a', () => true)).rejects.toThrow('cannot ask for the passphrase of /k/a: not running interactively');
  });
});

describe('passwords', () => {
  it('asks for the SSH password once per run', async () => {
    const s = scripted(['sshpw']);
    const secrets = createSecrets({ interactive: true, askPass: true, prompter: s.prompter });
    expect(await Promise.all([secrets.password('ssh'), secrets.password('ssh')])).toEqual(['sshpw', 'sshpw']);
    expect(s.prompts).toEqual(['SSH password: ']);
  });

  it('uses the SSH password for sudo when the become password is left empty', async () => {
    const s = scripted(['sshpw', '']);
    const secrets = createSecrets({ interactive: true, askPass: true, askBecomePass: true, prompter: s.prompter });
    expect(await secrets.password('ssh')).toBe('sshpw');
    expect(await secrets.password('become')).toBe('sshpw');
    expect(s.prompts).toEqual(['SSH password: ', 'BECOME password[defaults to SSH password]: ']);
  });

  it('refuses a password that the command line did not ask for', async () => {
    const secrets = createSecrets({ interactive: true, prompter: async () => 'x' });
    await expect(secrets.password('ssh')).rejects.toThrow('--ask-pass');
    await expect(secrets.password('become')).rejects.toThrow('--ask-become-pass');
  });
});

describe('the terminal prompt', () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'provision-secrets-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));
  const module = fileURLToPath(new URL('../../../src/connection/secrets.ts', import.meta.url));
  const probe = path.join(dir, 'ask.mts');
  writeFileSync(
    probe,
    `import { promptOnTerminal } from ${JSON.stringify(module)};\n` +
      `promptOnTerminal('Secret: ').then((v) => console.log('GOT[' + v + ']'), (e) => { console.log('ERR[' + e.message + ']'); process.exitCode = 3; });\n`,
  );
  const node = [process.execPath, '--import', 'tsx', probe];

  it('says there is no terminal instead of waiting when the process has none', () => {
    // A new session has no controlling terminal, like a run from cron or CI.
    const r = spawnSync('setsid', ['--wait', ...node], { stdio: ['ignore', 'pipe', 'pipe'], timeout: 20_000 });
    expect(r.stdout.toString()).toBe('ERR[cannot ask "Secret:": no terminal (ENXIO)]\n');
    expect(r.status).toBe(3);
  });

  it.skipIf(!existsSync('/usr/bin/script'))('reads from the terminal without echo, with backspace', async () => {
    // script(1) gives the child a pseudo-terminal; what we write to it is what the user types.
    const child = spawn('/usr/bin/script', ['-q', '-E', 'never', '-ec', node.join(' '), '/dev/null'], { stdio: ['pipe', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (b: Buffer) => {
      out += b.toString();
      if (out.includes('Secret: ')) child.stdin.write('hun\x7fnter2\r');
    });
    const timer = setTimeout(() => child.kill('SIGKILL'), 20_000);
    await new Promise((resolve) => child.on('close', resolve));
    clearTimeout(timer);
    // Nothing typed shows between the prompt and the result: only the line break the prompt prints at the end.
    expect(out).toMatch(/^Secret: \r?\nGOT\[hunter2\]\r?\n$/);
  });
});

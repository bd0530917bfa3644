import { execFileSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { FACTS_SCRIPT, parseFacts } from '../../../src/facts/gather.js';

const PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';
const postconf = (name: string): string | null => {
  try {
    return execFileSync('postconf', ['-h', name], { encoding: 'utf8', env: { PATH } }).trim();
  } catch {
    return null;
  }
};

describe('facts', () => {
  it.skipIf(postconf('mail_version') === null)("report Postfix's version and configuration directory as postconf gives them", () => {
    const facts = parseFacts(execFileSync('sh', ['-c', FACTS_SCRIPT], { encoding: 'utf8', env: { PATH } }));
    expect({ version: facts.postfix_version, dir: facts.postfix_config_dir }).toEqual({ version: postconf('mail_version'), dir: postconf('config_directory') });
  });

  it('report the host name as hostname gives it', () => {
    const facts = parseFacts(execFileSync('/bin/sh', ['-c', FACTS_SCRIPT], { encoding: 'utf8', env: { PATH } }));
    expect(facts.hostname).toBe(execFileSync('hostname', { encoding: 'utf8' }).trim());
  });

  it('report no Postfix where there is no postconf', () => {
    const facts = parseFacts(execFileSync('/bin/sh', ['-c', FACTS_SCRIPT], { encoding: 'utf8', env: { PATH: '/nonexistent' } }));
    expect({ version: facts.postfix_version, dir: facts.postfix_config_dir }).toEqual({ version: null, dir: null });
  });
});

/** The facts script with more shell after it in the same exec (factsScript), and taking its output apart. */
import { spawnSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { quote } from '../../../src/connection/shell-quote.js';
import {
  FACTS_END_MARKER,
  FACTS_SCRIPT,
  factsScript,
  HELD_MARKER,
  lockedFactsScript,
  parseFacts,
  POSTFIX_VERSION_VAR,
  splitFactsOutput,
} from '../../../src/facts/gather.js';
import { fakePostconf } from '../../support/fake-postconf.js';
import { tempDir } from '../../support/tmp.js';

const fake = fakePostconf(tempDir('provision-facts-'), { version: '3.9.1', configDir: '/etc/postfix-test', names: ['myhostname'] });
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
    const r = sh(lockedFactsScript(30, quote('unit test of the facts script'), `echo "after: $${POSTFIX_VERSION_VAR}"`));
    expect(r.status, r.stderr).toBe(0);
    const held = r.stdout.indexOf(`${HELD_MARKER}\n`);
    expect(held).toBeGreaterThan(0);
    const { facts, after } = splitFactsOutput(r.stdout.slice(0, held));
    expect(after).toBe('after: 3.9.1\n');
    expect(parseFacts(facts).postfix_version).toBe('3.9.1');
  });

  it('without anything to follow, prints the facts and no end marker', () => {
    const r = sh(lockedFactsScript(30, quote('unit test of the facts script')));
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout).toContain(`${HELD_MARKER}\n`);
    expect(r.stdout).not.toContain(FACTS_END_MARKER);
  });
});

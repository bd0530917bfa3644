import { describe, expect, it } from 'vitest';
import { normalPath, parentsOf, parseTouched, touchedScript } from '../../../src/runner/touched.js';

const res = (stdout: string, code = 0) => ({ stdout: Buffer.from(stdout), stderr: Buffer.alloc(0), code });

describe('commands limited to named paths', () => {
  it('compares paths written differently alike and lists their parents', () => {
    expect(normalPath('/etc//postfix/./sasl/')).toBe('/etc/postfix/sasl');
    expect(parentsOf('/etc/postfix/sasl')).toEqual(['/etc', '/etc/postfix']);
    expect(parentsOf('/etc')).toEqual([]);
  });

  it('checks the touched and cached paths and their parents once each', () => {
    const { script, checked } = touchedScript('chmod 600 -- /etc/sasldb2', ['/etc/sasldb2'], ['/etc/postfix/main.cf', '/etc/sasldb2']);
    expect(checked).toEqual(['/etc', '/etc/sasldb2', '/etc/postfix', '/etc/postfix/main.cf']);
    expect(script.startsWith('(\nchmod 600 -- /etc/sasldb2\n)\n')).toBe(true);
  });

  it('takes the trailer off the output, whatever the command printed', () => {
    const checked = ['/a', '/a/b'];
    for (const out of ['', 'abc', 'abc\n', 'x\n\ny\n']) {
      const { result, report } = parseTouched(res(`${out}\n@@PV-TOUCHED 0\n`), checked);
      expect(result.stdout.toString()).toBe(out);
      expect(report).toEqual({ complete: true, touchedLinked: false, links: new Set() });
    }
    const { report } = parseTouched(res('\n@@PV-TOUCHED 1 1\n', 1), checked);
    expect(report).toEqual({ complete: true, touchedLinked: true, links: new Set(['/a/b']) });
  });

  it('without the trailer (cut short) the report is incomplete and the output untouched', () => {
    const { result, report } = parseTouched(res('partial'), []);
    expect(result.stdout.toString()).toBe('partial');
    expect(report.complete).toBe(false);
  });
});

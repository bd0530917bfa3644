import { describe, expect, it } from 'vitest';
import { ownString } from '../../../src/util/own-string.js';

describe('ownString', () => {
  it('gives back the same text for a value cut from a long host output (a facts line of an 80 KB first exec)', () => {
    const output = `${'x'.repeat(80_000)}\niptables_version=iptables v1.8.9 (nf_tables)\n`;
    const value = output.split('\n')[1]!.slice('iptables_version='.length);
    expect(ownString(value)).toBe('iptables v1.8.9 (nf_tables)');
  });

  it('keeps every character, lone surrogates, quotes, backslashes and control characters included', () => {
    for (const s of ['', 'short', '\ud800 lone high surrogate', 'lone low \udc00 surrogate', 'a "quoted" \\ value\u0000\u001f\n\t', 'é€😀'.repeat(20)]) {
      expect(ownString(s)).toBe(s);
    }
  });
});

import { describe, expect, it } from 'vitest';
import { versionAtLeast } from '../../../src/modules/postfix-names.js';
import { compareVersions } from '../../../src/util/version.js';

describe('compareVersions', () => {
  it('orders Postfix versions by release, numerically', () => {
    const sorted = ['3.10.1', '3.9.2', '2.10.1', '2.6.6', '3.7.11', '3.7.9', '3.10.0', '3.7', '10.0.0'].sort(compareVersions);
    expect(sorted).toEqual(['2.6.6', '2.10.1', '3.7', '3.7.9', '3.7.11', '3.9.2', '3.10.0', '3.10.1', '10.0.0']);
  });

  it('is an order: 0 only for the same string, and antisymmetric', () => {
    const vs = ['3.7', '3.7.0', '3.7.11', '3.x', '3', ''];
    for (const a of vs) {
      for (const b of vs) {
        expect(Math.sign(compareVersions(a, b)) + Math.sign(compareVersions(b, a)), `${a} ${b}`).toBe(0);
        if (a !== b) expect(compareVersions(a, b), `${a} ${b}`).not.toBe(0);
      }
    }
  });

  // Python's LooseVersion (Ansible's default for the `version` test) gives these signs; where it would compare a
  // number with text it gives up, and the rule here is that the number is newer (1.0.1 after 1.0a).
  it.each([
    ['2.14', '2.9', 1],
    ['3.7', '3.07', 0],
    ['1.0', '1.0.0', -1],
    ['1.0a', '1.0', 1],
    ['1.0a', '1.0.1', -1],
    ['1.0b1', '1.0a2', 1],
    ['3.10-20240101', '3.10', 1],
    ['3.10-20240101', '3.10.0', -1],
    ['v1.8.10', 'v1.8.9', 1],
  ])('%s against %s: %i', (a, b, sign) => {
    expect(Math.sign(compareVersions(a, b))).toBe(sign);
    expect(Math.sign(compareVersions(b, a))).toBe(-sign || 0);
  });
});

describe('versionAtLeast', () => {
  it.each([
    ['3.7.11', 3, 6, true],
    ['3.6.0', 3, 6, true],
    ['3.5.25', 3, 6, false],
    ['2.10.1', 2, 9, true],
    ['2.6.6', 2, 9, false],
    ['3.10-20240101', 3, 10, true],
    ['10.0.0', 3, 0, true],
  ])('%s is at least %i.%i: %s', (version, major, minor, want) => {
    expect(versionAtLeast(version, major, minor)).toBe(want);
  });
});

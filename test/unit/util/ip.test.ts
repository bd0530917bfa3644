import { describe, expect, it } from 'vitest';
import { formatAddress, isIPv6, maskOf, parseAddress, prefixOf } from '../../../src/util/ip.js';

describe('isIPv6', () => {
  it.each([
    ['::', true],
    ['::1', true],
    ['2001:db8::1', true],
    ['2001:DB8:0:0:0:0:0:1', true],
    ['::ffff:198.19.0.1', true],
    ['1:2:3:4:5:6:1.2.3.4', true],
    ['1:2:3:4:5:6:7:8', true],
    ['1:2:3:4:5:6:7', false],
    ['1:2:3:4:5:6:7:8:9', false],
    ['1::2::3', false],
    ['12345::1', false],
    ['::ffff:256.0.0.1', false],
    ['fe80::1%eth0', false],
    ['[::1]', false],
    ['198.19.0.1', false],
    ['web01', false],
    ['', false],
  ])('%s: %s', (s, ok) => {
    expect(isIPv6(s)).toBe(ok);
  });
});

describe('bytes, masks and text', () => {
  it('reads dotted quads with leading zeros and nothing shorter', () => {
    expect(parseAddress('198.019.000.001', 4)).toEqual([198, 19, 0, 1]);
    expect(parseAddress('198.19.1', 4)).toBeNull();
    expect(parseAddress('::1', 4)).toBeNull();
    expect(parseAddress('198.19.0.1', 6)).toBeNull();
  });

  it('prints IPv6 the way inet_ntop does', () => {
    const text = (s: string) => formatAddress(parseAddress(s, 6)!);
    expect(text('2001:0db8:0000:0000:0001:0000:0000:0001')).toBe('2001:db8::1:0:0:1');
    expect(text('1:2:3:4:5:6:7:0')).toBe('1:2:3:4:5:6:7:0');
    expect(text('::ffff:c613:1')).toBe('::ffff:198.19.0.1');
    expect(text('::1.2.3.4')).toBe('::1.2.3.4');
    expect(text('::1')).toBe('::1');
  });

  it('turns prefixes into masks and back, contiguous masks only', () => {
    expect(maskOf(20, 4)).toEqual([255, 255, 240, 0]);
    expect(maskOf(33, 4)).toBeNull();
    expect(prefixOf(maskOf(64, 6)!)).toBe(64);
    expect(prefixOf([255, 0, 255, 0])).toBeNull();
    expect(prefixOf([0, 0, 0, 0])).toBe(0);
  });
});

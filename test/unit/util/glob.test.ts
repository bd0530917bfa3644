import { describe, expect, it } from 'vitest';
import { globMatcher } from '../../../src/util/glob.js';

describe('host patterns as OpenSSH matches them (no sets)', () => {
  const cases: [string, string, boolean][] = [
    ['*', 'mx1.mail.example.org', true],
    ['*.example.org', 'mx1.mail.example.org', true],
    ['*.example.org', 'example.org', false],
    ['*.example.org', '.example.org', true],
    ['mx?.example.org', 'mx1.example.org', true],
    ['mx?.example.org', 'mx10.example.org', false],
    ['mx1.example.org', 'mx1xexample.org', false],
    // Brackets, braces and parentheses are literal: known_hosts writes [host]:port with them.
    ['[198.19.1.*]:2222', '[198.19.1.9]:2222', true],
    ['[198.19.1.*]:2222', '198.19.1.9:2222', false],
    ['web[12].example.org', 'web1.example.org', false],
    ['web[12].example.org', 'web[12].example.org', true],
    ['{a,b}.example.org', 'a.example.org', false],
    ['{a,b}.example.org', '{a,b}.example.org', true],
    ['+(a).org', 'a.org', false],
    ['!(a).org', '!(a).org', true],
    ['a\\*', 'a\\b', true],
    ['a*', 'a/b/.c', true],
    ['?', '/', true],
    ['*', '..', true],
  ];
  it.each(cases)('%s against %s: %s', (pattern, name, want) => {
    expect(globMatcher(pattern, { sets: false })(name)).toBe(want);
  });
});

describe('inventory patterns as Python fnmatch matches them (sets)', () => {
  const cases: [string, string, boolean][] = [
    ['web*', 'web01.example.org', true],
    ['web*', 'Web01.example.org', false],
    ['*.example.org', 'db.example.org', true],
    ['web0?.example.org', 'web01.example.org', true],
    ['web[0-9][0-9].example.org', 'web01.example.org', true],
    ['web[!0-9]*', 'webx.example.org', true],
    ['web[!0-9]*', 'web1.example.org', false],
    ['web[]]', 'web]', true],
    ['web[!]]', 'webx', true],
    ['web[', 'web[', true],
    ['web[1', 'web[1', true],
    ['web[\\]', 'web\\', true],
    ['web[^1]', 'web^', true],
    ['web[^1]', 'web2', false],
    // No brace or extglob expansion, no path rules: dots and slashes are ordinary characters.
    ['{web,db}*', 'web1', false],
    ['{web,db}*', '{web,db}1', true],
    ['@(web)1', 'web1', false],
    ['*', '.hidden', true],
    ['a*', 'a/b/c', true],
    ['a?c', 'a/c', true],
    ['mx.lab', 'mxxlab', false],
  ];
  it.each(cases)('%s against %s: %s', (pattern, name, want) => {
    expect(globMatcher(pattern, { sets: true })(name)).toBe(want);
  });
});

describe('compiled patterns are kept per pattern and per kind', () => {
  // globMatcher keeps what it compiled: `[ab]` is a set for an inventory pattern and literal in known_hosts, and
  // the one compiled first must not answer for the other.
  it('the same text as a set and as a literal pattern, in either order', () => {
    expect(globMatcher('web[12]', { sets: true })('web1')).toBe(true);
    expect(globMatcher('web[12]', { sets: false })('web1')).toBe(false);
    expect(globMatcher('web[12]', { sets: false })('web[12]')).toBe(true);
    expect(globMatcher('web[12]', { sets: true })('web[12]')).toBe(false);
  });

  it('a matcher asked for again answers the same, whatever was matched in between', () => {
    const a = globMatcher('mx?.example.org', { sets: false });
    expect(a('mx1.example.org')).toBe(true);
    const b = globMatcher('mx?.example.org', { sets: false });
    expect(b('mx10.example.org')).toBe(false);
    expect(a('mx2.example.org')).toBe(true);
    expect(b('mx3.example.org')).toBe(true);
  });
});

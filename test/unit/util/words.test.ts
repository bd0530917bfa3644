import { describe, expect, it } from 'vitest';
import { shlexSplit, splitWords, WordSplitError } from '../../../src/util/words.js';

describe('shlexSplit splits as Python shlex.split does', () => {
  // Expected words are what Python 3's shlex.split(line, comments=…) returns for each line.
  const cases: [string, boolean, string[]][] = [
    ["a b  c", false, ["a", "b", "c"]],
    ["'a b' c", false, ["a b", "c"]],
    ["\"a b\" c", false, ["a b", "c"]],
    ["a\"b c\"d", false, ["ab cd"]],
    ["\"\" x ''", false, ["", "x", ""]],
    ["\"a\\\"b\"", false, ["a\"b"]],
    ["\"a\\\\b\"", false, ["a\\b"]],
    ["\"a\\$b\"", false, ["a\\$b"]],
    ["\"a\\`b\"", false, ["a\\`b"]],
    ["\"a\\nb\"", false, ["a\\nb"]],
    ["a\\ b", false, ["a b"]],
    ["a\\\"b", false, ["a\"b"]],
    ["'a\\b'", false, ["a\\b"]],
    ["a\tb\rc\nd", false, ["a", "b", "c", "d"]],
    ["a\u000bb", false, ["a\u000bb"]],
    ["x=1 # note", true, ["x=1"]],
    ["pw=a#b c", true, ["pw=a"]],
    ["\"a#b\" c", true, ["a#b", "c"]],
    ["a\\#b", true, ["a#b"]],
    ["# all", true, []],
    ["''#x", true, [""]],
    ["a#b", false, ["a#b"]],
    ["h1 ansible_host='198.19.1.1' x=\"[1, 2]\"", true, ["h1", "ansible_host=198.19.1.1", "x=[1, 2]"]],
  ];
  it.each(cases)('%j (comments: %s) → %j', (line, comments, words) => {
    expect(shlexSplit(line, { comments }).map((w) => w.text)).toEqual(words);
  });

  it('says where each word starts', () => {
    expect(shlexSplit(`mx1  a='x y' "b"c`)).toEqual([
      { text: 'mx1', col: 0 },
      { text: 'a=x y', col: 5 },
      { text: 'bc', col: 13 },
    ]);
  });

  const errors: [string, string, number][] = [
    ['a "b', 'unclosed " quote', 2],
    ["a 'b", "unclosed ' quote", 2],
    ['a \\', 'a backslash at the end of the line escapes nothing', 2],
  ];
  it.each(errors)('%j is refused as shlex refuses it: %s at %i', (line, message, index) => {
    const e = (() => {
      try {
        shlexSplit(line);
      } catch (err) {
        return err;
      }
      return null;
    })();
    expect(e).toBeInstanceOf(WordSplitError);
    expect((e as WordSplitError).message).toBe(message);
    expect((e as WordSplitError).index).toBe(index);
  });
});

describe('splitWords', () => {
  it('gives the words of a command line, # included', () => {
    expect(splitWords(`postconf -e 'smtpd_banner=$myhostname # ok' x#y`)).toEqual(['postconf', '-e', 'smtpd_banner=$myhostname # ok', 'x#y']);
  });
  it('names the line when a quote is left open', () => {
    expect(() => splitWords('echo "a')).toThrow('unterminated " quote in: echo "a');
  });
});

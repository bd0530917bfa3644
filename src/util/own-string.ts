/**
 * A copy of a string that holds no reference to a larger one. V8 makes the result of `slice`, `split` or a regular
 * expression match a view into the string it came from, so a 10-byte value cut from a host's 80 KB output keeps
 * all 80 KB alive for as long as the value lives. Values kept for the whole run (facts, Postfix's parameter names)
 * go through here. The JSON round trip is lossless for every string, lone surrogates included.
 */
export function ownString(s: string): string {
  return s.length < 13 ? s : (JSON.parse(JSON.stringify(s)) as string);
}

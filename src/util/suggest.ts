/** "Did you mean …?" for unknown names: the closest candidate by edit distance, if it is close enough. */
import { distance as levenshtein } from 'fastest-levenshtein';

/**
 * Edit distance, case-insensitive: Levenshtein's, except that two neighbouring letters swapped where the names
 * first differ count as one edit ("tempalte" is one typo away from "template").
 */
export function editDistance(a: string, b: string): number {
  const s = a.toLowerCase();
  const t = b.toLowerCase();
  const d = levenshtein(s, t);
  let i = 0;
  while (i < s.length && i < t.length && s[i] === t[i]) i++;
  if (d > 1 && s[i] !== undefined && s[i] === t[i + 1] && s[i + 1] === t[i]) return Math.min(d, 1 + levenshtein(s.slice(i + 2), t.slice(i + 2)));
  return d;
}

/** Length of the longest common subsequence, case-insensitive. */
function lcs(a: string, b: string): number {
  const s = a.toLowerCase();
  const t = b.toLowerCase();
  let prev = new Array<number>(t.length + 1).fill(0);
  for (let i = 1; i <= s.length; i++) {
    const cur = new Array<number>(t.length + 1).fill(0);
    for (let j = 1; j <= t.length; j++) cur[j] = s[i - 1] === t[j - 1] ? prev[j - 1]! + 1 : Math.max(prev[j]!, cur[j - 1]!);
    prev = cur;
  }
  return prev[t.length]!;
}

/**
 * The nearest candidate within a distance that grows with the length of the name (at most a third of it).
 * Ties go to the candidate sharing most characters in order ("taks" → "tasks" rather than "tags").
 */
export function nearest(name: string, candidates: Iterable<string>): string | undefined {
  let best: string | undefined;
  let bestD = Infinity;
  let bestShared = -1;
  const limit = Math.max(1, Math.min(4, Math.floor(name.length / 3)));
  for (const c of candidates) {
    if (c === name) return c;
    const d = editDistance(name, c);
    if (d > bestD || d > limit) continue;
    const shared = (2 * lcs(name, c)) / (name.length + c.length);
    if (d < bestD || shared > bestShared || (shared === bestShared && best !== undefined && c < best)) {
      best = c;
      bestD = d;
      bestShared = shared;
    }
  }
  return best;
}

/** ` (did you mean "x"?)` or an empty string. */
export function didYouMean(name: string, candidates: Iterable<string>): string {
  const n = nearest(name, candidates);
  return n && n !== name ? ` (did you mean "${n}"?)` : '';
}

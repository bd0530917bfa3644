/**
 * One version order for the whole program: Postfix releases (3.7.11, 2.11.3, 3.10-20240101) and the template
 * `version` test, which compares the way Ansible's default (LooseVersion) does.
 *
 * semver does not fit: it wants exactly three numbers and refuses 3.7 or 3.10-20240101. So this is LooseVersion's
 * rule, written out once: a version is split into runs of digits, runs of letters and single other characters (dots
 * dropped); runs of digits compare as numbers, anything else as text, a number sorts after text (where Python would
 * give up comparing), and a version that is a prefix of another sorts first (3.7 < 3.7.0 < 3.7.11).
 */

function components(version: string): string[] {
  return version.split(/(\d+|[a-z]+|\.)/i).filter((p) => p !== '' && p !== '.');
}

const isNumber = (p: string) => /^\d+$/.test(p);

/** Negative when `a` is older than `b`, positive when newer, 0 when they compare equal (3.7 and 3.07 do). */
export function compareVersions(a: string, b: string): number {
  const pa = components(a);
  const pb = components(b);
  for (let i = 0; i < Math.max(pa.length, pb.length); i++) {
    const x = pa[i];
    const y = pb[i];
    if (x === undefined) return -1;
    if (y === undefined) return 1;
    let c: number;
    if (isNumber(x) && isNumber(y)) c = Number(x) - Number(y);
    else if (isNumber(x)) c = 1;
    else if (isNumber(y)) c = -1;
    else c = x < y ? -1 : x > y ? 1 : 0;
    if (c !== 0) return c;
  }
  return 0;
}

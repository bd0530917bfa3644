/**
 * The kernel as the normaliser of iptables rules: a rules file is loaded into a throwaway network namespace on the
 * host (`unshare -n`, which goes away with its last process, so nothing is left to clean up) and read back with
 * iptables-save. What comes back is spelled exactly as the live ruleset is, by the same iptables, for every
 * extension: `--limit 2/s` becomes `2/sec`, `-d a,b` two rules, `--set-mark 1` `--set-xmark 0x1/0xffffffff`.
 */

/**
 * `pv_norm FAMILY RULES_FILE OUT [MORE]`: OUT gets the file's ruleset (and MORE's, restored after it with
 * --noflush) as iptables-save prints it after a restore in a fresh network namespace, and `$pv_nst` says `ok`;
 * else OUT gets the reason and `$pv_nst` is `failed` (the file does not load there) or `unavailable` (no
 * namespaces here). ipsets are per namespace: the sets a file matches are created in the namespace first, from
 * the host's own definitions (without their members).
 */
export const NORMALISE_FN = [
  'pv_norm() {',
  '  if [ "$1" = 6 ]; then pv_nr=ip6tables-restore; pv_ns=ip6tables-save; else pv_nr=iptables-restore; pv_ns=iptables-save; fi',
  '  : > "$3.sets"',
  "  if grep -qsE -e '--(match|add|del)-set' -- \"$2\" ${4:+\"$4\"} && command -v ipset >/dev/null 2>&1; then ipset save 2>/dev/null | grep '^create ' > \"$3.sets\"; fi",
  '  if command -v unshare >/dev/null 2>&1; then',
  // Exit 4 and 5 come from inside the namespace; anything else means the namespace itself could not be made.
  "    unshare -n sh -c 'if [ -s \"$4\" ]; then ipset restore < \"$4\" || exit 5; fi; \"$1\" < \"$2\" || exit 4; if [ -n \"$5\" ]; then \"$1\" --noflush < \"$5\" || exit 6; fi; exec \"$3\"' pv-normalise \"$pv_nr\" \"$2\" \"$pv_ns\" \"$3.sets\" \"${4:-}\" > \"$3\" 2> \"$3.err\"",
  '    case $? in 0) pv_nst=ok ;; 4|5|6) pv_nst=failed; cat "$3.err" > "$3" ;; *) pv_nst=unavailable; cat "$3.err" > "$3" ;; esac',
  "  else pv_nst=unavailable; echo 'unshare is not installed' > \"$3\"; fi",
  '  rm -f "$3.sets" "$3.err"',
  '}',
].join('\n');

/** What a `pv_norm` run reported: the normalised ruleset, or why there is none. */
export type Normalised = { status: 'ok'; saved: Buffer } | { status: 'failed' | 'unavailable'; reason: string };

/** A `STATUS BASE64` marker value as printed by normaliseMarker; null when absent. */
export function parseNormalised(value: string | undefined): Normalised | null {
  if (value === undefined) return null;
  const sp = value.indexOf(' ');
  const status = sp < 0 ? value : value.slice(0, sp);
  const body = Buffer.from(sp < 0 ? '' : value.slice(sp + 1), 'base64');
  if (status === 'ok') return { status, saved: body };
  const reason = body.toString().trim().split('\n').filter(Boolean).slice(-3).join('; ') || 'no output';
  return { status: status === 'failed' ? 'failed' : 'unavailable', reason };
}

/** Shell that normalises `fileExpr` (already quoted) into `out` and prints `@@TOKEN NAME STATUS BASE64`. */
export function normaliseMarker(token: string, name: string, family: 4 | 6, fileExpr: string, out: string): string {
  return `pv_norm ${family} ${fileExpr} ${out}; printf '@@%s ${name} %s ' '${token}' "$pv_nst"; base64 -w0 < ${out}; echo; rm -f ${out}`;
}

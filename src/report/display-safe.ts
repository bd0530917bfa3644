/**
 * Text from hosts (file content in diffs, stderr, lock files, facts) reaches the operator's terminal. A terminal
 * obeys control sequences in it: an OSC 52 writes the clipboard, cursor movement hides or rewrites lines of a diff.
 * So every string a reporter prints goes through `displaySafe`, which shows control characters (other than tab and
 * newline) and the characters that reorder text on screen as escapes, e.g. ESC as `\x1b`. `--json` keeps the
 * exact text (JSON escapes the C0 controls itself; `jsonSafe` escapes the rest without changing the value).
 */

/** C0 controls but tab and newline, DEL, C1 controls, and the Unicode bidirectional overrides, isolates and line separators. */
const UNSAFE = /[\u0000-\u0008\u000b-\u001f\u007f-\u009f\u2028\u2029\u202a-\u202e\u2066-\u2069]/g;

const hex = (c: string, width: number) => c.charCodeAt(0).toString(16).padStart(width, '0');

/** `s` with every character a terminal would act on shown as an escape: `\x1b`, `\r`, `\x7f`, `\u009b`, `\u202e`. */
export function displaySafe(s: string): string {
  return s.replace(UNSAFE, (c) => (c === '\r' ? '\\r' : c.charCodeAt(0) < 0x80 ? `\\x${hex(c, 2)}` : `\\u${hex(c, 4)}`));
}

/** A copy of `v` with every string in it (nested in arrays and objects too) made display-safe. */
export function displaySafeDeep<T>(v: T): T {
  if (typeof v === 'string') return displaySafe(v) as T;
  if (Array.isArray(v)) return v.map((x) => displaySafeDeep(x)) as T;
  if (v !== null && typeof v === 'object') {
    return Object.fromEntries(Object.entries(v as Record<string, unknown>).map(([k, x]) => [displaySafe(k), displaySafeDeep(x)])) as T;
  }
  return v;
}

/**
 * JSON text whose strings carry the characters `displaySafe` escapes as `\uXXXX` escapes: the same value for a
 * JSON parser, no raw control byte for a terminal that shows the line. They can only occur inside strings.
 */
export function jsonSafe(json: string): string {
  return json.replace(UNSAFE, (c) => `\\u${hex(c, 4)}`);
}

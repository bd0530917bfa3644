/** Values written as Python's json.dumps and PyYAML's safe_dump write them (to_json, to_yaml and their nice forms). */
import { floatRepr, isFloat, isMapping, PyFloat, unbox } from './python.js';

/** How many items or keys a list or mapping holds. */
function size(v: unknown[] | Record<string, unknown>): number {
  return Array.isArray(v) ? v.length : Object.keys(v).length;
}

/** A number as json.dumps writes it: floats as repr() does (`3.0`, `1e+16`), inf and nan as JavaScript spells them. */
function jsonNumber(v: number | PyFloat): string {
  const n = Number(unbox(v));
  if (!Number.isFinite(n)) return Number.isNaN(n) ? 'NaN' : n > 0 ? 'Infinity' : '-Infinity';
  return isFloat(v) ? floatRepr(n) : String(n);
}

/** JSON as Python's json.dumps writes it: `, ` and `: ` separators, non-ASCII escaped. */
export function pyJson(v: unknown, indent?: number, sortKeys = false, level = 0): string {
  if (v === null || v === undefined) return 'null';
  if (typeof v === 'string') return JSON.stringify(v).replace(/[\u007f-\uffff]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
  if (typeof v === 'boolean') return String(v);
  if (typeof v === 'number' || v instanceof PyFloat) return jsonNumber(v);
  const nl = indent === undefined ? '' : `\n${' '.repeat(indent * (level + 1))}`;
  const end = indent === undefined ? '' : `\n${' '.repeat(indent * level)}`;
  const sep = indent === undefined ? ', ' : ',';
  if (Array.isArray(v)) return v.length ? `[${nl}${v.map((x) => pyJson(x, indent, sortKeys, level + 1)).join(sep + nl)}${end}]` : '[]';
  if (isMapping(v)) {
    const keys = Object.keys(v);
    if (sortKeys) keys.sort();
    return keys.length ? `{${nl}${keys.map((k) => `${pyJson(k)}: ${pyJson(v[k], indent, sortKeys, level + 1)}`).join(sep + nl)}${end}}` : '{}';
  }
  return JSON.stringify(String(v));
}

/**
 * Compact JSON (as JSON.stringify writes it) with numbers as Ansible's output shows them: a whole float stays a
 * float (`3.0`), so a value displayed reads as the one Ansible displays.
 */
export function displayJson(v: unknown): string {
  if (typeof v === 'number' || v instanceof PyFloat) return jsonNumber(v);
  if (Array.isArray(v)) return `[${v.map((x) => (x === undefined ? 'null' : displayJson(x))).join(',')}]`;
  if (isMapping(v)) {
    const entries = Object.entries(v).filter(([, x]) => x !== undefined);
    return `{${entries.map(([k, x]) => `${JSON.stringify(k)}:${displayJson(x)}`).join(',')}}`;
  }
  return JSON.stringify(v) ?? 'null';
}

const YAML_PLAIN = /^[A-Za-z0-9_./][A-Za-z0-9_ ./@-]*$/;
const YAML_RESERVED = /^(?:y|Y|yes|Yes|YES|n|N|no|No|NO|true|True|TRUE|false|False|FALSE|on|On|ON|off|Off|OFF|null|Null|NULL|~|[-+]?(?:\d[\d_]*)?\.?\d[\d_]*(?:[eE][-+]?\d+)?|\.inf|\.nan)$/;

function yamlScalar(v: unknown): string {
  if (v === null || v === undefined) return 'null';
  if (typeof v === 'boolean') return v ? 'true' : 'false';
  if (typeof v === 'number' || v instanceof PyFloat) {
    const n = Number(unbox(v));
    if (!Number.isFinite(n)) return Number.isNaN(n) ? '.nan' : n > 0 ? '.inf' : '-.inf';
    // PyYAML writes an exponent float with a point in its mantissa (1.0e+16).
    return isFloat(v) ? floatRepr(n).replace(/^(-?\d+)e/, '$1.0e') : String(n);
  }
  const s = String(v);
  if (s !== '' && YAML_PLAIN.test(s) && !YAML_RESERVED.test(s) && !s.endsWith(' ') && !/[:#] |: |\s#/.test(s)) return s;
  if (/[\n\u0000-\u0008]/.test(s)) return JSON.stringify(s);
  return `'${s.replace(/'/g, "''")}'`;
}

/** YAML as PyYAML's safe_dump writes it for Ansible: keys sorted; `flow` puts leaf collections inline. */
export function pyYaml(v: unknown, indent: number, flow: boolean): string {
  const isLeaf = (x: unknown) => (Array.isArray(x) ? x : isMapping(x) ? Object.values(x) : []).every((y) => !Array.isArray(y) && !isMapping(y));
  const inline = (x: unknown): string => {
    if (Array.isArray(x)) return `[${x.map(inline).join(', ')}]`;
    if (isMapping(x)) return `{${Object.keys(x).sort().map((k) => `${yamlScalar(k)}: ${inline(x[k])}`).join(', ')}}`;
    return yamlScalar(x);
  };
  const lines: string[] = [];
  const emit = (x: unknown, pad: string): void => {
    if (Array.isArray(x)) {
      for (const item of x) {
        if ((Array.isArray(item) || isMapping(item)) && !(flow && isLeaf(item)) && size(item)) {
          const sub: string[] = [];
          const saved = lines.length;
          emit(item, pad + ' '.repeat(indent));
          sub.push(...lines.splice(saved));
          sub[0] = `${pad}-${' '.repeat(indent - 1)}${sub[0]!.slice(pad.length + indent)}`;
          lines.push(...sub);
        } else lines.push(`${pad}- ${inline(item)}`);
      }
    } else if (isMapping(x)) {
      for (const k of Object.keys(x).sort()) {
        const item = x[k];
        if ((Array.isArray(item) || isMapping(item)) && !(flow && isLeaf(item)) && size(item)) {
          lines.push(`${pad}${yamlScalar(k)}:`);
          emit(item, Array.isArray(item) ? pad : pad + ' '.repeat(indent));
        } else lines.push(`${pad}${yamlScalar(k)}: ${inline(item)}`);
      }
    } else lines.push(`${pad}${yamlScalar(x)}${typeof x === 'string' || x === null ? '\n...' : ''}`);
  };
  if ((Array.isArray(v) || isMapping(v)) && (flow && isLeaf(v) || !size(v))) return `${inline(v)}\n`;
  emit(v, '');
  return `${lines.join('\n')}\n`;
}

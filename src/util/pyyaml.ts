/** YAML as Ansible reads it (PyYAML's YAML 1.1), for playbooks, inventories and variable files alike. */
import { isScalar, type Tags } from 'yaml';

/**
 * The YAML 1.1 scalars PyYAML resolves, where they differ from the `yaml` package's reading of the spec: only
 * yes/no/true/false/on/off are booleans (not y or n), floats are written `1.5`, `-1.5` or `.5` (not `-.5`)
 * and take an exponent only as `1.0e+3`, a decimal integer has no leading zero. Timestamps stay text, since
 * PyYAML's date objects would print differently from the text the operator wrote.
 */
export function pyyamlTags(tags: Tags, wholeFloat?: (n: number) => unknown): Tags {
  return tags.flatMap((t) => pyyamlTag(t)).map((t) => (wholeFloat ? boxWholeFloats(t, wholeFloat) : t));
}

/**
 * A float tag whose whole values (`2.0`, `1.0e+3`) come out as `wholeFloat` makes them, so that a variable read
 * from YAML keeps printing as the float Ansible holds (`2.0`, not `2`).
 */
function boxWholeFloats(t: Tags[number], wholeFloat: (n: number) => unknown): Tags[number] {
  if (typeof t !== 'object' || t.tag !== 'tag:yaml.org,2002:float' || !('resolve' in t) || !t.resolve) return t;
  const resolve = t.resolve.bind(t) as (...a: unknown[]) => unknown;
  const box = (v: unknown) => (typeof v === 'number' && Number.isInteger(v) ? wholeFloat(v) : v);
  return {
    ...t,
    resolve: (...args: unknown[]) => {
      const r = resolve(...args);
      if (isScalar(r)) {
        r.value = box(r.value);
        return r;
      }
      return box(r);
    },
  } as Tags[number];
}

function pyyamlTag(t: Tags[number]): Tags {
  {
    if (typeof t !== 'object' || !('test' in t) || !t.test) return [t];
    if (t.tag === 'tag:yaml.org,2002:timestamp') return [];
    if (t.tag === 'tag:yaml.org,2002:bool') {
      const test = t.identify?.(true) ? /^(?:yes|Yes|YES|true|True|TRUE|on|On|ON)$/ : /^(?:no|No|NO|false|False|FALSE|off|Off|OFF)$/;
      return [{ ...t, test }];
    }
    if (t.tag === 'tag:yaml.org,2002:float' && t.format === 'EXP') {
      return [{ ...t, test: /^(?:[-+]?[0-9][0-9_]*\.[0-9_]*|\.[0-9][0-9_]*)[eE][-+][0-9]+$/ }];
    }
    if (t.tag === 'tag:yaml.org,2002:float' && !t.test.test('.inf')) {
      return [{ ...t, test: /^(?:[-+]?[0-9][0-9_]*\.[0-9_]*|\.[0-9][0-9_]*)$/ }];
    }
    if (t.tag === 'tag:yaml.org,2002:int' && !t.format) return [{ ...t, test: /^[-+]?(?:0|[1-9][0-9_]*)$/ }];
    return [t];
  }
}

/** YAML as Ansible reads it (PyYAML's YAML 1.1), for playbooks, inventories and variable files alike. */
import type { Tags } from 'yaml';

/**
 * The YAML 1.1 scalars PyYAML resolves, where they differ from the `yaml` package's reading of the spec: only
 * yes/no/true/false/on/off are booleans (not y or n), floats are written `1.5`, `-1.5` or `.5` (not `-.5`)
 * and take an exponent only as `1.0e+3`, a decimal integer has no leading zero. Timestamps stay text, since
 * PyYAML's date objects would print differently from the text the operator wrote.
 */
export function pyyamlTags(tags: Tags): Tags {
  return tags.flatMap((t) => {
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
  });
}

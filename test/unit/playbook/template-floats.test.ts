import { describe, expect, it } from 'vitest';
import { renderText, TemplateError } from '../../../src/playbook/template.js';

// Expected values: what ansible-core 2.14 (Python 3.11) prints for each expression in a debug msg, recorded on a
// local connection.
describe('whole floats in membership, comparison and the filters that compare', () => {
  const cases: [string, string][] = [
    ['{{ 3.0 in [3.0, 1] }}', 'True'],
    ['{{ 2 in [2.0] }}', 'True'],
    ['{{ 2.0 not in [2] }}', 'False'],
    ['{{ [1] in [[1.0]] }}', 'True'],
    ["{{ 1 in {'1': 1} }}", 'False'],
    ['{{ 2 == 2.0 }}', 'True'],
    ['{{ 2.0 != 2 }}', 'False'],
    ['{{ [2.0] == [2] }}', 'True'],
    ["{{ {'a': 2.0} == {'a': 2} }}", 'True'],
    ["{{ '1' == 1 }}", 'False'],
    ['{{ 2.0 < 3 }}', 'True'],
    ['{{ 2 <= 2.0 }}', 'True'],
    ['{{ 3 > 2 > 2.0 }}', 'False'],
    ['{{ [1.0, 2.0] | max }}', '2.0'],
    ['{{ [3.0, 1, 2.0] | min }}', '1'],
    ['{{ [3, 3.0] | max }}', '3'],
    ['{{ [3.0, 1, 2.0] | sort }}', '[1, 2.0, 3.0]'],
    ['{{ [1.0, 2.0] | sort(reverse=true) }}', '[2.0, 1.0]'],
    ['{{ [1, 2.0, 2, 1.0] | unique }}', '[1, 2.0]'],
    ['{{ [1] | union([1.0, 2.0]) }}', '[1, 2.0]'],
    ['{{ [1.0, 2] | intersect([2.0, 1]) }}', '[1.0, 2]'],
    ['{{ [1.0, 2] | difference([2.0]) }}', '[1.0]'],
    ['{{ [1.0, 3] | symmetric_difference([2.0, 1]) }}', '[3, 2.0]'],
    ["{{ [1, 2.0, 3] | select('equalto', 2) | list }}", '[2.0]'],
  ];
  for (const [src, want] of cases) {
    it(`Ansible 2.14 prints ${src} as ${want}`, () => expect(renderText(src, {})).toBe(want));
  }

  it('refuses what Python cannot order or search, naming the values', () => {
    expect(() => renderText("{{ 'a' < 1 }}", {})).toThrow(TemplateError);
    expect(() => renderText("{{ 'a' < 1 }}", {})).toThrow(/'a' and 1/);
    expect(() => renderText('{{ 1.0 in none }}', {})).toThrow(/1\.0 in None/);
  });
});

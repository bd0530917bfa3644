import { describe, expect, it } from 'vitest';
import { parseExtraVars } from '../../../src/cli/shared.js';
import { parseIniValue } from '../../../src/inventory/ini.js';
import { parseYamlVars } from '../../../src/inventory/yaml.js';
import { parseYaml } from '../../../src/playbook/load.js';
import { renderDeep, renderDeepKeepingFloats, renderText, TemplateError } from '../../../src/playbook/template.js';
import { checkArgs } from '../../../src/playbook/validate.js';
import { findModule } from '../../../src/modules/index.js';

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

// Ansible 2.14 prints `2.0 [3.0, 1] 3.0` for `{{ y }} {{ z }} {{ y + 1 }}` with y: 2.0 and z: [3.0, 1] read from
// YAML (PyYAML resolves 2.0 to a float), and the same for an INI value x=2.0 (ast.literal_eval gives a float).
describe('whole floats read from variable sources stay floats', () => {
  const text = '{{ y }} {{ z }} {{ y + 1 }}';
  const want = '2.0 [3.0, 1] 3.0';

  it('YAML read as variables (role defaults and vars, -e @file)', () => {
    const vars = parseYaml('y: 2.0\nz: [3.0, 1]\n', 'vars.yml', { floats: true }).value as Record<string, unknown>;
    expect(renderText(text, vars)).toBe(want);
  });

  it('inventory YAML, group_vars and host_vars', () => {
    expect(renderText(text, parseYamlVars('y: 2.0\nz: [3.0, 1]\n', 'group_vars/all.yml'))).toBe(want);
  });

  it('INI inventory values', () => {
    expect(renderText(text, { y: parseIniValue('2.0'), z: parseIniValue('[3.0, 1]') })).toBe(want);
  });

  it('-e as inline YAML or JSON', () => {
    expect(renderText(text, parseExtraVars(['{"y": 2.0, "z": [3.0, 1]}']))).toBe(want);
  });

  it('play, block and task vars in a playbook; task arguments there stay plain numbers', () => {
    const pb = parseYaml(
      ['- hosts: all', '  vars: {y: 2.0, z: [3.0, 1]}', '  tasks:', '    - block:', '        - command: sleep 2.0', '          args: {timeout: 2.0}', '          vars: {t: 4.0}', '      vars: {b: 5.0}'].join('\n'),
      'pb.yml',
    ).value as [Record<string, any>];
    expect(renderText(text, pb[0].vars)).toBe(want);
    const block = pb[0].tasks[0];
    expect(renderText('{{ b }} {{ t }}', { ...block.vars, ...block.block[0].vars })).toBe('5.0 4.0');
    expect(block.block[0].args.timeout).toBe(2);
    expect(JSON.stringify(pb[0].vars)).toBe('{"y":2,"z":[3,1]}');
  });

  it('task arguments (validated as JSON) keep plain numbers, and modules get plain numbers', () => {
    expect((parseYaml('timeout: 2.0\n', 'pb.yml').value as Record<string, unknown>).timeout).toBe(2);
    const vars = parseYaml('y: 2.0\n', 'vars.yml', { floats: true }).value as Record<string, unknown>;
    expect(renderDeep({ timeout: '{{ y }}', list: ['{{ y }}'] }, vars)).toEqual({ timeout: 2, list: [2] });
  });
});

// ansible-playbook 2.14.18 on a local connection, vars `x: 2.0`: `lineinfile line: "{{ 3.0 }}"` writes "3.0",
// `copy content: "{{ x }}"` writes "2.0", `line: "{{ x * 2 }}"` writes "4.0"; `debug msg: "{{ x }}"` shows 2.0.
describe('whole floats reaching a module argument', () => {
  const vars = { x: parseYamlVars('x: 2.0\n', 'vars.yml').x };
  const args = (mod: string, a: Record<string, unknown>) => {
    const m = findModule(mod)!;
    const checked = checkArgs(m, renderDeepKeepingFloats(a, vars) as Record<string, unknown>);
    expect(checked.errors).toBeUndefined();
    return checked.value!;
  };
  it('text arguments get the text Python makes of the float, never "3" for 3.0', () => {
    expect(args('lineinfile', { path: '/etc/x', line: '{{ 3.0 }}' }).line).toBe('3.0');
    expect(args('copy', { dest: '/etc/x', content: '{{ x }}' }).content).toBe('2.0');
    expect(args('lineinfile', { path: '/etc/x', line: '{{ x * 2 }}' }).line).toBe('4.0');
    expect(args('lineinfile', { path: '/etc/x', line: 'v={{ x }}' }).line).toBe('v=2.0');
  });
  it('debug keeps the float, so it shows 2.0', async () => {
    expect(String(args('debug', { msg: '{{ x }}' }).msg)).toBe('2.0');
  });
});

/**
 * debug as Ansible 2.14 shows a value. Expected values: what ansible-playbook 2.14.18 printed for each task on a
 * local connection, with play vars `x: 3.0`, `z: [1.0, 2, {a: 2.0}]`, `bigf: 10000000000000000.0`, `i: .inf`, `n: 3`
 * read from the playbook's YAML (Ansible prints JSON; provision prints `name = value`, the value written the same).
 */
import { describe, expect, it } from 'vitest';
import { debugModule } from '../../../src/modules/controller.js';
import type { TaskContext } from '../../../src/modules/module.js';
import { parseYaml } from '../../../src/playbook/load.js';

const vars = parseYaml('x: 3.0\nz: [1.0, 2, {a: 2.0}]\nbigf: 10000000000000000.0\ni: .inf\nn: 3\ns: hello\n', 'vars.yml', { floats: true }).value as Record<string, unknown>;
const ctx = { vars } as unknown as TaskContext;

async function shown(expr: string): Promise<string> {
  const plan = await debugModule.plan(ctx, { var: expr });
  return String(plan.msg);
}

describe('debug var shows values as Ansible 2.14 shows them', () => {
  const cases: [string, string][] = [
    ['x', '3.0'], // "x": 3.0
    ['z', '[1.0,2,{"a":2.0}]'], // "z": [1.0, 2, {"a": 2.0}]
    ['bigf', '1e+16'], // "bigf": 1e+16
    ['i', 'Infinity'], // "i": Infinity
    ['n', '3'], // "n": 3
    ['s', 'hello'], // "s": "hello"
    ['x + 1', '4.0'], // "x + 1": "4.0"
    ['10.0 ** 16', '1e+16'], // "10.0 ** 16": "1e+16"
    ['1 / 100000', '1e-05'], // "1 / 100000": "1e-05"
    ["'inf' | float", 'inf'], // "'inf' | float": "inf"
    ["'nan' | float", 'nan'], // "'nan' | float": "nan"
    ['z[0]', '1.0'], // "z[0]": "1.0"
    ['x | int', '3'], // "x | int": "3"
    ["{'a': x}", '{"a":3.0}'], // "{'a': x}": {"a": 3.0}
    ['1e5', '100000.0'], // "1e5": "100000.0"
  ];
  for (const [expr, want] of cases) {
    it(`debug var=${expr} shows ${want}`, async () => expect(await shown(expr)).toBe(`${expr} = ${want}`));
  }

  it('the registered result keeps the whole float (a later template prints 3.0)', async () => {
    const plan = await debugModule.plan(ctx, { var: 'x' });
    expect(String((plan.data as Record<string, unknown>).x)).toBe('3.0');
    expect(JSON.stringify(plan.data)).toBe('{"x":3}');
  });
});

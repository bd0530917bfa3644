import { describe, expect, it } from 'vitest';
import { checkSyntax, evaluateCondition, renderDeep, renderString, renderText, TemplateError, UndefinedVariableError } from '../../../src/playbook/template.js';

const vars = {
  inventory_hostname: 'mx1.example.org',
  port: 465,
  ports: [25, 465],
  facts: { os_family: 'RedHat', postfix_version: '2.6.6' },
  empty: '',
  yes_string: 'yes',
};

describe('templates', () => {
  const renders: [string, unknown][] = [
    ['plain text', 'plain text'],
    ['{{ port }}', 465],
    ['{{ ports }}', [25, 465]],
    ['port {{ port }}', 'port 465'],
    ['/etc/pki/tls/certs/{{ inventory_hostname }}.crt', '/etc/pki/tls/certs/mx1.example.org.crt'],
    ["{{ '/etc/pki/tls/certs' if facts.os_family == 'RedHat' else '/etc/ssl/certs' }}", '/etc/pki/tls/certs'],
    ['{{ missing | default("fallback") }}', 'fallback'],
    ['{{ facts.nothing | default(1) }}', 1],
    ['{{ empty | default("x", true) }}', 'x'],
    ['{{ ports | join(",") }}', '25,465'],
    ['{{ yes_string | bool }}', true],
    // Backslashes in a task argument's string literals are kept as written: `\.` is an escaped dot.
    ['{{ "a.b.c" | regex_replace("\\.", "-") }}', 'a-b-c'],
    ['{{ True }}', true],
    ['{{ ports | length }}', 2],
  ];
  for (const [src, want] of renders) {
    it(`renders ${src}`, () => expect(renderString(src, vars)).toEqual(want));
  }

  const undefinedCases: [string, string][] = [
    ['{{ nope }}', 'nope'],
    ['x {{ nope }} y', 'nope'],
    ['{{ facts.missing }}', 'facts.missing'],
    ['{{ nope.deeper.still }}', 'nope.deeper.still'],
    ['{{ nope == 1 }}', 'nope'],
    ['{{ ports[5] }}', 'ports[5]'],
  ];
  for (const [src, name] of undefinedCases) {
    it(`names the undefined variable in ${src}`, () => {
      expect(() => renderString(src, vars)).toThrow(UndefinedVariableError);
      expect(() => renderString(src, vars)).toThrow(`undefined variable "${name}"`);
    });
  }

  it('evaluates conditions, lists of them, and is defined / is not defined', () => {
    expect(evaluateCondition("facts.os_family == 'RedHat'", vars)).toBe(true);
    expect(evaluateCondition(['port == 465', 'facts.os_family == "Debian"'], vars)).toBe(false);
    expect(evaluateCondition('nope is not defined', vars)).toBe(true);
    expect(evaluateCondition('nope is defined and nope', vars)).toBe(false);
    expect(evaluateCondition('{{ port > 25 }}', vars)).toBe(true);
    expect(evaluateCondition(true, vars)).toBe(true);
    expect(() => evaluateCondition('nope', vars)).toThrow('undefined variable "nope"');
  });

  it('refuses to reach outside the template context', () => {
    expect(() => renderString('{{ range.constructor("return process")() }}', vars)).toThrow(TemplateError);
    expect(() => renderString("{{ ''.constructor.constructor('return process')() }}", vars)).toThrow('not allowed');
    expect(() => renderString('{{ ports.__proto__ }}', vars)).toThrow('not allowed');
    expect(() => renderString('{{ process }}', vars)).toThrow('undefined variable "process"');
  });

  it('reports syntax errors as TemplateError', () => {
    expect(() => renderString('{{ port + }}', vars)).toThrow(TemplateError);
  });

  it('renders nested data and leaves keys alone', () => {
    expect(renderDeep({ '{{ port }}': ['{{ port }}', { a: 'p{{ port }}' }] }, vars)).toEqual({ '{{ port }}': [465, { a: 'p465' }] });
  });

  it('renders template files with trim_blocks like Ansible', () => {
    expect(renderText('{% for p in ports %}\nport {{ p }}\n{% endfor %}\n', vars)).toBe('port 25\nport 465\n');
  });

  it('keeps shell metacharacters literal', () => {
    const v = { x: "$(rm -rf /) `id` 'q' \"d\" ; | &\nnext" };
    expect(renderString('{{ x }}', v)).toBe(v.x);
    expect(renderString('a {{ x }} b', v)).toBe(`a ${v.x} b`);
  });
});

describe('variables that hold templates', () => {
  it('are rendered when used, against the same variables, and a loop is an error', async () => {
    const { mergeVars } = await import('../../../src/playbook/template.js');
    const vars = mergeVars([
      { vars: { cert: '{{ dir }}/{{ inventory_hostname }}.crt', dir: '/etc/ssl/certs', inventory_hostname: 'h1', self: '{{ self }}x' }, lazy: true },
      { vars: { out: 'literal {{ not_rendered }}' }, lazy: false },
    ]);
    expect(renderString('{{ cert }}', vars)).toBe('/etc/ssl/certs/h1.crt');
    expect(renderString('path={{ cert }}', vars)).toBe('path=/etc/ssl/certs/h1.crt');
    expect(renderString('{{ out }}', vars)).toBe('literal {{ not_rendered }}');
    expect(() => renderString('{{ self }}', vars)).toThrow('variable "self" refers to itself');
  });
});

describe('template errors say what is wrong in the template, never in JavaScript', () => {
  const vars = { s: 'abc', l: [1, 2], d: { a: 1 }, n: null };
  it.each([
    ['{{ s.nosuch() }}', 'a string has no method "nosuch"'],
    ['{{ l.nosuch() }}', 'a list has no method "nosuch"'],
    ['{{ d.a() }}', 'a dict has no method "a"'],
    ['{{ s() }}', '"s" is not callable'],
    ['{{ s | int( }}', 'expected comma after expression'],
    ['{{ s + 1 }}', "cannot add 'abc' and 1"],
    ['{{ n.x }}', "None has no attribute 'x'"],
    ['{{ 1 / 0 }}', 'division by zero'],
    ["{{ 'a' | constructor }}", 'unknown filter "constructor"'],
    ["{{ 'a' is toString }}", 'unknown test "toString"'],
  ])('%s', (src, message) => {
    let got = '';
    try {
      renderString(src, vars);
    } catch (e) {
      got = (e as Error).message;
    }
    expect(got).toContain(message);
    expect(got).not.toMatch(/__member|__method|__capture|proxy|Cannot read prop|is not a function|TypeError/);
  });
});

// Each of these fails in Ansible 2.14.18 too, or renders there what provision cannot render the same (recorded in
// test/fixtures/templates/conformance.yaml): provision says so when the template compiles, so `validate` reports it.
describe('refused when the template compiles (provision validate)', () => {
  const cases: [string, RegExp][] = [
    ['{{ 01 }}', /"01" is not a number/],
    ['{{ 1e }}', /"1e" is not a number/],
    ['{{ 9007199254740993 }}', /larger than the integers provision computes exactly/],
    ["{{ {1: 'a'} }}", /dict key must be text/],
    ['{{ 1 < 2 in [true] }}', /chains "in" with comparisons/],
    ['{{ null }}', /"null" is not a Jinja2 constant/],
    ['{{ 1 is odd is odd }}', /cannot be chained/],
    ['{{ x is defined if y else z }}', /reads "if" after the test "defined"/],
  ];
  for (const [src, msg] of cases) it(`${src}`, () => expect(checkSyntax(src)).toMatch(msg));
});

/** What a template reads, found without rendering it (templateRefs), and the shapes refused before nunjucks parses. */
import { describe, expect, it } from 'vitest';
import { MAX_TAG_TOKENS, MAX_TEMPLATE_NESTING, templateRefs, templateShapeProblem } from '../../../src/playbook/template.js';

describe('templateRefs', () => {
  const CASES: [string, string, boolean, string[], string[]][] = [
    ['attribute and filter arguments', '{{ a.b | default(c) }}', false, ['a', 'c'], ['a']],
    ['tests guard, other names do not', '{{ d is defined }} {{ e is match("x") }}', false, ['d', 'e'], ['d']],
    ['computed keys are read', '{{ e[f] }}', false, ['e', 'f'], []],
    ['keyword argument names are not variables', '{{ g(h=i) }}', false, ['g', 'i'], []],
    // Jinja2 2.x/3.x evaluates a dict key written as a name: `{{ {j: k} }}` with j = 'a' renders {'a': …}.
    ['a dict key written as a name is a variable, as in Jinja2', "{{ {j: k, 'l': m} }}", false, ['j', 'k', 'm'], []],
    ['for, set and macro define names', '{% for x, y in z %}{{ x }}{{ y }}{{ loop.index }}{% endfor %}{% set q = 1 %}{{ q }}{% macro m(p, r=s) %}{{ p }}{{ r }}{% endmacro %}{{ m(1) }}', false, ['z', 's'], []],
    ['builtins and literals', '{{ range(3) }} {{ True and none and true }}', false, [], []],
    ['a bare expression', 'x is defined and x > 1', true, ['x'], ['x']],
    ['a braced expression as a condition', '{{ y }}', true, ['y'], []],
    ['mandatory counts as handled', '{{ m | mandatory }}', false, ['m'], ['m']],
  ];
  it.each(CASES)('%s', (_what, source, expression, names, guarded) => {
    const r = templateRefs(source, expression)!;
    expect([...r.names.keys()].sort()).toEqual([...names].sort());
    expect([...r.guarded].sort()).toEqual([...guarded].sort());
    expect(r.problems).toEqual([]);
  });

  it('says where a name is first read, 1-based within the template', () => {
    expect(templateRefs('line one\n  {{ late }}\n')!.names.get('late')).toEqual({ line: 2, col: 6 });
  });

  it.each([
    ['{{ x.constructor }}', 'access to "constructor" is not allowed in templates'],
    ["{{ x['__proto__'] }}", 'access to "__proto__" is not allowed in templates'],
    ["{% include 'f' %}", 'templates cannot load other templates ({% include %})'],
    ["{% import 'f' as g %}", 'templates cannot load other templates ({% import %})'],
    ["{% from 'f' import g %}", 'templates cannot load other templates ({% from … import %})'],
    ["{% extends 'f' %}", 'templates cannot load other templates ({% extends %})'],
  ])('refuses %s', (source, message) => {
    expect(templateRefs(source)!.problems.map((p) => p.message)).toEqual([message]);
  });

  it('returns null for a template that does not parse', () => {
    expect(templateRefs('{{ x ')).toBeNull();
  });
});

describe('templateShapeProblem', () => {
  it.each([
    ['brackets', `{{ ${'('.repeat(MAX_TEMPLATE_NESTING + 1)}1${')'.repeat(MAX_TEMPLATE_NESTING + 1)} }}`, `brackets nested more than ${MAX_TEMPLATE_NESTING} deep in a template`],
    ['blocks', `${'{% if a %}'.repeat(MAX_TEMPLATE_NESTING + 1)}x${'{% endif %}'.repeat(MAX_TEMPLATE_NESTING + 1)}`, `template blocks nested more than ${MAX_TEMPLATE_NESTING} deep`],
    ['tokens', `{{ ${Array(MAX_TAG_TOKENS).fill('a').join(' ~ ')} }}`, `a template expression longer than ${MAX_TAG_TOKENS} tokens`],
  ])('refuses too many %s', (_what, source, message) => {
    expect(templateShapeProblem(source)).toBe(message);
  });

  it.each([
    ['nesting at the limit', `{{ ${'('.repeat(MAX_TEMPLATE_NESTING)}1${')'.repeat(MAX_TEMPLATE_NESTING)} }}`],
    ['many blocks one after another', '{% if a %}x{% endif %}'.repeat(5000)],
    ['brackets and quotes in text outside tags', `text with ((( [[[ and "quotes" and 'apostrophes'\n`.repeat(200)],
    ['closing braces inside strings', "{{ '}}' ~ \"%}\" ~ x }}"],
    ['a set with a value is not a block', '{% set a = 1 %}'.repeat(500)],
    ['comments', `{# ${'{% if %}'.repeat(500)} #}`],
  ])('accepts %s', (_what, source) => {
    expect(templateShapeProblem(source)).toBeNull();
  });
});

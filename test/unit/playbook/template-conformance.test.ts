import { describe, expect, it } from 'vitest';
import { evaluateCondition, renderDeep, renderText } from '../../../src/playbook/template.js';
import { OMITTED, sameArgument, setLookupEnv, suite, type TemplateCase, varsFor } from '../../support/template-suite.js';

setLookupEnv();

/** The case's result; for a task argument, `omitted` when the argument is left out. */
function render(c: TemplateCase): unknown {
  const vars = varsFor(c);
  if (c.when !== undefined) return evaluateCondition(c.when, vars);
  if (c.template !== undefined) return renderText(c.template, vars);
  const args = renderDeep({ r: c.expr! }, vars) as Record<string, unknown>;
  return 'r' in args ? args.r : OMITTED;
}

/**
 * Cases provision does not yet render as Ansible does (issue 15 is open on them). Each is expected to fail: when
 * one starts to pass, this list must lose it, so the list can only shrink.
 */
const KNOWN_GAPS = new Set<string>([]);

/** What a message must never show: JavaScript's own words. */
const JS_INTERNALS = /proxy|is not a function|Cannot read prop|undefined is not|missing \) after|TypeError|ReferenceError|\[object Object\]|Symbol\(/i;

describe('templates render as Ansible 2.14 renders them (test/fixtures/templates/conformance.yaml)', () => {
  for (const c of suite.cases) {
    (KNOWN_GAPS.has(c.name) ? it.fails : it)(c.name, () => {
      if (c.error !== undefined || c.provision === 'refused') {
        let message = '';
        expect(() => {
          try {
            render(c);
          } catch (e) {
            message = e instanceof Error ? e.message : String(e);
            throw e;
          }
        }).toThrow();
        expect(message).not.toMatch(JS_INTERNALS);
        return;
      }
      const got = render(c);
      if (c.omitted) {
        expect(got).toBe(OMITTED);
        return;
      }
      expect(got).not.toBe(OMITTED);
      if (!sameArgument(got, c.expected)) expect(got).toEqual(c.expected);
    });
  }
});

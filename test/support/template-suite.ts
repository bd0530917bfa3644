/**
 * The template conformance suite (test/fixtures/templates/conformance.yaml, recorded from Ansible 2.14 by
 * record.py) as the unit test and bench/template-engines.ts read it: its cases, the variables each case renders
 * with, and how a rendered task argument compares with what Ansible handed its module.
 */
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { parseInventoryText } from '../../src/inventory/load.js';
import { hostVars, inventoryOrder } from '../../src/inventory/vars.js';
import { ansibleGroups, makeHostvars, playVars } from '../../src/playbook/magic-vars.js';
import { parseYaml } from '../../src/playbook/load.js';
import { mergeVars } from '../../src/playbook/template.js';

/** One case of the suite. */
export interface TemplateCase {
  name: string;
  expr?: string;
  when?: string;
  template?: string;
  vars?: Record<string, unknown>;
  magic?: boolean;
  expected?: unknown;
  omitted?: boolean;
  error?: string;
  ansible_message?: string;
  /** provision refuses this on purpose where Ansible renders it */
  provision?: 'refused';
}

type Suite = { inventory: string; shared: Record<string, unknown>; cases: TemplateCase[] };

const text = readFileSync(new URL('../fixtures/templates/conformance.yaml', import.meta.url), 'utf8');
// PyYAML wrote the file: it is read as provision reads a playbook, with PyYAML's types (`1e+16` without a point is
// text there, not a number).
export const suite = parseYaml(text, 'conformance.yaml').value as Suite;
// The variables as provision reads a variable file, as Ansible reads them: a whole float (`1.0`) stays a float.
const withFloats = parseYaml(text, 'conformance.yaml', { floats: true }).value as Suite;
suite.shared = withFloats.shared;
suite.cases.forEach((c, i) => {
  if (c.vars) c.vars = withFloats.cases[i]!.vars;
});

/** The playbook directory of the recording play (lookups read its files/ and templates/). */
export const playbookDir = fileURLToPath(new URL('../fixtures/templates/playbook', import.meta.url));

/** What record.py sets for the env lookups. */
export function setLookupEnv(): void {
  process.env.TPL_CONFORMANCE_GREETING = 'hello there';
  delete process.env.TPL_CONFORMANCE_UNSET;
}

/**
 * The variables the recording play had on mx1.example.org (a play on that host alone, facts not gathered): its
 * inventory variables, the play's magic variables and the shared play vars.
 */
export function varsFor(c: TemplateCase): Record<string, unknown> {
  // A case's own variables are play vars: templates in them render when read, as Ansible's do.
  if (!c.magic) return mergeVars([{ vars: { playbook_dir: playbookDir, ...suite.shared }, lazy: false }, { vars: c.vars ?? {}, lazy: true }]);
  const inv = parseInventoryText(suite.inventory, 'inventory');
  const hostvars = makeHostvars(inventoryOrder(inv, inv.hosts.keys()), (h) => hostVars(inv, h), () => null);
  const play = playVars({ playHosts: ['mx1.example.org'], allHosts: ['mx1.example.org'], batch: ['mx1.example.org'], check: false, playbookDir, hostvars, groups: ansibleGroups(inv) });
  return { ...hostVars(inv, 'mx1.example.org'), ...play, ...suite.shared, ...(c.vars ?? {}) };
}

/** A task argument the template left out (it rendered to omit). */
export const OMITTED = Symbol('omitted');

/**
 * Ansible passes module arguments as text where a template gives a number (`{{ x | int + 1 }}` is "43") and the
 * module converts it; provision keeps the number. Both mean the same argument.
 */
export function sameArgument(got: unknown, want: unknown): boolean {
  if (typeof got === 'number' && typeof want === 'string') return String(got) === want || (Number.isInteger(got) && `${got}.0` === want);
  if (got === null && want === '') return true;
  if (Array.isArray(got) && Array.isArray(want)) return got.length === want.length && got.every((g, i) => sameArgument(g, want[i]));
  if (got && want && typeof got === 'object' && typeof want === 'object') {
    const keys = Object.keys(got);
    return keys.length === Object.keys(want).length && keys.every((k) => sameArgument((got as Record<string, unknown>)[k], (want as Record<string, unknown>)[k]));
  }
  return got === want;
}

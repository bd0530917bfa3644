/**
 * `npx tsx bench/template-engines.ts`: how many cases of the template conformance suite
 * (test/fixtures/templates/conformance.yaml, recorded from Ansible 2.14) each candidate engine renders as Ansible
 * does, and what each costs per render.
 *
 * Candidates: provision's engine (nunjucks extended through its parser, compiler and precompiled templates, with
 * our filters and tests), and minijinja-js (MiniJinja's WebAssembly build) given the same Ansible filters and
 * tests. minijinja-js is not a dependency: install it for the measurement with `npm install --no-save minijinja-js`.
 */
import { evaluateCondition, renderDeep, renderText } from '../src/playbook/template.js';
import { makeTables } from '../src/playbook/template/filters.js';
import { OMITTED, sameArgument, setLookupEnv, suite, varsFor } from '../test/support/template-suite.js';

setLookupEnv();

interface Engine {
  name: string;
  expr(source: string, vars: Record<string, unknown>): unknown;
  when(source: string, vars: Record<string, unknown>): unknown;
  file(source: string, vars: Record<string, unknown>): string;
}

const ours: Engine = {
  name: 'nunjucks + provision (this branch)',
  expr: (s, v) => {
    const out = renderDeep({ r: s }, v) as Record<string, unknown>;
    return 'r' in out ? out.r : OMITTED;
  },
  when: (s, v) => evaluateCondition(s, v),
  file: (s, v) => renderText(s, v),
};

async function minijinja(): Promise<Engine | null> {
  let mod: { Environment: new () => Record<string, unknown> & { addFilter(n: string, f: unknown): void; addTest(n: string, f: unknown): void; renderStr(s: string, c: unknown): string; evalExpr(s: string, c: unknown): unknown; enablePyCompat(): void } };
  try {
    mod = (await import('minijinja-' + 'js')) as typeof mod;
  } catch {
    return null;
  }
  // A JavaScript filter that throws makes the WebAssembly module panic and leaves its environment unusable, so
  // every render gets a fresh one.
  const fresh = () => {
    const env = new mod.Environment();
    setup(env);
    return env;
  };
  const setup = (env: InstanceType<typeof mod.Environment>) => {
  env.enablePyCompat();
  env.undefinedBehavior = 'strict';
  env.trimBlocks = true;
  // The same Ansible filters and tests, given plain values; minijinja's own Jinja2 filters stay where it has them.
  const tables: ReturnType<typeof makeTables> = makeTables({
    isUndefined: (v) => v === undefined,
    fail: () => {
      throw new Error('undefined');
    },
    plain: (v) => v,
    filter: (n) => tables.filters[n]!,
    test: (n) => tables.tests[n]!,
  });
  const own = new Set(['default', 'd', 'join', 'length', 'count', 'first', 'last', 'upper', 'lower', 'title', 'capitalize', 'trim', 'replace', 'reverse', 'sort', 'unique', 'min', 'max', 'sum', 'map', 'select', 'reject', 'selectattr', 'rejectattr', 'dictsort', 'groupby', 'batch', 'slice', 'list', 'string', 'int', 'float', 'abs', 'round', 'indent', 'tojson', 'format', 'attr', 'items']);
  for (const [n, f] of Object.entries(tables.filters)) if (!own.has(n)) env.addFilter(n, f);
  for (const [n, t] of Object.entries(tables.tests)) if (!['defined', 'undefined', 'none', 'string', 'number', 'mapping', 'sequence', 'iterable', 'odd', 'even', 'divisibleby', 'eq', 'ne', 'lt', 'le', 'gt', 'ge', 'in', 'true', 'false', 'lower', 'upper', 'sameas', 'boolean', 'float', 'integer', 'startingwith', 'endingwith'].includes(n)) env.addTest(n, t);
  };
  const plainVars = (v: Record<string, unknown>) => JSON.parse(JSON.stringify(v)) as Record<string, unknown>;
  return {
    name: 'minijinja-js (MiniJinja WebAssembly) + the same Ansible filters',
    expr: (s, v) => {
      const single = /^\{\{([\s\S]*)\}\}$/.exec(s);
      if (single && !single[1]!.includes('{{')) return fresh().evalExpr(single[1]!, plainVars(v));
      return fresh().renderStr(s, plainVars(v));
    },
    when: (s, v) => Boolean(fresh().evalExpr(s, plainVars(v))),
    file: (s, v) => fresh().renderStr(s, plainVars(v)),
  };
}

function measure(engine: Engine): void {
  let pass = 0;
  const failed: string[] = [];
  for (const c of suite.cases) {
    const vars = varsFor(c);
    let ok: boolean;
    try {
      const got = c.when !== undefined ? engine.when(c.when, vars) : c.template !== undefined ? engine.file(c.template, vars) : engine.expr(c.expr!, vars);
      ok = c.error === undefined && c.provision !== 'refused' && (c.omitted ? got === OMITTED : sameArgument(got, c.expected));
    } catch {
      ok = c.error !== undefined || c.provision === 'refused';
    }
    if (ok) pass++;
    else failed.push(c.name);
  }
  const vars = varsFor(suite.cases[0]!);
  const n = 2000;
  const t0 = process.hrtime.bigint();
  for (let i = 0; i < n; i++) engine.expr("{{ users | selectattr('uid', 'gt', 1000) | map(attribute='name') | join(',') }} {{ postfix.myhostname }}", vars);
  const us = Number(process.hrtime.bigint() - t0) / 1e3 / n;
  console.log(`${engine.name}: ${pass}/${suite.cases.length} cases as Ansible 2.14 (${((100 * pass) / suite.cases.length).toFixed(1)}%), ${us.toFixed(1)} µs per render`);
  if (failed.length) console.log(`  differs on: ${failed.join(', ')}`);
}

measure(ours);
const mj = await minijinja();
if (mj) measure(mj);
else console.log('minijinja-js: not installed (npm install --no-save minijinja-js to measure it)');

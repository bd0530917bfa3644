import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { Ajv2020 as Ajv, type ValidateFunction } from 'ajv/dist/2020.js';
import { allModules } from '../../../src/modules/index.js';
import { generatedValidators } from '../../../src/playbook/validators-build.js';
import { argsExportName, argsSchema, COERCING_OPTIONS, KEYWORDS_ID, keywordsSchema, PLAY_ID, schemasHash, STRUCTURE_OPTIONS, usingGenerated } from '../../../src/playbook/validators.js';
import playSchema from '../../../src/playbook/schema/play.schema.json' with { type: 'json' };

// The generated files must resolve ajv's runtime helpers, so they are written inside the project, then removed.
const root = path.resolve(import.meta.dirname, '../../..');
let dir: string;
let structure: Record<string, unknown>;
let args: Record<string, unknown>;

beforeAll(async () => {
  dir = mkdtempSync(path.join(root, '.validators-test-'));
  const { structure: s, args: a } = generatedValidators();
  writeFileSync(path.join(dir, 'structure.js'), s);
  writeFileSync(path.join(dir, 'args.js'), a);
  structure = (await import(path.join(dir, 'structure.js'))) as Record<string, unknown>;
  args = (await import(path.join(dir, 'args.js'))) as Record<string, unknown>;
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const playbooks = [
  path.join(root, 'playbooks/smtps.yaml'),
  ...readdirSync(path.join(root, 'test/fixtures/playbooks')).map((f) => path.join(root, 'test/fixtures/playbooks', f)),
].map((f) => parse(readFileSync(f, 'utf8')) as unknown);

const broken: unknown[] = [
  [{ hosts: 'all', serial: -1, tasks: [] }],
  [{ hosts: 'all', tasks: 'not a list' }],
  [{ tasks: [{ name: 'x', command: 'true' }] }],
  [{ hosts: 'all', gather_facts: 'perhaps', become: 3 }],
  { hosts: 'all' },
];

function same(generated: ValidateFunction, compiled: ValidateFunction, data: unknown): void {
  const a = structuredClone(data);
  const b = structuredClone(data);
  expect(generated(a)).toBe(compiled(b));
  expect(generated.errors ?? null).toEqual(compiled.errors ?? null);
  expect(a).toEqual(b);
}

describe('validators generated at build time (ajv standalone code)', () => {
  it('are not used when running from source: the schemas are compiled as before', () => {
    expect(usingGenerated).toBe(false);
  });

  it('carry the hash of the schemas they were made from, so a stale file is never used', () => {
    expect(structure.hash).toBe(schemasHash());
    expect(args.hash).toBe(schemasHash());
  });

  it('decide plays exactly as the compiled schema does, errors included', () => {
    const ajv = new Ajv(STRUCTURE_OPTIONS);
    ajv.addSchema(playSchema);
    const plays = ajv.getSchema(PLAY_ID) as ValidateFunction;
    const keywords = ajv.compile(keywordsSchema());
    for (const data of [...playbooks, ...broken]) same(structure.plays as ValidateFunction, plays, data);
    for (const task of [{ name: 'x', when: 'a', tags: ['t'] }, { name: 3, become: 'yes please', loop: 5 }, { notify: [1] }]) {
      same(structure.keywords as ValidateFunction, keywords, task);
    }
    expect(KEYWORDS_ID).toBe('provision:task-keywords');
  });

  it('coerce and decide every module\'s arguments as the compiled schema does', () => {
    const ajv = new Ajv(COERCING_OPTIONS);
    const samples: Record<string, unknown>[] = [{}, { name: 'x' }, { dport: '465', proto: 'tcp' }, { path: '/etc/x', line: 465 }, { state: 'bogus' }, { cmd: ['a'] }];
    for (const m of allModules()) {
      const generated = args[argsExportName(m.name)] as ValidateFunction;
      expect(typeof generated, m.name).toBe('function');
      const compiled = ajv.compile(argsSchema(m));
      for (const s of samples) same(generated, compiled, s);
    }
  });
});

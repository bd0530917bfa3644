/**
 * Writes dist/playbook/validators.generated.js: the playbook validators as ajv standalone code, so a command
 * starts without compiling JSON Schemas. Run by `npm run build` after tsc; see validators.ts.
 */
import { writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { Ajv2020 as Ajv } from 'ajv/dist/2020.js';
import standalone from 'ajv/dist/standalone/index.js';
import { allModules } from '../modules/index.js';
import playSchema from './schema/play.schema.json' with { type: 'json' };
import { argsExportName, argsSchema, COERCING_OPTIONS, KEYWORDS_ID, keywordsSchema, PLAY_ID, schemasHash, STRUCTURE_OPTIONS } from './validators.js';

// A CommonJS package: to TypeScript its default import is the module object, whose `default` is the function.
const standaloneCode = standalone.default;

/**
 * The generated modules' source texts: one per ajv instance (their options differ, and each standalone text
 * names its functions from its own counter), each with the schemas' hash. Standalone code loads ajv's small
 * runtime helpers with require(), which an ES module gets from createRequire.
 */
export function generatedValidators(): { structure: string; args: string } {
  const code = { source: true, esm: true };
  const structure = new Ajv({ ...STRUCTURE_OPTIONS, code });
  structure.addSchema(playSchema);
  structure.addSchema(keywordsSchema());
  const coercing = new Ajv({ ...COERCING_OPTIONS, code });
  const exports: Record<string, string> = {};
  for (const m of allModules()) {
    const id = `provision:args:${m.name}`;
    coercing.addSchema(argsSchema(m), id);
    exports[argsExportName(m.name)] = id;
  }
  const head = `import { createRequire } from 'node:module';\nconst require = createRequire(import.meta.url);\nexport const hash = ${JSON.stringify(schemasHash())};\n`;
  return {
    structure: `${head}${standaloneCode(structure, { plays: PLAY_ID, keywords: KEYWORDS_ID })}\n`,
    args: `${head}${standaloneCode(coercing, exports)}\n`,
  };
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const { structure, args } = generatedValidators();
  writeFileSync(new URL('./validators-structure.generated.js', import.meta.url), structure);
  writeFileSync(new URL('./validators-args.generated.js', import.meta.url), args);
}

/**
 * The ajv validators of playbooks: the play structure, the task keywords, and each module's arguments.
 *
 * Compiling them is most of a command's start-up, so `npm run build` also writes them out as plain JavaScript
 * (dist/playbook/validators-*.generated.js, ajv's standalone code) with a hash of the schemas they came from. At
 * run time the generated ones are used when that hash matches the schemas in this build; otherwise (running from
 * source, or a stale file) they are compiled here as before. Either way the same schemas decide. They are looked
 * up beside this module's URL, which in the bundled CLI is its chunk's: the build copies them into dist/bundle/.
 */
import { createHash } from 'node:crypto';
import { createRequire } from 'node:module';
import type { Ajv2020 as Ajv, Options, ValidateFunction } from 'ajv/dist/2020.js';
import { allModules } from '../modules/index.js';
import type { Module } from '../modules/module.js';
import playSchema from './schema/play.schema.json' with { type: 'json' };

const BASE: Options = { strict: false, allowUnionTypes: true };
/** Structure: all errors, no coercion. */
export const STRUCTURE_OPTIONS: Options = { ...BASE, allErrors: true };
/**
 * Module arguments are coerced as Ansible coerces them (`line: 465` is the string "465", `dport: "465"` a number).
 * ajv coerces in place and, collecting all errors, would try every branch of an anyOf on the same data; so one
 * validator coerces a copy and stops at the first error, and a second one collects the errors to show.
 */
export const COERCING_OPTIONS: Options = { ...BASE, allErrors: false, coerceTypes: true };
const REPORTING_OPTIONS: Options = { ...BASE, allErrors: true, coerceTypes: true };

export const PLAY_ID = 'provision:play';
export const KEYWORDS_ID = 'provision:task-keywords';

export const keywordSchemas = (playSchema.$defs as Record<string, unknown>).taskKeywords as Record<string, unknown>;

/** The schema of task keywords alone, its references pointing into the play schema. */
export function keywordsSchema(): Record<string, unknown> {
  return {
    $id: KEYWORDS_ID,
    type: 'object',
    properties: Object.fromEntries(
      Object.entries(keywordSchemas).map(([k, v]) => [k, JSON.parse(JSON.stringify(v).replace(/"#\/\$defs\//g, `"${PLAY_ID}#/$defs/`))]),
    ),
  };
}

export function argsSchema(mod: Pick<Module, 'schema'>): Record<string, unknown> {
  return { type: 'object', ...mod.schema };
}

/** The export name of a module's coercing validator in the generated file. */
export function argsExportName(name: string): string {
  return `args_${name.replace(/[^A-Za-z0-9_]/g, '_')}`;
}

/** What the validators are made of; the generated file is used only when its hash equals this one. */
export function schemasHash(): string {
  const h = createHash('sha256');
  h.update(JSON.stringify({ playSchema, keywords: keywordsSchema(), STRUCTURE_OPTIONS, COERCING_OPTIONS }));
  for (const m of allModules()) h.update(`\0${m.name}\0${JSON.stringify(argsSchema(m))}`);
  return h.digest('hex');
}

type Generated = { hash: string } & Record<string, ValidateFunction | string>;

/** A generated module of this build, or null when there is none or it was made from other schemas. */
async function loadGenerated(file: string, hash: string): Promise<Generated | null> {
  try {
    const g = (await import(new URL(file, import.meta.url).href)) as Generated;
    return g.hash === hash ? g : null;
  } catch {
    return null;
  }
}

const hash = schemasHash();
const [generatedStructure, generatedArgs] = await Promise.all([
  loadGenerated('./validators-structure.generated.js', hash),
  loadGenerated('./validators-args.generated.js', hash),
]);

/**
 * ajv itself (its compiler and code generator) is loaded only when a schema must be compiled here: when the
 * generated validators do not match this build, or when arguments failed and every error is wanted. A normal
 * start uses the generated code alone.
 */
const requireHere = createRequire(import.meta.url);
let AjvClass: typeof Ajv | undefined;
function newAjv(options: Options): Ajv {
  AjvClass ??= (requireHere('ajv/dist/2020.js') as { Ajv2020: typeof Ajv }).Ajv2020;
  return new AjvClass(options);
}

let structureAjv: Ajv | undefined;
function structure(): Ajv {
  if (!structureAjv) {
    structureAjv = newAjv(STRUCTURE_OPTIONS);
    structureAjv.addSchema(playSchema);
  }
  return structureAjv;
}
let coercingAjv: Ajv | undefined;
let reportingAjv: Ajv | undefined;

const pick = (g: Generated | null, name: string): ValidateFunction | undefined => (typeof g?.[name] === 'function' ? (g[name] as ValidateFunction) : undefined);

export const validatePlays: ValidateFunction = pick(generatedStructure, 'plays') ?? (structure().getSchema(PLAY_ID) as ValidateFunction);
export const validateKeywords: ValidateFunction = pick(generatedStructure, 'keywords') ?? structure().compile(keywordsSchema());

const coercing = new Map<string, ValidateFunction>();
/** The coercing validator of a module's arguments (stops at the first error). */
export function coercingValidator(mod: Module): ValidateFunction {
  let v = coercing.get(mod.name);
  if (!v) {
    v = pick(generatedArgs, argsExportName(mod.name)) ?? (coercingAjv ??= newAjv(COERCING_OPTIONS)).compile(argsSchema(mod));
    coercing.set(mod.name, v);
  }
  return v;
}

const reporting = new Map<string, ValidateFunction>();
/** The validator that collects every error of a module's arguments; compiled only once arguments fail. */
export function reportingValidator(mod: Module): ValidateFunction {
  let v = reporting.get(mod.name);
  if (!v) {
    v = (reportingAjv ??= newAjv(REPORTING_OPTIONS)).compile(argsSchema(mod));
    reporting.set(mod.name, v);
  }
  return v;
}

/** Whether this process uses the validators generated at build time (for tests and --debug). */
export const usingGenerated = generatedStructure !== null && generatedArgs !== null;

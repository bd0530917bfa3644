/**
 * The whole playbook schema for editors (`provision schema`): the play structure from schema/play.schema.json,
 * with each module's argument schema as a property of tasks and handlers. The validator checks the same
 * schemas in two steps (structure, then the task's module) to give precise messages.
 */
import { allModules, qualifiedNames } from '../modules/index.js';
import playSchema from './schema/play.schema.json' with { type: 'json' };

export function buildPlaybookSchema(): Record<string, unknown> {
  const schema = JSON.parse(JSON.stringify(playSchema)) as { $id?: string; $defs: Record<string, Record<string, unknown>> };
  delete schema.$id;
  const keywords = schema.$defs.taskKeywords as Record<string, unknown>;
  const modules: Record<string, unknown> = {};
  for (const m of allModules()) {
    const props = (m.schema.properties ?? {}) as Record<string, unknown>;
    // Ansible's other names for arguments are accepted too (the loader renames them).
    const aliasProps = Object.fromEntries(Object.entries(m.aliases ?? {}).map(([alias, name]) => [alias, props[name]]));
    const required = (m.schema.required ?? []) as string[];
    const withAliases = m.aliases
      ? {
          ...m.schema,
          properties: { ...props, ...aliasProps },
          required: required.filter((r) => !Object.values(m.aliases!).includes(r)),
          allOf: required.filter((r) => Object.values(m.aliases!).includes(r)).map((r) => ({ anyOf: [r, ...Object.keys(m.aliases!).filter((a) => m.aliases![a] === r)].map((k) => ({ required: [k] })) })),
        }
      : m.schema;
    const args = { type: 'object', description: m.description, ...withAliases };
    const value = m.freeForm ? { anyOf: [{ type: 'string', description: `${m.freeForm} (free form)` }, args] } : args;
    modules[m.name] = value;
    modules[`ansible.builtin.${m.name}`] = value;
    for (const full of qualifiedNames(m.name)) modules[full] = value;
  }
  const taskLike = (extra: Record<string, unknown>) => ({
    type: 'object',
    properties: { ...keywords, ...extra, ...modules },
    additionalProperties: false,
    minProperties: 1,
  });
  schema.$defs.task = { description: 'A task: keywords plus exactly one module key.', ...taskLike({}) };
  schema.$defs.handler = {
    description: 'A handler: a named task that runs at the end of the play when notified.',
    ...taskLike({ listen: { $ref: '#/$defs/stringList', description: 'Topics this handler also answers to.' } }),
    required: ['name'],
  };
  delete schema.$defs.taskKeywords;
  return schema;
}

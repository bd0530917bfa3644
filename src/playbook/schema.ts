/**
 * The whole playbook schema for editors (`provision schema`): the play structure from schema/play.schema.json,
 * with each module's argument schema as a property of tasks and handlers. The validator checks the same
 * schemas in two steps (structure, then the task's module) to give precise messages.
 */
import { allModules } from '../modules/index.js';
import playSchema from './schema/play.schema.json' with { type: 'json' };

export function buildPlaybookSchema(): Record<string, unknown> {
  const schema = JSON.parse(JSON.stringify(playSchema)) as { $id?: string; $defs: Record<string, Record<string, unknown>> };
  delete schema.$id;
  const keywords = schema.$defs.taskKeywords as Record<string, unknown>;
  const modules: Record<string, unknown> = {};
  for (const m of allModules()) {
    const args = { type: 'object', description: m.description, ...m.schema };
    const value = m.freeForm ? { anyOf: [{ type: 'string', description: `${m.freeForm} (free form)` }, args] } : args;
    modules[m.name] = value;
    modules[`ansible.builtin.${m.name}`] = value;
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

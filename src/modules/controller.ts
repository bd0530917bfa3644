/** Modules that run on the controller only: assert, debug, fail, set_fact, meta. */
import { displayJson, evaluateCondition, evaluateKeepingFloats, PyFloat, pyStr } from '../playbook/template.js';
import { type Module, ModuleError } from './module.js';
import type { ArgsOf } from './module.js';

export type AssertArgs = ArgsOf<typeof assertSchema>;

const assertSchema = {
  additionalProperties: false,
  required: ['that'],
  properties: {
    that: {
      description: 'An expression (without braces) or a list of them.',
      anyOf: [{ type: 'string' }, { type: 'boolean' }, { type: 'array', minItems: 1, items: { anyOf: [{ type: 'string' }, { type: 'boolean' }] } }],
    },
    fail_msg: { type: 'string', description: 'Message when an expression is false.' },
    msg: { type: 'string', description: 'Same as fail_msg.' },
    success_msg: { type: 'string', description: 'Message when all hold.' },
    quiet: { type: 'boolean', description: 'Say less on success.' },
  },
} as const;

export const assertModule: Module<AssertArgs> = {
  name: 'assert',
  description: 'Fail the host unless every expression in `that` holds.',
  controllerOnly: true,
  raw: ['that'],
  schema: assertSchema,
  async plan(ctx, args) {
    const conditions = Array.isArray(args.that) ? args.that : [args.that];
    for (const c of conditions) {
      let ok: boolean;
      try {
        ok = evaluateCondition(c, ctx.vars);
      } catch (e) {
        throw new ModuleError(`assertion ${JSON.stringify(c)}: ${(e as Error).message}`);
      }
      if (!ok) {
        const custom = args.fail_msg ?? args.msg;
        throw new ModuleError(custom ?? `assertion failed: ${c}`, { assertion: c, evaluated_to: false });
      }
    }
    return { changed: false, msg: args.quiet ? 'ok' : (args.success_msg ?? 'all assertions hold') };
  },
};

export type DebugArgs = ArgsOf<typeof debugSchema>;

/** A value as debug shows it: text as it is, anything else as JSON with whole floats shown as floats (`3.0`). */
function show(v: unknown): string {
  return typeof v === 'string' ? v : displayJson(v);
}

const debugSchema = {
  additionalProperties: false,
  properties: {
    msg: { description: 'What to print (templated).' },
    var: { type: 'string', description: 'A variable name or expression whose value to print.' },
    verbosity: { type: 'integer', description: 'Accepted for compatibility; ignored.' },
  },
} as const;

export const debugModule: Module<DebugArgs> = {
  name: 'debug',
  description: 'Print a message or the value of a variable.',
  controllerOnly: true,
  raw: ['var'],
  freeForm: 'msg',
  schema: debugSchema,
  async plan(ctx, args) {
    if (args.var !== undefined) {
      let value: unknown;
      try {
        // Whole floats stay boxed: `x: 3.0` shows as 3.0, as Ansible shows it, and stays a float when registered.
        value = evaluateKeepingFloats(args.var, ctx.vars);
      } catch (e) {
        throw new ModuleError((e as Error).message);
      }
      // Ansible hands a variable's own value to its display, and an expression's number as the text Python's
      // str() makes of it: `x` holding inf shows Infinity, `'inf' | float` shows inf.
      const expression = !/^\s*[A-Za-z_]\w*\s*$/.test(args.var);
      const shown = expression && (typeof value === 'number' || value instanceof PyFloat) ? pyStr(value) : show(value);
      return { changed: false, msg: `${args.var} = ${shown}`, data: { [args.var]: value } };
    }
    const msg = args.msg ?? 'Hello world!';
    return { changed: false, msg: show(msg), data: { msg } };
  },
};

const failSchema = { additionalProperties: false, properties: { msg: { type: 'string', description: 'The reason.' } } } as const;

export const failModule: Module<ArgsOf<typeof failSchema>> = {
  name: 'fail',
  description: 'Fail the host with a message (usually with `when`).',
  controllerOnly: true,
  freeForm: 'msg',
  schema: failSchema,
  async plan(_ctx, args) {
    throw new ModuleError(args.msg ?? 'failed as requested');
  },
};

const setFactSchema = {
  minProperties: 1,
  propertyNames: { pattern: '^[A-Za-z_][A-Za-z0-9_]*$' },
  additionalProperties: true,
} as const;

export const setFactModule: Module<ArgsOf<typeof setFactSchema>> = {
  name: 'set_fact',
  description: 'Define variables for the rest of the play on this host.',
  controllerOnly: true,
  schema: setFactSchema,
  async plan(_ctx, args) {
    const { cacheable: _ignored, ...vars } = args;
    return { changed: false, msg: `set ${Object.keys(vars).join(', ')}`, vars, data: { ansible_facts: vars } };
  },
};

export type MetaAction = ArgsOf<typeof metaSchema>['action'];

const metaSchema = {
  additionalProperties: false,
  required: ['action'],
  properties: { action: { enum: ['flush_handlers', 'noop', 'end_host', 'end_play'] } },
} as const;

export const metaModule: Module<ArgsOf<typeof metaSchema>> = {
  name: 'meta',
  description: 'Control the run: flush_handlers (run notified handlers now), noop, end_host, end_play.',
  controllerOnly: true,
  freeForm: 'action',
  schema: metaSchema,
  // The runner carries out meta actions itself; planning only has to say what was asked.
  async plan(_ctx, args) {
    return { changed: false, msg: args.action };
  },
};

/**
 * Lazy variables: a variable whose value holds templates is rendered when a template first reads it, against the
 * variables of the same task, as Ansible does.
 */
import { TemplateError } from './errors.js';
import { unboxDeep } from './python.js';
import { isTemplated } from './source.js';

/**
 * How a lazy value renders (render.ts sets it when it loads): this file is below the renderer, and the renderer
 * needs LazyValue, so the renderer is handed in rather than imported.
 */
let renderValue: (raw: unknown, vars: Record<string, unknown>) => unknown = () => {
  throw new TemplateError('variables are rendered before the template engine has loaded');
};

/** Called once by render.ts with its renderDeep. */
export function setLazyRenderer(render: (raw: unknown, vars: Record<string, unknown>) => unknown): void {
  renderValue = render;
}

/**
 * A variable whose value holds templates (`cert: "{{ facts.tls_cert_dir }}/x.crt"`), rendered when a template first
 * uses it, against the same variables — as Ansible does. A variable that needs itself is an error.
 */
export class LazyValue {
  private state: 'idle' | 'busy' | 'done' = 'idle';
  private value: unknown;

  constructor(
    readonly name: string,
    readonly raw: unknown,
    private readonly vars: () => Record<string, unknown>,
  ) {}

  resolve(): unknown {
    if (this.state === 'done') return this.value;
    if (this.state === 'busy') throw new TemplateError(`variable "${this.name}" refers to itself`);
    this.state = 'busy';
    try {
      this.value = renderValue(this.raw, this.vars());
      this.state = 'done';
      return this.value;
    } finally {
      if (this.state === 'busy') this.state = 'idle';
    }
  }
}

/**
 * What holdsTemplate found for each object it walked. Variable layers are built once and merged again for every
 * task, and a host's inventory variables include `groups` (every host of every group): without this, each merge
 * would walk the whole inventory again, per host, per task.
 */
const templatedObjects = new WeakMap<object, boolean>();

function holdsTemplate(v: unknown): boolean {
  if (typeof v === 'string') return isTemplated(v);
  if (!v || typeof v !== 'object' || Buffer.isBuffer(v) || v instanceof LazyValue) return false;
  let found = templatedObjects.get(v);
  if (found === undefined) {
    found = Array.isArray(v) ? v.some(holdsTemplate) : Object.values(v).some(holdsTemplate);
    templatedObjects.set(v, found);
  }
  return found;
}

/**
 * Merge variable layers, later ones winning. Values in `lazy` layers that hold templates are rendered on first
 * use; `plain` layers (registered results, facts) are taken literally — a command's output that happens to
 * contain "{{" is data, not a template.
 */
export function mergeVars(layers: { vars: Record<string, unknown>; lazy: boolean }[]): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const layer of layers) {
    for (const [k, v] of Object.entries(layer.vars)) {
      out[k] = layer.lazy && holdsTemplate(v) ? new LazyValue(k, v, () => out) : v;
    }
  }
  return out;
}

/** A variable's value for code (not templates): lazy values rendered. */
export function varValue(vars: Record<string, unknown>, name: string): unknown {
  const v = vars[name];
  return v instanceof LazyValue ? unboxDeep(v.resolve()) : v;
}

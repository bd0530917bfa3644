/**
 * Undefined handling as Ansible's strict undefined: a missing name becomes a named stand-in that fails, naming
 * itself, when used as a value, while `x is defined` and `x | default(…)` still work. Plain objects are wrapped so
 * a missing key yields such a stand-in too.
 */
import { UndefinedVariableError } from './errors.js';
import { LazyValue } from './lazy.js';
import { isTuple, markTuple, PyFloat, repr } from './python.js';

/** Tests that never fail on a missing value, so `x is defined` guards `x`. */
export const GUARD_TESTS = new Set(['defined', 'undefined', 'none', 'true', 'false', 'boolean']);

export const UNDEF = Symbol('undefined');
export const TARGET = Symbol('target');
export const NAME = Symbol('name');
/** marks the objects namespace() makes: the only ones `{% set ns.x = … %}` may change */
export const NAMESPACE = Symbol('namespace');

export interface Undef {
  [UNDEF]: string;
}

/** How a template would write `name`'s member `key`: `x.y`, or `x['mail.example.org']` when not a plain name. */
export function childName(name: string, key: string): string {
  return /^[A-Za-z_]\w*$/.test(key) ? `${name}.${key}` : `${name}[${repr(key)}]`;
}

/** The stand-in for a missing name: any use as a value (output, comparison, arithmetic) throws with its name. */
export function undef(name: string): Undef {
  const base = Object.create(null) as Undef;
  base[UNDEF] = name;
  return new Proxy(base, {
    get(t, key) {
      if (key === UNDEF) return name;
      if (key === Symbol.toPrimitive || key === 'toString' || key === 'valueOf') {
        return () => {
          throw new UndefinedVariableError(name);
        };
      }
      if (typeof key === 'symbol') return undefined;
      return undef(childName(name, key));
    },
    has() {
      throw new UndefinedVariableError(name);
    },
  });
}

export function isUndefined(v: unknown): boolean {
  return v === undefined || (typeof v === 'object' && v !== null && (v as Undef)[UNDEF] !== undefined);
}

/** Wrap plain objects so that a missing key yields a named stand-in instead of `undefined`. */
export function guard(value: unknown, name: string): unknown {
  if (value === null || typeof value !== 'object' || Buffer.isBuffer(value)) return value;
  if ((value as Undef)[UNDEF] !== undefined) return value;
  const proto = Object.getPrototypeOf(value);
  if (!Array.isArray(value) && proto !== Object.prototype && proto !== null) return value;
  return new Proxy(value as Record<PropertyKey, unknown>, {
    get(t, key) {
      if (key === TARGET) return t;
      if (key === NAME) return name;
      if (typeof key === 'symbol') return Reflect.get(t, key);
      if (Array.isArray(t)) {
        if (key in t) return guard(Reflect.get(t, key), `${name}[${key}]`);
        return /^\d+$/.test(key) ? undef(`${name}[${key}]`) : undefined;
      }
      if (Object.prototype.hasOwnProperty.call(t, key)) {
        // A read-only, non-configurable property (the inventory's `groups`) must come back as it is.
        const d = Object.getOwnPropertyDescriptor(t, key)!;
        if (!d.configurable && !d.writable) return t[key];
        return guard(t[key], childName(name, key));
      }
      // Methods Jinja users call on dicts (`d.items()`, `d.keys()`) and nunjucks internals stay reachable.
      if (key in Object.prototype) return undefined;
      return undef(childName(name, key));
    },
  });
}

/** The plain value behind guards (for results handed back to modules). */
export function unguard(value: unknown): unknown {
  if (isUndefined(value)) return undefined;
  if (value instanceof LazyValue) return value.resolve();
  if (value === null || typeof value !== 'object') return value;
  const target = (value as Record<PropertyKey, unknown>)[TARGET] as unknown;
  return target ?? value;
}

/** The name a stand-in stands for (for messages). */
export function undefName(v: unknown): string {
  return (v as Undef | undefined)?.[UNDEF] ?? 'value';
}

/** The plain value behind guards, all the way down. */
export function unguardDeep(v: unknown): unknown {
  const u = unguard(v);
  if (Array.isArray(u)) return isTuple(u) ? markTuple(u.map(unguardDeep)) : u.map(unguardDeep);
  if (u && typeof u === 'object' && !Buffer.isBuffer(u) && !(u instanceof PyFloat)) {
    return Object.fromEntries(Object.entries(u).map(([k, x]) => [k, unguardDeep(x)]));
  }
  return u;
}

/** The plain value behind guards, with whole floats as numbers: what a template hands back to code. */
export function plainValue(v: unknown): unknown {
  const u = unguard(v);
  if (u instanceof PyFloat) return u.value;
  if (Array.isArray(u)) return u.map(plainValue);
  if (u && typeof u === 'object' && !Buffer.isBuffer(u)) {
    return Object.fromEntries(Object.entries(u).map(([k, x]) => [k, plainValue(x)]));
  }
  return u;
}

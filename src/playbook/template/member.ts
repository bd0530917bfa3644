/** Attribute and item access as Jinja2 does it on plain data, with Python's slices. */
import { TemplateError } from './errors.js';
import { FORBIDDEN } from './guard.js';
import { braceFormat, pyMethod, repr, splitKwargs } from './python.js';
import { childName, isUndefined, NAME, undef, undefName, unguard, unguardDeep } from './undefined.js';

/** Python's `x[start:stop:step]`. */
export class Slice {
  constructor(
    readonly start: number | null,
    readonly stop: number | null,
    readonly step: number | null,
  ) {}

  of<T>(items: T[]): T[] {
    const len = items.length;
    const step = this.step ?? 1;
    if (step === 0) throw new TemplateError('slice step cannot be zero');
    const norm = (v: number | null, dflt: number) => (v === null ? dflt : v < 0 ? Math.max(v + len, step < 0 ? -1 : 0) : Math.min(v, step < 0 ? len - 1 : len));
    const start = norm(this.start, step > 0 ? 0 : len - 1);
    const stop = norm(this.stop, step > 0 ? len : -1);
    const out: T[] = [];
    for (let i = start; step > 0 ? i < stop : i > stop; i += step) out.push(items[i]!);
    return out;
  }
}

/**
 * Attribute and item access (`x.y`, `x['y']`, `x[0]`), as Jinja2 does it on plain data: keys of dictionaries,
 * items of lists (negative indexes from the end) and strings, and the Python methods of str, list and dict.
 */
export function member(obj: unknown, key: unknown): unknown {
  if (typeof key === 'string' && FORBIDDEN.has(key)) throw new TemplateError(`access to "${key}" is not allowed in templates`);
  if (isUndefined(obj)) return undef(childName(undefName(obj), String(key)));
  const named = (obj as Record<symbol, string> | null)?.[NAME] ?? 'value';
  if (obj === null || obj === undefined) throw new TemplateError(`None has no attribute ${repr(key)}`);
  const target = unguard(obj);
  if (key instanceof Slice) {
    if (typeof target === 'string') return key.of([...target]).join('');
    if (Array.isArray(target)) return key.of(obj as unknown[]);
    throw new TemplateError(`cannot slice ${repr(unguardDeep(obj))}`);
  }
  if (typeof key === 'number' || (typeof key === 'string' && /^-?\d+$/.test(key) && (Array.isArray(target) || typeof target === 'string'))) {
    if (typeof target === 'string' || Array.isArray(target)) {
      const i = Number(key);
      const at = i < 0 ? target.length + i : i;
      if (at < 0 || at >= target.length) return undef(`${named}[${key}]`);
      return Array.isArray(target) ? (obj as unknown[])[at] : target[at];
    }
  }
  if (typeof key === 'string') {
    if (typeof target === 'string') {
      const m = pyMethod(target, key);
      if (m) return m;
      if (key === 'format') return (...args: unknown[]) => {
        const { args: a, kwargs } = splitKwargs(args);
        return braceFormat(target, a, kwargs);
      };
      return undef(`str.${key}`);
    }
    if (target && typeof target === 'object' && !Buffer.isBuffer(target)) {
      const proto = Object.getPrototypeOf(target);
      const own = Object.prototype.hasOwnProperty.call(target, key);
      if (own) return (obj as Record<string, unknown>)[key];
      if (Array.isArray(target)) {
        const m = pyMethod(target, key);
        return m ?? undef(childName(named, key));
      }
      if (proto === Object.prototype || proto === null || Array.isArray(target)) {
        const m = pyMethod(target, key);
        if (m) return m;
        return (obj as Record<string, unknown>)[key] ?? undef(childName(named, key));
      }
      // Objects of the engine itself (a loop, a cycler, a macro's result) keep their own members.
      const v = (target as Record<string, unknown>)[key];
      return typeof v === 'function' ? (v as (...a: unknown[]) => unknown).bind(target) : v;
    }
  }
  return undef(String(key));
}

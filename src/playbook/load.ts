/**
 * YAML with source positions: the value as plain data, plus where every key and value of it starts, keyed by JSON
 * pointer ("/0/tasks/3/iptables/dport"). Syntax errors, duplicate keys and alias bombs become one InputError with
 * file:line:col.
 */
import { readFileSync, statSync } from 'node:fs';
import { isAlias, isMap, isPair, isScalar, isSeq, LineCounter, type Node } from 'yaml';
import { formatPos, InputError, type SourcePos } from '../errors.js';
import { pyyamlTags } from '../util/pyyaml.js';
import { PyFloat } from './template/python.js';
import { openVaultFile, placeVaulted, vaultTag } from '../util/vault.js';
import { composeDocuments, NestingError } from '../util/yaml-compose.js';

/** Position of a key (when the value sits in a mapping) and of its value. */
export interface NodePos {
  key?: SourcePos;
  value: SourcePos;
}

export interface Located {
  value: unknown;
  /** JSON pointer → position */
  positions: Map<string, NodePos>;
  file: string;
}

/** Files larger than this are refused before parsing (a playbook or inventory is never this large). */
export const MAX_YAML_BYTES = 32 * 1024 * 1024;
/** Alias expansions allowed in one document (a "billion laughs" file needs far more). */
export const MAX_ALIASES = 1000;

export function pointer(parts: ReadonlyArray<string | number>): string {
  return parts.map((p) => `/${String(p).replace(/~/g, '~0').replace(/\//g, '~1')}`).join('');
}

/** How a YAML file is read: `floats` keeps a whole float (`2.0`) a float, for files that hold variables only. */
export interface YamlOptions {
  floats?: boolean;
}

/** A whole float read from a variables file, boxed so that templates print it as Ansible does (`2.0`). */
const wholeFloat = (n: number) => new PyFloat(n);

export function readYamlFile(file: string, what = 'file', opts: YamlOptions = {}): Located {
  let text: string;
  try {
    const size = statSync(file).size;
    if (size > MAX_YAML_BYTES) {
      throw new InputError(`${what} is ${(size / 1048576).toFixed(1)} MiB; the limit is ${MAX_YAML_BYTES / 1048576} MiB`, { file, line: 1, col: 1 });
    }
    text = readFileSync(file, 'utf8');
  } catch (e) {
    if (e instanceof InputError) throw e;
    const err = e as NodeJS.ErrnoException;
    const reason = err.code === 'ENOENT' ? 'no such file' : err.code === 'EISDIR' ? 'is a directory' : err.code === 'EACCES' ? 'permission denied' : err.message;
    throw new InputError(`cannot read ${what} ${file}: ${reason}`);
  }
  return parseYaml(text, file, opts);
}

export function parseYaml(source: string, file: string, opts: YamlOptions = {}): Located {
  // A file encrypted with ansible-vault as a whole is read decrypted (or refused, naming it, without a password).
  let text: string;
  try {
    text = openVaultFile(source, file);
  } catch (e) {
    throw new InputError((e as Error).message, { file, line: 1, col: 1 });
  }
  const lineCounter = new LineCounter();
  const at = (offset: number): SourcePos => {
    const lp = lineCounter.linePos(offset);
    return { file, line: lp.line, col: lp.col };
  };
  let docs;
  try {
    // YAML 1.1, as Ansible reads it: `become: yes` is a boolean and `mode: 0644` is octal.
    docs = composeDocuments(text, lineCounter, { uniqueKeys: true, strict: true, version: '1.1', customTags: (tags) => [...pyyamlTags(tags, opts.floats ? wholeFloat : undefined), vaultTag(file)] });
  } catch (e) {
    if (e instanceof NestingError) throw new InputError(e.message, at(e.offset));
    throw e;
  }
  for (const doc of docs) {
    placeVaulted(doc, (offset) => formatPos(at(offset)));
    const err = doc.errors[0];
    if (err) {
      const pos = at(err.pos[0]);
      // The parser's own words for a tab in indentation ("Unexpected scalar at node end") do not say what is wrong.
      const line = text.split('\n', pos.line)[pos.line - 1] ?? '';
      if (/^ *\t/.test(line)) throw new InputError('YAML syntax error: a tab indents this line; YAML indentation must be spaces', { ...pos, col: line.indexOf('\t') + 1 });
      throw new InputError(`YAML syntax error: ${firstLine(err.message)}`, pos);
    }
    // An unknown tag (`!vault`, `!unsafe`) would otherwise be read as a plain string and used as such.
    const tagWarning = doc.warnings.find((w) => w.code === 'TAG_RESOLVE_FAILED');
    if (tagWarning) throw new InputError(`YAML tag ${text.slice(tagWarning.pos[0], tagWarning.pos[1])} is not supported`, at(tagWarning.pos[0]));
  }
  if (docs.length > 1) {
    const second = docs[1]!;
    throw new InputError('expected one YAML document, found more (a second "---")', at(second.range[0]));
  }
  const doc = docs[0];
  if (!doc) return { value: null, positions: new Map(), file };
  if (!opts.floats) boxVarsFloats(doc.contents, []);
  let value: unknown;
  try {
    value = doc.toJS({ maxAliasCount: MAX_ALIASES });
  } catch (e) {
    const msg = e instanceof Error ? e.message : String(e);
    if (/alias/i.test(msg)) throw new InputError(`too many YAML alias expansions (more than ${MAX_ALIASES}): refusing a possible alias bomb`, { file, line: 1, col: 1 });
    throw new InputError(`YAML error: ${firstLine(msg)}`, { file, line: 1, col: 1 });
  }
  const positions = new Map<string, NodePos>();
  const walk = (node: unknown, parts: (string | number)[], key?: SourcePos, depth = 0) => {
    if (!node || depth > 200) return;
    const n = node as Node;
    const start = n.range?.[0];
    if (start !== undefined) positions.set(pointer(parts), { key, value: at(start) });
    if (isAlias(n)) return;
    if (isMap(n)) {
      for (const item of n.items) {
        if (!isPair(item)) continue;
        const k = item.key as Node | null;
        const kName = isScalar(k) ? String(k.value) : String(k);
        const kPos = k?.range ? at(k.range[0]) : undefined;
        if (item.value) walk(item.value, [...parts, kName], kPos, depth + 1);
        else if (kPos) positions.set(pointer([...parts, kName]), { key: kPos, value: kPos });
      }
    } else if (isSeq(n)) {
      n.items.forEach((item, i) => walk(item, [...parts, i], undefined, depth + 1));
    }
  };
  walk(doc.contents, []);
  return { value, positions, file };
}

/** Keys whose list items are tasks, blocks or roles, and so may carry a `vars:` keyword. */
const TASK_LISTS = new Set(['tasks', 'handlers', 'pre_tasks', 'post_tasks', 'block', 'rescue', 'always', 'roles']);
/** A plain scalar PyYAML resolves to a float (`2.0`, `1.0e+3`). */
const FLOAT_SOURCE = /^(?:[-+]?[0-9][0-9_]*\.[0-9_]*|\.[0-9][0-9_]*)(?:[eE][-+][0-9]+)?$/;

/**
 * In a playbook or task file, the values under a play's, block's, task's or role entry's `vars:` are variables:
 * a whole float there (`y: 2.0`) is boxed so that templates print it as Ansible does. Task arguments stay plain
 * numbers, since they are validated as JSON.
 */
function boxVarsFloats(node: unknown, parts: (string | number)[], depth = 0): void {
  if (!node || depth > 200 || isAlias(node as Node)) return;
  const n = node as Node;
  if (isMap(n)) {
    for (const item of n.items) {
      if (!isPair(item) || !isScalar(item.key)) continue;
      boxVarsFloats(item.value, [...parts, String(item.key.value)], depth + 1);
    }
  } else if (isSeq(n)) {
    n.items.forEach((item, i) => boxVarsFloats(item, [...parts, i], depth + 1));
  } else if (isScalar(n) && n.type === 'PLAIN' && typeof n.value === 'number' && Number.isInteger(n.value) && FLOAT_SOURCE.test(String(n.source ?? '')) && underVars(parts)) {
    n.value = wholeFloat(n.value);
  }
}

/** Whether a path runs through the `vars:` of a play (`/0/vars/…`) or of a task, block or role entry. */
function underVars(parts: (string | number)[]): boolean {
  for (let i = 1; i < parts.length - 1; i++) {
    if (parts[i] !== 'vars' || typeof parts[i - 1] !== 'number') continue;
    if (i === 1 || TASK_LISTS.has(String(parts[i - 2]))) return true;
  }
  return false;
}

function firstLine(s: string): string {
  return s.split('\n')[0]!.replace(/\s+at line \d+, column \d+:?$/, '').trim();
}

/** The position of a pointer, or of its nearest ancestor that has one. */
export function positionOf(loc: Located, ptr: string, prefer: 'key' | 'value' = 'value'): SourcePos {
  let p = ptr;
  for (;;) {
    const found = loc.positions.get(p);
    if (found) return (prefer === 'key' ? found.key : undefined) ?? found.value;
    if (p === '') return { file: loc.file, line: 1, col: 1 };
    p = p.slice(0, p.lastIndexOf('/'));
  }
}

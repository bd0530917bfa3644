/**
 * Ansible's YAML inventory (`all:` / `children:` / `hosts:` / `vars:`) and the YAML or JSON files under
 * group_vars/ and host_vars/. Parsed as YAML 1.1, as Ansible's PyYAML does, so `yes`, `on` and `0644` mean what
 * they mean there; duplicate keys are errors rather than a silent last-wins.
 */
import {
  isAlias,
  isMap,
  isScalar,
  isSeq,
  LineCounter,
  type Document,
  type Node as YamlNode,
  type YAMLMap,
} from 'yaml';
import { formatPos, InputError, type SourcePos } from '../errors.js';
import { PyFloat } from '../playbook/template/python.js';
import { pyyamlTags } from '../util/pyyaml.js';
import { openVaultFile, placeVaulted, vaultTag } from '../util/vault.js';
import { composeDocuments, NestingError } from '../util/yaml-compose.js';
import type { InventoryBuilder } from './builder.js';
import { checkVarName, parseHostPattern } from './host-pattern.js';

/** Group names as INI section headers allow them, so patterns can always name a group. */
const GROUP_NAME = /^[^:\]\s]+$/u;

interface Source {
  doc: Document;
  lines: LineCounter;
  file: string;
}

function read(source: string, file: string): Source {
  // A file encrypted with ansible-vault as a whole is read decrypted (or refused, naming it, without a password).
  let text: string;
  try {
    text = openVaultFile(source, file);
  } catch (e) {
    throw new InputError((e as Error).message, { file, line: 1, col: 1 });
  }
  const lines = new LineCounter();
  let docs: Document.Parsed[];
  try {
    // Inventory values are variables: a whole float (`2.0`) stays a float, boxed, as templates print it.
    docs = composeDocuments(text, lines, { version: '1.1', uniqueKeys: true, customTags: (tags) => [...pyyamlTags(tags, (n) => new PyFloat(n)), vaultTag(file)] });
  } catch (e) {
    if (e instanceof NestingError) throw new InputError(e.message, { file, ...lines.linePos(e.offset) });
    throw e;
  }
  const doc = docs[0]!;
  const src: Source = { doc, lines, file };
  placeVaulted(doc, (offset) => formatPos(at(src, offset)));
  if (docs.length > 1) throw new InputError('expected one YAML document, found more (a second "---")', at(src, docs[1]!.range[0]));
  const err = doc.errors[0];
  if (err) {
    let offset = err.pos[0];
    let key = text.slice(err.pos[0], err.pos[1]).trim();
    // For a key with no value the parser points at the end of the line before it: the key is the next word.
    const next = key ? null : /^\s*([^:\s][^:\n]*?)\s*:/.exec(text.slice(offset));
    if (next) {
      key = next[1]!;
      offset += next[0].indexOf(key);
    }
    const message = err.code === 'DUPLICATE_KEY' ? `duplicate key "${key}"` : `YAML syntax error: ${err.message.split('\n')[0]!}`;
    throw new InputError(message, at(src, offset));
  }
  // An unknown tag (`!vault`, `!unsafe`) would otherwise be read as a plain string and used as such.
  const tagWarning = doc.warnings.find((w) => w.code === 'TAG_RESOLVE_FAILED');
  if (tagWarning) {
    const tag = text.slice(tagWarning.pos[0], tagWarning.pos[1]);
    throw new InputError(`YAML tag ${tag} is not supported`, at(src, tagWarning.pos[0]));
  }
  return src;
}

function at(src: Source, offset: number): SourcePos {
  const { line, col } = src.lines.linePos(offset);
  return { file: src.file, line, col };
}

function posOf(src: Source, node: unknown): SourcePos {
  const range = (node as YamlNode | null)?.range;
  return range ? at(src, range[0]) : { file: src.file, line: 1, col: 1 };
}

/** Follow an alias (`*name`) to the node it names. */
function deref(src: Source, node: unknown): unknown {
  return isAlias(node) ? node.resolve(src.doc) : node;
}

function isNull(node: unknown): boolean {
  return node === null || node === undefined || (isScalar(node) && node.value === null);
}

function kindOf(node: unknown): string {
  if (isMap(node)) return 'a mapping';
  if (isSeq(node)) return 'a list';
  if (isScalar(node)) return node.value === null ? 'nothing' : `${node.value instanceof PyFloat ? 'number' : typeof node.value} ${node.value instanceof PyFloat ? node.value.toString() : JSON.stringify(node.value)}`;
  return 'nothing';
}

function keyText(src: Source, keyNode: unknown, what: string): string {
  const key = deref(src, keyNode);
  if (isScalar(key) && typeof key.value === 'string') return key.value;
  const hint = isScalar(key) && key.value !== null ? ': quote it' : '';
  throw new InputError(`${what} must be a string, got ${kindOf(key)}${hint}`, posOf(src, keyNode));
}

/** Alias expansions allowed in one value (a "billion laughs" file needs far more). */
const MAX_ALIASES = 100;

function toValue(src: Source, node: unknown): unknown {
  if (isNull(node)) return null;
  try {
    return (node as YamlNode).toJS(src.doc, { maxAliasCount: MAX_ALIASES });
  } catch (e) {
    if (/alias/i.test((e as Error).message)) {
      throw new InputError(`too many YAML alias expansions (more than ${MAX_ALIASES}): refusing a possible alias bomb`, posOf(src, node));
    }
    throw e;
  }
}

/**
 * The variables of a mapping node, with `<<` merge keys applied, each with where its key is written (the
 * mapping itself for a key that came from a merge).
 */
function varsOf(src: Source, map: YAMLMap): { name: string; value: unknown; pos: SourcePos }[] {
  const values = toValue(src, map) as Record<string, unknown>;
  return Object.keys(values).map((name) => {
    const pair = map.items.find((p) => isScalar(p.key) && String(p.key.value) === name);
    const pos = posOf(src, pair ? pair.key : map);
    checkVarName(name, pos);
    return { name, value: values[name], pos };
  });
}

/** Read a YAML inventory into the builder. */
export function parseYamlInventory(text: string, file: string, into: InventoryBuilder): void {
  const src = read(text, file);
  const root = deref(src, src.doc.contents);
  if (isNull(root)) throw new InputError('empty YAML inventory: expected a mapping of groups such as "all:"', { file, line: 1, col: 1 });
  if (!isMap(root)) {
    throw new InputError(`a YAML inventory is a mapping of groups such as "all:", not ${kindOf(root)}`, posOf(src, root));
  }
  for (const pair of root.items) {
    if (isScalar(pair.key) && pair.key.value === 'plugin') {
      throw new InputError('this is an inventory plugin configuration ("plugin:"); only static inventories are supported', posOf(src, pair.key));
    }
  }
  for (const pair of root.items) {
    // A top-level group written as a string or a list (`webservers: web1.example.com`) is skipped with a
    // warning, as Ansible does; nothing of it is used.
    const body = deref(src, pair.value);
    if (!isNull(body) && !isMap(body)) {
      const name = keyText(src, pair.key, 'a group name');
      if (!GROUP_NAME.test(name)) throw new InputError(`invalid group name ${JSON.stringify(name)}: no spaces, ":" or "]"`, posOf(src, pair.key));
      into.warnings.push(`${formatPos(posOf(src, pair.key))}: skipping ${JSON.stringify(name)}: not a valid group definition (a group is a mapping with hosts, vars or children, not ${kindOf(body)})`);
      continue;
    }
    readGroup(src, pair.key, pair.value, into);
  }
}

/** One group and, recursively, its children; returns the group name. */
function readGroup(src: Source, keyNode: unknown, bodyNode: unknown, into: InventoryBuilder): string {
  const name = keyText(src, keyNode, 'a group name');
  if (!GROUP_NAME.test(name)) {
    throw new InputError(`invalid group name ${JSON.stringify(name)}: no spaces, ":" or "]"`, posOf(src, keyNode));
  }
  into.addGroup(name);
  const body = deref(src, bodyNode);
  if (isNull(body)) return name;
  if (!isMap(body)) {
    throw new InputError(`group "${name}" must be a mapping with hosts, vars or children, not ${kindOf(body)}`, posOf(src, body));
  }
  for (const section of body.items) {
    const key = keyText(src, section.key, `a key of group "${name}"`);
    const value = deref(src, section.value);
    if (key !== 'hosts' && key !== 'vars' && key !== 'children') {
      throw new InputError(`unknown key "${key}" in group "${name}": expected hosts, vars or children`, posOf(src, section.key));
    }
    if (isNull(value)) continue;
    // Ansible accepts a single name as shorthand for a one-entry mapping.
    if (isScalar(value) && typeof value.value === 'string' && key !== 'vars') {
      if (key === 'hosts') addHosts(src, value.value, null, posOf(src, value), name, into);
      else into.addChild(name, readGroup(src, value, null, into), posOf(src, value));
      continue;
    }
    if (!isMap(value)) {
      throw new InputError(`"${key}" of group "${name}" must be a mapping, not ${kindOf(value)}`, posOf(src, value));
    }
    if (key === 'vars') {
      for (const v of varsOf(src, value)) into.setGroupVar(name, v.name, v.value);
      continue;
    }
    for (const entry of value.items) {
      if (key === 'hosts') {
        addHosts(src, keyText(src, entry.key, 'a host name'), deref(src, entry.value), posOf(src, entry.key), name, into);
      } else {
        into.addChild(name, readGroup(src, entry.key, entry.value, into), posOf(src, entry.key));
      }
    }
  }
  return name;
}

function addHosts(src: Source, pattern: string, varsNode: unknown, pos: SourcePos, group: string, into: InventoryBuilder): void {
  const { names, port } = parseHostPattern(pattern, pos);
  let vars: { name: string; value: unknown }[] = [];
  if (!isNull(varsNode)) {
    if (!isMap(varsNode)) {
      throw new InputError(`host "${pattern}" must map to its variables (or nothing), not ${kindOf(varsNode)}`, posOf(src, varsNode));
    }
    vars = varsOf(src, varsNode);
  }
  for (const host of names) {
    into.addHost(host, group);
    if (port !== undefined) into.setHostVar(host, 'ansible_port', port);
    for (const v of vars) into.setHostVar(host, v.name, v.value);
  }
}

/** Variables from a group_vars/ or host_vars/ file: a mapping (or an empty file). */
export function parseYamlVars(text: string, file: string): Record<string, unknown> {
  const src = read(text, file);
  const root = deref(src, src.doc.contents);
  if (isNull(root)) return {};
  if (!isMap(root)) throw new InputError(`a vars file must be a mapping of variable names to values, not ${kindOf(root)}`, posOf(src, root));
  const out: Record<string, unknown> = {};
  for (const v of varsOf(src, root)) {
    Object.defineProperty(out, v.name, { value: v.value, enumerable: true, writable: true, configurable: true });
  }
  return out;
}

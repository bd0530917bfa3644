/**
 * Load an inventory the way `ansible -i` does: an INI or YAML file, a directory of them, or a `host,host,` list,
 * then group_vars/ and host_vars/ beside it. Every mistake is an InputError at file:line:col.
 */
import fs from 'node:fs';
import path from 'node:path';
import { InputError, type SourcePos } from '../errors.js';
import { InventoryBuilder } from './builder.js';
import { parseHostPattern } from './host-pattern.js';
import { parseIni } from './ini.js';
import type { Inventory } from './types.js';
import type { LoadedInventory, VarLayer } from './vars.js';
import { parseYamlInventory, parseYamlVars } from './yaml.js';

type Vars = Record<string, unknown>;

/** Inventory files over this size are refused: a real one is far smaller, and reading it must stay quick. */
const MAX_FILE_BYTES = 16 * 1024 * 1024;

/** Suffixes Ansible skips when an inventory is a directory (backups, docs, retry files, ansible.cfg). */
const IGNORED_SUFFIXES = ['.pyc', '.pyo', '.swp', '.bak', '~', '.rpm', '.md', '.txt', '.rst', '.orig', '.cfg', '.retry'];

/** Names Ansible tries, in order, under group_vars/ and host_vars/; the first that exists is the only one read. */
const VARS_SUFFIXES = ['', '.yml', '.yaml', '.json'];

/** Directory nesting beyond this (in an inventory directory or group_vars/NAME/) is a symlink loop, not a layout. */
const MAX_DIR_DEPTH = 16;

/**
 * Load an inventory: a file (INI or YAML, told apart by extension, else by content), a directory of such files,
 * or a comma-separated host list (`a.example,b.example,` or `localhost,`). Several sources merge in order, as
 * several `-i` do. group_vars/ and host_vars/ are read beside each file (inside a directory source).
 */
export function loadInventory(source: string | readonly string[]): LoadedInventory {
  const sources = typeof source === 'string' ? [source] : [...source];
  if (sources.length === 0) throw new InputError('no inventory given');
  const builder = new InventoryBuilder();
  const varDirs: string[] = [];
  for (const s of sources) {
    if (s.includes(',') && !fs.existsSync(s)) {
      readHostList(s, builder);
      continue;
    }
    let stat: fs.Stats;
    try {
      stat = fs.statSync(s);
    } catch (e) {
      throw new InputError(`cannot read inventory "${s}": ${reason(e)}`);
    }
    if (stat.isDirectory()) {
      for (const file of inventoryFilesIn(s)) readInventoryFile(file, builder);
      varDirs.push(s);
    } else {
      readInventoryFile(s, builder);
      varDirs.push(path.dirname(s));
    }
  }
  return assemble(sources.join(', '), builder, [...new Set(varDirs)]);
}

/** Parse inventory text that has no files beside it (stdin, tests); `file` is used in messages. */
export function parseInventoryText(text: string, file: string, format: 'ini' | 'yaml' = detectFormat(file, text)): LoadedInventory {
  const builder = new InventoryBuilder();
  builder.file = file;
  if (format === 'yaml') parseYamlInventory(text, file, builder);
  else parseIni(text, file, builder);
  return assemble(file, builder, []);
}

/**
 * INI or YAML: by extension when it says (.yml, .yaml, .json / .ini), else by the first line that is not blank
 * or a comment — a YAML inventory starts with `---`, `{` or a `key:` mapping line, which no INI line looks like.
 */
export function detectFormat(file: string, text: string): 'ini' | 'yaml' {
  const ext = path.extname(file).toLowerCase();
  if (ext === '.yml' || ext === '.yaml' || ext === '.json') return 'yaml';
  if (ext === '.ini') return 'ini';
  for (const raw of text.replace(/^\uFEFF/, '').split(/\r\n|\r|\n/)) {
    const line = raw.trim();
    if (line === '' || line.startsWith('#') || line.startsWith(';')) continue;
    return /^(?:---|%YAML|\{)/.test(line) || /^[^\s[=#;]+:(?:\s|$)/.test(line) ? 'yaml' : 'ini';
  }
  return 'ini';
}

/**
 * Variables from `dir/NAME`, `dir/NAME.yml`, `dir/NAME.yaml` or `dir/NAME.json` (the first that exists), or from
 * every such file under the directory `dir/NAME/`, merged in name order. Undefined when there is none.
 */
export function readVarsFor(dir: string, name: string): Vars | undefined {
  if (name === '' || name === '.' || name === '..' || name.includes('/') || name.includes('\0')) return undefined;
  for (const suffix of VARS_SUFFIXES) {
    const candidate = path.join(dir, name + suffix);
    let stat: fs.Stats;
    try {
      stat = fs.statSync(candidate);
    } catch {
      continue;
    }
    const files = stat.isDirectory() ? varsFilesUnder(candidate, 0) : [candidate];
    let merged: Vars = {};
    for (const f of files) merged = { ...merged, ...parseYamlVars(readText(f), f) };
    return merged;
  }
  return undefined;
}

function varsFilesUnder(dir: string, depth: number): string[] {
  if (depth > MAX_DIR_DEPTH) throw new InputError(`directory "${dir}" is nested too deeply (a symlink loop?)`);
  const out: string[] = [];
  for (const entry of listDir(dir)) {
    if (entry.startsWith('.') || entry.endsWith('~')) continue;
    const full = path.join(dir, entry);
    const ext = path.extname(entry);
    const stat = fs.statSync(full);
    if (stat.isDirectory() && !ext) out.push(...varsFilesUnder(full, depth + 1));
    else if (stat.isFile() && VARS_SUFFIXES.includes(ext)) out.push(full);
  }
  return out;
}

function inventoryFilesIn(dir: string, depth = 0): string[] {
  if (depth > MAX_DIR_DEPTH) throw new InputError(`directory "${dir}" is nested too deeply (a symlink loop?)`);
  const out: string[] = [];
  for (const entry of listDir(dir)) {
    if (entry.startsWith('.') || ['group_vars', 'host_vars', 'vars_plugins'].includes(entry)) continue;
    if (IGNORED_SUFFIXES.some((s) => entry.endsWith(s))) continue;
    const full = path.join(dir, entry);
    const stat = fs.statSync(full);
    if (stat.isDirectory()) out.push(...inventoryFilesIn(full, depth + 1));
    else if (stat.isFile()) out.push(full);
  }
  return out;
}

function listDir(dir: string): string[] {
  try {
    // Plain code-unit order, as Python's sorted() gives Ansible, never the locale's.
    return fs.readdirSync(dir).sort();
  } catch (e) {
    throw new InputError(`cannot read directory "${dir}": ${reason(e)}`);
  }
}

function readInventoryFile(file: string, builder: InventoryBuilder): void {
  const text = readText(file);
  builder.file = path.resolve(file);
  if (detectFormat(file, text) === 'yaml') parseYamlInventory(text, file, builder);
  else parseIni(text, file, builder);
}

function readText(file: string): string {
  try {
    const size = fs.statSync(file).size;
    if (size > MAX_FILE_BYTES) throw new InputError(`"${file}" is ${size} bytes, too large for an inventory or vars file`);
    return fs.readFileSync(file, 'utf8');
  } catch (e) {
    if (e instanceof InputError) throw e;
    throw new InputError(`cannot read "${file}": ${reason(e)}`);
  }
}

/** `-i a.example,b.example:2222,` — hosts in `ungrouped`, with ports but without ranges, as Ansible's host_list. */
function readHostList(list: string, builder: InventoryBuilder): void {
  builder.file = null;
  for (const item of list.split(',')) {
    const entry = item.trim();
    if (entry === '') continue;
    const pos: SourcePos = { file: 'host list', line: 1, col: list.indexOf(entry) + 1 };
    if (entry.includes('[')) throw new InputError(`host list entry "${entry}" has a range; ranges need an inventory file`, pos);
    const { names, port } = parseHostPattern(entry, pos);
    for (const name of names) {
      builder.addHost(name, 'ungrouped');
      if (port !== undefined) builder.setHostVar(name, 'ansible_port', port);
    }
  }
}

function assemble(source: string, builder: InventoryBuilder, varDirs: string[]): LoadedInventory {
  const { hosts, groups, hostFiles } = builder.build();
  const inline: VarLayer = {
    groups: new Map([...groups].map(([n, g]) => [n, g.vars])),
    hosts: new Map([...hosts].map(([n, h]) => [n, h.vars])),
  };
  const files: VarLayer = { groups: new Map(), hosts: new Map() };
  for (const dir of varDirs) {
    collect(files.groups, path.join(dir, 'group_vars'), groups.keys());
    collect(files.hosts, path.join(dir, 'host_vars'), hosts.keys());
  }
  const merged = (layer: Vars | undefined, over: Vars | undefined): Vars => ({ ...layer, ...over });
  const inv: Inventory = {
    source,
    hosts: new Map([...hosts].map(([n, h]) => [n, { ...h, vars: merged(h.vars, files.hosts.get(n)) }])),
    groups: new Map([...groups].map(([n, g]) => [n, { ...g, vars: merged(g.vars, files.groups.get(n)) }])),
    ...(builder.warnings.length ? { warnings: builder.warnings } : {}),
  };
  return { ...inv, layers: { inline, files, hostFiles } };
}

function collect(into: Map<string, Vars>, dir: string, names: Iterable<string>): void {
  if (!fs.existsSync(dir)) return;
  for (const name of names) {
    const vars = readVarsFor(dir, name);
    if (vars) into.set(name, { ...into.get(name), ...vars });
  }
}

function reason(e: unknown): string {
  const err = e as NodeJS.ErrnoException;
  if (err.code === 'ENOENT') return 'no such file or directory';
  if (err.code === 'EACCES') return 'permission denied';
  if (err.code === 'EISDIR') return 'is a directory';
  return err.message ?? String(e);
}

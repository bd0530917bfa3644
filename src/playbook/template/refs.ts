/** What a template reads and what it must not do, found from its syntax tree without rendering it. */
import { didYouMean } from '../../util/suggest.js';
import { LOOKUP_NAMES } from '../lookups.js';
import { FILTER_NAMES, FILTERS, TEST_NAMES, TESTS } from './engine.js';
import { FORBIDDEN, templateShapeProblem } from './guard.js';
import { jinjaSource, singleExpression } from './source.js';
import { type AstNode, parser } from './tree.js';
import { GUARD_TESTS } from './undefined.js';

/** A place in a template's own text, 1-based. */
export interface TemplatePlace {
  line: number;
  col: number;
}

/** What a template reads, found without rendering it. */
export interface TemplateRefs {
  /** top-level names it reads and does not define itself (set, for, macro), with where each is first read */
  names: Map<string, TemplatePlace>;
  /** names it only tests or defaults (`x is defined`, `x | default(…)`): their absence is handled */
  guarded: Set<string>;
  /** what it must not do at all: reach JavaScript internals, or load other templates */
  problems: { message: string; place: TemplatePlace }[];
  /** names read from another host's variables, `hostvars[h].x` or `hostvars[h]['x']`, with where each is first read */
  hostvarsKeys: Map<string, TemplatePlace>;
}

/** Names every template can use without anyone defining them. */
const BUILTIN_NAMES = new Set(['lookup', 'query', 'q', '__cycle', '__nearby', 'range', 'cycler', 'joiner', 'namespace', 'True', 'False', 'None', 'true', 'false', 'none', '__slice', '__pyfloat']);
/** Filters whose purpose is to handle a missing value. */
const GUARD_FILTERS = new Set(['default', 'd', 'mandatory']);
const LOADING_TAGS: Record<string, string> = { Include: 'include', Import: 'import', FromImport: 'from … import', Extends: 'extends' };

function childrenOf(n: AstNode): AstNode[] {
  const out: AstNode[] = [];
  // Most fields hold a node; a few hold a plain array of nodes (the targets of `set`, the cases of `switch`).
  const add = (v: unknown) => {
    if (Array.isArray(v)) v.forEach(add);
    else if (v && typeof v === 'object' && typeof (v as AstNode).typename === 'string') out.push(v as AstNode);
  };
  if (Array.isArray(n.children)) n.children.forEach(add);
  else for (const f of n.fields ?? []) add(n[f]);
  // A `{% set x %}…{% endset %}` block keeps its body outside the node's declared fields.
  if (n.typename === 'Set') add(n.body);
  return out;
}

/** The variable an expression starts from (`x` in `x.y[0].z`), if it starts from one. */
function rootName(n: AstNode | undefined): string | null {
  let cur = n;
  while (cur) {
    if (cur.typename === 'Symbol') return String(cur.value);
    if (cur.typename === 'LookupVal') cur = cur.target as AstNode;
    else return null;
  }
  return null;
}

/**
 * The names a template (a string with `{{ }}`/`{% %}`, or with `expression` a bare expression such as a `when:`)
 * reads, without rendering it. Returns null when it does not parse (checkSyntax says why).
 */
export function templateRefs(source: string, expression = false): TemplateRefs | null {
  let root: AstNode;
  try {
    const single = expression ? singleExpression(source.trim()) : null;
    const text = expression ? `{{ ${single ?? source} }}` : source;
    if (templateShapeProblem(text)) return null;
    root = parser.parse(jinjaSource(text, true));
  } catch {
    return null;
  }
  const refs: TemplateRefs = { names: new Map(), guarded: new Set(), problems: [], hostvarsKeys: new Map() };
  const hostvarsReads: { key: string; at: AstNode }[] = [];
  const bound = new Set<string>();
  const skip = new Set<AstNode>();
  const uses: AstNode[] = [];
  const place = (n: AstNode): TemplatePlace => ({ line: (n.lineno ?? 0) + 1, col: (n.colno ?? 0) + 1 });
  const bind = (n: unknown) => {
    if (Array.isArray(n)) return n.forEach(bind);
    const node = n as AstNode | null;
    if (!node) return;
    if (node.typename === 'Symbol') {
      bound.add(String(node.value));
      skip.add(node);
    } else if (node.typename === 'Pair') {
      bind(node.key);
    } else {
      for (const c of childrenOf(node)) if (c.typename === 'Symbol' || c.typename === 'Pair' || c.typename === 'Array' || c.typename === 'KeywordArgs') bind(c);
    }
  };
  // Iterative walk: a template of thousands of nested brackets must not exhaust the stack here.
  const stack: AstNode[] = [root];
  while (stack.length) {
    const n = stack.pop()!;
    if (skip.has(n)) continue;
    switch (n.typename) {
      case 'Symbol':
        uses.push(n);
        break;
      case 'LookupVal': {
        let key = n.val as AstNode;
        // `x['k']` reaches the parser as `x[__slice('k')]` (see jinjaSource).
        if (key.typename === 'FunCall' && (key.name as AstNode).value === '__slice' && (key.args as AstNode).children?.length === 1) key = (key.args as AstNode).children![0]!;
        if (key.typename === 'Literal' && typeof key.value === 'string' && FORBIDDEN.has(key.value)) {
          refs.problems.push({ message: `access to "${key.value}" is not allowed in templates`, place: place(key) });
        }
        // `hostvars[h].x`: a literal key read from an entry of hostvars.
        const entry = n.target as AstNode | undefined;
        const from = entry?.typename === 'LookupVal' ? (entry.target as AstNode | undefined) : undefined;
        if (from?.typename === 'Symbol' && from.value === 'hostvars' && key.typename === 'Literal' && typeof key.value === 'string') {
          hostvarsReads.push({ key: key.value, at: key });
        }
        break;
      }
      case 'Filter':
      case 'FilterAsync': {
        skip.add(n.name as AstNode);
        const name = String((n.name as AstNode).value);
        const first = (n.args as AstNode | null)?.children?.[0];
        if (name === '__is' || name === '__isnot') {
          // A test, as jinjaSource writes it: `x | __is('defined')`.
          const test = (n.args as AstNode).children![1]!;
          const tname = String(test.value);
          if (!(tname in TESTS)) refs.problems.push({ message: `unknown test "${tname}"${didYouMean(tname, TEST_NAMES)}`, place: place(test) });
          const guarded = GUARD_TESTS.has(tname) ? rootName(first) : null;
          if (guarded) refs.guarded.add(guarded);
          break;
        }
        if (!(name in FILTERS)) refs.problems.push({ message: `unknown filter "${name}"${didYouMean(name, FILTER_NAMES)}`, place: place(n.name as AstNode) });
        // Filters and tests named by a filter's argument: map('upper'), select('match', …), selectattr('x', 'gt', 1).
        const named = (i: number) => {
          const a = (n.args as AstNode | null)?.children?.[i];
          return a?.typename === 'Literal' && typeof a.value === 'string' ? { value: a.value, at: a } : null;
        };
        const byArg = name === 'map' ? { f: named(1) } : name === 'select' || name === 'reject' ? { t: named(1) } : name === 'selectattr' || name === 'rejectattr' ? { t: named(2) } : {};
        if (byArg.f && !(byArg.f.value in FILTERS)) refs.problems.push({ message: `unknown filter "${byArg.f.value}"${didYouMean(byArg.f.value, FILTER_NAMES)}`, place: place(byArg.f.at) });
        if (byArg.t && !(byArg.t.value in TESTS)) refs.problems.push({ message: `unknown test "${byArg.t.value}"${didYouMean(byArg.t.value, TEST_NAMES)}`, place: place(byArg.t.at) });
        const guarded = GUARD_FILTERS.has(name) ? rootName(first) : null;
        if (guarded) refs.guarded.add(guarded);
        break;
      }
      case 'FunCall': {
        const fn = n.name as AstNode;
        const first = (n.args as AstNode | null)?.children?.[0];
        if (fn.typename === 'Symbol' && ['lookup', 'query', 'q'].includes(String(fn.value)) && first?.typename === 'Literal' && !LOOKUP_NAMES.includes(String(first.value))) {
          refs.problems.push({ message: `lookup plugin "${String(first.value)}" is not supported${didYouMean(String(first.value), LOOKUP_NAMES)} (supported: ${LOOKUP_NAMES.join(', ')})`, place: place(first) });
        }
        break;
      }
      case 'KeywordArgs':
        // Keys of keyword arguments `f(k=v)` are names of parameters; a key of a dict `{a: 1}` is read as a variable.
        for (const p of n.children ?? []) if (p.typename === 'Pair' && (p.key as AstNode).typename === 'Symbol') skip.add(p.key as AstNode);
        break;
      case 'For':
      case 'AsyncEach':
      case 'AsyncAll':
        bind(n.name);
        bound.add('loop');
        break;
      case 'Set':
        bind(n.targets);
        break;
      case 'Macro':
      case 'Caller':
        bind(n.name);
        bind(n.args);
        bound.add('caller');
        break;
      default:
        if (LOADING_TAGS[n.typename]) {
          refs.problems.push({ message: `templates cannot load other templates ({% ${LOADING_TAGS[n.typename]} %})`, place: place(n) });
        }
    }
    const kids = childrenOf(n);
    for (let i = kids.length - 1; i >= 0; i--) stack.push(kids[i]!);
  }
  for (const u of uses) {
    if (skip.has(u)) continue;
    const name = String(u.value);
    if (bound.has(name) || BUILTIN_NAMES.has(name) || refs.names.has(name)) continue;
    refs.names.set(name, place(u));
  }
  // A template that binds `hostvars` itself (set, for, macro) reads its own value, not Ansible's.
  if (!bound.has('hostvars')) for (const r of hostvarsReads) if (!refs.hostvarsKeys.has(r.key)) refs.hostvarsKeys.set(r.key, place(r.at));
  return refs;
}

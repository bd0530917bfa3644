/**
 * nunjucks' syntax tree rewritten into Jinja2's meaning: attribute access, printing, Python's operators, tests and
 * loop filters go through the engine's globals.
 */
import nunjucks from 'nunjucks';
import { TemplateError } from './errors.js';

/** A nunjucks syntax tree node (nunjucks ships no types for its parser). */
export interface AstNode {
  typename: string;
  /** 0-based */
  lineno: number;
  colno: number;
  fields: string[];
  children?: AstNode[];
  value?: unknown;
  [field: string]: unknown;
}

type Parser = { parse(src: string, extensions?: unknown[], opts?: Record<string, unknown>): AstNode };
export const parser = (nunjucks as unknown as { parser: Parser }).parser;

type NodeClass = new (lineno: number, colno: number, ...args: unknown[]) => AstNode;
const N = (nunjucks as unknown as { nodes: Record<string, NodeClass> }).nodes;

function call(at: AstNode, name: string, args: AstNode[]): AstNode {
  const list = new N.NodeList!(at.lineno, at.colno);
  for (const a of args) (list as unknown as { addChild(n: AstNode): void }).addChild(a);
  return new N.FunCall!(at.lineno, at.colno, new N.Symbol!(at.lineno, at.colno, name), list);
}

let loopFilters = 0;

/**
 * Rewrite the parsed template into Jinja2's meaning where nunjucks' differs: every attribute or item access goes
 * through `member` (Python methods, negative indexes, no JavaScript internals), every printed value through
 * Python's str() (`True`, `None`, `['a']`), and `{% for x in xs if cond %}` filters the items before the loop,
 * so `loop.index` counts the kept ones.
 */
export function jinjaTree(node: AstNode, source: string): AstNode {
  const lines = source.split('\n');
  /** a number literal written with a point (`1.0`): a float, even when whole */
  const floatLiteral = (x: AstNode) => typeof x.value === 'number' && /^[-+]?\d+\./.test(lines[x.lineno]?.slice(x.colno, x.colno + 400) ?? '');
  /** Whether a node's value may be a boxed float: not a comparison, a test, a literal other than a float one. */
  const mayBeFloat = (n: AstNode) =>
    !['Literal', 'Compare', 'Not', 'And', 'Or', 'In', 'Array', 'Dict', 'Concat'].includes(n.typename) &&
    !(n.typename === 'FunCall' && ['__test', '__concat', '__contains', '__compare'].includes(String((n.name as AstNode).value))) &&
    !(n.typename === 'Filter' && ['__is', '__isnot'].includes(String((n.name as AstNode).value)));
  const num = (n: unknown) => (mayBeFloat(n as AstNode) ? call(n as AstNode, '__num', [n as AstNode]) : n);
  const fix = (n: unknown): unknown => {
    if (Array.isArray(n)) return n.map(fix);
    if (!n || typeof n !== 'object' || typeof (n as AstNode).typename !== 'string') return n;
    const x = jinjaPrecedence(n as AstNode);
    if (x.typename === 'For' && !x.__helpers) {
      x.__helpers = true;
      // loop.cycle(…), loop.previtem and loop.nextitem, which nunjucks' loop lacks, read the loop's own items.
      const items = `__items${++loopFilters}`;
      const uses = loopHelpers(x, items);
      if (uses && (x.arr as AstNode).typename !== 'InlineIf') {
        const setNode = new N.Set!(x.lineno, x.colno, [new N.Symbol!(x.lineno, x.colno, items)], call(x, '__iter', [x.arr as AstNode]));
        x.arr = new N.Symbol!(x.lineno, x.colno, items);
        x.__iterated = true;
        const group = new N.NodeList!(x.lineno, x.colno);
        for (const c of [fix(setNode) as AstNode, fix(x) as AstNode]) (group as unknown as { addChild(n: AstNode): void }).addChild(c);
        return group;
      }
      if (uses) x.__items = items;
    }
    if (x.typename === 'Set') {
      const targets = (x.targets as AstNode[]) ?? [];
      if (targets.length === 1 && targets[0]!.typename === 'LookupVal' && x.value) {
        // `{% set ns.total = … %}` writes an attribute of a namespace().
        const t = targets[0]!;
        const out = new N.Output!(x.lineno, x.colno);
        (out as unknown as { addChild(n: AstNode): void }).addChild(call(x, '__setattr', [fix(t.target) as AstNode, t.val as AstNode, fix(x.value) as AstNode]));
        return out;
      }
      x.value = fix(x.value);
      x.body = fix(x.body);
      return x;
    }
    if (Array.isArray(x.children)) x.children = x.children.map((c) => fix(c) as AstNode);
    for (const f of x.fields ?? []) if (f !== 'children') x[f] = fix(x[f]);
    if (x.typename === 'FunCall' && (x.name as AstNode).typename === 'FunCall' && ((x.name as AstNode).name as AstNode).value === '__member') {
      // `x.name(…)`: a method call, so that a missing method is named in the error.
      const [target, key] = ((x.name as AstNode).args as AstNode).children!;
      return call(x, '__method', [target!, key!, ...((x.args as AstNode).children ?? [])]);
    }
    if (x.typename === 'LookupVal') return call(x, '__member', [x.target as AstNode, x.val as AstNode]);
    if (x.typename === 'Dict' && (x.children ?? []).some((p) => !((p.key as AstNode).typename === 'Literal' && typeof (p.key as AstNode).value === 'string'))) {
      // `{item.name: 1}`, `{x: 1}`: Jinja2 evaluates a key (nunjucks would take the name `x` as the text "x").
      for (const p of x.children ?? []) {
        const key = p.key as AstNode;
        if (key.typename === 'Literal' || (key.typename === 'FunCall' && ['__float', '__pyfloat'].includes(String((key.name as AstNode).value)))) {
          throw new TemplateError(`a dict key must be text in provision; Jinja2 would keep ${key.value === null ? 'None' : key.value === true ? 'True' : key.value === false ? 'False' : String(key.value ?? 'a number')} as a key of its own type`);
        }
      }
      return call(x, '__dict', (x.children ?? []).flatMap((p) => [p.key as AstNode, p.value as AstNode]));
    }
    if (x.typename === 'Group' && (x.children ?? []).length > 1) {
      // A tuple `(a, b)`: a list marked as a tuple, printed `(a, b)` (nunjucks would keep only its last item).
      const arr = new N.Array!(x.lineno, x.colno);
      for (const c of x.children!) (arr as unknown as { addChild(n: AstNode): void }).addChild(c);
      return call(x, '__tuple', [arr]);
    }
    if (x.typename === 'Literal' && floatLiteral(x)) return call(x, '__float', [x]);
    if (x.typename === 'Sub' || x.typename === 'Pow') return call(x, `__${x.typename.toLowerCase()}`, [x.left as AstNode, x.right as AstNode]);
    if (x.typename === 'Neg' || x.typename === 'Pos') return call(x, `__${x.typename.toLowerCase()}`, [x.target as AstNode]);
    // `x in seq` compares as Python's == does (2 in [2.0]), where nunjucks would look for the same object.
    if (x.typename === 'In') return call(x, '__contains', [x.left as AstNode, x.right as AstNode]);
    // Comparisons and truth read a float's number, not its box.
    // `a == b < c` compares as Python does: by value (2 == 2.0, [1] == [1]), never '1' == 1, and `<` refuses
    // what Python cannot order.
    if (x.typename === 'Compare') {
      const args = [x.expr as AstNode];
      for (const op of (x.ops as AstNode[]) ?? []) args.push(new N.Literal!(op.lineno, op.colno, String(op.type)), op.expr as AstNode);
      return call(x, '__compare', args);
    }
    if (x.typename === 'If' || x.typename === 'InlineIf') x.cond = num(x.cond);
    if (x.typename === 'Not') x.target = num(x.target);
    if (x.typename === 'And' || x.typename === 'Or') {
      if (mayBeFloat(x.left as AstNode)) x.left = call(x.left as AstNode, '__logic', [x.left as AstNode]);
      if (mayBeFloat(x.right as AstNode)) x.right = call(x.right as AstNode, '__logic', [x.right as AstNode]);
      return x;
    }
    // `a ~ b` joins the two as Python's str() writes them (`2.0`, `True`), not as JavaScript's + would.
    if (x.typename === 'Concat') return call(x, '__concat', [x.left as AstNode, x.right as AstNode]);
    if (x.typename === 'Div' || x.typename === 'FloorDiv') {
      return call(x, x.typename === 'Div' ? '__div' : '__floordiv', [x.left as AstNode, x.right as AstNode]);
    }
    if (x.typename === 'Add' || x.typename === 'Mul' || x.typename === 'Mod') {
      // Python's operators: lists concatenate, strings repeat, `%` formats text.
      return call(x, `__${x.typename.toLowerCase()}`, [x.left as AstNode, x.right as AstNode]);
    }
    if (x.typename === 'For' || x.typename === 'AsyncEach' || x.typename === 'AsyncAll') {
      if ((x.arr as AstNode).typename !== 'InlineIf' && !x.__iterated) x.arr = call(x, '__iter', [x.arr as AstNode]);
    }
    const filterName = x.typename === 'Filter' ? String((x.name as AstNode).value) : '';
    if (filterName === '__is' || filterName === '__isnot') {
      // A test, written as a filter by jinjaSource (`x | __is('in', y)`): one function calls it, since nunjucks
      // reads `none`/`true` as literals and compiles test arguments its own way.
      const [target, name, ...args] = (x.args as AstNode).children ?? [];
      const test = call(x, '__test', [name!, target!, ...args]);
      return filterName === '__is' ? test : new N.Not!(x.lineno, x.colno, test);
    }
    if (x.typename === 'Output') {
      x.children = (x.children ?? []).map((c) => (c.typename === 'TemplateData' ? c : call(c, '__str', [c])));
      return x;
    }
    if (x.typename === 'For' && (x.arr as AstNode).typename === 'InlineIf') {
      const cond = x.arr as AstNode;
      if (cond.else_) throw new TemplateError('a for loop takes "if" to filter its items, without "else"');
      const kept = typeof x.__items === 'string' ? x.__items : `__kept${++loopFilters}`;
      const sym = () => new N.Symbol!(x.lineno, x.colno, kept);
      const names = (x.name as AstNode).typename === 'Array' ? ((x.name as AstNode).children ?? []) : [x.name as AstNode];
      const item = names.length === 1 ? new N.Symbol!(x.lineno, x.colno, String(names[0]!.value)) : (() => {
        const arr = new N.Array!(x.lineno, x.colno);
        for (const nm of names) (arr as unknown as { addChild(n: AstNode): void }).addChild(new N.Symbol!(x.lineno, x.colno, String(nm.value)));
        return arr;
      })();
      const pushBody = new N.NodeList!(x.lineno, x.colno);
      const out = new N.Output!(x.lineno, x.colno);
      (out as unknown as { addChild(n: AstNode): void }).addChild(call(x, '__push', [sym(), item]));
      (pushBody as unknown as { addChild(n: AstNode): void }).addChild(new N.If!(x.lineno, x.colno, cond.cond, out, null));
      const setNode = new N.Set!(x.lineno, x.colno, [sym()], call(x, '__list', []));
      const collect = new N.For!(x.lineno, x.colno, cond.body, x.name, pushBody, null);
      x.arr = sym();
      const group = new N.NodeList!(x.lineno, x.colno);
      for (const c of [setNode, collect, x]) (group as unknown as { addChild(n: AstNode): void }).addChild(c);
      return group;
    }
    return x;
  };
  return fix(node) as AstNode;
}

/**
 * Point `loop.cycle(…)`, `loop.previtem` and `loop.nextitem` in this loop's body (not in loops nested in it) at
 * helpers; previtem and nextitem read the list held in `items`. Returns whether the body reads either.
 */
function loopHelpers(loop: AstNode, items: string): boolean {
  let readsItems = false;
  const isLoopAttr = (n: AstNode, attr: string) =>
    n.typename === 'LookupVal' && (n.target as AstNode).typename === 'Symbol' && (n.target as AstNode).value === 'loop' && (n.val as AstNode).typename === 'Literal' && (n.val as AstNode).value === attr;
  const index0 = (at: AstNode) => new N.LookupVal!(at.lineno, at.colno, new N.Symbol!(at.lineno, at.colno, 'loop'), new N.Literal!(at.lineno, at.colno, 'index0'));
  const walk = (n: unknown): unknown => {
    if (Array.isArray(n)) return n.map(walk);
    if (!n || typeof n !== 'object' || typeof (n as AstNode).typename !== 'string') return n;
    const x = n as AstNode;
    if (x.typename === 'For' || x.typename === 'AsyncEach' || x.typename === 'AsyncAll' || x.typename === 'Macro') {
      x.arr = walk(x.arr);
      return x;
    }
    if (x.typename === 'FunCall' && isLoopAttr(x.name as AstNode, 'cycle')) {
      return call(x, '__cycle', [index0(x), ...(((x.args as AstNode).children ?? []).map((c) => walk(c) as AstNode))]);
    }
    for (const [attr, step] of [['previtem', -1], ['nextitem', 1]] as const) {
      if (isLoopAttr(x, attr)) {
        readsItems = true;
        return call(x, '__nearby', [new N.Symbol!(x.lineno, x.colno, items), index0(x), new N.Literal!(x.lineno, x.colno, step)]);
      }
    }
    if (Array.isArray(x.children)) x.children = x.children.map((c) => walk(c) as AstNode);
    for (const f of x.fields ?? []) if (f !== 'children') x[f] = walk(x[f]);
    if (x.typename === 'Set') x.body = walk(x.body);
    return x;
  };
  loop.body = walk(loop.body);
  return readsItems;
}

/** Jinja2's levels of the binary operators nunjucks orders differently (higher binds tighter). */
const LEVELS: Record<string, number> = { Add: 1, Sub: 1, Concat: 2, Mul: 3, Div: 3, FloorDiv: 3, Mod: 3 };

/**
 * Operators as Jinja2 groups them, where nunjucks' parser differs. Jinja2 has three levels, each read left to
 * right: `+ -`, then `~`, then `* / // %`. So `7 * 3 // 2` is `(7 * 3) // 2` (10), `0.1 + 0.2 - 0.3` is
 * `(0.1 + 0.2) - 0.3`, and `'a' ~ 1 + 2` is `('a' ~ 1) + 2` (an error), where nunjucks gives `~` the lowest level
 * and each of the others a level of its own (`7 * (3 // 2)`, 7). A run of these operators (not crossing
 * brackets, which stay as written) is parsed again by Jinja2's levels. Jinja2 also chains `in` with the
 * comparisons (`a < b in c` is `a < b and b in c`), which nunjucks cannot express: refused.
 */
function jinjaPrecedence(x: AstNode): AstNode {
  if (x.typename === 'In') {
    for (const side of [x.left as AstNode, x.right as AstNode]) {
      if (side.typename === 'Compare' || side.typename === 'In') {
        throw new TemplateError('Jinja2 chains "in" with comparisons (`a < b in c` means `a < b and b in c`): put brackets around what "in" compares');
      }
    }
    return x;
  }
  if (LEVELS[x.typename] === undefined) return x;
  const items: AstNode[] = [];
  const ops: string[] = [];
  const flatten = (n: AstNode) => {
    if (LEVELS[n.typename] !== undefined) {
      flatten(n.left as AstNode);
      ops.push(n.typename);
      flatten(n.right as AstNode);
    } else items.push(n);
  };
  flatten(x);
  if (ops.length < 2) return x;
  let k = 0;
  const parse = (level: number): AstNode => {
    if (level > 3) return items[k]!;
    let left = parse(level + 1);
    while (k < ops.length && LEVELS[ops[k]!] === level) {
      const op = ops[k++]!;
      left = new N[op]!(left.lineno, left.colno, left, parse(level + 1));
    }
    return left;
  };
  return parse(1);
}

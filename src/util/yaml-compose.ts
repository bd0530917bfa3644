/**
 * YAML documents composed safely: the concrete syntax tree is built without recursion, so its nesting can be
 * measured before the composer (which recurses once per level) sees it. A few hundred `[` would otherwise exhaust
 * the stack, and a process that overflowed there may not be able to compile a regular expression again.
 */
import { Composer, type CST, type Document, type DocumentOptions, type LineCounter, Parser, type ParseOptions, type SchemaOptions } from 'yaml';

/** Collections nested deeper than this are refused (real playbooks, inventories and vars stay far below it). */
export const MAX_NESTING = 100;

/** The text nests collections deeper than MAX_NESTING; `offset` is where the first too-deep one starts. */
export class NestingError extends Error {
  override name = 'NestingError';
  constructor(readonly offset: number) {
    super(`collections nested more than ${MAX_NESTING} levels deep`);
  }
}

/** Every document of `text` (at least one, empty for an empty text); throws NestingError before composing. */
export function composeDocuments(text: string, lineCounter: LineCounter, options: ParseOptions & DocumentOptions & SchemaOptions): Document.Parsed[] {
  const cst = Array.from(new Parser(lineCounter.addNewLine).parse(text));
  const deep = tooDeep(cst);
  if (deep !== null) throw new NestingError(deep);
  return Array.from(new Composer(options).compose(cst, true, text.length));
}

function tooDeep(tokens: CST.Token[]): number | null {
  const stack: [CST.Token, number][] = tokens.map((t) => [t, 0]);
  while (stack.length) {
    const [t, depth] = stack.pop()!;
    if (t.type === 'document') {
      if (t.value) stack.push([t.value, depth]);
    } else if (t.type === 'block-map' || t.type === 'block-seq' || t.type === 'flow-collection') {
      if (depth >= MAX_NESTING) return t.offset;
      for (const item of t.items) {
        if (item.key) stack.push([item.key, depth + 1]);
        if (item.value) stack.push([item.value, depth + 1]);
      }
    }
  }
  return null;
}

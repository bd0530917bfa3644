/**
 * What `postconf` and `master_cf` share: the two files they read (each edits one and reads the other for
 * validation and for the names the edit may use), the reads they ask the prefetch for, and their preflight, which
 * refuses unknown names before any task runs.
 */
import type { Facts } from '../facts/types.js';
import { parsedMainCf } from '../formats/main-cf.js';
import { type MasterCfEntry, parsedMasterCf } from '../formats/master-cf.js';
import { type FileState, ModuleError, type Reads, type TaskContext } from './module.js';
import { checkNames, configDir, knownConfigDir, pendingNameReads } from './postfix-names.js';

/** The file a task edits; the other one is read beside it. */
export type PostfixFile = 'main.cf' | 'master.cf';

const other = (f: PostfixFile): PostfixFile => (f === 'main.cf' ? 'master.cf' : 'main.cf');

/**
 * What a task that edits `edits` reads on a host with `facts`: both files (the edited one first), `extra` files,
 * and Postfix's parameter names when the task names any (`names`). Nothing before Postfix is known to be there.
 */
export function postfixReads(configDirArg: string | undefined, facts: Facts, edits: PostfixFile, names: boolean, extra: string[] = []): Reads {
  const dir = knownConfigDir(configDirArg, facts);
  if (dir === null) return {};
  return { files: [`${dir}/${edits}`, `${dir}/${other(edits)}`, ...extra], commands: names ? pendingNameReads(facts.postfix_version) : [] };
}

/** main.cf and master.cf as the host holds them. */
export interface PostfixFiles {
  /** path of the edited file */
  path: string;
  main: FileState;
  master: FileState;
}

/**
 * Read both files, the edited one first. `regular`: the edited file must be a regular file where it exists
 * (a plan edits it; a preflight only looks).
 */
export async function readPostfixFiles(ctx: TaskContext, configDirArg: string | undefined, edits: PostfixFile, regular: boolean): Promise<PostfixFiles> {
  const dir = configDir(configDirArg, ctx.facts);
  const path = `${dir}/${edits}`;
  const edited = await ctx.readFile(path);
  if (regular && edited.exists && edited.kind !== 'file') throw new ModuleError(`${path} is not a regular file`);
  const beside = await ctx.readFile(`${dir}/${other(edits)}`);
  return edits === 'main.cf' ? { path, main: edited, master: beside } : { path, main: beside, master: edited };
}

/** A file's content; empty when it is absent. */
export const contentOf = (f: FileState): Buffer => f.content ?? Buffer.alloc(0);

/** The values main.cf sets (text a name may be referenced in). */
export const mainValues = (main: FileState): string[] => parsedMainCf(contentOf(main)).entries.map((e) => e.value);

/**
 * Unknown names fail the task (in check mode too), before anything is validated or written: `names` are checked
 * against Postfix's own, `texts` (main.cf's values and those being set) and the services of master.cf.
 */
export async function checkAskedNames(
  ctx: TaskContext,
  where: string,
  names: string[],
  known: { texts: string[]; master: FileState | MasterCfEntry[]; allowUnknown?: string[] },
): Promise<void> {
  if (!names.length) return;
  const master = Array.isArray(known.master) ? known.master : parsedMasterCf(contentOf(known.master)).entries;
  await checkNames(ctx, where, names, { texts: known.texts, master, allowUnknown: known.allowUnknown });
}

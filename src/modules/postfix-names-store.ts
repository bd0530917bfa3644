/**
 * Postfix's parameter names per version, kept on the controller between runs, so that a run never fetches the
 * ~60 KB of `postconf -d` from a host whose Postfix version it has met before. One JSON file per version under
 * `<cache dir>/postfix-names/` (see src/util/cache-dir.ts). The store is only a shortcut: a file that is missing,
 * unreadable or corrupt counts as absent (the names are fetched from a host again and the file rewritten), and a
 * store that cannot be written costs nothing but that fetch next time.
 */
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';

const FORMAT = 1;
/** Versions as Postfix prints them ("3.7.11", "3.10-20240101"); anything else is not stored (no path tricks). */
const VERSION = /^[A-Za-z0-9][A-Za-z0-9._+-]{0,63}$/;
const NAME = /^[A-Za-z0-9_]+$/;

interface StoredNames {
  format: number;
  postfix: string;
  names: string[];
}

/**
 * `mkdir -p`: first the directory itself, one mkdir where its parent is there (each host's directory, in a run
 * with an empty cache); else one directory at a time, as Node's recursive mkdirSync never returns on some file
 * systems whose mkdir keeps answering ENOENT (under /proc, say), and a cache must not hang a run.
 */
function makeDirs(dir: string): void {
  try {
    mkdirSync(dir, { mode: 0o700 });
    return;
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'EEXIST') return;
    if (code !== 'ENOENT') throw e;
  }
  const missing: string[] = [];
  for (let d = path.resolve(dir); !existsSync(d); d = path.dirname(d)) {
    missing.unshift(d);
    if (path.dirname(d) === d) break;
  }
  for (const d of missing) mkdirSync(d, { mode: 0o700 });
}

/**
 * The file's text for a list of names. A Set's text is made once per version: a fleet's hosts share a few Sets,
 * never changed once made (see postfix-names.ts), and a run with an empty cache stores the same list for each of
 * them. Null for a list with no storable name.
 */
const texts = new WeakMap<ReadonlySet<string>, Map<string, string | null>>();
function storedText(version: string, names: Iterable<string>): string | null {
  const make = () => {
    const list = [...names].filter((n) => NAME.test(n)).sort();
    const body: StoredNames = { format: FORMAT, postfix: version, names: list };
    return list.length ? `${JSON.stringify(body)}\n` : null;
  };
  if (!(names instanceof Set)) return make();
  let byVersion = texts.get(names);
  if (!byVersion) texts.set(names, (byVersion = new Map()));
  let text = byVersion.get(version);
  if (text === undefined) byVersion.set(version, (text = make()));
  return text;
}

export class PostfixNamesStore {
  /** versions with a file, listed once and kept up to date by this process */
  private listed: Set<string> | null = null;

  constructor(
    /** the directory holding one file per version */
    readonly dir: string,
  ) {}

  /** Whether `version` can have a file of its own. */
  static storable(version: string): boolean {
    return VERSION.test(version);
  }

  private file(version: string): string {
    return path.join(this.dir, `${version}.json`);
  }

  /** Versions that have a file (whether it can be read is only known when it is loaded). */
  versions(): string[] {
    if (!this.listed) {
      let entries: string[] = [];
      try {
        entries = readdirSync(this.dir);
      } catch {
        entries = [];
      }
      this.listed = new Set(entries.filter((e) => e.endsWith('.json')).map((e) => e.slice(0, -'.json'.length)).filter(PostfixNamesStore.storable));
    }
    return [...this.listed];
  }

  /** The names stored for `version`, or null when there is no usable file. */
  load(version: string): Set<string> | null {
    if (!PostfixNamesStore.storable(version)) return null;
    let parsed: unknown;
    try {
      parsed = JSON.parse(readFileSync(this.file(version), 'utf8'));
    } catch {
      this.listed?.delete(version);
      return null;
    }
    const s = parsed as Partial<StoredNames> | null;
    const ok =
      s !== null &&
      typeof s === 'object' &&
      s.format === FORMAT &&
      s.postfix === version &&
      Array.isArray(s.names) &&
      s.names.length > 0 &&
      s.names.every((n) => typeof n === 'string' && NAME.test(n));
    if (!ok) {
      this.listed?.delete(version);
      return null;
    }
    return new Set(s.names);
  }

  /**
   * Store the names of `version`, atomically: a temporary file beside the target, then a rename, so a reader
   * sees the old file or the new one, never half of one. Returns whether the file was written.
   */
  save(version: string, names: Iterable<string>): boolean {
    if (!PostfixNamesStore.storable(version)) return false;
    const text = storedText(version, names);
    if (text === null) return false;
    const tmp = path.join(this.dir, `.${version}.json.${process.pid}.${randomBytes(4).toString('hex')}`);
    try {
      makeDirs(this.dir);
      writeFileSync(tmp, text, { mode: 0o644, flag: 'wx' });
      renameSync(tmp, this.file(version));
    } catch {
      // force only forgives a missing file: where the directory cannot be made (under a file, say) this throws too
      try {
        rmSync(tmp, { force: true });
      } catch {
        // nothing was written there
      }
      return false;
    }
    this.versions();
    this.listed!.add(version);
    return true;
  }
}

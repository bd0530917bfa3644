/**
 * What a host holds, as far as this run has read it: file states and read-only command outputs. The cache is
 * filled by the first exec and the prefetch, refilled in one exec when a task asks for what it no longer holds
 * (a command that ran on the host empties it), and updated by writes (and, in check mode, pretend writes).
 */
import type { BecomeSpec, ExecResult } from '../connection/connection.js';
import { CommandError } from '../errors.js';
import type { FileChange, FileState, Reads } from '../modules/module.js';
import { namesKeptFor } from '../modules/postfix-names.js';
import type { Task } from '../playbook/types.js';
import { fileState, parseReadOutput, type PathLink, readScript, type ReadRequest, type ReadResult } from './host-files.js';
import { normalPath, parentsOf, touchedChecks, type TouchedReport } from './touched.js';

/** How the cache runs a script on its host (the host's one way to execute: HostRun.exec). */
export type Exec = (script: string, become: BecomeSpec | undefined) => Promise<ExecResult>;

export const emptyRequest = (): ReadRequest => ({ files: [], stats: [], commands: [] });

const size = (r: ReadRequest) => r.files.length + r.stats.length + r.commands.length;

export class ReadCache {
  private readonly files = new Map<string, FileState>();
  private readonly commands = new Map<string, ExecResult>();
  /** what read-only commands' outputs depend on, where declared (see ReadCommand.dependsOn) */
  private readonly commandDeps = new Map<string, string[]>();
  /**
   * What each task will read, as known when the play was prefetched, to refetch in one exec after the cache
   * empties. Asked again at that time: a module may need less by then (Postfix's parameter names, once known).
   */
  private readonly planned = new Map<Task, (() => Reads)[]>();
  /** what paths are when links are not followed, as last read (see PathLink) */
  private readonly links = new Map<string, PathLink>();

  constructor(
    private readonly host: string,
    private readonly exec: Exec,
  ) {}

  /** The cached state of a file. */
  file(p: string): FileState | undefined {
    return this.files.get(p);
  }

  command(key: string): ExecResult | undefined {
    return this.commands.get(key);
  }

  /** The state a write (or a removal) left a file in. */
  set(state: FileState): void {
    this.files.set(state.path, state);
    // A write renames a new regular file over the path itself (a symbolic link there is replaced).
    const k = normalPath(state.path);
    if (this.links.has(k)) this.links.set(k, state.exists ? { type: 'file', nlink: 1 } : { type: 'absent', nlink: 0 });
  }

  /** Forget what was read of one path (its state is not known exactly). */
  drop(p: string): void {
    this.files.delete(p);
    this.links.delete(normalPath(p));
  }

  /** Anything may have changed on the host: forget what was read. */
  forget(): void {
    this.files.clear();
    this.commands.clear();
    this.links.clear();
  }

  /**
   * What the host would report after a command limited to `touched` (see touched.ts), from what was read of the
   * paths it checks: null when one of them was not read. A command of the file module creates no link, so the
   * report after it names no more links than the paths had before.
   */
  predictTouched(touched: string[]): TouchedReport | null {
    const { checked, files } = touchedChecks(touched, this.paths());
    const mine = new Set(touchedChecks(touched, []).checked);
    const links = new Set<string>();
    for (const p of checked) {
      const l = this.links.get(p);
      // A touched path (or a directory on its way) not read: the report cannot be told. Another path not read
      // (a path a command's output depends on) counts as a link: what was read through it is forgotten.
      if (!l && mine.has(p)) return null;
      if (!l || l.type === 'link') links.add(p);
    }
    let touchedLinked = false;
    for (const p of files) {
      const l = this.links.get(p);
      if (!l) return null;
      if (l.type === 'file' && l.nlink !== 1) touchedLinked = true;
    }
    return { complete: true, touchedLinked, links };
  }

  /** The paths the cache holds a state of, and those its commands' outputs depend on. */
  paths(): string[] {
    return [...new Set([...this.files.keys(), ...[...this.commandDeps.values()].flat()])];
  }

  /** What a read-only command's output depends on (see ReadCommand.dependsOn). */
  dependsOn(key: string, paths: string[]): void {
    this.commandDeps.set(key, paths);
  }

  /**
   * A command changed `touched` (and what lies below them) and nothing else: forget those paths, their parents
   * and what lies below them, and any path the host reported reached through a symbolic link; the same for the
   * outputs of read-only commands, by what they depend on (forgotten when that is not declared). When the report
   * is incomplete or a touched path has another name, forget everything.
   */
  forgetTouched(touched: string[], report: TouchedReport): void {
    const mine = touched.map(normalPath);
    const viaLink = (p: string) => report.links.has(p) || parentsOf(p).some((d) => report.links.has(d));
    if (!report.complete || report.touchedLinked || mine.some((p) => !p.startsWith('/') || viaLink(p))) {
      this.forget();
      return;
    }
    const stale = (key: string) => {
      const k = normalPath(key);
      const related = mine.some((p) => k === p || k.startsWith(`${p}/`) || p.startsWith(`${k}/`) || k === '/');
      return related || !k.startsWith('/') || viaLink(k);
    };
    for (const key of [...this.files.keys()]) if (stale(key)) this.files.delete(key);
    for (const key of [...this.links.keys()]) if (stale(key)) this.links.delete(key);
    for (const key of [...this.commands.keys()]) {
      const deps = this.commandDeps.get(key);
      if (!deps || deps.some(stale)) this.commands.delete(key);
    }
  }

  /** Remember that `task` will read what `read` asks for (see refill). */
  plan(task: Task, read: () => Reads): void {
    this.planned.set(task, [...(this.planned.get(task) ?? []), read]);
  }

  /** Fetch `req` in one exec and keep what came back. */
  async read(req: ReadRequest, become: BecomeSpec | undefined): Promise<void> {
    const r = await this.exec(readScript(req), become);
    if (r.code !== 0) throw new CommandError(this.host, 'reading files', r.code, '', r.stderr.toString());
    this.keep(parseReadOutput(req, r.stdout.toString()));
  }

  keep(res: ReadResult): void {
    for (const [p, st] of res.files) {
      const old = this.files.get(p);
      // A stat-only answer must not replace content we already hold.
      if (old && old.content && !st.content && st.exists) continue;
      this.files.set(p, st);
    }
    for (const [k, v] of res.commands) this.commands.set(k, v);
    for (const [k, v] of res.links ?? []) this.links.set(k, v);
  }

  /** The cache answers a read of `p` (with its content when `content`). */
  holds(p: string, content: boolean): boolean {
    const hit = this.files.get(p);
    return hit !== undefined && (!content || hit.content !== null || !hit.exists || hit.kind !== 'file');
  }

  /** Add to `req` what `reads` asks for that the cache does not answer and `req` does not ask for yet. */
  addMissing(req: ReadRequest, reads: Reads): void {
    reads.files?.forEach((p) => {
      if (!this.holds(p, true) && !req.files.includes(p)) req.files.push(p);
    });
    reads.stats?.forEach((p) => {
      if (!this.holds(p, false) && !req.stats.includes(p)) req.stats.push(p);
    });
    reads.commands?.forEach((c) => {
      if (c.dependsOn) this.commandDeps.set(c.key, c.dependsOn);
      if (namesKeptFor(this.host, c.key)) return;
      if (!this.commands.has(c.key) && !req.commands.some((x) => x.key === c.key)) req.commands.push(c);
    });
  }

  /** Fetch what `req` asks for, unless it is nothing (a path asked for with its content is not also stat'ed). */
  async fetch(req: ReadRequest, become: BecomeSpec | undefined): Promise<void> {
    req.stats = req.stats.filter((p) => !req.files.includes(p));
    if (size(req) === 0) return;
    await this.read(req, become);
  }

  /**
   * A read the cache cannot answer, fetched together with whatever `order` (this task and the ones after it)
   * was known to read and the cache no longer holds, and with `also`: a command that ran on the host empties the
   * cache, and the tasks after it then cost one exec between them, not one per file.
   */
  async refill(want: ReadRequest, order: Task[], also: Reads, become: BecomeSpec | undefined): Promise<void> {
    const req = this.ahead(want, order, also);
    const more = size(req) > size(want);
    try {
      await this.read(req, become);
    } catch (e) {
      // A later task's file may be unreadable (that task will say so): this task still gets what it asked for.
      if (!more) throw e;
      await this.read(want, become);
    }
  }

  /** `want`, with what `order` was known to read and `also`, less what the cache holds (see refill). */
  ahead(want: ReadRequest, order: Task[], also: Reads): ReadRequest {
    const req: ReadRequest = { files: [...want.files], stats: [...want.stats], commands: [...want.commands] };
    for (const t of order) {
      for (const again of this.planned.get(t) ?? []) {
        let r: Reads;
        try {
          r = again();
        } catch {
          continue;
        }
        this.addMissing(req, r);
      }
    }
    this.addMissing(req, also);
    // A path asked for with its content needs no separate stat (a stat's answer would replace the content).
    req.stats = req.stats.filter((p) => !req.files.includes(p));
    return req;
  }

  /** Check mode: later tasks see the content earlier tasks would have written. */
  pretendWritten(files: FileChange[], loginUser: string | null): void {
    for (const f of files) {
      const old = this.files.get(f.path);
      this.files.set(
        f.path,
        fileState(f.path, 'file', f.after, {
          mode: f.mode ?? old?.mode ?? 0o644,
          owner: f.owner ?? old?.owner ?? loginUser,
          group: f.group ?? old?.group ?? null,
          uid: old?.uid ?? null,
          gid: old?.gid ?? null,
        }),
      );
    }
  }
}

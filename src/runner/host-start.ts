/**
 * The start of a host's play: facts and the host lock in one first exec that also brings back what the play
 * will read (on guessed facts, see first-exec.ts), the prefetch of whatever the guesses missed, and the modules'
 * preflight refusals before any task runs.
 */
import { CommandError, formatPos } from '../errors.js';
import { factsScript, HELD_MARKER, LOCK_BUSY, lockedFactsScript, sessionLockedFactsScript, STATE_DIR_REFUSED } from '../facts/gather.js';
import { quote } from '../connection/shell-quote.js';
import type { Facts } from '../facts/types.js';
import { findModule } from '../modules/index.js';
import { type Module, ModuleError, type Reads } from '../modules/module.js';
import { knownNameVersions, rememberNames } from '../modules/postfix-names.js';
import { evaluateCondition } from '../playbook/template.js';
import { allTasks, type Play, type Task } from '../playbook/types.js';
import { checkArgs } from '../playbook/validate.js';
import { displaySafe } from '../report/display-safe.js';
import { factsAgree, firstExecTail, guessFacts, parseFirstExec, unionOfReads, watchedFacts } from './first-exec.js';
import type { ReadRequest } from './host-files.js';
import type { HostRun } from './host.js';
import { emptyRequest } from './read-cache.js';
import { tagged } from './tags.js';
import { emitTaskResult } from './task-events.js';
import { staticArgs } from './task-loops.js';

/**
 * Task arguments rendered for the first exec's guessed facts, reused by the prefetch: rendered once for all the
 * facts (the guesses, then the host's own) that agree on every fact the rendering looked at.
 */
export class Renders {
  private readonly done = new Map<Task, { facts: Facts; used: ReadonlySet<string>; args: Record<string, unknown>[] }[]>();

  args(h: HostRun, play: Play, task: Task, mod: Module, facts: Facts): Record<string, unknown>[] {
    const done = this.done.get(task) ?? [];
    const same = done.find((r) => factsAgree(r.facts, facts, r.used));
    if (same) return same.args;
    const watched = watchedFacts(facts);
    const args = staticArgs(h, play, task, mod, watched.facts);
    this.done.set(task, [...done, { facts, used: watched.used, args }]);
    return args;
  }

  /** Renderings are only valid before any task ran (registered variables change them). */
  clear(): void {
    this.done.clear();
  }
}

/**
 * Facts, once per run. In a normal run the same exec takes the host's run lock and keeps it until the run is done with the host (run.ts),
 * so two runs never interleave their changes; check mode changes nothing and takes no lock. The same exec
 * brings back what the play will read on a host like this one (see first-exec.ts), and Postfix's parameter
 * names when the controller does not know the host's version yet.
 */
export async function gatherFacts(h: HostRun, play: Play): Promise<void> {
  const become = h.become(play);
  const known = knownNameVersions(h.name);
  const req = guessedReads(h, play, known);
  const tail = firstExecTail(known, req);
  // A controller that knows none of the host's Postfix names has the facts list them (one postconf run, not two).
  const opts = { listPostfix: known.length === 0 };
  let stdout: string;
  if (h.settings.check || h.settings.lockTimeoutS <= 0) {
    const r = await h.exec(factsScript(tail, opts), become);
    if (r.code !== 0) throw new CommandError(h.name, 'gathering facts', r.code, r.stdout.toString(), r.stderr.toString());
    stdout = r.stdout.toString();
  } else {
    // The lock is taken by the first step of the host's session, which holds it until the session ends; a host
    // that cannot run sessions holds it on a channel of its own.
    const lockArgs = [h.settings.lockTimeoutS, quote(h.settings.lockHolder), tail, undefined, opts] as const;
    const held = await h.hold(lockedFactsScript(...lockArgs), HELD_MARKER, become, sessionLockedFactsScript(...lockArgs));
    if (!held.held) {
      const err = held.stderr.toString().trim();
      // The lock file's text was written on the host: shown only made display-safe.
      if (held.code === LOCK_BUSY) throw new CommandError(h.name, 'taking the host lock', held.code, '', err, displaySafe(err));
      if (held.code === STATE_DIR_REFUSED) throw new CommandError(h.name, 'taking the host lock', held.code, '', err, displaySafe(err));
      throw new CommandError(h.name, 'gathering facts', held.code, held.stdout.toString(), err);
    }
    stdout = held.stdout.toString();
  }
  const first = parseFirstExec(stdout, req);
  h.facts = first.facts;
  if (!become) h.loginIsRoot = h.facts.uid === 0;
  if (first.names) rememberNames(h.name, first.names.version, first.names.names);
  if (first.reads) h.cache.keep(first.reads);
}

/** What the play would read on hosts like this one, before its facts are known (see first-exec.ts). */
function guessedReads(h: HostRun, play: Play, knownVersions: string[]): ReadRequest {
  h.renders.clear();
  const reads: Reads[] = [{ files: [h.pendingPath(play)] }];
  for (const facts of guessFacts(h.name, knownVersions)) {
    for (const { read } of taskReads(h, play, facts)) {
      try {
        reads.push(read());
      } catch {
        continue;
      }
    }
  }
  return unionOfReads(reads);
}

/**
 * Each read the play's tasks will make on a host with `facts`, as far as their arguments can be rendered now
 * (tasks whose arguments depend on registered results read on demand). `read` may throw.
 */
function* taskReads(h: HostRun, play: Play, facts: Facts): Generator<{ task: Task; read: () => Reads }> {
  for (const task of allTasks(play)) {
    const mod = findModule(task.module);
    // A delegated task reads on the host it is delegated to, which reads what it needs when the task runs.
    if (!mod?.reads || mod.controllerOnly || task.delegateTo !== undefined) continue;
    for (const args of h.renders.args(h, play, task, mod, facts)) yield { task, read: () => mod.reads!(args as never, facts) };
  }
}

/**
 * Fetch, in one exec, every file and read-only command output the play's tasks will ask for that the cache does
 * not hold yet (usually nothing: the facts exec brought it).
 */
export async function prefetch(h: HostRun, play: Play): Promise<void> {
  const req = emptyRequest();
  h.cache.addMissing(req, { files: [h.pendingPath(play)] });
  for (const { task, read } of taskReads(h, play, h.facts!)) {
    let reads;
    try {
      reads = read();
    } catch {
      continue;
    }
    h.cache.plan(task, read);
    h.cache.addMissing(req, reads);
  }
  h.renders.clear();
  await h.cache.fetch(req, h.become(play));
}

/**
 * Before any task of the play runs: let modules refuse tasks that can never succeed on this host (unknown
 * Postfix parameters), so the host fails before anything is written. Only tasks that will certainly run and
 * whose arguments are known now are checked. Returns false when the host failed.
 */
export async function preflight(h: HostRun, play: Play): Promise<boolean> {
  if (!h.facts) return true;
  for (const task of certainTasks([...play.preTasks, ...play.tasks, ...play.postTasks])) {
    if (task.local || task.delegateTo !== undefined) continue;
    const mod = findModule(task.module);
    if (!mod?.preflight || !tagged(play, task, h.settings)) continue;
    const vars = h.vars(play, task);
    let when = true;
    try {
      when = task.when === undefined || evaluateCondition(task.when, vars);
    } catch {
      continue;
    }
    if (!when) continue;
    for (const raw of staticArgs(h, play, task, mod)) {
      const checked = checkArgs(mod, raw);
      if (checked.errors) continue;
      try {
        await mod.preflight(h.context(play, task, vars, true), checked.value as never);
      } catch (e) {
        if (!(e instanceof ModuleError)) throw e;
        h.counters.failed++;
        h.status.stop('failed', e.message);
        emitTaskResult(h.settings.emit, h.name, {
          task: task.name,
          module: task.module,
          handler: false,
          status: 'failed',
          msg: `${e.message} (found before any task ran; nothing was changed)`,
          check: h.settings.check,
          duration_ms: 0,
          at: formatPos(task.pos),
        });
        return false;
      }
    }
  }
  return true;
}

/** The module tasks of a list that run unless their own `when` says no: not rescue tasks, not included ones. */
function certainTasks(tasks: Task[]): Task[] {
  return tasks.flatMap((t) => (t.block ? certainTasks([...t.block.block, ...t.block.always]) : t.include ? [] : [t]));
}

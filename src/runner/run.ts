/**
 * A whole playbook run: select each play's hosts, run the plays in order over one connection per host, and
 * return a RunReport (counters per host, batches, exit code). Nothing here prints: events go to `emit`.
 */
import { writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { Connection } from '../connection/connection.js';
import { InputError, InputErrors } from '../errors.js';
import { hostVars } from '../inventory/vars.js';
import { ansibleGroups, makeHostvars } from '../playbook/magic-vars.js';
import { useNamesStore } from '../modules/postfix-names.js';
import type { Inventory } from '../inventory/types.js';
import { VaultedValue } from '../util/vault.js';
import { isTemplated, renderDeep } from '../playbook/template.js';
import { allTasks, type Playbook } from '../playbook/types.js';
import type { BatchEndEvent, EventSink, HostCounters } from '../report/events.js';
import { HostRun, type HostSettings } from './host.js';
import { orderHosts, runPlay } from './play.js';
import { preflight, runNames } from './preflight.js';
import { delegateProblems, NOT_AN_INVENTORY_HOST, playHosts, readVarsFile } from './play-inputs.js';
import { exitCodeOf } from './results.js';

export interface RunOptions {
  playbook: Playbook;
  inventory: Inventory;
  check: boolean;
  diff: boolean;
  /** --limit pattern */
  limit?: string;
  forks: number;
  extraVars: Record<string, unknown>;
  tags: string[];
  skipTags: string[];
  become: boolean;
  becomeUser?: string;
  becomePassword?: string;
  /** run the first N hosts of each play as a batch of their own, and stop unless all succeed */
  canary: number;
  /** seconds to wait for another run's lock on a host (0: do not lock); default 60 */
  lockTimeoutS?: number;
  /** where to write failed and unreachable hosts; default beside the playbook; null: do not write */
  retryFile?: string | null;
  /**
   * where provision keeps what it learns between runs (Postfix's parameter names per version, so hosts need not
   * send them again); default: nothing is kept beyond the process
   */
  cacheDir?: string;
  /** the connection for a host (not yet connected); may throw InputError for bad settings */
  connectionFor: (host: string, vars: Record<string, unknown>) => Connection;
  emit: EventSink;
  /** true once the operator asked to stop (Ctrl-C) */
  interrupted?: () => boolean;
}

export interface RunReport {
  hosts: Record<string, HostCounters>;
  exitCode: number;
  batches: Omit<BatchEndEvent, 'type'>[];
  notRun: string[];
  stopped?: string;
  retryFile?: string;
  durationMs: number;
}

export async function runPlaybook(opts: RunOptions): Promise<RunReport> {
  const t0 = Date.now();
  const { playbook, inventory } = opts;

  // Resolve every host's connection settings before touching any host: a bad setting is bad input.
  const runs = new Map<string, HostRun>();
  /** hosts that are in no play but that a task is delegated to */
  const targets = new Map<string, HostRun>();
  const names = new Set(Object.keys(opts.extraVars));
  const vaulted = new Map<string, VaultedValue>();
  const hostFor = (name: string): HostRun => {
    const known = runs.get(name) ?? targets.get(name);
    if (known) return known;
    if (!inventory.hosts.has(name)) throw new InputError(`"${name}" ${NOT_AN_INVENTORY_HOST}`);
    const vars = hostVars(inventory, name);
    const target = new HostRun(name, vars, opts.connectionFor(name, vars), settings);
    targets.set(name, target);
    return target;
  };
  const settings: HostSettings = {
    check: opts.check,
    diff: opts.diff,
    become: opts.become,
    becomeUser: opts.becomeUser,
    becomePassword: opts.becomePassword,
    tags: opts.tags,
    skipTags: opts.skipTags,
    extraVars: opts.extraVars,
    lockTimeoutS: opts.lockTimeoutS ?? 60,
    lockHolder: `provision run of ${path.basename(playbook.file)} by ${os.userInfo().username}@${os.hostname()} pid ${process.pid}`,
    playbookDir: playbook.dir,
    playbookFile: playbook.file,
    emit: opts.emit,
    hostFor,
    interrupted: () => opts.interrupted?.() ?? false,
  };
  const perPlay = playbook.plays.map((play) => {
    const hosts = playHosts(inventory, play.hosts, opts.limit, playbook.dir);
    for (const name of hosts) {
      if (runs.has(name)) continue;
      const vars = hostVars(inventory, name);
      for (const [k, v] of Object.entries(vars)) {
        names.add(k);
        if (v instanceof VaultedValue) vaulted.set(k, v);
      }
      runs.set(name, new HostRun(name, vars, opts.connectionFor(name, vars), settings));
    }
    return hosts;
  });
  // A delegation target named as it is (not a template) is checked, and its connection settings resolved, now too.
  const unknown = delegateProblems(playbook, inventory);
  if (unknown.length) throw new InputErrors(unknown);
  for (const play of playbook.plays) for (const task of allTasks(play)) if (task.delegateTo !== undefined && !isTemplated(task.delegateTo)) hostFor(task.delegateTo);
  if (runs.size === 0) {
    throw new InputError(`no hosts matched${opts.limit ? ` (--limit ${opts.limit})` : ''}: ${playbook.plays.map((p) => p.hosts).join(', ')}`);
  }

  // Play vars files are read up front too: a missing or broken file is bad input, found before any change.
  const playVars = playbook.plays.map((play) =>
    play.varsFiles.length ? { ...play.vars, ...loadVarsFiles(play.varsFiles, playbook.dir, { ...play.vars, ...opts.extraVars }) } : play.vars,
  );
  playbook.plays.forEach((play, i) => (play.vars = playVars[i]!));
  for (const play of playbook.plays) for (const [k, v] of Object.entries(play.vars)) if (v instanceof VaultedValue) vaulted.set(k, v);
  const problems = preflight(playbook, { names, vaulted });
  if (problems.length) throw new InputErrors(problems);
  useNamesStore(opts.cacheDir === undefined ? null : path.join(opts.cacheDir, 'postfix-names'));
  opts.emit({ type: 'run_start', version: 1, playbook: playbook.file, check: opts.check, diff: opts.diff });

  const batches: Omit<BatchEndEvent, 'type'>[] = [];
  const notRun: string[] = [];
  let stopped: string | undefined;
  const interrupted = opts.interrupted ?? (() => false);
  // Every inventory host is in hostvars, with its facts once this run gathered them.
  const inventoryVarsOf = new Map<string, Record<string, unknown>>();
  const hostvars = makeHostvars(
    inventory.hosts.keys(),
    (h) => inventoryVarsOf.get(h) ?? inventoryVarsOf.set(h, runs.get(h)?.inventoryVars ?? hostVars(inventory, h)).get(h)!,
    (h) => runs.get(h)?.facts ?? null,
    runNames(playbook),
  );
  const groups = ansibleGroups(inventory);
  const doneAfter = lastPlays(playbook, perPlay);
  try {
    for (let i = 0; i < playbook.plays.length; i++) {
      const play = playbook.plays[i]!;
      if (stopped) {
        break;
      }
      const names = orderHosts(perPlay[i]!, play.order);
      const hosts = names.map((n) => runs.get(n)!).filter((h) => !h.failedOrUnreachable);
      hosts.forEach((h) => h.nextPlay());
      const hostDone = async (h: HostRun) => {
        // A failed or unreachable host takes no part in later plays either.
        const last = doneAfter.get(h.name);
        if (last !== undefined && (last === i || h.failedOrUnreachable)) await h.release();
      };
      const res = await runPlay(play, hosts, { forks: opts.forks, canary: opts.canary, emit: opts.emit, interrupted, hostvars, groups, check: opts.check, playbookDir: playbook.dir, hostDone });
      batches.push(...res.batches);
      notRun.push(...res.notRun);
      if (res.endRun) stopped = res.stopped;
    }
  } finally {
    await Promise.all([...runs.values(), ...targets.values()].map((h) => h.close()));
  }

  const hosts: Record<string, HostCounters> = {};
  for (const [name, h] of runs) {
    hosts[name] = { ...h.counters };
    opts.emit({ type: 'host_done', host: name, counters: hosts[name]!, duration_ms: h.durationMs });
  }
  const bad = [...runs.values()].filter((h) => h.failedOrUnreachable).map((h) => h.name);
  let retryFile: string | undefined;
  if (bad.length && opts.retryFile !== null) {
    retryFile = opts.retryFile ?? path.join(playbook.dir, `${path.basename(playbook.file).replace(/\.ya?ml$/, '')}.retry`);
    try {
      writeFileSync(retryFile, `${bad.join('\n')}\n`);
    } catch (e) {
      opts.emit({ type: 'warning', msg: `cannot write the retry file ${retryFile}: ${(e as Error).message}` });
      retryFile = undefined;
    }
  }
  const exitCode = exitCodeOf(hosts, opts.check, interrupted());
  const durationMs = Date.now() - t0;
  opts.emit({
    type: 'recap',
    hosts,
    exit_code: exitCode,
    duration_ms: durationMs,
    batches,
    not_run: notRun,
    ...(stopped ? { stopped } : {}),
    ...(retryFile ? { retry_file: retryFile } : {}),
  });
  return { hosts, exitCode, batches, notRun, stopped, retryFile, durationMs };
}

/**
 * For each host, the last play it takes part in: once done with that play the run is done with the host, which
 * releases its connection, lock and caches there and then rather than when the last host finishes (500 open
 * connections, sessions and read caches otherwise). Hosts a task may be delegated to stay until the run ends: any
 * host when a delegate_to is templated, else those named.
 */
export function lastPlays(playbook: Playbook, perPlay: string[][]): Map<string, number> {
  const named = new Set<string>();
  for (const play of playbook.plays) {
    for (const task of allTasks(play)) {
      if (task.delegateTo === undefined) continue;
      if (isTemplated(task.delegateTo)) return new Map();
      named.add(task.delegateTo);
    }
  }
  const last = new Map<string, number>();
  perPlay.forEach((hosts, i) => hosts.forEach((h) => last.set(h, i)));
  for (const h of named) last.delete(h);
  return last;
}

function loadVarsFiles(files: string[], dir: string, vars: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const f of files) {
    const name = String(renderDeep(f, vars));
    Object.assign(out, readVarsFile(path.resolve(dir, name)));
  }
  return out;
}

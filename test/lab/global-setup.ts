/**
 * vitest globalSetup of the `lab` project: brings up a lab for the integration tests and provides its state as
 * `inject('lab')`. Not root, or the lab fails to start → a loud notice and `null` (tests skip), unless
 * PROVISION_REQUIRE_LAB=1, which makes that a failure. The lab is torn down when the run ends.
 *
 * Several test runs may share this machine (people working in the same tree): a run takes the first of
 * test, test2, … that no live run owns, and clears one whose owner died without tearing it down.
 */
import { writeFileSync } from 'node:fs';
import type { TestProject } from 'vitest/node';
import { labDown, LabExistsError, labExists, labOwnership, labUp, type LabState } from './lab.js';
import { isRoot } from './lab-system.js';

declare module 'vitest' {
  export interface ProvidedContext {
    lab: LabState | null;
  }
}

const NAMES = ['test', 'test2', 'test3', 'test4', 'test5', 'test6'];

/** Hosts in the test lab: two of each flavour, so tests can dirty one and still have a clean twin. */
function hostCount(): number {
  const n = Number(process.env.PROVISION_LAB_HOSTS ?? '4');
  return Number.isInteger(n) && n >= 2 ? n : 4;
}

function notice(why: string): void {
  const bar = '!'.repeat(78);
  console.warn(`\n${bar}\n!! LAB TESTS SKIPPED: ${why}\n!! Run as root to use the lab; set PROVISION_REQUIRE_LAB=1 to make this a failure.\n${bar}\n`);
}

async function upFreeLab(): Promise<LabState> {
  for (const name of NAMES) {
    if (labExists(name)) {
      // Only a lab whose test run died is ours to clear; one made by hand, or in use, is left alone.
      if (labOwnership(name) !== 'dead') continue;
      await labDown(name);
    }
    try {
      return await labUp({ name, hosts: hostCount(), owner: true });
    } catch (e) {
      // Another run took this name between our look and our claim.
      if (e instanceof LabExistsError) continue;
      throw e;
    }
  }
  throw new Error(`every test lab name (${NAMES.join(', ')}) is taken by a live run or by hand`);
}

export default async function setup(project: TestProject): Promise<(() => Promise<void>) | undefined> {
  const required = process.env.PROVISION_REQUIRE_LAB === '1';
  if (!isRoot()) {
    if (required) throw new Error('PROVISION_REQUIRE_LAB=1 but the lab needs root: run the lab tests as root');
    notice('not running as root');
    project.provide('lab', null);
    return undefined;
  }
  let state: LabState;
  try {
    state = await upFreeLab();
  } catch (e) {
    const why = e instanceof Error ? e.message : String(e);
    if (required) throw new Error(`the lab could not start: ${why}`);
    notice(`the lab could not start: ${why}`);
    project.provide('lab', null);
    return undefined;
  }
  project.provide('lab', state);
  // CI asks for proof that the lab tests had a lab: the file names it.
  if (process.env.PROVISION_LAB_MARKER) writeFileSync(process.env.PROVISION_LAB_MARKER, `${state.name} ${state.hosts.length} hosts\n`);
  return async () => {
    await labDown(state.name);
  };
}

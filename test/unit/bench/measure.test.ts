import { existsSync, mkdirSync, rmdirSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { findCgroup2Root, measure } from '../../../bench/measure.js';
import { tempDir } from '../../support/tmp.js';

const dir = tempDir();
const writableCgroup = (() => {
  const root = findCgroup2Root();
  if (!root) return null;
  const probe = path.join(root, `provision-test-probe-${process.pid}`);
  try {
    mkdirSync(probe);
    rmdirSync(probe);
    return root;
  } catch {
    return null;
  }
})();

// A tree of two processes: the measured shell and a python that holds 64 MB for a moment.
const command = ['/bin/sh', '-c', 'python3 -c "import time; b = bytearray(64 * 2**20); time.sleep(0.6)"; echo done'];
const opts = (label: string, cgroupRoot: string | null) => ({
  command,
  env: process.env,
  cwd: dir,
  stdoutFile: path.join(dir, `${label}.out`),
  stderrFile: path.join(dir, `${label}.err`),
  timeoutMs: 30_000,
  cgroupRoot,
  label: `provision-test-${process.pid}-${label}`,
  sampleMs: 50,
});

describe('measuring a run', () => {
  it("gives the exit status, the largest process's peak RSS and the tree's memory (GNU time, no cgroup)", async () => {
    const m = await measure(opts('plain', null));
    expect(m).toMatchObject({ exitCode: 0, cpuSource: 'gnu-time', leftovers: 0 });
    expect(m.maxRssMb).toBeGreaterThan(64);
    expect(m.peakTreePssMb).toBeGreaterThan(32);
    expect(m.peakProcesses).toBeGreaterThanOrEqual(2);
  });

  it.skipIf(!writableCgroup)('counts, then ends by pid, the processes a tool leaves running, and removes its cgroup', async () => {
    const o = { ...opts('daemon', writableCgroup), command: ['/bin/sh', '-c', 'setsid sleep 300 </dev/null >/dev/null 2>&1 & echo started'] };
    const m = await measure(o);
    expect(m).toMatchObject({ exitCode: 0, cpuSource: 'cgroup', leftovers: 1 });
    expect(existsSync(path.join(writableCgroup!, o.label))).toBe(false);
  });
});

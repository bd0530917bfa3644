/**
 * Host shapes the benchmark runs every tool on. `default`: root's login is the distribution's own, nearly free.
 * `costly`: root's (and the sudo user's) ~/.bashrc spends about 150 ms of CPU on every SSH command, as on servers
 * whose .bashrc initialises pyenv or conda (the lab's costlyLogin option), so each exec a tool opens pays it again.
 */
import type { LabState, LabUpOptions } from '../test/lab/lab.js';

export type Shape = 'default' | 'costly';

export const SHAPES: readonly Shape[] = ['default', 'costly'];

export const SHAPE_LABEL: Readonly<Record<Shape, string>> = {
  default: 'default login',
  costly: 'costly login',
};

/** `--shapes default,costly`: the shapes in the order given, each once; an unknown name is an error. */
export function parseShapes(value: string): Shape[] {
  const list = value
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);
  if (list.length === 0) throw new Error('name at least one shape (default, costly)');
  for (const s of list) if (!SHAPES.includes(s as Shape)) throw new Error(`"${s}" is not a host shape (default, costly)`);
  return [...new Set(list as Shape[])];
}

/** The lab a shape runs on: the default shape on the lab named `base`, the costly one on `base-costly`. */
export function labNameFor(base: string, shape: Shape): string {
  return shape === 'default' ? base : `${base}-costly`;
}

/** What labUp needs to make hosts of a shape. */
export function labOptionsFor(shape: Shape): Pick<LabUpOptions, 'costlyLogin'> {
  return { costlyLogin: shape === 'costly' };
}

/** The shape of the hosts of a lab that is up. */
export function shapeOfLab(state: Pick<LabState, 'costlyLogin'>): Shape {
  return state.costlyLogin === true ? 'costly' : 'default';
}

/**
 * A command for a lab host that prints the CPU its own shell (the one sshd started, after ~/.bashrc) has spent so
 * far, in clock ticks of 10 ms: what the login cost.
 */
export const LOGIN_TICKS_COMMAND = 'read -r s < /proc/$$/stat; s=${s##*) }; f=($s); echo $((f[11] + f[12]))';

/** Why a host's login cost (LOGIN_TICKS_COMMAND's output) does not match the shape, or null when it does. */
export function loginCostProblem(shape: Shape, output: string): string | null {
  const text = output.trim();
  if (!/^\d+$/.test(text)) return `could not read the login's CPU (got "${text.slice(0, 80)}")`;
  const ms = Number(text) * 10;
  if (shape === 'costly' && ms < 140) return `a login costs ${ms} ms of CPU, not about 150 ms: the lab's hosts are not costly-login ones`;
  if (shape === 'default' && ms >= 50) return `a login costs ${ms} ms of CPU: root's ~/.bashrc on the lab's hosts is not the distribution's`;
  return null;
}

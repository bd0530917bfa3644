/** Picking out the run events (--json lines) that a test looks at. */
import type { RecapEvent, RunEvent, TaskResultEvent, WarningEvent } from '../../src/report/events.js';

/** The task results of a run, of one host when given. */
export function results(events: RunEvent[], host?: { name: string }): TaskResultEvent[] {
  return events.filter((e): e is TaskResultEvent => e.type === 'task_result' && (!host || e.host === host.name));
}

/** The warnings of a run, of one host when given. */
export function warnings(events: RunEvent[], host?: { name: string }): string[] {
  return events.filter((e): e is WarningEvent => e.type === 'warning' && (!host || e.host === host.name)).map((e) => e.msg);
}

/** The recap, which must be the last event. */
export function recap(events: RunEvent[]): RecapEvent {
  const last = events.at(-1);
  if (last?.type !== 'recap') throw new Error(`the last event is ${last?.type ?? 'missing'}, not the recap`);
  return last;
}

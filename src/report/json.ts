import { jsonSafe } from './display-safe.js';
import type { RunEvent } from './events.js';
import type { Reporter, Write } from './plain.js';

/** `--json`: every event as one line of JSON; the last line is the recap. */
export class JsonReporter implements Reporter {
  constructor(private readonly write: Write) {}

  handle(e: RunEvent): void {
    if (e.type === 'task_start') return;
    this.write(`${jsonSafe(JSON.stringify(e))}\n`);
  }

  async finish(): Promise<void> {}
}

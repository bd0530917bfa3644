/** Text from hosts made display-safe for terminals; --json keeps the exact value. */
import { Writable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { displaySafe, displaySafeDeep, jsonSafe } from '../../../src/report/display-safe.js';
import { JsonReporter } from '../../../src/report/json.js';
import { ListrReporter } from '../../../src/report/listr.js';
import { PlainReporter } from '../../../src/report/plain.js';
import type { RunEvent } from '../../../src/report/events.js';

// OSC 52 (clipboard write), cursor up and erase line, a C1 CSI, a carriage return and a right-to-left override:
// what a hostile file or log line would carry.
const OSC52 = '\x1b]52;c;ZWNobyBwd25lZA==\x07';
const HOSTILE = `line one\n${OSC52}\x1b[1A\x1b[2K\rhidden\u009b31m\u202eevil\ttab\x7f\x00`;

describe('displaySafe', () => {
  it('shows every control character but tab and newline as an escape', () => {
    expect(displaySafe(HOSTILE)).toBe('line one\n\\x1b]52;c;ZWNobyBwd25lZA==\\x07\\x1b[1A\\x1b[2K\\rhidden\\u009b31m\\u202eevil\ttab\\x7f\\x00');
  });

  it('leaves ordinary text, UTF-8 letters and tabs alone', () => {
    for (const s of ['', 'smtpd_tls_security_level = may', 'grüße ✓ 日本', 'a\tb\nc\n']) expect(displaySafe(s)).toBe(s);
  });

  it('leaves no byte below 0x20 other than tab and newline, nor DEL or C1', () => {
    let all = '';
    for (let c = 0; c < 0xa0; c++) all += String.fromCharCode(c);
    expect(displaySafe(all)).not.toMatch(/[\u0000-\u0008\u000b-\u001f\u007f-\u009f]/);
  });

  it('reaches strings inside arrays and objects', () => {
    expect(displaySafeDeep({ a: ['\x1b[2J', { b: '\x07' }], n: 3, t: true, z: null })).toEqual({ a: ['\\x1b[2J', { b: '\\x07' }], n: 3, t: true, z: null });
  });
});

describe('reporters', () => {
  const events: RunEvent[] = [
    { type: 'run_start', version: 1, playbook: 'p.yaml', check: true, diff: true },
    { type: 'play_start', play: 'p', hosts: ['h1'], batches: [['h1']] },
    {
      type: 'task_result',
      host: 'h1',
      task: 't',
      module: 'copy',
      handler: false,
      status: 'failed',
      msg: `stderr: ${HOSTILE}`,
      diffs: [{ path: '/etc/x', created: false, diff: `--- a\n+++ b\n@@ -1 +1 @@\n-${OSC52}\n+new\n` }],
      check: true,
      duration_ms: 1,
    },
    { type: 'warning', host: 'h1', msg: `lock held by ${OSC52}` },
  ];

  it('plain output carries no escape byte from a host, coloured or not', () => {
    for (const colour of [false, true]) {
      let out = '';
      const r = new PlainReporter((s) => (out += s), colour, true);
      for (const e of events) r.handle(e);
      // Colour codes are ours (ESC [ digits m); nothing else may start with ESC.
      expect(out.replace(/\x1b\[[0-9;]*m/g, '')).not.toMatch(/[\u0000-\u0008\u000b-\u001f\u007f-\u009f\u202e]/);
      expect(out).toContain('\\x1b]52;c;');
    }
  });

  it('the terminal view draws the escaped text, never the sequence itself', async () => {
    let drawn = '';
    const stdout = new Writable({
      write(chunk: Buffer, _encoding, done) {
        drawn += chunk.toString();
        done();
      },
    });
    Object.assign(stdout, { isTTY: true, columns: 200, rows: 40 });
    let summary = '';
    const r = new ListrReporter((s) => (summary += s), false, { stdout: stdout as unknown as NodeJS.WriteStream });
    for (const e of events) r.handle(e);
    r.handle({ type: 'recap', hosts: {}, exit_code: 2, duration_ms: 1, batches: [], not_run: [] });
    await r.finish();
    // listr draws with escapes of its own; the host's OSC 52 and BEL must not be among them.
    expect(drawn + summary).not.toContain('\x1b]52');
    expect(drawn + summary).not.toContain('\x07');
    expect(drawn + summary).toContain('\\x1b]52;c;');
  });

  it('--json keeps the exact strings and prints no raw control byte', () => {
    let out = '';
    const r = new JsonReporter((s) => (out += s));
    for (const e of events) r.handle(e);
    expect(out).not.toMatch(/[\u0000-\u0008\u000b-\u001f\u007f-\u009f\u202e]/);
    const parsed = out.trim().split('\n').map((l) => JSON.parse(l) as RunEvent);
    expect(parsed).toEqual(events);
    expect(JSON.parse(jsonSafe(JSON.stringify('\u009b\u2028x')))).toBe('\u009b\u2028x');
  });
});

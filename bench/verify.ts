/**
 * The end state, checked from the controller after a tool's first run (untimed): every host answers on 465 with
 * TLS from the first byte and then the SMTP greeting, so a tool that finished fast without doing the job shows.
 */
import tls from 'node:tls';
import type { LabHost } from '../test/lab/lab.js';

/** Why the host does not serve SMTPS, or null when it does. */
export function smtpsProblem(host: LabHost, timeoutMs = 15_000): Promise<string | null> {
  return new Promise((resolve) => {
    let text = '';
    let done = false;
    const finish = (why: string | null) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      socket.destroy();
      resolve(why);
    };
    // The certificate's name is checked by provision's own probe; here any certificate will do.
    const socket = tls.connect({ host: host.ip, port: 465, servername: host.name, rejectUnauthorized: false });
    const timer = setTimeout(() => finish(`no SMTP greeting over TLS within ${timeoutMs} ms`), timeoutMs);
    socket.on('data', (b: Buffer) => {
      text += b.toString('latin1');
      if (text.includes('\n')) finish(text.startsWith('220') ? null : `greeting "${text.trim()}"`);
    });
    socket.on('error', (e) => finish(e.message));
    socket.on('close', () => finish(text ? `closed after "${text.trim()}"` : 'closed without a greeting'));
  });
}

/** Hosts that do not serve SMTPS, with the reason, checked `parallel` at a time. */
export async function hostsWithoutSmtps(hosts: LabHost[], parallel: number): Promise<{ host: string; why: string }[]> {
  const bad: { host: string; why: string }[] = [];
  let next = 0;
  const worker = async () => {
    while (next < hosts.length) {
      const h = hosts[next++]!;
      const why = await smtpsProblem(h);
      if (why) bad.push({ host: h.name, why });
    }
  };
  await Promise.all(Array.from({ length: Math.min(parallel, hosts.length) }, worker));
  return bad;
}

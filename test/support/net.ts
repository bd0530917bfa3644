/** Talking to lab hosts from the controller the way a client does, for tests and the demo. */
import { connect } from 'node:net';

/**
 * The first line a TCP server sends, or why there is none: the connect error code (EHOSTUNREACH is the lab
 * firewall's REJECT), or "timeout".
 */
export function banner(ip: string, port: number, timeoutMs = 15_000): Promise<string> {
  return new Promise((resolve) => {
    const sock = connect({ host: ip, port, timeout: timeoutMs });
    sock.setEncoding('utf8');
    let got = '';
    sock.on('data', (d: string) => {
      got += d;
      if (got.includes('\n')) {
        sock.destroy();
        resolve(got.split('\r\n')[0]!);
      }
    });
    sock.on('timeout', () => {
      sock.destroy();
      resolve('timeout');
    });
    sock.on('error', (e: NodeJS.ErrnoException) => resolve(e.code ?? e.message));
  });
}

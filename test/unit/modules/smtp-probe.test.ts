import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import tls from 'node:tls';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { smtpProbeModule } from '../../../src/modules/smtp-probe.js';
import { fakeContext } from '../../support/fake-context.js';
import { tempDir } from '../../support/tmp.js';

const dir = tempDir();
let key: Buffer;
let cert: Buffer;
const servers: net.Server[] = [];

/** A tiny SMTP server on loopback: banner, EHLO (with AUTH), optional STARTTLS, QUIT. */
function smtpServer(mode: 'implicit' | 'plain'): Promise<number> {
  const handle = (sock: net.Socket, secure: boolean) => {
    sock.write('220 mx.test ESMTP Postfix\r\n');
    let buf = '';
    sock.on('data', (d) => {
      buf += d.toString();
      let i: number;
      while ((i = buf.indexOf('\r\n')) >= 0) {
        const line = buf.slice(0, i);
        buf = buf.slice(i + 2);
        if (line.startsWith('EHLO')) sock.write(`250-mx.test\r\n${secure ? '250-AUTH PLAIN LOGIN\r\n' : '250-STARTTLS\r\n'}250 8BITMIME\r\n`);
        else if (line === 'STARTTLS') {
          sock.write('220 2.0.0 Ready to start TLS\r\n');
          sock.removeAllListeners('data');
          const t = new tls.TLSSocket(sock, { isServer: true, key, cert });
          t.on('error', () => undefined);
          let tb = '';
          t.on('data', (d2) => {
            tb += d2.toString();
            if (tb.includes('EHLO')) {
              tb = '';
              t.write('250-mx.test\r\n250 AUTH PLAIN LOGIN\r\n');
            }
            if (tb.includes('QUIT')) t.end('221 bye\r\n');
          });
          return;
        } else if (line === 'QUIT') sock.end('221 bye\r\n');
      }
    });
    sock.on('error', () => undefined);
  };
  const server = mode === 'implicit' ? tls.createServer({ key, cert }, (s) => handle(s, true)) : net.createServer((s) => handle(s, false));
  servers.push(server);
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve((server.address() as net.AddressInfo).port)));
}

beforeAll(() => {
  execFileSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '2', '-subj', '/CN=mx.test', '-addext', 'subjectAltName=DNS:mx.test', '-keyout', path.join(dir, 'k.pem'), '-out', path.join(dir, 'c.pem')], { stdio: 'ignore' });
  key = readFileSync(path.join(dir, 'k.pem'));
  cert = readFileSync(path.join(dir, 'c.pem'));
});
afterAll(() => servers.forEach((s) => s.close()));

const ctx = fakeContext();
const plan = (args: Parameters<typeof smtpProbeModule.plan>[1]) => smtpProbeModule.plan(ctx, { host: '127.0.0.1', retries: 0, timeout: 5, ...args });

describe('smtp_probe', () => {
  it('implicit TLS: reports TLS version, certificate, banner and EHLO AUTH', async () => {
    const port = await smtpServer('implicit');
    const r = await plan({ port, tls: 'implicit', verify_name: 'mx.test', ehlo_expect: 'AUTH' });
    expect(r.changed).toBe(false);
    expect(r.msg).toMatch(/^127\.0\.0\.1:\d+, TLSv1\.[23] \S+, certificate CN=mx\.test covers mx\.test, banner "220 mx\.test ESMTP Postfix", EHLO offers AUTH PLAIN LOGIN$/);
    expect(r.data).toMatchObject({ name_matches: true, cert_san: 'DNS:mx.test' });
  });

  it('fails when the certificate does not cover the name', async () => {
    const port = await smtpServer('implicit');
    await expect(plan({ port, tls: 'implicit', verify_name: 'other.test' })).rejects.toThrow(/does not cover other\.test/);
  });

  it('says "wrong version number" when the port speaks plain SMTP', async () => {
    const port = await smtpServer('plain');
    await expect(plan({ port, tls: 'implicit' })).rejects.toThrow(/wrong version number/);
  });

  it('STARTTLS: upgrades, then checks EHLO again', async () => {
    const port = await smtpServer('plain');
    const r = await plan({ port, tls: 'starttls', verify_name: 'mx.test', ehlo_expect: ['AUTH'] });
    expect(r.msg).toContain('covers mx.test');
  });

  it('reports a refused port after its retries', async () => {
    const server = net.createServer();
    const port = await new Promise<number>((res) => server.listen(0, '127.0.0.1', () => res((server.address() as net.AddressInfo).port)));
    server.close();
    await expect(plan({ port, retries: 1, delay: 0 })).rejects.toThrow(/failed after 2 attempts: 127\.0\.0\.1:\d+: connection refused/);
  });

  it('in check mode reports a failing probe as unpredictable after one attempt, since the run made no change', async () => {
    const server = net.createServer();
    const port = await new Promise<number>((res) => server.listen(0, '127.0.0.1', () => res((server.address() as net.AddressInfo).port)));
    server.close();
    const started = Date.now();
    const r = await smtpProbeModule.plan(fakeContext({ check: true }), { host: '127.0.0.1', port, retries: 3, delay: 5, timeout: 5 });
    expect(Date.now() - started).toBeLessThan(5000);
    expect(r).toMatchObject({ changed: true, files: [], commands: [] });
    expect(r.changed && r.unpredictable).toMatch(/^the probe fails now \(127\.0\.0\.1:\d+: connection refused\)/);
  });
});

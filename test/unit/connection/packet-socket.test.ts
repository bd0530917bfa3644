import net from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { connectPacketSocket } from '../../../src/connection/packet-socket.js';

/** A loopback server that keeps what each connection sent. */
function server(): Promise<{ port: number; received: () => Promise<Buffer>; close: () => void }> {
  return new Promise((resolve) => {
    let got: Promise<Buffer> = Promise.resolve(Buffer.alloc(0));
    const srv = net.createServer((c) => {
      got = new Promise((res) => {
        const chunks: Buffer[] = [];
        c.on('data', (b: Buffer) => chunks.push(b));
        c.on('end', () => {
          res(Buffer.concat(chunks));
          c.end();
        });
      });
    });
    srv.listen(0, '127.0.0.1', () => {
      const port = (srv.address() as net.AddressInfo).port;
      resolve({ port, received: () => got, close: () => srv.close() });
    });
  });
}

const open: (() => void)[] = [];
afterEach(() => open.splice(0).forEach((f) => f()));

describe('the SSH socket groups the writes of one turn of the event loop', () => {
  it('ssh2 writes a packet in pieces (length, ciphertext, tag): they wait together and leave in order at the end of the turn', async () => {
    const srv = await server();
    open.push(srv.close);
    const s = connectPacketSocket('127.0.0.1', srv.port);
    await new Promise((r) => s.once('connect', r));
    s.write(Buffer.from([0, 0, 0, 12]));
    s.write(Buffer.from('ciphertext..'));
    expect(s.writableCorked).toBe(1);
    let called = false;
    s.write('tag-bytes-16----', 'latin1', () => {
      called = true;
    });
    expect(s.writableLength).toBe(4 + 12 + 16);
    await new Promise((r) => setImmediate(r));
    expect(s.writableCorked).toBe(0);
    expect(s.writableLength).toBe(0);
    s.write('next turn', () => undefined);
    expect(s.writableCorked).toBe(1);
    await new Promise<void>((r) => s.end(r));
    expect(called).toBe(true);
    expect((await srv.received()).toString('latin1')).toBe('\0\0\0\x0cciphertext..tag-bytes-16----next turn');
  });

  it('a packet written just before the socket is destroyed in the same turn (ssh2 failing a handshake) still leaves', async () => {
    const srv = await server();
    open.push(srv.close);
    const s = connectPacketSocket('127.0.0.1', srv.port);
    await new Promise((r) => s.once('connect', r));
    s.write('DISCONNECT');
    s.destroy();
    expect((await srv.received()).toString()).toBe('DISCONNECT');
  });

  it('net.Socket.connect would put the prototype write back: the grouping is installed after it and stays', async () => {
    const srv = await server();
    open.push(srv.close);
    const s = connectPacketSocket('127.0.0.1', srv.port);
    expect(Object.hasOwn(s, 'write')).toBe(true);
    await new Promise((r) => s.once('connect', r));
    s.write('a');
    expect(s.writableCorked).toBe(1);
    s.destroy();
  });
});

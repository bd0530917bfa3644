/**
 * The TCP socket an SSH connection runs over, with the writes of one turn of the event loop sent together.
 *
 * ssh2 hands each encrypted packet to its socket in two or three pieces (the length, the ciphertext, the MAC or
 * tag), and often several packets in a row. Written one by one, each piece is a system call and a TCP segment of
 * its own (4 bytes, then the rest, then 16), which the host's kernel and sshd each handle again. Corked until the
 * end of the turn, they leave in one `writev`, as OpenSSH sends whole packets. Order and content are unchanged;
 * only the grouping differs.
 */
import net from 'node:net';
import type { Writable } from 'node:stream';

type WriteCallback = (err?: Error | null) => void;

/**
 * Make `stream` cork itself on the first write of a turn of the event loop and uncork at the end of it. Installed
 * on the instance after `connect` (net.Socket's `connect` puts the prototype's `write` back on a socket whose
 * `write` differs from it, so an override in a subclass would be dropped).
 */
export function groupWrites<S extends Writable>(stream: S): S {
  const write = stream.write.bind(stream) as (chunk: unknown, encoding?: BufferEncoding, cb?: WriteCallback) => boolean;
  let corked = false;
  const grouped = (chunk: unknown, encoding?: BufferEncoding | WriteCallback, cb?: WriteCallback): boolean => {
    if (!corked && !stream.destroyed) {
      corked = true;
      stream.cork();
      process.nextTick(() => {
        corked = false;
        stream.uncork();
      });
    }
    // Writable.write takes a callback in the encoding's place too.
    return write(chunk, encoding as BufferEncoding, cb);
  };
  stream.write = grouped as S['write'];
  // ssh2 writes its DISCONNECT and the caller may destroy the socket in the same turn: what waits goes out first,
  // as it did when every piece was written at once.
  const destroy = stream.destroy.bind(stream);
  stream.destroy = (error?: Error): S => {
    if (corked) {
      corked = false;
      stream.uncork();
    }
    destroy(error);
    return stream;
  };
  return stream;
}

/** A TCP connection to `host`:`port` whose writes are grouped as groupWrites says. */
export function connectPacketSocket(host: string, port: number): net.Socket {
  return groupWrites(net.connect({ host, port }));
}

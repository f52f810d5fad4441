/**
 * A raw HTTP/1.1 server on 127.0.0.1 that answers each request head with the text `answer`
 * returns (kept-alive; ending in `<close>`, the connection is closed after it), for responses
 * node:http will not write (a 204 or 304 with a content-length, a body cut short).
 */
import net from 'node:net';
import type { AddressInfo } from 'node:net';

export type Answer = (method: string, path: string, n: number) => string;

export async function rawServer(answer: Answer): Promise<{ address: string; requests: () => number; close(): Promise<void> }> {
  let requests = 0;
  const sockets = new Set<net.Socket>();
  const server = net.createServer((s) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
    s.on('error', () => undefined);
    let buffered = '';
    s.on('data', (d: Buffer) => {
      buffered += d.toString('latin1');
      let end: number;
      while ((end = buffered.indexOf('\r\n\r\n')) >= 0) {
        const [method = '', path = ''] = buffered.slice(0, buffered.indexOf('\r\n')).split(' ');
        buffered = buffered.slice(end + 4);
        const out = answer(method, path, ++requests);
        if (out.endsWith('<close>')) s.end(out.slice(0, -7));
        else s.write(out);
      }
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    address: `127.0.0.1:${(server.address() as AddressInfo).port}`,
    requests: () => requests,
    close: async () => {
      for (const s of sockets) s.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

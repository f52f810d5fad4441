/**
 * A real node:http2 h2c server on 127.0.0.1 for the HTTP/2 caller tests: counts the streams it
 * was sent, keeps the last one's headers, and answers each with `answer`.
 */
import http2 from 'node:http2';
import type { AddressInfo } from 'node:net';

export interface H2c {
  port: number;
  /** Streams (requests) that reached it. */
  streams: number;
  /** The headers of the last stream. */
  last: http2.IncomingHttpHeaders;
  close(): Promise<void>;
}

export async function startH2c(answer: (stream: http2.ServerHttp2Stream, headers: http2.IncomingHttpHeaders, s: H2c) => void): Promise<H2c> {
  const server = http2.createServer();
  const sessions = new Set<http2.ServerHttp2Session>();
  const s: H2c = {
    port: 0,
    streams: 0,
    last: {},
    close: async () => {
      for (const x of sessions) x.destroy();
      await new Promise<void>((r) => server.close(() => r()));
    },
  };
  server.on('session', (x: http2.ServerHttp2Session) => {
    sessions.add(x);
    x.on('close', () => sessions.delete(x));
    x.on('error', () => undefined);
  });
  server.on('stream', (stream, headers) => {
    s.streams++;
    s.last = headers;
    answer(stream, headers, s);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  s.port = (server.address() as AddressInfo).port;
  return s;
}

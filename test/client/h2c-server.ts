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

/**
 * The `h2` Service document the HTTP/2 caller tests use: one endpoint on `port`, retries on
 * everything retryable, and (`strict`) a breaker and outlier detection that the first failure
 * charged to the endpoint trips, so a caller's mistake charged by error is seen at once.
 */
export function h2Service(port: number, strict = true): string {
  return `apiVersion: trellis/v1
kind: Service
metadata: { name: h2 }
spec:
  protocol: http2
  timeout: 10s
  endpoints: [ { address: 127.0.0.1:${port} } ]
  retries: { attempts: 3, on: [connect-failure, reset, gateway-error, 5xx], budget: { ratio: 0.5, minPerSecond: 1 } }
${strict ? `  circuitBreaker: { errorThresholdPercent: 1, volumeThreshold: 1, resetTimeout: 60s }
  outlierDetection: { consecutiveFailures: 1, ejectionTime: 60s, maxEjectedPercent: 100 }
` : ''}`;
}

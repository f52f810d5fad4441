/**
 * undici's own `bodyTimeout` (a request option the mesh passes on) expiring while a response body
 * stalls is a timeout, not a reset: the caller gets TRELLIS_TIMEOUT naming the endpoint, on the
 * body stream (a large body, delivered as it streams) or from request() (a small one read whole
 * first), and the stalled connection is closed (judged by the server's socket). Before, every
 * transport error mid-body was mapped to TRELLIS_RESET, "connection failed before the response
 * body completed (UND_ERR_BODY_TIMEOUT)".
 */
import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { isTrellisError, meshClient } from 'trellis';
import type { Mesh } from 'trellis';
import { quietLogger } from '../helpers/servers.js';

const cleanup: (() => Promise<void>)[] = [];
after(async () => {
  for (const c of cleanup.reverse()) await c();
});

describe("undici's bodyTimeout on a stalled response body", () => {
  it('is TRELLIS_TIMEOUT, whether the body streams or is read whole first', async () => {
    const closed: Promise<void>[] = [];
    // Answers with the content-length the path names, sends one byte and stalls.
    const server = http.createServer((req, res) => {
      res.writeHead(200, { 'content-length': Number((req.url ?? '/1').slice(1)) });
      res.write('a');
    });
    server.on('connection', (s: Socket) => closed.push(new Promise<void>((r) => s.once('close', () => r()))));
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    cleanup.push(() => new Promise<void>((r) => {
      server.closeAllConnections();
      server.close(() => r());
    }));
    const port = (server.address() as AddressInfo).port;
    const mesh: Mesh = await meshClient({
      service: 'caller',
      logger: quietLogger(),
      config: `apiVersion: trellis/v1
kind: Service
metadata: { name: up }
spec:
  timeout: 30s
  endpoints: [ { address: 127.0.0.1:${port} } ]
  retries: { attempts: 2, on: [connect-failure, reset], budget: { ratio: 1, minPerSecond: 100 } }
`,
    });
    cleanup.push(() => mesh.close({ drainTimeoutMs: 100 }));
    const isBodyTimeout = (err: unknown): boolean => {
      assert.ok(isTrellisError(err, 'TRELLIS_TIMEOUT'), String(err));
      assert.match((err as Error).message, /UND_ERR_BODY_TIMEOUT/);
      assert.equal((err as { endpoint?: string }).endpoint, `127.0.0.1:${port}`);
      return true;
    };

    // 100 kB: streamed to the caller, the timeout ends the body stream.
    const res = await mesh.http('up').request({ path: '/100000', bodyTimeout: 100 });
    assert.equal(res.statusCode, 200);
    await assert.rejects(res.body.text(), isBodyTimeout);

    // 10 bytes, idempotent, resets retried: read whole before request() resolves.
    await assert.rejects(mesh.http('up').request({ path: '/10', bodyTimeout: 100 }), isBodyTimeout);

    await Promise.all(closed);
  });
});

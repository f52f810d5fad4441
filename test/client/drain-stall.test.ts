/**
 * A failed response that is retried (a 503 on `gateway-error`) never reaches the caller: its body
 * is drained to keep the connection while the retry goes elsewhere. When that body stalls after
 * the headers, the drain must still end within the call's deadline: before, nothing bounded it
 * (the Pool's own bodyTimeout is off), so each such response held its connection, and the
 * endpoint's in-flight count, forever, and mesh.close() waited out its whole drain deadline.
 * Judged by the stalling server's sockets: each one the mesh opened is closed again.
 */
import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { meshClient } from 'trellis';
import type { Mesh } from 'trellis';
import { quietLogger } from '../helpers/servers.js';

const cleanup: (() => Promise<void>)[] = [];
after(async () => {
  for (const c of cleanup.reverse()) await c();
});

async function listen(server: http.Server): Promise<number> {
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  cleanup.push(() => new Promise<void>((r) => {
    server.closeAllConnections();
    server.close(() => r());
  }));
  return (server.address() as AddressInfo).port;
}

describe('a retried response whose body stalls', () => {
  it('is drained no longer than the call deadline: its connection is closed, the endpoint holds no request', async () => {
    // 503 with a 100-byte body of which one byte is sent: the body never ends.
    const stalling = http.createServer((_req, res) => {
      res.writeHead(503, { 'content-length': 100 });
      res.write('a');
    });
    const sockets: Socket[] = [];
    const closed: Promise<void>[] = [];
    stalling.on('connection', (s: Socket) => {
      sockets.push(s);
      closed.push(new Promise<void>((r) => s.once('close', () => r())));
    });
    let served = 0;
    const healthy = http.createServer((_req, res) => {
      served++;
      res.end('ok');
    });
    const bad = await listen(stalling);
    const good = await listen(healthy);
    const mesh: Mesh = await meshClient({
      service: 'caller',
      logger: quietLogger(),
      config: `apiVersion: trellis/v1
kind: Service
metadata: { name: up }
spec:
  timeout: 500ms
  loadBalancer: round-robin
  endpoints: [ { address: 127.0.0.1:${bad} }, { address: 127.0.0.1:${good} } ]
  retries: { attempts: 2, on: [gateway-error], backoff: { base: 1ms, max: 1ms }, budget: { ratio: 1, minPerSecond: 100 } }
`,
    });
    cleanup.push(() => mesh.close({ drainTimeoutMs: 100 }));

    for (let i = 0; i < 4; i++) {
      const res = await mesh.http('up').request({ path: `/r${i}` });
      assert.equal(res.statusCode, 200);
      assert.equal(await res.body.text(), 'ok');
    }
    assert.equal(served, 4);
    assert.ok(sockets.length >= 1, 'the stalling server was tried');

    // Every connection to the stalling server is closed once the deadline has passed (bounded
    // wait far above the 500 ms deadline: without a bound on the drain, none ever closes).
    const all = Promise.all(closed).then(() => 'closed' as const);
    const bound = new Promise<'held'>((r) => setTimeout(() => r('held'), 10_000).unref());
    assert.equal(await Promise.race([all, bound]), 'closed', `${sockets.filter((s) => !s.destroyed).length} of ${sockets.length} connections still held`);
    const ep = mesh.inspect().services[0]?.endpoints.find((e) => e.id === `127.0.0.1:${bad}`);
    assert.equal(ep?.outstanding, 0, 'the endpoint holds no request in flight');
  });
});

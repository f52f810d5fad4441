/**
 * Reset mid-body (RELIABILITY.md C5): an upstream that sends the status line, the headers and
 * part of the body, then destroys the socket. Judged by what the servers saw and what callers
 * got: idempotent GETs of small bodies are retried on the healthy endpoint (none lost), the
 * failing endpoint is ejected, and a body too large (or of unknown length) to finish before
 * resolving surfaces the reset on the stream as TRELLIS_RESET naming service and endpoint —
 * never a truncated success — through mesh.http, undici.request and fetch via mesh.dispatcher.
 */
import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import net from 'node:net';
import type { AddressInfo } from 'node:net';
import { fetch as undiciFetch, request as undiciRequest } from 'undici';
import { isTrellisError, trellisErrorOf, meshClient } from 'trellis';
import type { Mesh } from 'trellis';
import { quietLogger, runLoad, serviceYaml } from '../helpers/servers.js';

interface ResetServer {
  readonly address: string;
  /** Requests received. */
  hits: number;
  /** Responses sent complete. */
  completed: number;
  close(): Promise<void>;
}

/**
 * An HTTP server answering `size` bytes of a known pattern. `resets`: it writes the headers and
 * half the body, then destroys the socket. `chunked`: no content-length.
 */
async function resetServer(opts: { size: number; resets: boolean; chunked?: boolean }): Promise<ResetServer> {
  const payload = Buffer.alloc(opts.size, 'abcdefghij');
  const s = { address: '', hits: 0, completed: 0, close: async () => undefined } as ResetServer & { address: string };
  const server = http.createServer((req, res) => {
    s.hits++;
    req.resume();
    if (opts.chunked !== true) res.setHeader('content-length', String(payload.length));
    res.setHeader('content-type', 'text/plain');
    res.flushHeaders();
    if (!opts.resets) {
      res.end(payload, () => s.completed++);
      return;
    }
    res.write(payload.subarray(0, payload.length >> 1), () => res.socket?.destroy());
  });
  server.keepAliveTimeout = 30_000;
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  s.address = `127.0.0.1:${(server.address() as AddressInfo).port}`;
  s.close = () => new Promise<void>((resolve) => {
    server.closeAllConnections();
    server.close(() => resolve());
  });
  return s;
}

const RETRIES = 'retries: { attempts: 3, on: [connect-failure, reset, gateway-error], backoff: { base: 1ms, max: 5ms }, budget: { ratio: 1, minPerSecond: 1000 } }';

describe('reset mid-body', () => {
  const cleanup: (() => Promise<void>)[] = [];
  after(async () => {
    for (const c of cleanup.reverse()) await c();
  });

  async function meshFor(endpoints: ResetServer[], extra: string): Promise<Mesh> {
    const mesh = await meshClient({ service: 'caller', config: serviceYaml('products', endpoints.map((e) => ({ address: e.address })), `loadBalancer: round-robin\n${extra}`), logger: quietLogger() });
    cleanup.push(() => mesh.close());
    return mesh;
  }

  it('small idempotent GETs: none lost while another endpoint is healthy; the resetting endpoint is ejected', async () => {
    const SIZE = 8 * 1024;
    const good = await resetServer({ size: SIZE, resets: false });
    const bad = await resetServer({ size: SIZE, resets: true });
    cleanup.push(() => good.close(), () => bad.close());
    // Ejection is long and the cap lets the bad endpoint go, so the count after ejection is exact.
    const mesh = await meshFor([bad, good], `${RETRIES}\noutlierDetection: { consecutiveFailures: 5, ejectionTime: 60s, maxEjectedPercent: 50 }`);
    const TOTAL = 1000;
    const { ok, errors } = await runLoad(TOTAL, 8, async () => {
      const res = await mesh.http('products').request({ method: 'GET', path: '/item' });
      const text = await res.body.text();
      if (res.statusCode !== 200 || text.length !== SIZE) throw new Error(`truncated success: ${res.statusCode}, ${text.length} bytes`);
    });
    console.log(`reset mid-body: ${TOTAL} GETs, ${errors.length} lost; bad endpoint saw ${bad.hits}, good completed ${good.completed}`);
    assert.deepEqual(errors.slice(0, 3).map(String), [], `${errors.length} of ${TOTAL} lost`);
    assert.equal(ok, TOTAL);
    assert.equal(good.completed, TOTAL, 'every request was answered in full by the healthy endpoint');
    assert.ok(bad.hits >= 5, `the resetting endpoint saw ${bad.hits} requests`);
    const endpoints = mesh.inspect().services.find((s) => s.name === 'products')?.endpoints ?? [];
    assert.deepEqual(endpoints.map((e) => [e.id, e.ejected]).sort(), [[bad.address, true], [good.address, false]].sort());
    // Ejected after its 5th consecutive failure: after that it sees at most the requests already in flight.
    assert.ok(bad.hits < 5 + 8, `the resetting endpoint saw ${bad.hits} requests`);
  });

  it('a reset reaches the caller as TRELLIS_RESET on the body stream when the body is not held back', async () => {
    // Too large to finish before resolving, or of unknown length: streamed, so the reset is the caller's to see.
    for (const shape of [{ size: 256 * 1024 }, { size: 8 * 1024, chunked: true }]) {
      const bad = await resetServer({ ...shape, resets: true });
      cleanup.push(() => bad.close());
      const mesh = await meshFor([bad], `${RETRIES}\noutlierDetection: { consecutiveFailures: 2, ejectionTime: 60s, maxEjectedPercent: 100 }`);
      for (let i = 0; i < 2; i++) {
        const res = await mesh.http('products').request({ method: 'GET', path: '/big' });
        assert.equal(res.statusCode, 200);
        await assert.rejects(res.body.text(), (caught: unknown) => {
          const err = trellisErrorOf(caught, 'TRELLIS_RESET');
          assert.ok(err, `${(caught as Error).name}: ${(caught as Error).message}`);
          assert.equal(err.service, 'products');
          assert.equal(err.endpoint, bad.address);
          assert.match(err.message, /before the response body completed/);
          assert.ok(err.cause !== undefined, 'the socket error is kept as cause');
          return true;
        });
      }
      assert.equal(bad.hits, 2, 'a partly streamed body is not retried');
      const endpoints = mesh.inspect().services.find((s) => s.name === 'products')?.endpoints ?? [];
      assert.deepEqual(endpoints.map((e) => e.ejected), [true], `resets mid-body count toward ejection (${JSON.stringify(shape)})`);
    }
  });

  it('a malformed chunk mid-body is TRELLIS_UPSTREAM_ERROR on the stream, naming the endpoint', async () => {
    let hits = 0;
    const server = net.createServer((socket) => {
      hits++;
      socket.once('data', () => socket.end('HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n5\r\nhello\r\nZZ\r\n'));
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    cleanup.push(() => new Promise<void>((resolve) => server.close(() => resolve())));
    const address = `127.0.0.1:${(server.address() as AddressInfo).port}`;
    const mesh = await meshClient({ service: 'caller', config: serviceYaml('products', [{ address }], RETRIES), logger: quietLogger() });
    cleanup.push(() => mesh.close());
    const res = await mesh.http('products').request({ method: 'GET', path: '/bad-chunk' });
    await assert.rejects(res.body.text(), (caught: unknown) => {
      const err = trellisErrorOf(caught, 'TRELLIS_UPSTREAM_ERROR');
      assert.ok(err, `${(caught as Error).name}: ${(caught as Error).message}`);
      assert.match(err.message, /malformed response body \((HPE_\w+|HTTPParserError)\): .*chunk/);
      assert.equal(err.endpoint, address);
      return true;
    });
    assert.equal(hits, 1);
  });

  it('a POST (not idempotent) cut mid-body is never re-sent: the caller sees TRELLIS_RESET', async () => {
    const bad = await resetServer({ size: 4 * 1024, resets: true });
    cleanup.push(() => bad.close());
    const mesh = await meshFor([bad], RETRIES);
    const res = await mesh.http('products').request({ method: 'POST', path: '/order', body: '{}' });
    await assert.rejects(res.body.text(), (err: unknown) => trellisErrorOf(err, 'TRELLIS_RESET')?.endpoint === bad.address);
    assert.equal(bad.hits, 1);
  });

  it('through mesh.dispatcher: undici.request and fetch retry small bodies and see typed resets on large ones', async () => {
    const good = await resetServer({ size: 4 * 1024, resets: false });
    const bad = await resetServer({ size: 4 * 1024, resets: true });
    const bigBad = await resetServer({ size: 256 * 1024, resets: true });
    cleanup.push(() => good.close(), () => bad.close(), () => bigBad.close());
    const mesh = await meshFor([bad, good], `${RETRIES}\noutlierDetection: { consecutiveFailures: 50, ejectionTime: 60s, maxEjectedPercent: 50 }`);
    for (let i = 0; i < 10; i++) {
      const r = await undiciRequest('http://products/a', { dispatcher: mesh.dispatcher });
      assert.equal((await r.body.text()).length, 4 * 1024);
      const f = await undiciFetch('http://products/b', { dispatcher: mesh.dispatcher });
      assert.equal((await f.text()).length, 4 * 1024);
    }
    assert.equal(good.completed, 20);
    assert.ok(bad.hits >= 5, `round robin sent ${bad.hits} to the resetting endpoint`);

    const bigMesh = await meshFor([bigBad], RETRIES);
    const r = await undiciRequest('http://products/big', { dispatcher: bigMesh.dispatcher });
    await assert.rejects(r.body.text(), (err: unknown) => trellisErrorOf(err, 'TRELLIS_RESET')?.endpoint === bigBad.address);
    const f = await undiciFetch('http://products/big', { dispatcher: bigMesh.dispatcher });
    await assert.rejects(f.text(), (err: unknown) => {
      const cause = (err as Error).cause;
      assert.ok(isTrellisError(err, 'TRELLIS_RESET') || isTrellisError(cause, 'TRELLIS_RESET'), `${String(err)} (cause ${String(cause)})`);
      return true;
    });
  });
});

describe('reset mid-body and the circuit breaker', () => {
  it('streamed bodies cut by a reset count as failures: the breaker opens', async () => {
    const bad = await resetServer({ size: 256 * 1024, resets: true });
    const mesh = await meshClient({
      service: 'caller',
      config: serviceYaml('products', [{ address: bad.address }], `${RETRIES}\ncircuitBreaker: { errorThresholdPercent: 50, volumeThreshold: 4, resetTimeout: 60s }`),
      logger: quietLogger(),
    });
    try {
      for (let i = 0; i < 4; i++) {
        const res = await mesh.http('products').request({ method: 'GET', path: '/big' });
        await assert.rejects(res.body.text(), (err: unknown) => isTrellisError(err, 'TRELLIS_RESET'));
      }
      await new Promise((resolve) => setImmediate(resolve)); // the body's 'close' reports the outcome
      await assert.rejects(mesh.http('products').request({ method: 'GET', path: '/big' }), (err: unknown) => isTrellisError(err, 'TRELLIS_CIRCUIT_OPEN'));
      assert.equal(bad.hits, 4, 'the open breaker kept the fifth request from the endpoint');
    } finally {
      await mesh.close();
      await bad.close();
    }
  });
});

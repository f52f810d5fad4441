/**
 * The caller's request body failing is the caller's mistake wherever the call is when it fails.
 * Before the response it already was (caller-body-error.test.ts). An upstream may answer before
 * it has read the whole request (an early response, streamed while the upload goes on): a body
 * stream that errors then, or that overruns its content-length, cut the response short as a
 * TRELLIS_RESET, and the endpoint was charged with it (outlier ejection, the breaker). It must
 * reach the caller as TRELLIS_INVALID_ARGUMENT on the response body, charged to no one.
 *
 * And a small response the mesh reads whole before the caller sees it (to retry a reset mid-body)
 * is only read so when the request body is held in memory: a caller's stream never takes that
 * path, so its failure cannot be mistaken there for the endpoint's (checked here too).
 */
import { after, afterEach, before, beforeEach, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { Readable } from 'node:stream';
import { meshClient, trellisErrorOf } from 'trellis';
import type { Mesh } from 'trellis';
import { quietLogger } from '../helpers/servers.js';
import { sampleSum } from '../helpers/prometheus.js';

function config(ports: number[]): string {
  return `apiVersion: trellis/v1\nkind: Mesh\nmetadata: { name: default }\nspec: { mtls: off }\n---
apiVersion: trellis/v1
kind: Service
metadata: { name: up }
spec:
  endpoints: [${ports.map((p) => `"127.0.0.1:${p}"`).join(', ')}]
  timeout: 5s
  retries: { attempts: 3, on: [connect-failure, reset, gateway-error], budget: { ratio: 0.5, minPerSecond: 1 } }
  circuitBreaker: { errorThresholdPercent: 1, volumeThreshold: 1, resetTimeout: 60s, window: 60s }
  outlierDetection: { consecutiveFailures: 1, ejectionTime: 60s, maxEjectedPercent: 100 }
`;
}

/** A body that sends `first`, then waits for `go` before failing with `err` (or overrunning). */
function laterFailing(first: string, go: Promise<void>, fail: (stream: Readable) => void): Readable {
  let sent = false;
  return new Readable({
    read() {
      if (sent) return;
      sent = true;
      this.push(first);
      void go.then(() => fail(this));
    },
  });
}

describe("the caller's request body failing after an early response is charged to no one", () => {
  let server: http.Server;
  let mesh: Mesh;
  let served = 0;
  before(async () => {
    server = http.createServer((req, res) => {
      served++;
      req.on('error', () => undefined);
      res.on('error', () => undefined);
      if (req.url === '/early') {
        // Answers at once and streams, before the upload has ended.
        res.writeHead(200, { 'content-type': 'text/plain' });
        res.write('early ');
        req.resume();
        req.on('end', () => res.end('done'));
        req.on('close', () => {
          if (!res.writableEnded) res.destroy();
        });
        return;
      }
      req.resume();
      req.on('end', () => res.end('ok'));
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  });
  beforeEach(async () => {
    mesh = await meshClient({ service: 'c', config: config([(server.address() as AddressInfo).port]), logger: quietLogger() });
  });
  afterEach(async () => {
    await mesh.close({ drainTimeoutMs: 200 });
  });
  after(() => {
    server.close();
  });

  async function assertUncharged(): Promise<void> {
    const st = mesh.inspect().services.find((s) => s.name === 'up');
    assert.ok(st);
    assert.equal(st.breaker, 'closed', 'the breaker stays closed');
    assert.equal(st.counters.retries, 0, 'nothing was retried');
    assert.ok(st.endpoints.every((e) => !e.ejected), 'no endpoint ejected');
    const text = await mesh.metricsRegistry.metrics();
    for (const outcome of ['failure', 'reset', 'timeout']) {
      assert.equal(sampleSum(text, 'trellis_client_requests_total', { service: 'up', outcome }), 0, `no request counted as ${outcome}`);
    }
    assert.equal(sampleSum(text, 'trellis_client_ejections_total', { service: 'up' }), 0);
    // And the next call is sent.
    const before = served;
    const res = await mesh.http('up').request({ path: '/after' });
    assert.equal(res.statusCode, 200);
    assert.equal(await res.body.text(), 'ok');
    assert.equal(served, before + 1);
  }

  for (const [name, fail, names] of [
    ['errors', (s: Readable) => s.destroy(new Error('the caller body broke')), /the request body failed while it was sent: the caller body broke/],
    ['overruns its content-length', (s: Readable) => s.push('more than declared'), /content-length says 10 bytes but the request body streamed at least 22 bytes/],
  ] as const) {
    it(`a body stream that ${name} while the response streams: the caller's error, on the response body`, async () => {
      // The body fails once the caller has the response's headers.
      let go: () => void = () => undefined;
      const body = laterFailing('0123', new Promise<void>((resolve) => {
        go = resolve;
      }), fail);
      const res = await mesh.http('up').request({ method: 'POST', path: '/early', body, headers: { 'content-length': '10' } });
      assert.equal(res.statusCode, 200);
      go();
      await assert.rejects(res.body.text(), (err: unknown) => {
        const e = trellisErrorOf(err);
        assert.equal(e?.code, 'TRELLIS_INVALID_ARGUMENT', `got ${String(err)}`);
        assert.match(String(e?.message), names);
        return true;
      });
      await assertUncharged();
    });
  }

  it('a stream body never takes the read-whole path: its failure before the response is the caller\'s', async () => {
    const mine = new Error('broke before any answer');
    const body = new Readable({
      read() {
        this.destroy(mine);
      },
    });
    // PUT: idempotent, on a route that retries resets; a small answer would be read whole if the body were replayable.
    await assert.rejects(mesh.http('up').request({ method: 'PUT', path: '/small', body }), (err: unknown) => {
      assert.equal(trellisErrorOf(err)?.code, 'TRELLIS_INVALID_ARGUMENT', String(err));
      assert.equal((err as Error).cause, mine);
      return true;
    });
    await assertUncharged();
  });
});

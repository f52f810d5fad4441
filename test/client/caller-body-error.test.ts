/**
 * The caller's own request body failing (its stream errors mid-upload) is the caller's mistake:
 * it reaches the caller, and is charged to no endpoint and no breaker (the next call is sent).
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { Readable } from 'node:stream';
import { request } from 'undici';
import { isTrellisError, meshClient } from 'trellis';
import type { Mesh } from 'trellis';
import { quietLogger } from '../helpers/servers.js';

function config(port: number): string {
  return `apiVersion: trellis/v1\nkind: Mesh\nmetadata: { name: default }\nspec: { mtls: off }\n---
apiVersion: trellis/v1
kind: Service
metadata: { name: up }
spec:
  endpoints: ["127.0.0.1:${port}"]
  circuitBreaker: { errorThresholdPercent: 50, volumeThreshold: 1, resetTimeout: 60s, window: 60s }
  outlierDetection: { consecutiveFailures: 1, ejectionTime: 60s }
`;
}

describe("the caller's request body failing is charged to no one", () => {
  let server: http.Server;
  let mesh: Mesh;
  let served = 0;
  before(async () => {
    server = http.createServer((req, res) => {
      req.on('error', () => undefined);
      req.resume();
      req.on('end', () => {
        served++;
        res.end('ok');
      });
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    mesh = await meshClient({ service: 'c', config: config((server.address() as AddressInfo).port), logger: quietLogger() });
  });
  after(async () => {
    await mesh.close({ drainTimeoutMs: 200 });
    server.close();
  });

  it('a body stream that errors fails that call only; the next one reaches the endpoint', async () => {
    const mine = new Error('the caller body broke');
    let sent = false;
    const body = new Readable({
      read() {
        if (!sent) {
          sent = true;
          this.push('part');
        } else this.destroy(mine);
      },
    });
    const client = mesh.http('up');
    await assert.rejects(client.request({ method: 'POST', path: '/upload', body }), (err: unknown) => {
      assert.ok(isTrellisError(err, 'TRELLIS_INVALID_ARGUMENT'), String(err));
      assert.equal((err as Error).cause, mine);
      return true;
    });
    const res = await client.request({ path: '/after' });
    assert.equal(res.statusCode, 200);
    assert.equal(await res.body.text(), 'ok');
    const ejections = await mesh.metricsRegistry.getSingleMetric('trellis_client_ejections_total')?.get();
    assert.equal(ejections?.values.filter((v) => v.labels.service === 'up').reduce((a, v) => a + v.value, 0) ?? 0, 0);
  });

  /** Sends `body` as a POST through each entry that takes a Node body, expecting the caller's mistake; then a good call is served. */
  async function refusedAsCallers(makeBody: () => unknown, names: RegExp, headers?: Record<string, string>): Promise<void> {
    const sends: [string, (body: unknown) => Promise<unknown>][] = [
      ['mesh.http()', (body) => mesh.http('up').request({ method: 'POST', path: '/upload', body: body as Readable, headers })],
      ['undici.request() via mesh.dispatcher', (body) => request('http://up/upload', { method: 'POST', body: body as Readable, headers, dispatcher: mesh.dispatcher })],
    ];
    for (const [entry, send] of sends) {
      const before = served;
      await assert.rejects(send(makeBody()), (err: unknown) => {
        assert.ok(isTrellisError(err, 'TRELLIS_INVALID_ARGUMENT'), `${entry}: ${String(err)}`);
        assert.match((err as Error).message, names);
        return true;
      });
      const st = mesh.inspect().services.find((x) => x.name === 'up');
      assert.equal(st?.breaker, 'closed', entry);
      assert.ok(st?.endpoints.every((e) => !e.ejected), `${entry}: no endpoint ejected`);
      const res = await mesh.http('up').request({ path: '/after' });
      assert.equal(res.statusCode, 200, entry);
      assert.equal(await res.body.text(), 'ok');
      assert.equal(served, before + 1, `${entry}: only the good call was served`);
    }
    const ejections = await mesh.metricsRegistry.getSingleMetric('trellis_client_ejections_total')?.get();
    assert.equal(ejections?.values.filter((v) => v.labels.service === 'up').reduce((a, v) => a + v.value, 0) ?? 0, 0);
  }

  /** A stream that sends one part, then is destroyed by its owner without an error (a cancelled upload). */
  function destroyedMidway(): Readable {
    let sent = false;
    return new Readable({
      read() {
        if (!sent) {
          sent = true;
          this.push('part');
        } else setImmediate(() => this.destroy());
      },
    });
  }

  it('a body stream destroyed before its end (no error) is the caller\'s, not the endpoint\'s', async () => {
    await refusedAsCallers(destroyedMidway, /request body stream was destroyed before it ended/);
  });

  it('the same with a content-length header (the body is counted on its way)', async () => {
    await refusedAsCallers(destroyedMidway, /request body stream was destroyed before it ended/, { 'content-length': '100' });
  });

  it('an (async) iterable body that throws is the caller\'s, not the endpoint\'s', async () => {
    const mine = new Error('the generator broke');
    await refusedAsCallers(() => (async function* () {
      yield 'part';
      await new Promise((r) => setImmediate(r));
      throw mine;
    })(), /request body failed while it was sent: the generator broke/);
    await refusedAsCallers(() => (function* () {
      yield 'part';
      throw mine;
    })(), /request body failed while it was sent: the generator broke/);
  });
});

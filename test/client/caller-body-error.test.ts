/**
 * The caller's own request body failing (its stream errors mid-upload) is the caller's mistake:
 * it reaches the caller, and is charged to no endpoint and no breaker (the next call is sent).
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { Readable } from 'node:stream';
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
});

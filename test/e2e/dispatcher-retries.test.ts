/**
 * mesh.dispatcher retries only what may be sent twice: a POST that reached the server and then
 * failed (a 503, or the connection reset after the body arrived) is not re-sent, through
 * undici's request() and through fetch. Judged by the server's own count. A GET on the same
 * service and policy is retried, so the policy is shown to be live and the POST's single hit
 * is the idempotency rule at work, not a policy that never retries.
 */
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { fetch as undiciFetch, request } from 'undici';
import { meshClient } from 'trellis';
import type { Mesh } from 'trellis';
import { quietLogger, serviceYaml, startServer } from '../helpers/servers.js';
import type { TestServer } from '../helpers/servers.js';

describe('mesh.dispatcher: non-idempotent requests are not retried', () => {
  let failing: TestServer;
  let mesh: Mesh;

  before(async () => {
    failing = await startServer('failing', { kind: 'status', status: 503 });
    // outlierDetection off: every attempt goes to the one endpoint, so its count is the attempts.
    mesh = await meshClient({
      config: serviceYaml('orders', [{ address: failing.address }], 'outlierDetection: false\nretries: { attempts: 3, on: [gateway-error, reset], backoff: { base: 1ms, max: 2ms } }'),
      logger: quietLogger(),
    });
  });

  after(async () => {
    await mesh.close();
    await failing.close();
  });

  it('a GET that gets 503 is retried (the policy is live): 3 attempts', async () => {
    failing.behaviour = { kind: 'status', status: 503 };
    failing.hits = 0;
    const r = await request('http://orders/items', { dispatcher: mesh.dispatcher });
    await r.body.dump();
    assert.equal(r.statusCode, 503);
    assert.equal(failing.hits, 3);
  });

  it('a POST through undici.request that gets 503 after the server received it: sent once', async () => {
    failing.behaviour = { kind: 'status', status: 503 };
    failing.hits = 0;
    const r = await request('http://orders/orders', { dispatcher: mesh.dispatcher, method: 'POST', body: '{"n":1}', headers: { 'content-type': 'application/json' } });
    await r.body.dump();
    assert.equal(r.statusCode, 503, 'the caller sees the failure as it is');
    assert.equal(failing.hits, 1, 'the server saw the POST once');
  });

  // fetch hands the dispatcher its body as a stream, which is not replayable, so this one would
  // also hold with the idempotency rule broken; the undici.request() cases pin that rule.
  it('a POST through fetch that gets 503: sent once', async () => {
    failing.behaviour = { kind: 'status', status: 503 };
    failing.hits = 0;
    const r = await undiciFetch('http://orders/orders', { dispatcher: mesh.dispatcher, method: 'POST', body: '{"n":2}' });
    await r.arrayBuffer();
    assert.equal(r.status, 503);
    assert.equal(failing.hits, 1, 'the server saw the POST once');
  });

  it('a POST whose connection is reset after the body arrived: sent once', async () => {
    failing.behaviour = { kind: 'destroy' };
    failing.hits = 0;
    await assert.rejects(request('http://orders/orders', { dispatcher: mesh.dispatcher, method: 'POST', body: '{"n":3}' }));
    assert.equal(failing.hits, 1, 'the server saw the POST once');
  });

  it('a PATCH is not retried either; PUT (idempotent) is', async () => {
    failing.behaviour = { kind: 'status', status: 503 };
    failing.hits = 0;
    const patch = await request('http://orders/orders/1', { dispatcher: mesh.dispatcher, method: 'PATCH', body: 'x' });
    await patch.body.dump();
    assert.equal(failing.hits, 1);
    failing.hits = 0;
    const put = await request('http://orders/orders/1', { dispatcher: mesh.dispatcher, method: 'PUT', body: 'x' });
    await put.body.dump();
    assert.equal(failing.hits, 3);
  });
});

/**
 * `mesh.agent` with real axios and got, written as a user would write them, against real
 * node:http servers on 127.0.0.1: per-request balancing over two servers, the service timeout
 * (response included), a refused connect retried on another endpoint, a POST body, the breaker
 * opening on 503s, the dispatcher's origin rules (unknown service refused, other hosts passed),
 * and the request metrics.
 */
import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import axios from 'axios';
import got from 'got';
import { meshClient, isTrellisError, trellisErrorOf } from 'trellis';
import type { Mesh } from 'trellis';
import { freePort } from '../helpers/redis.js';
import { quietLogger, serviceYaml, startServer } from '../helpers/servers.js';
import type { TestServer } from '../helpers/servers.js';

const MESH_OFF = 'apiVersion: trellis/v1\nkind: Mesh\nmetadata: { name: default }\nspec: { mtls: off }\n---\n';

describe('mesh.agent with axios and got', () => {
  const meshes: Mesh[] = [];
  const servers: TestServer[] = [];
  after(async () => {
    await Promise.all(meshes.map((m) => m.close({ drainTimeoutMs: 500 })));
    await Promise.all(servers.map((s) => s.close()));
  });
  async function mesh(config: string): Promise<Mesh> {
    const m = await meshClient({ service: 'app', config: MESH_OFF + config, logger: quietLogger() });
    meshes.push(m);
    return m;
  }
  async function server(name: string, ...args: Parameters<typeof startServer> extends [string, ...infer R] ? R : never): Promise<TestServer> {
    const s = await startServer(name, ...args);
    servers.push(s);
    return s;
  }

  it('axios: requests to http://<service>/ are balanced per request over its endpoints', async () => {
    const a = await server('a');
    const b = await server('b');
    const m = await mesh(serviceYaml('products', [{ address: a.address }, { address: b.address }], 'loadBalancer: round-robin'));
    const seen: string[] = [];
    for (let i = 0; i < 10; i++) {
      const res = await axios.get('http://products/list', { httpAgent: m.agent });
      assert.equal(res.status, 200);
      assert.equal((res.data as { path: string }).path, '/list');
      seen.push(String(res.headers['x-server']));
    }
    // Keep-alive connections are reused, yet each request picks its endpoint: round robin alternates.
    assert.equal(a.hits, 5);
    assert.equal(b.hits, 5);
    assert.deepEqual(new Set(seen), new Set(['a', 'b']));
    const requests = await m.metricsRegistry.getSingleMetric('trellis_client_requests_total')?.get();
    const ok = requests?.values.find((v) => v.labels.service === 'products' && v.labels.outcome === 'success' && v.labels.status_code === '200');
    assert.equal(ok?.value, 10);
  });

  it('got: the same, with a POST body, through agent: { http: mesh.agent }', async () => {
    const a = await server('ga');
    const b = await server('gb');
    const m = await mesh(serviceYaml('orders', [{ address: a.address }, { address: b.address }], 'loadBalancer: round-robin'));
    for (let i = 0; i < 4; i++) {
      const res = await got.post('http://orders/new', { agent: { http: m.agent }, json: { n: i }, retry: { limit: 0 } }).json<{ body: string; method: string }>();
      assert.equal(res.method, 'POST');
      assert.deepEqual(JSON.parse(res.body), { n: i });
    }
    assert.equal(a.hits, 2);
    assert.equal(b.hits, 2);
  });

  it('the service timeout bounds the request (axios rejects with TRELLIS_TIMEOUT in its cause chain)', async () => {
    const slow = await server('slow', { kind: 'hang' });
    const m = await mesh(serviceYaml('slowpoke', [{ address: slow.address }], 'timeout: 150ms'));
    await assert.rejects(axios.get('http://slowpoke/wait', { httpAgent: m.agent }), (err: unknown) => {
      assert.ok(isTrellisError(err, 'TRELLIS_TIMEOUT'), `got ${String(err)}; cause ${String((err as { cause?: unknown }).cause)}`);
      return true;
    });
    assert.equal(slow.hits, 1, 'the request was sent, then cut at the timeout');
  });

  it('a refused connect is retried on another endpoint before the request is sent (got and axios)', async () => {
    const live = await server('live');
    const dead = await freePort();
    const m = await mesh(serviceYaml('fallback', [{ address: `127.0.0.1:${dead}` }, { address: live.address }], 'loadBalancer: round-robin\noutlierDetection: false'));
    for (let i = 0; i < 3; i++) {
      assert.equal((await axios.get('http://fallback/x', { httpAgent: m.agent })).status, 200);
      assert.equal((await got('http://fallback/y', { agent: { http: m.agent }, retry: { limit: 0 } })).statusCode, 200);
    }
    assert.equal(live.hits, 6);
  });

  it('the breaker counts 5xx answers and then fails fast, sending nothing', async () => {
    const failing = await server('failing', { kind: 'status', status: 503 });
    const m = await mesh(serviceYaml('broken', [{ address: failing.address }], 'circuitBreaker: { volumeThreshold: 3, errorThresholdPercent: 50, resetTimeout: 60s }'));
    const statuses: string[] = [];
    for (let i = 0; i < 5; i++) {
      try {
        const r = await axios.get('http://broken/', { httpAgent: m.agent, validateStatus: () => true });
        statuses.push(String(r.status));
      } catch (err) {
        statuses.push(trellisErrorOf(err)?.code ?? String(err));
      }
    }
    assert.deepEqual(statuses, ['503', '503', '503', 'TRELLIS_CIRCUIT_OPEN', 'TRELLIS_CIRCUIT_OPEN']);
    assert.equal(failing.hits, 3);
  });

  it('over strict mTLS: the server sees the verified caller, and a server with the wrong identity is refused', async () => {
    const { makeIdentities, TRUST_DOMAIN } = await import('../helpers/identities.js');
    const ids = await makeIdentities();
    after(() => ids.close());
    const meshDoc = `apiVersion: trellis/v1\nkind: Mesh\nmetadata: { name: default }\nspec: { trustDomain: ${TRUST_DOMAIN}, mtls: strict }\n---\n`;
    const serverMesh = await meshClient({ service: 'catalog', config: `${meshDoc}apiVersion: trellis/v1\nkind: Service\nmetadata: { name: catalog }\nspec: { protocol: http }\n`, identity: ids.identityFor('catalog'), logger: quietLogger() });
    meshes.push(serverMesh);
    const served = await serverMesh.serve((req, res) => res.end(JSON.stringify({ caller: req.trellis?.peer.service })));
    const client = await meshClient({ service: 'c', config: meshDoc + serviceYaml('catalog', [{ address: served.address }]) + '---\n' + serviceYaml('impostor', [{ address: served.address }]), identity: ids.identityFor('c'), logger: quietLogger() });
    meshes.push(client);
    const res = await axios.get('http://catalog/items', { httpAgent: client.agent });
    assert.deepEqual(res.data, { caller: 'c' });
    // The same server called as "impostor": its certificate names catalog, so the handshake is refused.
    await assert.rejects(axios.get('http://impostor/items', { httpAgent: client.agent }), (err: unknown) => isTrellisError(err, 'TRELLIS_PEER_IDENTITY'));
  });

  it('follows the dispatcher\'s origin rules: an unknown single-label host is refused, other hosts pass through', async () => {
    const plain = await server('plain');
    const m = await mesh(serviceYaml('known', [{ address: plain.address }]));
    await assert.rejects(axios.get('http://knwon/', { httpAgent: m.agent }), (err: unknown) => {
      assert.ok(isTrellisError(err, 'TRELLIS_UNKNOWN_SERVICE'), String(err));
      assert.match(String(trellisErrorOf(err)?.message), /no Service document.*known: known/);
      return true;
    });
    await assert.rejects(axios.get('http://known:8080/', { httpAgent: m.agent }), (err: unknown) => isTrellisError(err, 'TRELLIS_INVALID_ARGUMENT'));
    await assert.rejects(axios.get('https://known/', { httpsAgent: m.httpsAgent }), (err: unknown) => isTrellisError(err, 'TRELLIS_INVALID_ARGUMENT'));
    // Not a mesh host: an ordinary request through the same Agent.
    const direct = await axios.get(`http://127.0.0.1:${plain.port}/direct`, { httpAgent: m.agent });
    assert.equal((direct.data as { path: string }).path, '/direct');
    assert.equal(plain.hits, 1);
  });
});

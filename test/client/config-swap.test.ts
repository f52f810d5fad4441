/**
 * A config swap is proportional to the change: `Destinations.apply` rebuilds the destinations
 * whose inputs changed (their Service spec, the Mesh settings they inherit, their transport) and
 * keeps every other one as the very same objects; the changes it does make take effect on the
 * wire (a new timeout, new retries) while the untouched destinations keep their pools.
 */
import { describe, it, after } from 'node:test';
import assert from 'node:assert/strict';
import type { AddressInfo } from 'node:net';
import http from 'node:http';
import { meshClient, isTrellisError } from 'trellis';
import { Destinations } from '../../src/client/destinations.js';
import type { Connect } from '../../src/client/mtls-connector.js';
import { parseConfigDocuments } from '../../src/config/load.js';
import { systemClock, systemRandom } from '../../src/core/clock.js';
import { quietLogger } from '../helpers/servers.js';
import { makeIdentities, TRUST_DOMAIN } from '../helpers/identities.js';

const NOOP_EVENTS = { onEndpoints: () => {}, onEjection: () => {}, onBreaker: () => {}, onBreakerPresence: () => {}, onWarn: () => {} };

function service(name: string, spec: Record<string, unknown>): object {
  return { apiVersion: 'trellis/v1', kind: 'Service', metadata: { name }, spec: { endpoints: [{ address: '127.0.0.1:9' }], ...spec } };
}

function mesh(spec: Record<string, unknown>): object {
  return { apiVersion: 'trellis/v1', kind: 'Mesh', metadata: { name: 'default' }, spec };
}

describe('config swap proportional to the change', () => {
  const cleanup: (() => Promise<void>)[] = [];
  after(async () => {
    for (const c of cleanup.reverse()) await c();
  });

  it('rebuilds only the destinations whose spec changed; the others keep their exact objects', async () => {
    const d = new Destinations(systemClock, systemRandom, NOOP_EVENTS);
    cleanup.push(() => d.close(0));
    const docs = (over: Record<string, Record<string, unknown>>): object[] =>
      Array.from({ length: 200 }, (_, i) => service(`s${i}`, { timeout: '5s', ...(over[`s${i}`] ?? {}) }));
    const a = parseConfigDocuments(docs({}));
    assert.equal(d.apply(a).length, 200, 'the first version builds every destination');
    const before = new Map(d.names().map((n) => [n, d.get(n)]));

    // A config loaded again from equal documents (new objects, same content) rebuilds nothing.
    assert.deepEqual(d.apply(parseConfigDocuments(docs({}))), []);
    for (const [n, dest] of before) assert.equal(d.get(n), dest, n);

    const b = parseConfigDocuments(docs({ s3: { timeout: '100ms' }, s7: { retries: { attempts: 3, on: ['gateway-error'] } } }));
    assert.deepEqual(d.apply(b).sort(), ['s3', 's7']);
    for (const [n, dest] of before) {
      const now = d.get(n);
      if (n === 's3' || n === 's7') {
        assert.notEqual(now, dest, `${n} was rebuilt`);
        assert.notEqual(now?.http, dest?.http);
        assert.equal(now?.state, dest?.state, `${n} keeps its state (pools, breaker, budget, counters)`);
      } else {
        assert.equal(now, dest, `${n} keeps its Destination`);
      }
    }
    assert.match(d.get('s3')?.http.describe() ?? '', /timeout .*100ms/);

    // Removing a service and adding another rebuilds only the new one.
    const c = parseConfigDocuments([...docs({ s3: { timeout: '100ms' }, s7: { retries: { attempts: 3, on: ['gateway-error'] } } }).slice(1), service('extra', {})]);
    assert.deepEqual(d.apply(c), ['extra']);
    assert.equal(d.get('s0'), undefined);
  });

  it('a Mesh setting rebuilds the destinations that inherit it, and only those', async () => {
    const d = new Destinations(systemClock, systemRandom, NOOP_EVENTS);
    cleanup.push(() => d.close(0));
    // Transport by mode, one function per mode, as the mesh's policy gives one per service.
    const strict: Connect = (_opts, cb) => cb(new Error('no network in this test'), null);
    d.setTransportPolicy((svc, m) => ((svc.mtls ?? m.mtls ?? 'off') === 'off' ? undefined : strict));
    const docs = (meshSpec: Record<string, unknown>): object[] => [
      mesh(meshSpec),
      service('static', {}),
      { apiVersion: 'trellis/v1', kind: 'Service', metadata: { name: 'dns' }, spec: { dns: 'dns.example:80' } },
      service('own-mtls', { mtls: 'off' }),
      service('global-rl', { rateLimit: { requestsPerSecond: 10, burst: 1, scope: 'global' } }),
    ];
    const base = { redis: { url: 'redis://127.0.0.1:1' } };
    d.apply(parseConfigDocuments(docs(base)));
    assert.deepEqual(d.apply(parseConfigDocuments(docs({ ...base, tracing: { sampling: 0.5 } }))), [], 'tracing is applied in place, not by rebuilding');
    assert.deepEqual(d.apply(parseConfigDocuments(docs({ ...base, dns: { refreshInterval: '7s' } }))), ['dns']);
    assert.deepEqual(d.apply(parseConfigDocuments(docs({ ...base, dns: { refreshInterval: '7s' }, redis: { url: 'redis://127.0.0.1:2' } }))), ['global-rl']);
    assert.deepEqual(d.apply(parseConfigDocuments(docs({ ...base, dns: { refreshInterval: '7s' }, redis: { url: 'redis://127.0.0.1:2' }, mtls: 'strict' }))).sort(), ['dns', 'global-rl', 'static']);
  });

  it('over a real mesh: one service\'s timeout and another\'s retries take effect, the untouched keep their connections and counters', async () => {
    let connections = 0;
    const hits = new Map<string, number>();
    const server = http.createServer((req, res) => {
      const path = req.url ?? '/';
      const n = (hits.get(path) ?? 0) + 1;
      hits.set(path, n);
      if (path === '/hang') return; // never answers: only a timeout ends it
      if (path.startsWith('/flaky') && n === 1) {
        res.statusCode = 503;
        res.end('first try of this path');
        return;
      }
      res.end('ok');
    });
    server.on('connection', () => connections++);
    server.keepAliveTimeout = 60_000;
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    cleanup.push(() => new Promise((r) => (server.closeAllConnections(), server.close(() => r()))));
    const address = `127.0.0.1:${(server.address() as AddressInfo).port}`;
    const docs = (over: Record<string, Record<string, unknown>>): object[] =>
      Array.from({ length: 30 }, (_, i) => ({ apiVersion: 'trellis/v1', kind: 'Service', metadata: { name: `s${i}` }, spec: { endpoints: [{ address }], timeout: '30s', ...(over[`s${i}`] ?? {}) } }));

    const m = await meshClient({ service: 'caller', config: docs({}), logger: quietLogger() });
    cleanup.push(() => m.close({ drainTimeoutMs: 0 }));
    const call = async (svc: string, path = '/'): Promise<number> => {
      const res = await m.http(svc).request({ path });
      await res.body.dump();
      return res.statusCode;
    };
    for (let i = 0; i < 30; i++) assert.equal(await call(`s${i}`), 200);
    assert.equal(await call('s7', '/flaky?before'), 503, 'before: a 503 is not retried (no retries block)');
    const connsBefore = connections;
    const countersBefore = m.inspect().services.find((s) => s.name === 's12')?.counters.requests ?? NaN;

    await m.reload(docs({ s3: { timeout: '150ms' }, s7: { retries: { attempts: 2, on: ['gateway-error'] } } }));

    // s3's new timeout: a request the upstream never answers ends with TRELLIS_TIMEOUT.
    await assert.rejects(call('s3', '/hang'), (err: unknown) => isTrellisError(err) && (err as { code?: string }).code === 'TRELLIS_TIMEOUT');
    // s7's new retries: the 503 is retried, the upstream saw both attempts.
    assert.equal(await call('s7', '/flaky?after'), 200);
    assert.equal(hits.get('/flaky?after'), 2);
    // Everyone else carries on over the connections they had, counters continuing.
    for (let i = 0; i < 30; i++) if (i !== 3) assert.equal(await call(`s${i}`), 200);
    assert.equal(m.inspect().services.find((s) => s.name === 's12')?.counters.requests, countersBefore + 1);
    // s3's hung request cost it its connection (the timeout closes it); nothing else dialed anew.
    assert.ok(connections - connsBefore <= 1, `new connections after the swap: ${connections - connsBefore}`);
  });

  it('over mTLS, a swap that changes a destination\'s spec does not drain its pools (its transport is the same function)', async () => {
    const ids = await makeIdentities();
    cleanup.push(async () => ids.close());
    const server = await meshClient({ service: 'products', identity: ids.identityFor('products'), config: [mesh({ trustDomain: TRUST_DOMAIN, mtls: 'strict' })], logger: quietLogger() });
    cleanup.push(() => server.close({ drainTimeoutMs: 0 }));
    const served = await server.serve((_req, res) => res.end('ok'), { port: 0, host: '127.0.0.1' });
    // Connections the client closed: a drained pool closes its idle ones.
    let closed = 0;
    served.server.on('secureConnection', (socket: import('node:net').Socket) => socket.on('close', () => closed++));
    const docs = (timeout: string, otherTimeout: string): object[] => [
      mesh({ trustDomain: TRUST_DOMAIN, mtls: 'strict' }),
      { apiVersion: 'trellis/v1', kind: 'Service', metadata: { name: 'products' }, spec: { endpoints: [{ address: served.address }], timeout } },
      { apiVersion: 'trellis/v1', kind: 'Service', metadata: { name: 'other' }, spec: { endpoints: [{ address: '127.0.0.1:9' }], timeout: otherTimeout } },
    ];
    const client = await meshClient({ service: 'checkout', identity: ids.identityFor('checkout'), config: docs('5s', '5s'), logger: quietLogger() });
    cleanup.push(() => client.close({ drainTimeoutMs: 0 }));
    const call = async (): Promise<void> => {
      const res = await client.http('products').request({ path: '/' });
      assert.equal(await res.body.text(), 'ok');
    };
    await call();
    await client.reload(docs('5s', '6s')); // another service changed
    await call();
    await client.reload(docs('7s', '6s')); // this one changed: a new stack, the same pools
    await call();
    assert.match(client.inspect().services.find((s) => s.name === 'products')?.stack ?? '', /timeout .*7s/);
    assert.equal(closed, 0, 'no TLS connection was closed by the swaps');
  });
});

/**
 * `mesh.connect()` on real sockets on 127.0.0.1: the Redis protocol to a real redis-server driven
 * by ioredis through a mesh connection; balancing and retry of a refused connect on another
 * endpoint; the connect timeout; the breaker opening on connect failures; the protocol checks
 * (tcp for connect, not for http) as caller mistakes never charged; connection metrics.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { AbstractConnector, Redis } from 'ioredis';
import { meshClient, isTrellisError } from 'trellis';
import { CONNECTION_METRIC_NAMES } from '../../src/observability/connection-metrics.js';
import type { Mesh } from 'trellis';
import { freePort, redisSkipReason, startRedis } from '../helpers/redis.js';
import type { RedisServer } from '../helpers/redis.js';
import { quietLogger } from '../helpers/servers.js';

/** A TCP echo server counting the connections it accepted. */
async function echoServer(): Promise<{ port: number; accepted: () => number; close: () => Promise<void> }> {
  let accepted = 0;
  const sockets = new Set<net.Socket>();
  const server = net.createServer((s) => {
    accepted++;
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
    s.on('error', () => undefined);
    s.pipe(s);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as net.AddressInfo).port;
  return {
    port,
    accepted: () => accepted,
    close: () => new Promise<void>((r) => {
      for (const s of sockets) s.destroy();
      server.close(() => r());
    }),
  };
}

function tcpService(name: string, ports: number[], extra = ''): string {
  return `---
apiVersion: trellis/v1
kind: Service
metadata: { name: ${name} }
spec:
  protocol: tcp
  loadBalancer: round-robin
  endpoints: [ ${ports.map((p) => `"127.0.0.1:${p}"`).join(', ')} ]
${extra}`;
}

const MESH_OFF = 'apiVersion: trellis/v1\nkind: Mesh\nmetadata: { name: default }\nspec: { mtls: off }\n';

async function roundTrip(socket: net.Socket, text: string): Promise<string> {
  socket.write(text);
  const got = await new Promise<string>((resolve, reject) => {
    socket.once('data', (d: Buffer) => resolve(d.toString()));
    socket.once('error', reject);
  });
  socket.end();
  return got;
}

async function metricValue(mesh: Mesh, name: string, labels: Record<string, string>): Promise<number> {
  const metric = await mesh.metricsRegistry.getSingleMetric(name)?.get();
  const v = metric?.values.find((x) => Object.entries(labels).every(([k, val]) => x.labels[k] === val));
  return v?.value ?? 0;
}

describe('mesh.connect', () => {
  const meshes: Mesh[] = [];
  const closers: (() => Promise<void>)[] = [];
  after(async () => {
    await Promise.all(meshes.map((m) => m.close({ drainTimeoutMs: 1000 })));
    await Promise.all(closers.map((c) => c()));
  });
  async function mesh(config: string): Promise<Mesh> {
    const m = await meshClient({ service: 'app', config: MESH_OFF + config, logger: quietLogger() });
    meshes.push(m);
    return m;
  }

  describe('the Redis protocol through mesh.connect, driven by ioredis', { skip: redisSkipReason() }, () => {
    let redis: RedisServer;
    before(async () => {
      redis = await startRedis();
      closers.push(() => redis.stop());
    });

    it('ioredis speaks to redis-server over a mesh connection (its Connector option), and the connection is counted', async () => {
      const m = await mesh(tcpService('cache', [redis.port]));
      const sockets: net.Socket[] = [];
      // ioredis takes a custom connector: each (re)connect asks the mesh for a connection.
      class MeshConnector extends AbstractConnector {
        constructor() {
          super(2000);
        }
        async connect(): Promise<net.Socket> {
          this.connecting = true;
          const socket = await m.connect('cache');
          sockets.push(socket);
          this.stream = socket;
          return socket;
        }
      }
      const client = new Redis({ Connector: MeshConnector, maxRetriesPerRequest: 1, lazyConnect: true });
      await client.connect();
      await client.set('trellis:tcp', 'through the mesh');
      assert.equal(await client.get('trellis:tcp'), 'through the mesh');
      // What the other side saw: the value is in redis-server, read over a plain connection.
      const direct = new Redis({ port: redis.port, host: '127.0.0.1', lazyConnect: true });
      await direct.connect();
      assert.equal(await direct.get('trellis:tcp'), 'through the mesh');
      await direct.quit();
      const socket = sockets[0];
      assert.ok(socket !== undefined);
      const closed = new Promise((r) => socket.once('close', r));
      await client.quit();
      await closed;

      assert.equal(await metricValue(m, CONNECTION_METRIC_NAMES.clientConnections, { service: 'cache', protocol: 'tcp', outcome: 'success' }), 1);
      assert.ok((await metricValue(m, CONNECTION_METRIC_NAMES.clientSentBytes, { service: 'cache', protocol: 'tcp' })) > 0);
      assert.ok((await metricValue(m, CONNECTION_METRIC_NAMES.clientReceivedBytes, { service: 'cache', protocol: 'tcp' })) > 0);
      assert.equal(await metricValue(m, CONNECTION_METRIC_NAMES.clientConnectionsActive, { service: 'cache', protocol: 'tcp' }), 0);
    });
  });

  it('balances connections over the endpoints, and a refused connect is retried on another one', async () => {
    const a = await echoServer();
    const b = await echoServer();
    closers.push(a.close, b.close);
    const dead = await freePort();
    const m = await mesh(tcpService('echo', [a.port, dead, b.port], '  outlierDetection: false\n'));
    const sockets: net.Socket[] = [];
    for (let i = 0; i < 6; i++) {
      const s = await m.connect('echo');
      assert.notEqual(s.trellis.endpoint, `127.0.0.1:${dead}`);
      assert.equal(await roundTrip(s, `hello ${i}`), `hello ${i}`);
      sockets.push(s);
    }
    // Every connect reached a live server: none was lost to the dead endpoint.
    assert.equal(a.accepted() + b.accepted(), 6);
    assert.ok(a.accepted() >= 2 && b.accepted() >= 2, `a ${a.accepted()}, b ${b.accepted()}`);
    // The dead endpoint was tried (round robin reaches it every third connect) and retried elsewhere.
    const retries = await metricValue(m, 'trellis_client_retries_total', { service: 'echo', reason: 'connect-failure' });
    assert.ok(retries >= 1, `retries ${retries}`);
  });

  it('without retries a refused connect fails with TRELLIS_CONNECT_FAILED naming the endpoint', async () => {
    const dead = await freePort();
    const m = await mesh(tcpService('gone', [dead], '  retries: { attempts: 1 }\n'));
    await assert.rejects(m.connect('gone'), (err: unknown) => {
      assert.ok(isTrellisError(err, 'TRELLIS_CONNECT_FAILED'), String(err));
      assert.match(String(err), new RegExp(`127\\.0\\.0\\.1:${dead}`));
      return true;
    });
    assert.equal(await metricValue(m, CONNECTION_METRIC_NAMES.clientConnections, { service: 'gone', protocol: 'tcp', outcome: 'connect_failure' }), 1);
  });

  it('the breaker opens on connect failures and then fails fast with TRELLIS_CIRCUIT_OPEN', async () => {
    const dead = await freePort();
    const m = await mesh(tcpService('flaky', [dead], '  retries: { attempts: 1 }\n  circuitBreaker: { volumeThreshold: 3, errorThresholdPercent: 50, resetTimeout: 60s }\n'));
    const codes: string[] = [];
    for (let i = 0; i < 6; i++) {
      try {
        (await m.connect('flaky')).destroy();
        codes.push('ok');
      } catch (err) {
        codes.push(String((err as { code?: unknown }).code));
      }
    }
    assert.deepEqual(codes.slice(0, 3), ['TRELLIS_CONNECT_FAILED', 'TRELLIS_CONNECT_FAILED', 'TRELLIS_CONNECT_FAILED']);
    assert.deepEqual(codes.slice(3), ['TRELLIS_CIRCUIT_OPEN', 'TRELLIS_CIRCUIT_OPEN', 'TRELLIS_CIRCUIT_OPEN']);
  });

  it('outlier detection ejects an endpoint whose connects fail', async () => {
    const live = await echoServer();
    closers.push(live.close);
    const dead = await freePort();
    const m = await mesh(tcpService('ejecting', [dead, live.port], '  outlierDetection: { consecutiveFailures: 1, ejectionTime: 60s }\n'));
    const ejected: string[] = [];
    m.on('ejection', (e) => {
      if (e.ejected) ejected.push(e.endpoint);
    });
    for (let i = 0; i < 4; i++) (await m.connect('ejecting')).destroy();
    assert.deepEqual(ejected, [`127.0.0.1:${dead}`]);
    assert.equal(live.accepted(), 4);
  });

  it('a connect attempt that hangs (an mTLS handshake never answered) ends at the connect timeout with TRELLIS_CONNECT_FAILED', async () => {
    // Accepts TCP and never answers the TLS handshake.
    const held = new Set<net.Socket>();
    const silent = net.createServer((s) => {
      held.add(s);
      s.on('error', () => undefined);
    });
    await new Promise<void>((r) => silent.listen(0, '127.0.0.1', r));
    closers.push(() => new Promise<void>((r) => {
      for (const s of held) s.destroy();
      silent.close(() => r());
    }));
    const silentPort = (silent.address() as net.AddressInfo).port;
    const { makeIdentities } = await import('../helpers/identities.js');
    const ids = await makeIdentities();
    closers.push(async () => ids.close());
    const m = await meshClient({
      service: 'app',
      identity: ids.identityFor('app'),
      config: `apiVersion: trellis/v1\nkind: Mesh\nmetadata: { name: default }\nspec: { trustDomain: example.org, mtls: strict }\n${tcpService('hang', [silentPort], '  retries: { attempts: 1 }\n  connection: { connectTimeout: 150ms }\n')}`,
      logger: quietLogger(),
    });
    meshes.push(m);
    await assert.rejects(m.connect('hang'), (err: unknown) => {
      assert.ok(isTrellisError(err, 'TRELLIS_CONNECT_FAILED'), String(err));
      return true;
    });
  });

  it('refuses what is the caller\'s mistake, before anything is charged: unknown service, wrong protocol both ways', async () => {
    const m = await mesh(`${tcpService('store', [6379])}---
apiVersion: trellis/v1
kind: Service
metadata: { name: products }
spec: { endpoints: ["127.0.0.1:1"] }
`);
    await assert.rejects(m.connect('nowhere'), (err: unknown) => isTrellisError(err, 'TRELLIS_UNKNOWN_SERVICE'));
    await assert.rejects(m.connect('products'), (err: unknown) => {
      assert.ok(isTrellisError(err, 'TRELLIS_INVALID_ARGUMENT'));
      assert.match(String(err), /products is protocol http/);
      return true;
    });
    assert.throws(() => m.http('store'), (err: unknown) => {
      assert.ok(isTrellisError(err, 'TRELLIS_INVALID_ARGUMENT'));
      assert.match(String(err), /store is protocol tcp.*mesh\.connect/);
      return true;
    });
    // Nothing reached a stack: no attempt, no connection counted for either.
    assert.equal(await metricValue(m, CONNECTION_METRIC_NAMES.clientConnections, { service: 'products' }), 0);
  });

  it('a caller abort cancels the connect with TRELLIS_ABORTED', async () => {
    const live = await echoServer();
    closers.push(live.close);
    const m = await mesh(tcpService('abortable', [live.port]));
    const ac = new AbortController();
    ac.abort(new Error('changed my mind'));
    await assert.rejects(m.connect('abortable', { signal: ac.signal }), (err: unknown) => isTrellisError(err, 'TRELLIS_ABORTED'));
  });
});

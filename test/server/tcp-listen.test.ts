/**
 * `mesh.listen()` on real sockets on 127.0.0.1, between mesh clients (mesh.connect) with
 * identities from one authority: strict mTLS with the caller on `socket.trellis.peer`;
 * authorization by caller (a wrong identity is closed before the handler runs); a server whose
 * certificate names another service refused by the client (TRELLIS_PEER_IDENTITY); plaintext
 * refused in strict mode and `unknown` in permissive mode; the `listening` event; drain on close.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { meshClient, isTrellisError } from 'trellis';
import { CONNECTION_METRIC_NAMES } from '../../src/observability/connection-metrics.js';
import type { Mesh, MeshInboundSocket, MeshTcpServer } from 'trellis';
import { makeIdentities, TRUST_DOMAIN } from '../helpers/identities.js';
import type { Identities } from '../helpers/identities.js';
import { quietLogger } from '../helpers/servers.js';

const meshDoc = (mtls: string): string => `apiVersion: trellis/v1\nkind: Mesh\nmetadata: { name: default }\nspec: { trustDomain: ${TRUST_DOMAIN}, mtls: ${mtls} }\n`;

function tcpService(name: string, port?: number, extra = ''): string {
  return `---
apiVersion: trellis/v1
kind: Service
metadata: { name: ${name} }
spec:
  protocol: tcp
${port === undefined ? '' : `  endpoints: [ "127.0.0.1:${port}" ]\n  retries: { attempts: 1 }\n`}${extra}`;
}

/** Answers each connection with the caller the server saw, then closes. */
function whoAmI(hits: { n: number }) {
  return (socket: MeshInboundSocket): void => {
    hits.n++;
    socket.end(`${socket.trellis.peer.service} ${socket.trellis.peer.verified}\n`);
  };
}

/** Reads what the server sends until it closes; `error` when the connection broke instead. */
function readAll(socket: net.Socket): Promise<{ text: string; error?: string }> {
  return new Promise((resolve) => {
    let text = '';
    socket.on('data', (d: Buffer) => (text += d.toString()));
    socket.on('error', (err: NodeJS.ErrnoException) => resolve({ text, error: err.code ?? err.message }));
    socket.on('close', () => resolve({ text }));
  });
}

async function metricValue(mesh: Mesh, name: string, labels: Record<string, string>): Promise<number> {
  const metric = await mesh.metricsRegistry.getSingleMetric(name)?.get();
  const v = metric?.values.find((x) => Object.entries(labels).every(([k, val]) => x.labels[k] === val));
  return v?.value ?? 0;
}

describe('mesh.listen', () => {
  let ids: Identities;
  const meshes: Mesh[] = [];
  before(async () => {
    ids = await makeIdentities();
  });
  after(async () => {
    await Promise.all(meshes.map((m) => m.close({ drainTimeoutMs: 500 })));
    ids.close();
  });
  async function mesh(service: string, config: string, identity = true): Promise<Mesh> {
    const m = await meshClient({ service, config, ...(identity ? { identity: ids.identityFor(service) } : {}), logger: quietLogger() });
    meshes.push(m);
    return m;
  }

  describe('strict', () => {
    let server: Mesh;
    let tcp: MeshTcpServer;
    const hits = { n: 0 };
    const listening: { address: string; port: number; protocol: string }[] = [];
    before(async () => {
      server = await mesh('kv', meshDoc('strict') + tcpService('kv', undefined, '  inbound:\n    authorization: { allow: [ { from: [c] } ] }\n'));
      server.on('listening', (e) => listening.push(e));
      tcp = await server.listen(whoAmI(hits));
    });

    it('emits listening with the bound address and protocol tcp', () => {
      assert.deepEqual(listening, [{ address: tcp.address, port: tcp.port, protocol: 'tcp' }]);
    });

    it('an authorized mesh client gets through mTLS, and the handler sees its verified identity', async () => {
      const c = await mesh('c', meshDoc('strict') + tcpService('kv', tcp.port));
      const before = hits.n;
      const socket = await c.connect('kv');
      assert.equal((socket as unknown as { encrypted?: boolean }).encrypted, true);
      assert.deepEqual(await readAll(socket), { text: 'c true\n' });
      assert.equal(hits.n, before + 1);
      assert.equal(await metricValue(server, CONNECTION_METRIC_NAMES.serverConnections, { service: 'kv', caller: 'c', protocol: 'tcp', outcome: 'success' }), 1);
    });

    it('a caller the rules do not allow is closed before the handler runs (the wrong identity is refused)', async () => {
      const a = await mesh('a', meshDoc('strict') + tcpService('kv', tcp.port));
      const before = hits.n;
      // The handshake succeeds (a is a mesh identity), then authorization closes the connection.
      const socket = await a.connect('kv');
      const seen = await readAll(socket);
      assert.equal(seen.text, '', 'a refused caller must read nothing');
      assert.equal(hits.n, before, 'the handler must not run for a refused caller');
      assert.equal(await metricValue(server, CONNECTION_METRIC_NAMES.serverConnections, { service: 'kv', caller: 'a', protocol: 'tcp', outcome: 'forbidden' }), 1);
    });

    it('a plaintext client fails the handshake and never reaches the handler', async () => {
      const before = hits.n;
      const socket = net.connect({ host: '127.0.0.1', port: tcp.port });
      socket.write('PING\r\n');
      const seen = await readAll(socket);
      assert.equal(seen.text, '');
      assert.equal(hits.n, before);
    });

    it('a client refuses a server whose certificate names another service (TRELLIS_PEER_IDENTITY)', async () => {
      // An impostor: a mesh identity for "other", listening where the client expects "kv".
      const impostor = await mesh('other', meshDoc('strict') + tcpService('other'));
      const hitsOther = { n: 0 };
      const fake = await impostor.listen(whoAmI(hitsOther));
      const c = await mesh('c', meshDoc('strict') + tcpService('kv', fake.port));
      await assert.rejects(c.connect('kv'), (err: unknown) => {
        assert.ok(isTrellisError(err, 'TRELLIS_PEER_IDENTITY'), String(err));
        return true;
      });
      assert.equal(hitsOther.n, 0);
    });
  });

  it('permissive: a plaintext client is caller unknown, a mesh client is verified, on one port', async () => {
    const hits = { n: 0 };
    const server = await mesh('pk', meshDoc('permissive') + tcpService('pk'));
    const tcp = await server.listen(whoAmI(hits));
    const plain = net.connect({ host: '127.0.0.1', port: tcp.port });
    plain.write('hi');
    assert.deepEqual(await readAll(plain), { text: 'unknown false\n' });
    const c = await mesh('c', meshDoc('strict') + tcpService('pk', tcp.port));
    assert.deepEqual(await readAll(await c.connect('pk')), { text: 'c true\n' });
    assert.equal(hits.n, 2);
  });

  it('off: plaintext both ways, authorization by caller still applies (unknown is refused by a from: rule)', async () => {
    const hits = { n: 0 };
    const server = await mesh('open', meshDoc('off') + tcpService('open', undefined, '  inbound:\n    authorization: { allow: [ { from: ["*"] } ] }\n'), false);
    const tcp = await server.listen(whoAmI(hits));
    const plain = net.connect({ host: '127.0.0.1', port: tcp.port });
    plain.write('hi');
    assert.deepEqual(await readAll(plain), { text: '' });
    assert.equal(hits.n, 0, '"*" means any verified caller: a plaintext caller is unknown');
  });

  it('mesh.close() stops accepting and ends open connections by its drain deadline', async () => {
    const server = await meshClient({ service: 'drainer', config: meshDoc('off') + tcpService('drainer'), logger: quietLogger() });
    const held: MeshInboundSocket[] = [];
    const tcp = await server.listen((s) => {
      held.push(s);
      s.on('error', () => undefined);
    });
    const client = net.connect({ host: '127.0.0.1', port: tcp.port });
    const closed = readAll(client);
    await new Promise<void>((r) => client.once('connect', () => r()));
    while (held.length === 0) await new Promise((r) => setImmediate(r));
    await server.close({ drainTimeoutMs: 100 });
    await closed;
    assert.equal(held[0]?.destroyed, true);
    // No longer accepting.
    const refused = net.connect({ host: '127.0.0.1', port: tcp.port });
    assert.equal((await readAll(refused)).error, 'ECONNREFUSED');
  });
});

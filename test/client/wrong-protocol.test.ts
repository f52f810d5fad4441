/**
 * HTTP to a `protocol: tcp` service (or plain HTTP to a `protocol: grpc` one), and a raw connection to an HTTP one, are the caller's
 * mistakes: refused with TRELLIS_INVALID_ARGUMENT naming the service and its protocol, before
 * any connection (a real TCP server on 127.0.0.1 counts the connections it accepted: none),
 * whichever door the call came through — undici's fetch() and undici.request() with mesh.dispatcher,
 * mesh.http() (also one made while the service still spoke HTTP), an upgrade, mesh.connect().
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import type { AddressInfo } from 'node:net';
import { fetch as undiciFetch, request as undiciRequest, upgrade as undiciUpgrade } from 'undici';
import { meshClient, isTrellisError, trellisErrorOf } from 'trellis';
import type { Mesh } from 'trellis';
import { quietLogger } from '../helpers/servers.js';

const meshDoc = `apiVersion: trellis/v1\nkind: Mesh\nmetadata: { name: default }\nspec: { mtls: off }\n`;

function config(port: number, kvProtocol: 'tcp' | 'http' | 'grpc'): string {
  return `${meshDoc}---
apiVersion: trellis/v1
kind: Service
metadata: { name: kv }
spec: { protocol: ${kvProtocol}, endpoints: ["127.0.0.1:${port}"] }
---
apiVersion: trellis/v1
kind: Service
metadata: { name: web }
spec: { endpoints: ["127.0.0.1:${port}"] }
`;
}

function names(protocol: 'tcp' | 'grpc'): (err: unknown) => boolean {
  return (err) => {
    assert.ok(isTrellisError(err, 'TRELLIS_INVALID_ARGUMENT'), String(err));
    const e = trellisErrorOf(err);
    assert.equal(e?.service, 'kv');
    assert.match(String(e?.message), new RegExp(`kv is protocol ${protocol}`));
    return true;
  };
}
const namesTcp = names('tcp');

describe('the wrong protocol is refused before any connection', () => {
  let server: net.Server;
  let port: number;
  let accepted = 0;
  let mesh: Mesh;
  before(async () => {
    server = net.createServer((s) => {
      accepted++;
      s.destroy();
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    port = (server.address() as AddressInfo).port;
    mesh = await meshClient({ service: 'c', config: config(port, 'http'), logger: quietLogger() });
  });
  after(async () => {
    await mesh.close({ drainTimeoutMs: 200 });
    server.close();
  });

  it('HTTP to a tcp service: fetch, undici.request, mesh.http (made before the reload), an upgrade', async () => {
    const early = mesh.http('kv');
    await mesh.reload(config(port, 'tcp'));
    await assert.rejects(undiciFetch('http://kv/get', { dispatcher: mesh.dispatcher }), namesTcp);
    await assert.rejects(undiciRequest('http://kv/get', { dispatcher: mesh.dispatcher }), namesTcp);
    await assert.rejects(early.request({ path: '/get' }), namesTcp);
    await assert.rejects(early.upgrade({ path: '/ws' }), namesTcp);
    await assert.rejects(undiciUpgrade('http://kv/ws', { dispatcher: mesh.dispatcher }), namesTcp);
    assert.throws(() => mesh.http('kv'), namesTcp);
    assert.equal(accepted, 0);
    // A caller's mistake is charged to nobody: no attempt, no breaker or outlier accounting.
    const ejections = await mesh.metricsRegistry.getSingleMetric('trellis_client_ejections_total')?.get();
    assert.equal(ejections?.values.filter((v) => v.labels.service === 'kv').reduce((a, v) => a + v.value, 0) ?? 0, 0);
  });

  it('plain HTTP to a grpc service: fetch, undici.request, mesh.http (use a grpc-js client with mesh.grpc.*)', async () => {
    await mesh.reload(config(port, 'http'));
    const early = mesh.http('kv');
    await mesh.reload(config(port, 'grpc'));
    const namesGrpc = names('grpc');
    await assert.rejects(undiciFetch('http://kv/pkg.Svc/Method', { dispatcher: mesh.dispatcher, method: 'POST', body: 'x' }), namesGrpc);
    await assert.rejects(undiciRequest('http://kv/pkg.Svc/Method', { dispatcher: mesh.dispatcher, method: 'POST', body: 'x' }), namesGrpc);
    await assert.rejects(early.request({ path: '/pkg.Svc/Method', method: 'POST', body: 'x' }), namesGrpc);
    assert.throws(() => mesh.http('kv'), namesGrpc);
    assert.equal(accepted, 0);
    await mesh.reload(config(port, 'tcp'));
  });

  it('mesh.connect() to an http service is refused as documented (call it with mesh.http)', async () => {
    await assert.rejects(mesh.connect('web'), (err: unknown) => {
      assert.ok(isTrellisError(err, 'TRELLIS_INVALID_ARGUMENT'), String(err));
      assert.match(String((err as Error).message), /web is protocol http/);
      return true;
    });
    assert.equal(accepted, 0);
    // The right door works: the connection reaches the server.
    const socket = await mesh.connect('kv');
    await new Promise<void>((resolve) => socket.once('close', () => resolve()));
    assert.equal(accepted, 1);
  });
});

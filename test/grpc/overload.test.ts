/**
 * Overload over gRPC: a server whose concurrency limit is reached ends new calls with
 * UNAVAILABLE and the `x-trellis-shed` marker before the handler runs; the Trellis client
 * retries them on another instance (no `retries` block needed), counts neither a failure nor an
 * ejection against the busy server, and every call succeeds. Judged by what each server served.
 */
import { describe, it, after } from 'node:test';
import assert from 'node:assert/strict';
import { EchoClient, grpcMesh, serviceYaml, startEcho, unary, grpcResources } from './helpers.js';
import { sampleSum } from '../helpers/prometheus.js';

describe('gRPC overload shedding', () => {
  const { servers, meshes, clients, close } = grpcResources();
  after(close);

  it('a shed call is retried on another instance and succeeds', async () => {
    const busyMesh = await grpcMesh(serviceYaml('echo', ['127.0.0.1:1'], '  inbound:\n    overload: { eventLoop: false, deadline: false, concurrency: { initial: 1, min: 1, max: 1 } }\n'), { service: 'echo' });
    meshes.push(busyMesh);
    const busy = await startEcho('busy', { interceptors: busyMesh.grpc.serverInterceptors() });
    const freeMesh = await grpcMesh(serviceYaml('echo', ['127.0.0.1:1']), { service: 'echo' });
    meshes.push(freeMesh);
    const free = await startEcho('free', { interceptors: freeMesh.grpc.serverInterceptors() });
    servers.push(busy, free);

    const clientMesh = await grpcMesh(serviceYaml('echo', [busy.address, free.address], '  loadBalancer: round-robin\n  outlierDetection: { consecutiveFailures: 1, ejectionTime: 30s }\n'), { service: 'checkout' });
    meshes.push(clientMesh);
    const client = new EchoClient(clientMesh.grpc.target('echo'), clientMesh.grpc.credentials(), clientMesh.grpc.clientOptions());
    clients.push(client);

    // Ten calls at once, each held 150 ms by its handler: the busy server takes one at a time.
    const replies = await Promise.all(Array.from({ length: 10 }, (_, i) => unary(client, { text: `c${i}`, delayMs: 150 })));
    assert.equal(replies.length, 10);
    const busyServed = busy.served.get('unary') ?? 0;
    const freeServed = free.served.get('unary') ?? 0;
    assert.equal(busyServed + freeServed, 10, 'every call was served exactly once');
    assert.ok(busyServed <= 2, `the busy server ran ${busyServed} handlers with a limit of 1`);

    const serverText = await busyMesh.metrics.text();
    const shed = sampleSum(serverText, 'trellis_server_shed_total', { service: 'echo', reason: 'concurrency' });
    assert.ok(shed >= 1, 'the busy server shed calls');
    const clientText = await clientMesh.metrics.text();
    assert.equal(sampleSum(clientText, 'trellis_client_retries_total', { service: 'echo', reason: 'shed' }), shed, 'each shed call was retried once');
    assert.equal(sampleSum(clientText, 'trellis_client_ejections_total', { service: 'echo' }), 0, 'no instance ejected for being busy');
  });
});

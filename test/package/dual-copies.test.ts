/**
 * The ESM build and the CommonJS build loaded in one process (an application that imports
 * trellis while a dependency requires it) behave as one where it matters: errors of one copy are
 * recognised by the other (the `Symbol.for` brand), and they share the process-wide gRPC mesh
 * registry, since grpc-js keeps only the last registered `trellis` resolver; one copy's gRPC
 * picker reads the other's pick tickets; and metrics of both copies written to one registry
 * count into the same series.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);

describe('the ESM and CommonJS copies in one process', () => {
  it('share the gRPC mesh registry and recognise each other’s errors', async () => {
    const esmRegistry = (await import('../../dist/grpc/registry.js')) as { meshRegistry: object };
    const cjsRegistry = require('../../dist/cjs/grpc/registry.js') as { meshRegistry: object };
    assert.equal(esmRegistry.meshRegistry, cjsRegistry.meshRegistry);

    // The built copies, typed as the public API (the typecheck maps 'trellis' to src/).
    const esm = (await import('../../dist/index.js')) as unknown as typeof import('trellis');
    const cjs = require('../../dist/cjs/index.js') as typeof import('trellis');
    assert.notEqual(esm.TimeoutError, cjs.TimeoutError, 'two copies are loaded');
    const fromCjs = new TypeError('fetch failed', { cause: new cjs.TimeoutError('slow') });
    assert.equal(esm.isTrellisError(fromCjs, 'TRELLIS_TIMEOUT'), true);
    assert.ok(fromCjs.cause instanceof esm.TimeoutError);
  });

  it("read each other's gRPC pick tickets (grpc-js runs the first copy's picker for both)", async () => {
    type Tickets = typeof import('../../src/grpc/pick-ticket.js');
    const esm = (await import('../../dist/grpc/pick-ticket.js')) as unknown as Tickets;
    const cjs = require('../../dist/cjs/grpc/pick-ticket.js') as Tickets;
    assert.notEqual(esm.PickTicket, cjs.PickTicket, 'two copies are loaded');
    const { Metadata } = await import('@grpc/grpc-js');
    const md = new Metadata();
    md.setOptions({ waitForReady: true });
    cjs.attachTicket(md, '127.0.0.1:50051', 1234);
    const t = esm.ticketOf(md.clone());
    assert.equal(t?.endpoint, '127.0.0.1:50051');
    assert.equal(t?.deadline, 1234);
    assert.equal(t?.waitForReady, true);
    assert.equal(esm.ticketOf(new Metadata()), undefined);
  });

  it('count into the same request series when both write to one registry', async () => {
    type Metrics = typeof import('../../src/observability/metrics.js');
    const esm = (await import('../../dist/observability/metrics.js')) as unknown as Metrics;
    const cjs = require('../../dist/cjs/observability/metrics.js') as Metrics;
    assert.notEqual(esm.MeshMetrics, cjs.MeshMetrics, 'two copies are loaded');
    const { Registry } = await import('prom-client');
    const registry = new Registry();
    const a = new esm.MeshMetrics({ registry });
    const b = new cjs.MeshMetrics({ registry });
    a.recordClientRequest('products', 'default', 'GET', '200', 'success', 0.01);
    b.recordClientRequest('products', 'default', 'GET', '200', 'success', 0.02);
    b.recordClientRequest('products', 'default', 'GET', '200', 'success', 0.03);
    const text = await registry.metrics();
    assert.match(text, /^trellis_client_requests_total\{service="products",route="default",method="GET",status_code="200",outcome="success"\} 3$/m);
    assert.match(text, /^trellis_client_request_duration_seconds_count\{[^}]*\} 3$/m);
  });
});

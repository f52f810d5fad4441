/**
 * The instance side of the fleet view: a reporter over a real mesh client's real metrics sends
 * per-edge deltas (never totals), the latency histogram of exactly those requests, destination
 * state, and hands each reading out once.
 */
import { describe, it, after } from 'node:test';
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { meshClient } from 'trellis';
import { createFleetReporter, statusClass } from '../../src/controlplane-client/fleet-report.js';
import { OTEL_HTTP_DURATION_BUCKETS } from '../../src/observability/metrics.js';
import { quietLogger, serviceYaml, startServer } from '../helpers/servers.js';

const cleanup: (() => Promise<void> | void)[] = [];
after(async () => {
  for (const c of cleanup.reverse()) await c();
});

async function callerWithTraffic() {
  const ok = await startServer('ok');
  const bad = await startServer('bad', { kind: 'status', status: 503 });
  cleanup.push(() => ok.close(), () => bad.close());
  const mesh = await meshClient({
    service: 'checkout',
    config: `${serviceYaml('products', [{ address: ok.address }], 'routes:\n  - name: catalog\n    match: { pathPrefix: /catalog }\n  - name: default')}---\n${serviceYaml('payments', [{ address: bad.address }], 'circuitBreaker: { errorThresholdPercent: 100, volumeThreshold: 1000 }\noutlierDetection: false')}`,
    logger: quietLogger(),
  });
  cleanup.push(() => mesh.close());
  const call = async (service: string, path: string): Promise<void> => {
    await (await mesh.http(service).request({ path })).body.text();
  };
  return { mesh, call, ok, bad };
}

describe('fleet reporter', () => {
  it('classes statuses: HTTP by hundreds, gRPC codes by name, none without a response', () => {
    assert.deepEqual(statusClass('200'), { protocol: 'http', cls: '2xx' });
    assert.deepEqual(statusClass('503'), { protocol: 'http', cls: '5xx' });
    assert.deepEqual(statusClass('0'), { protocol: 'grpc', cls: 'ok' });
    assert.deepEqual(statusClass('14'), { protocol: 'grpc', cls: 'unavailable' });
    assert.deepEqual(statusClass('4'), { protocol: 'grpc', cls: 'deadline-exceeded' });
    assert.deepEqual(statusClass(''), { protocol: undefined, cls: 'none' });
  });

  it('reports per-edge deltas by route, outcome and status class, with the histogram of those requests', async () => {
    const { mesh, call } = await callerWithTraffic();
    const reporter = createFleetReporter({ registry: mesh.metricsRegistry, service: 'checkout', inspect: () => mesh.inspect() });
    for (let i = 0; i < 5; i++) await call('products', '/catalog/1');
    for (let i = 0; i < 3; i++) await call('products', '/other');
    for (let i = 0; i < 2; i++) await call('payments', '/pay');
    await sleep(20);
    const first = await reporter.sample();
    assert.equal(first.v, 1);
    assert.deepEqual(first.bounds, OTEL_HTTP_DURATION_BUCKETS);
    const edges = first.edges.map((e) => [e.dir, e.from, e.to, e.route, e.requests, e.outcomes, e.status]);
    assert.deepEqual(edges, [
      ['out', 'checkout', 'products', 'catalog', 5, { success: 5 }, { '2xx': 5 }],
      ['out', 'checkout', 'products', 'default', 3, { success: 3 }, { '2xx': 3 }],
      ['out', 'checkout', 'payments', 'default', 2, { failure: 2 }, { '5xx': 2 }],
    ]);
    for (const e of first.edges) assert.equal(e.latency.counts.reduce((a, b) => a + b, 0), e.requests, 'one histogram count per request');
    const payments = first.destinations.find((d) => d.service === 'payments');
    assert.equal(payments?.breaker, 'closed');
    assert.equal(payments?.endpointList?.length, 1);

    // Only what happened since: two more calls, nothing else.
    await call('products', '/catalog/2');
    await call('products', '/catalog/3');
    await sleep(20);
    const second = await reporter.sample();
    assert.deepEqual(second.edges.map((e) => [e.route, e.requests]), [['catalog', 2]]);
    assert.equal(second.interval.from, first.interval.to);
    // The endpoint list goes again only when it changed (or every 6th reading).
    assert.equal(second.destinations.find((d) => d.service === 'payments')?.endpointList, undefined);
    assert.equal(second.destinations.find((d) => d.service === 'payments')?.endpoints.healthy, 1);
    const third = await reporter.sample();
    assert.deepEqual(third.edges, []);
  });

  it('hands each reading out once, starting the next one when asked', async () => {
    const { mesh, call } = await callerWithTraffic();
    const reporter = createFleetReporter({ registry: mesh.metricsRegistry, service: 'checkout' });
    assert.equal(reporter(), undefined, 'nothing read yet');
    await call('products', '/x');
    await sleep(20);
    // Each call hands out the reading the previous call started (and starts the next): the
    // request shows up in exactly one reading, whichever call it falls into.
    const seen: number[] = [];
    for (let i = 0; i < 400 && seen.reduce((a, b) => a + b, 0) === 0; i++) {
      const got = reporter();
      if (got !== undefined) seen.push(got.edges.reduce((a, e) => a + e.requests, 0));
      await sleep(5);
    }
    assert.equal(seen.reduce((a, b) => a + b, 0), 1);
    for (let i = 0; i < 10; i++) {
      const got = reporter();
      if (got !== undefined) seen.push(got.edges.reduce((a, e) => a + e.requests, 0));
      await sleep(5);
    }
    assert.equal(seen.reduce((a, b) => a + b, 0), 1, 'a reading is handed out once: its counts are deltas');
  });
});

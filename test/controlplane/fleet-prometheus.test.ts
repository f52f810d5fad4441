/**
 * `--prometheus URL` mode: a real Prometheus scrapes the real mesh instances' /metrics, and the
 * fleet answers /v1/stat from PromQL instead of its own aggregation, in the same shape.
 */
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { createFleet } from '../../src/controlplane/fleet/index.js';
import { MemoryStore } from '../../src/controlplane/store/memory-store.js';
import { findPrometheus, startPrometheus } from '../helpers/prometheus.js';
import type { PrometheusServer } from '../helpers/prometheus.js';
import { startFleetMesh } from '../helpers/fleet-mesh.js';
import type { FleetMesh } from '../helpers/fleet-mesh.js';

const binary = await findPrometheus();
if (binary === undefined && process.env.CI !== undefined) throw new Error('prometheus is not installed and CI is set: .ci/run installs it');
if (binary === undefined) process.stderr.write('\n*** SKIPPING fleet-prometheus tests: no prometheus binary (apt-get install prometheus) ***\n\n');

const cleanup: (() => Promise<void> | void)[] = [];
after(async () => {
  for (const c of cleanup.reverse()) await c();
});

let mesh: FleetMesh;
let prom: PrometheusServer;
const store = new MemoryStore();
cleanup.push(() => store.close());

/** Sum of a served counter as Prometheus last scraped it. */
async function scraped(service: string): Promise<number> {
  const r = await prom.query(`sum(trellis_server_requests_total{service="${service}"})`);
  return Number(r[0]?.value[1] ?? 0);
}

async function waitScraped(service: string, atLeast: number): Promise<void> {
  for (let i = 0; i < 300; i++) {
    if ((await scraped(service)) >= atLeast) return;
    await sleep(100);
  }
  assert.fail(`Prometheus never scraped ${atLeast} requests of ${service}: ${prom.log()}`);
}

describe('fleet stat from Prometheus', { skip: binary === undefined }, () => {
  before(async () => {
    mesh = await startFleetMesh();
    cleanup.push(() => mesh.close());
    await mesh.register(store);
    const targets: string[] = [];
    for (const i of mesh.instances) {
      const s = http.createServer(i.mesh.metricsHandler());
      await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
      cleanup.push(() => new Promise<void>((r) => s.close(() => r())));
      targets.push(`127.0.0.1:${(s.address() as AddressInfo).port}`);
    }
    prom = await startPrometheus(binary as string, targets);
    cleanup.push(() => prom.close());
    // Counters must be scraped once before the traffic the window counts (increase() of a
    // series first seen at N says nothing about N).
    const served = ['frontend', 'products', 'reviews', 'ratings'];
    await mesh.traffic(5);
    for (const s of served) await waitScraped(s, 5);
    await mesh.traffic(30);
    for (const s of served) await waitScraped(s, 35);
  });

  it('serves the same body from PromQL: every service with traffic, routes, edges as servers saw them', async () => {
    const fleet = createFleet({ store, prometheusUrl: prom.url });
    const body = await fleet.stat(new URLSearchParams('window=1m&service=products'));
    assert.equal(body.source, 'prometheus');
    const products = body.services[0];
    assert.equal(products?.name, 'products');
    assert.equal(products?.view, 'inbound');
    assert.ok((products?.inbound?.rps ?? 0) > 0);
    assert.equal(products?.inbound?.successRate, 1);
    assert.ok((products?.inbound?.latencyMs.p99 ?? 0) > 0);
    // What products sent is what servers saw it send: with plaintext they cannot name it.
    assert.equal(products?.outbound, null);
    const catalog = body.routes?.find((r) => r.route === 'catalog');
    assert.ok((catalog?.figures?.requests ?? 0) > 0, 'route figures from the callers\' client metrics');
    assert.deepEqual(catalog?.backends.map((b) => b.weight), [50, 50]);
    // Plaintext here: servers see every caller as unknown, so the edges say so.
    assert.deepEqual(body.edges.map((e) => `${e.from}->${e.to}:${e.source}`), ['unknown->products:server']);

    const all = await fleet.stat(new URLSearchParams('window=1m&series=true'));
    const steps = all.services.find((s) => s.name === 'reviews')?.series;
    assert.equal(steps?.t.length, 61);
    assert.equal(steps?.stepSeconds, 10);
    assert.ok(steps !== undefined && Math.max(...steps.rps) > 0, 'the last steps have a rate');
    const names = all.services.filter((s) => (s.figures?.rps ?? 0) > 0).map((s) => s.name);
    assert.deepEqual(names, ['frontend', 'products', 'ratings', 'reviews']);
    assert.equal(all.services.find((s) => s.name === 'ratings')?.figures?.successRate, 0);
    assert.equal(all.edges.find((e) => e.to === 'ratings')?.failing, true);
  });

  it('says which Prometheus failed and how', async () => {
    const fleet = createFleet({ store, prometheusUrl: 'http://127.0.0.1:1' });
    await assert.rejects(fleet.stat(new URLSearchParams('window=1m')), { code: 'TRELLIS_UPSTREAM_ERROR', message: /Prometheus at http:\/\/127\.0\.0\.1:1 did not answer/ });
  });
});

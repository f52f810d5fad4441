/**
 * The fleet view end to end in one process: real mesh clients with real traffic, their real
 * metrics read by fleet reporters, reports ingested by a Fleet, and the `/v1/stat` body checked
 * against what the servers actually served.
 */
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createFleet } from '../../src/controlplane/fleet/index.js';
import type { Fleet, StatBody } from '../../src/controlplane/fleet/index.js';
import { MemoryStore } from '../../src/controlplane/store/memory-store.js';
import { KEYS } from '../../src/controlplane/store/store.js';
import { startFleetMesh } from '../helpers/fleet-mesh.js';
import type { FleetMesh } from '../helpers/fleet-mesh.js';

let mesh: FleetMesh;
let store: MemoryStore;
let fleet: Fleet;
let sizes: number[] = [];

before(async () => {
  mesh = await startFleetMesh();
  store = new MemoryStore();
  await mesh.register(store);
  fleet = createFleet({ store });
  await mesh.traffic(40);
  sizes = await mesh.report(fleet);
});
after(async () => {
  await mesh?.close();
  await store?.close();
});

const stat = (q: string): Promise<StatBody> => fleet.stat(new URLSearchParams(q));

describe('fleet stat', () => {
  it('shows every service with its traffic, from real reports', async () => {
    const body = await stat('window=1m');
    assert.equal(body.source, 'control-plane');
    assert.equal(body.reportingInstances, 6);
    const by = new Map(body.services.map((s) => [s.name, s]));
    assert.deepEqual([...by.keys()], ['frontend', 'loadgen', 'products', 'ratings', 'reviews']);
    // Served counts are exact: 40 pages, 40 product lists (v1 + v2), 40 reviews, 40 ratings.
    assert.equal(by.get('frontend')?.inbound?.requests, 40);
    assert.equal(by.get('products')?.inbound?.requests, 40);
    assert.equal(by.get('reviews')?.inbound?.requests, 40);
    assert.equal(by.get('ratings')?.inbound?.requests, 40);
    assert.equal(by.get('products')?.instances, 2);
    assert.equal(by.get('ratings')?.figures?.successRate, 0);
    assert.equal(by.get('frontend')?.figures?.successRate, 1);
    // loadgen serves nothing: its row is what it sent.
    assert.equal(by.get('loadgen')?.view, 'outbound');
    assert.equal(by.get('loadgen')?.figures?.requests, 40);
    for (const s of body.services) assert.ok((s.figures?.rps ?? 0) > 0, `${s.name} has traffic`);
    for (const s of body.services) assert.ok((s.figures?.latencyMs.p99 ?? -1) >= (s.figures?.latencyMs.p50 ?? 0));
  });

  it('has exactly the edges of who calls whom, the failing one marked', async () => {
    const body = await stat('window=10m');
    const edges = body.edges.map((e) => `${e.from}->${e.to}:${e.source}:${e.requests}:${e.failing}`);
    assert.deepEqual(edges, [
      'frontend->products:caller:40:false',
      'frontend->ratings:caller:40:true',
      'loadgen->frontend:caller:40:false',
      'products->reviews:caller:40:false',
    ]);
    const ratings = body.edges.find((e) => e.to === 'ratings');
    assert.deepEqual(ratings?.status, { '5xx': 40 });
    assert.equal(ratings?.protocol, 'http');
  });

  it('for one service: routes with weights from the store and the live split, instances with config version', async () => {
    const body = await stat('service=products');
    assert.deepEqual(body.services.map((s) => s.name), ['products']);
    assert.deepEqual(body.edges.map((e) => `${e.from}->${e.to}`), ['frontend->products', 'products->reviews']);
    const route = body.routes?.find((r) => r.route === 'catalog');
    assert.equal(route?.declared, true);
    assert.equal(route?.figures?.requests, 40);
    assert.deepEqual(route?.backends.map((b) => [b.subset.version, b.weight]), [['v1', 50], ['v2', 50]]);
    const live = route?.backends.reduce((a, b) => a + (b.liveShare ?? 0), 0) ?? 0;
    assert.ok(Math.abs(live - 1) < 0.01, `live shares add up to 1 (${live})`);
    const served = mesh.instances.filter((i) => i.service === 'products');
    assert.deepEqual(body.instances?.map((i) => [i.id, i.labels.version, i.config.acked, i.registered]), served.map((i) => [i.id, i.labels.version, '7', true]));
    const total = body.instances?.reduce((a, i) => a + (i.inbound?.requests ?? 0), 0);
    assert.equal(total, 40);
    // Each products instance calls reviews: its destination state came in its report.
    const dest = body.instances?.[0]?.destinations.find((d) => d.service === 'reviews');
    assert.equal(dest?.endpoints.healthy, 1);
    assert.equal(dest?.endpointList.length, 1);

    // A weight change in the store shows at once.
    const entry = await store.get(KEYS.resource('Service', 'products'));
    await store.commit([{ type: 'put', key: KEYS.resource('Service', 'products'), value: mesh.productsDocument(90, 10), ifModRevision: entry?.modRevision }]);
    const after = await stat('service=products');
    assert.deepEqual(after.routes?.[0]?.backends.map((b) => [b.weight, b.configuredShare]), [[90, 0.9], [10, 0.1]]);
  });

  it('keeps a report small', () => {
    for (const s of sizes) assert.ok(s < 16_384, `report of ${s} bytes`);
  });

  it('refuses bad queries with TRELLIS_INVALID_ARGUMENT', async () => {
    await assert.rejects(stat('window=2h'), { code: 'TRELLIS_INVALID_ARGUMENT' });
    await assert.rejects(stat('service=Bad_Name'), { code: 'TRELLIS_INVALID_ARGUMENT' });
    await assert.rejects(stat('nope=1'), { code: 'TRELLIS_INVALID_ARGUMENT' });
  });
});

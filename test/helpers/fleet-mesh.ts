/**
 * A small real mesh for the fleet-view tests: loadgen -> frontend -> products (v1 and v2, a
 * weighted route) -> reviews, and frontend -> ratings (always 503: a failing edge). Every
 * instance is a real meshClient serving on 127.0.0.1 with real traffic between them; each has a
 * fleet reporter over its real metrics. `report(fleet)` samples every reporter and hands the
 * reports to `fleet.ingest` as the control plane's stream would.
 */
import type { Mesh, MeshServer } from 'trellis';
import { meshClient } from 'trellis';
import { createFleetReporter } from '../../src/controlplane-client/fleet-report.js';
import type { FleetReporter } from '../../src/controlplane-client/fleet-report.js';
import type { Fleet } from '../../src/controlplane/fleet/index.js';
import type { InstanceRecord, Store, StoredResource } from '../../src/controlplane/store/store.js';
import { KEYS } from '../../src/controlplane/store/store.js';
import { setTimeout as sleep } from 'node:timers/promises';
import { quietLogger, serviceYaml } from './servers.js';

export interface FleetInstance {
  readonly id: string;
  readonly service: string;
  readonly labels: Record<string, string>;
  readonly mesh: Mesh;
  readonly server: MeshServer | undefined;
  readonly reporter: FleetReporter;
}

export interface FleetMesh {
  readonly instances: readonly FleetInstance[];
  /** `n` requests from loadgen to frontend (each fans out to products, reviews and ratings). */
  traffic(n: number): Promise<void>;
  /** Samples every reporter and ingests its report; resolves with the reports' JSON sizes. */
  report(fleet: Fleet): Promise<number[]>;
  /** The route of products as a Service document (weights v1/v2). */
  productsDocument(v1: number, v2: number): StoredResource;
  /** Writes Service documents and the registry entries of every serving instance into `store`. */
  register(store: Store): Promise<void>;
  close(): Promise<void>;
}

/** Requests this instance's metrics count (served, and sent for loadgen): complete once each hop counted `sent` pages. */
async function countOf(i: FleetInstance): Promise<{ complete(sent: number): boolean }> {
  const sum = async (name: string): Promise<number> => {
    const m = i.mesh.metricsRegistry.getSingleMetric(name);
    if (m === undefined) return 0;
    return (await m.get()).values.reduce((a, v) => a + v.value, 0);
  };
  const served = await sum('trellis_server_requests_total');
  const called = await sum('trellis_client_requests_total');
  return {
    complete: (sent) => {
      if (i.service === 'loadgen') return called >= sent;
      if (i.service === 'products') return true; // split between two instances: checked through reviews
      if (i.service === 'frontend') return served >= sent && called >= 2 * sent;
      return served >= sent;
    },
  };
}

async function drain(res: { body: { text(): Promise<string> } }): Promise<void> {
  await res.body.text();
}

export async function startFleetMesh(): Promise<FleetMesh> {
  const instances: FleetInstance[] = [];
  const logger = quietLogger();
  const add = async (id: string, service: string, labels: Record<string, string>, config: string | undefined, handler: ((mesh: Mesh) => (req: import('node:http').IncomingMessage, res: import('node:http').ServerResponse) => void) | undefined): Promise<FleetInstance> => {
    const mesh = await meshClient({ service, labels, logger, ...(config !== undefined ? { config } : {}) });
    const server = handler !== undefined ? await mesh.serve(handler(mesh), { port: 0, host: '127.0.0.1' }) : undefined;
    const reporter = createFleetReporter({ registry: mesh.metricsRegistry, service, inspect: () => mesh.inspect() });
    const inst = { id, service, labels, mesh, server, reporter };
    instances.push(inst);
    return inst;
  };
  try {
    const ok = () => (_req: import('node:http').IncomingMessage, res: import('node:http').ServerResponse) => res.end('ok');
    const reviews = await add('reviews-0', 'reviews', { version: 'v1' }, undefined, ok);
    const ratings = await add('ratings-0', 'ratings', { version: 'v1' }, undefined, () => (_req, res) => {
      res.statusCode = 503;
      res.end('down');
    });
    const reviewsYaml = serviceYaml('reviews', [{ address: reviews.server?.address ?? '' }]);
    const productsHandler = (mesh: Mesh) => (_req: import('node:http').IncomingMessage, res: import('node:http').ServerResponse) => {
      mesh.http('reviews').request({ path: '/reviews' }).then(drain).then(
        () => res.end('products'),
        () => ((res.statusCode = 502), res.end()),
      );
    };
    const v1 = await add('products-v1', 'products', { version: 'v1' }, reviewsYaml, productsHandler);
    const v2 = await add('products-v2', 'products', { version: 'v2' }, reviewsYaml, productsHandler);
    const productsYaml = serviceYaml('products', [
      { address: v1.server?.address ?? '', labels: { version: 'v1' } },
      { address: v2.server?.address ?? '', labels: { version: 'v2' } },
    ], `routes:\n  - name: catalog\n    backends: [ { subset: { version: v1 }, weight: 50 }, { subset: { version: v2 }, weight: 50 } ]`);
    const ratingsYaml = serviceYaml('ratings', [{ address: ratings.server?.address ?? '' }], 'outlierDetection: false');
    const frontend = await add('frontend-0', 'frontend', {}, `${productsYaml}---\n${ratingsYaml}`, (mesh) => (_req, res) => {
      Promise.all([
        mesh.http('products').request({ path: '/list' }).then(drain),
        mesh.http('ratings').request({ path: '/stars' }).then(drain).catch(() => undefined),
      ]).then(
        () => res.end('page'),
        () => ((res.statusCode = 502), res.end()),
      );
    });
    await add('loadgen-0', 'loadgen', {}, serviceYaml('frontend', [{ address: frontend.server?.address ?? '' }]), undefined);
  } catch (err) {
    for (const i of instances) await i.mesh.close().catch(() => undefined);
    throw err;
  }
  const loadgen = instances.find((i) => i.service === 'loadgen') as FleetInstance;
  let sent = 0;

  const productsDocument = (w1: number, w2: number): StoredResource => ({
    apiVersion: 'trellis/v1',
    kind: 'Service',
    metadata: { name: 'products' },
    spec: { routes: [{ name: 'catalog', backends: [{ subset: { version: 'v1' }, weight: w1 }, { subset: { version: 'v2' }, weight: w2 }] }] },
  });

  return {
    instances,
    async traffic(n) {
      for (let i = 0; i < n; i++) await drain(await loadgen.mesh.http('frontend').request({ path: '/' }));
      sent += n;
      // The last request is recorded when its body completes, a tick after the caller has it:
      // wait (bounded) until every hop's server metrics and loadgen's client metrics count it.
      for (let tries = 0; tries < 400; tries++) {
        const counts = await Promise.all(instances.map((i) => countOf(i)));
        if (counts.every((c) => c.complete(sent))) return;
        await sleep(5);
      }
    },
    async report(fleet) {
      const sizes: number[] = [];
      for (const i of instances) {
        const r = await i.reporter.sample();
        sizes.push(JSON.stringify({ type: 'report', ...r }).length);
        const result = fleet.ingest({ id: i.id, service: i.service }, JSON.parse(JSON.stringify({ type: 'report', ...r })));
        if (!result.accepted) throw new Error(`report of ${i.id} refused: ${result.reason}`);
      }
      return sizes;
    },
    productsDocument,
    async register(store) {
      const ops: { type: 'put'; key: string; value: unknown }[] = [];
      for (const name of ['frontend', 'reviews', 'ratings']) {
        ops.push({ type: 'put', key: KEYS.resource('Service', name), value: { apiVersion: 'trellis/v1', kind: 'Service', metadata: { name }, spec: {} } });
      }
      ops.push({ type: 'put', key: KEYS.resource('Service', 'products'), value: productsDocument(50, 50) });
      for (const i of instances) {
        const record: InstanceRecord = {
          id: i.id,
          service: i.service,
          labels: i.labels,
          endpoints: i.server !== undefined ? [{ address: i.server.address, protocol: 'http' }] : [],
          replica: 'test',
          connectedAt: Date.now(),
          agent: 'trellis/0.1.0',
        };
        ops.push({ type: 'put', key: KEYS.instance(i.service, i.id), value: record });
        ops.push({ type: 'put', key: KEYS.instanceStatus(i.service, i.id), value: { id: i.id, service: i.service, sent: '7', acked: '7', ackedAt: Date.now(), lastSeen: Date.now() } });
      }
      await store.commit(ops);
    },
    async close() {
      for (const i of instances.reverse()) await i.mesh.close().catch(() => undefined);
    },
  };
}

/**
 * meshClient with a control plane, end to end: real HTTP/2 + mTLS control-plane fixtures over a
 * MemoryStore, instances in their own processes (SIGKILL is a real crash), callers in this one.
 * What is judged is what the other side saw: which server answered, what the store holds.
 */
import { before, describe, it } from 'node:test';
import type { TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { meshClient } from '../../src/mesh-client.js';
import type { Mesh } from '../../src/mesh.js';
import { KEYS } from '../../src/controlplane/store/store.js';
import type { InstanceStatus } from '../../src/controlplane/store/store.js';
import { startServer } from '../helpers/servers.js';
import { startProcessServer, type ProcessServer } from '../helpers/processes.js';
import { makeCaMaterial, meshDoc, MemoryStore, mintToken, putResources, serviceDoc, startCpFixture } from '../helpers/control-plane-fixture.js';
import type { CaMaterial, CpFixture } from '../helpers/control-plane-fixture.js';

const instanceScript = fileURLToPath(new URL('../helpers/cp-instance-process.ts', import.meta.url));

/** Polls `f` until it gives a value; bounded, so a condition that never comes fails the test instead of hanging it. */
async function until<T>(f: () => Promise<T | undefined> | T | undefined, limitMs = 60_000): Promise<T> {
  const end = Date.now() + limitMs;
  for (;;) {
    const v = await f();
    if (v !== undefined && v !== false) return v;
    if (Date.now() > end) throw new Error(`condition not met within ${limitMs} ms: ${f.toString().slice(0, 200)}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

async function tempDir(t: TestContext): Promise<string> {
  const dir = await mkdtemp(path.join(tmpdir(), 'trellis-sync-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

async function caller(t: TestContext, m: CaMaterial, urls: string[], service = 'web'): Promise<{ mesh: Mesh; warnings: string[] }> {
  const warnings: string[] = [];
  const mesh = await meshClient({ service, controlPlane: urls, token: mintToken(m, service), cacheDir: await tempDir(t), logger: { warn: (w) => warnings.push(w) } });
  t.after(() => mesh.close({ drainTimeoutMs: 500 }));
  return { mesh, warnings };
}

async function instance(t: TestContext, m: CaMaterial, name: string, urls: string[], opts: { cacheDir?: string; token?: boolean; port?: number } = {}): Promise<ProcessServer> {
  const dir = opts.cacheDir ?? (await tempDir(t));
  const p = await startProcessServer(name, { script: instanceScript, args: ['products', urls.join(','), opts.token === false ? '-' : mintToken(m, 'products'), dir, String(opts.port ?? 0)] });
  t.after(() => void p.kill('SIGKILL'));
  return p;
}

async function serverOf(mesh: Mesh, service: string): Promise<string> {
  const res = await mesh.http(service).request({ method: 'GET', path: '/' });
  const body = (await res.body.json()) as { server: string };
  return body.server;
}

async function fixture(t: TestContext, m: CaMaterial, store: MemoryStore, opts: { leaseTtlMs?: number; port?: number; replicaId?: string } = {}): Promise<CpFixture> {
  const cp = await startCpFixture({ material: m, store, ...opts });
  t.after(() => cp.close());
  return cp;
}

function newStore(t: TestContext): MemoryStore {
  const store = new MemoryStore({ sweepMs: 50 });
  t.after(() => store.close());
  return store;
}

const registryService = serviceDoc('products', { protocol: 'http', retries: { attempts: 3, on: ['connect-failure', 'reset'] } });

describe('sync: meshClient with a control plane', () => {
  let m: CaMaterial;
  before(async () => {
    m = await makeCaMaterial();
  });

  it('an apply reaches a connected instance and its requests follow it; an invalid snapshot is NACKed with its reason and the old config stays', async (t) => {
    const a = await startServer('a');
    const b = await startServer('b');
    t.after(() => Promise.all([a.close(), b.close()]));
    const store = newStore(t);
    await putResources(store, [meshDoc(), serviceDoc('legacy', { mtls: 'off', endpoints: [{ address: a.address }] })]);
    const cp = await fixture(t, m, store);
    const { mesh } = await caller(t, m, [cp.url]);
    assert.equal(await serverOf(mesh, 'legacy'), 'a');

    const rev = await putResources(store, [serviceDoc('legacy', { mtls: 'off', endpoints: [{ address: b.address }] })]);
    await until(() => mesh.config?.services.get('legacy')?.endpoints?.[0]?.port === b.port);
    assert.equal(await serverOf(mesh, 'legacy'), 'b');
    // Statuses are written in batches: wait for this instance's to exist before reading it.
    const statusKey = await until(async () => (await store.list<InstanceStatus>(KEYS.statuses)).entries.find((e) => e.value.service === 'web')?.key);
    await until(async () => (await store.get<InstanceStatus>(statusKey))?.value.acked === String(rev));

    // Stored without validation (as a bug in the control plane would): the instance refuses it.
    const errors: string[] = [];
    mesh.on('config-error', (e) => errors.push(e.message));
    const bad = await putResources(store, [serviceDoc('legacy', { mtls: 'off', endpoints: [{ address: a.address }], loadBalancer: 'fastest' })]);
    const status = await until(async () => {
      const s = (await store.get<InstanceStatus>(statusKey))?.value;
      return s?.nacked?.version === String(bad) ? s : undefined;
    });
    assert.match(status.nacked?.reason ?? '', /loadBalancer/);
    assert.match(status.nacked?.reason ?? '', /fastest/);
    assert.equal(status.acked, String(rev));
    assert.match(errors[0] ?? '', /fastest/);
    assert.equal(await serverOf(mesh, 'legacy'), 'b');
  });

  it('refuses a first start with neither a token nor anything cached, naming the option', async (t) => {
    const store = newStore(t);
    const cp = await fixture(t, m, store);
    await assert.rejects(
      meshClient({ service: 'web', controlPlane: [cp.url], cacheDir: await tempDir(t), logger: { warn: () => {} } }),
      (err: Error & { code?: string }) => err.code === 'TRELLIS_CONFIG_INVALID' && /meshClient\.token/.test(err.message) && /bootstrap token/.test(err.message),
    );
  });

  it('the registry: instances appear when they serve, callers send to them, and they leave on close (deregistered) and after kill -9 (lease)', async (t) => {
    const store = newStore(t);
    await putResources(store, [meshDoc(), registryService]);
    // A long lease: an instance that leaves before it could expire was deregistered by close().
    const cpLong = await fixture(t, m, store, { leaseTtlMs: 600_000 });
    const { mesh } = await caller(t, m, [cpLong.url]);
    await assert.rejects(mesh.http('products').request({ method: 'GET', path: '/' }), { code: 'TRELLIS_NO_ENDPOINTS' });

    const p1 = await instance(t, m, 'p1', [cpLong.url]);
    await until(() => mesh.config?.services.get('products')?.endpoints?.length === 1);
    assert.equal(await serverOf(mesh, 'products'), 'p1');
    const rec = (await store.list(KEYS.instances)).entries;
    assert.equal(rec.length, 1);
    assert.equal((rec[0]?.value as { endpoints: { address: string }[] }).endpoints[0]?.address, p1.address);

    p1.kill('SIGTERM');
    await new Promise((r) => p1.child.once('exit', r));
    await until(async () => (await store.list(KEYS.instances)).entries.length === 0);
    await until(() => mesh.config?.services.get('products')?.endpoints === undefined);
    await assert.rejects(mesh.http('products').request({ method: 'GET', path: '/' }), { code: 'TRELLIS_NO_ENDPOINTS' });

    // Killed without a word: the lease (1 s here) removes it, and callers stop sending to it.
    const store2 = newStore(t);
    await putResources(store2, [meshDoc(), registryService]);
    const cpShort = await fixture(t, m, store2, { leaseTtlMs: 1000 });
    const { mesh: mesh2 } = await caller(t, m, [cpShort.url]);
    const p2 = await instance(t, m, 'p2', [cpShort.url]);
    await until(() => mesh2.config?.services.get('products')?.endpoints?.length === 1);
    assert.equal(await serverOf(mesh2, 'products'), 'p2');
    p2.kill('SIGKILL');
    await until(async () => (await store2.list(KEYS.instances)).entries.length === 0);
    await until(() => mesh2.config?.services.get('products')?.endpoints === undefined);
    await assert.rejects(mesh2.http('products').request({ method: 'GET', path: '/' }), { code: 'TRELLIS_NO_ENDPOINTS' });
  });

  it('with the control plane down, instances keep routing and serving, and a fresh instance process starts from the persisted snapshot and serves', async (t) => {
    const store = newStore(t);
    await putResources(store, [meshDoc(), registryService]);
    const cp = await fixture(t, m, store);
    const { mesh } = await caller(t, m, [cp.url]);
    const cacheDir = await tempDir(t);
    const p = await instance(t, m, 'p3', [cp.url], { cacheDir });
    await until(() => mesh.config?.services.get('products')?.endpoints?.length === 1);
    assert.equal(await serverOf(mesh, 'products'), 'p3');
    await until(async () => (await stat(path.join(cacheDir, 'snapshot.json')).catch(() => undefined)) !== undefined);
    assert.equal((await stat(path.join(cacheDir, 'identity.json'))).mode & 0o777, 0o600);

    const states: string[] = [];
    mesh.on('control-plane', (e) => states.push(e.state));
    await cp.close();
    await until(() => states.includes('disconnected'));
    for (let i = 0; i < 5; i++) assert.equal(await serverOf(mesh, 'products'), 'p3');
    assert.equal(mesh.config?.services.get('products')?.endpoints?.length, 1);

    // A fresh process, no token, the control plane still down: certificate, trust and config from the cache.
    p.kill('SIGKILL');
    await new Promise((r) => p.child.once('exit', r));
    await instance(t, m, 'p3-fresh', [cp.url], { cacheDir, token: false, port: p.port });
    assert.equal(await serverOf(mesh, 'products'), 'p3-fresh');
    const metrics = await mesh.metricsRegistry.metrics();
    assert.match(metrics, /trellis_control_plane_connected\{service="web"\} 0/);
    assert.match(metrics, /trellis_control_plane_config_version\{service="web"\} \d+/);
  });

  it('fails over between two replicas sharing one store with no failed request, and applies reach it through the other', async (t) => {
    const store = newStore(t);
    await putResources(store, [meshDoc(), registryService]);
    const cp1 = await fixture(t, m, store, { replicaId: 'r1' });
    const cp2 = await fixture(t, m, store, { replicaId: 'r2' });
    const urls = [cp1.url, cp2.url];
    const { mesh } = await caller(t, m, urls);
    await instance(t, m, 'p4', urls);
    await until(() => mesh.config?.services.get('products')?.endpoints?.length === 1);

    let failed = 0;
    let ok = 0;
    let running = true;
    const load = (async () => {
      while (running) {
        try {
          await serverOf(mesh, 'products');
          ok++;
        } catch {
          failed++;
        }
      }
    })();
    // Each replica is stopped in turn, so both the caller and the instance fail over at least once.
    await until(() => cp1.sync.connected() + cp2.sync.connected() === 2);
    await cp1.close();
    await until(() => cp2.sync.connected() === 2);
    const cp1b = await fixture(t, m, store, { replicaId: 'r1b', port: cp1.port });
    await cp2.close();
    await until(() => cp1b.sync.connected() === 2);

    await putResources(store, [serviceDoc('products', { protocol: 'http', retries: { attempts: 3, on: ['connect-failure', 'reset'] }, timeout: '7s' })]);
    await until(() => mesh.config?.services.get('products')?.timeoutMs === 7000);
    const before = ok;
    await until(() => ok > before + 5);
    running = false;
    await load;
    assert.equal(failed, 0);
    assert.equal(mesh.config?.services.get('products')?.endpoints?.length, 1);
  });
});

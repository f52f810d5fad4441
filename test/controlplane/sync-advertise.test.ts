/**
 * Servers the application runs itself are registered too: a Fastify app with `mesh.fastify()`
 * when it listens (and out of the registry at `app.close()`, before the drain); an Express app's
 * server and a gRPC server's bound port through `mesh.advertise()`. Judged by the registry
 * record the control plane wrote.
 */
import { describe, it } from 'node:test';
import type { TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import express from 'express';
import Fastify from 'fastify';
import type { Server } from 'node:http';
import { meshClient } from '../../src/mesh-client.js';
import { KEYS } from '../../src/controlplane/store/store.js';
import type { InstanceRecord } from '../../src/controlplane/store/store.js';
import { makeCaMaterial, meshDoc, MemoryStore, mintToken, putResources, serviceDoc, startCpFixture } from '../helpers/control-plane-fixture.js';

async function until<T>(f: () => Promise<T | undefined | false> | T | undefined | false): Promise<T> {
  for (;;) {
    const v = await f();
    if (v !== undefined && v !== false) return v;
    await new Promise((r) => setTimeout(r, 25));
  }
}

async function setup(t: TestContext): Promise<{ store: MemoryStore; mesh: Awaited<ReturnType<typeof meshClient>> }> {
  const m = await makeCaMaterial();
  const store = new MemoryStore({ sweepMs: 50 });
  t.after(() => store.close());
  await putResources(store, [meshDoc(), serviceDoc('products', {})]);
  const cp = await startCpFixture({ material: m, store, leaseTtlMs: 600_000 });
  t.after(() => cp.close());
  const dir = await mkdtemp(path.join(tmpdir(), 'trellis-adv-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const mesh = await meshClient({ service: 'products', controlPlane: [cp.url], token: mintToken(m, 'products'), cacheDir: dir, logger: { warn: () => {} } });
  t.after(() => mesh.close({ drainTimeoutMs: 200 }));
  return { store, mesh };
}

async function registered(store: MemoryStore): Promise<InstanceRecord['endpoints']> {
  return (await store.list<InstanceRecord>(KEYS.instances)).entries.flatMap((e) => e.value.endpoints);
}

describe('sync: registering servers the application owns', () => {
  it('a Fastify app with mesh.fastify() registers when it listens and leaves at close', async (t) => {
    const { store, mesh } = await setup(t);
    const app = Fastify();
    await app.register(mesh.fastify());
    app.get('/', async () => ({ ok: true }));
    await app.listen({ port: 0, host: '127.0.0.1' });
    const port = (app.server.address() as { port: number }).port;
    assert.deepEqual(await until(async () => ((await registered(store)).length === 1 ? registered(store) : undefined)), [{ address: `127.0.0.1:${port}`, protocol: 'http' }]);
    await app.close();
    await until(async () => (await store.list(KEYS.instances)).entries.length === 0);
  });

  it('an Express server and a gRPC port through mesh.advertise()', async (t) => {
    const { store, mesh } = await setup(t);
    const app = express();
    app.use(mesh.express());
    const server: Server = await new Promise((resolve) => {
      const s = app.listen(0, '127.0.0.1', () => resolve(s));
    });
    mesh.advertise(server);
    const withdrawGrpc = mesh.advertise({ port: 50_123 }, { protocol: 'grpc' });
    const port = (server.address() as { port: number }).port;
    const eps = await until(async () => {
      const e = await registered(store);
      return e.length === 2 ? e : undefined;
    });
    assert.deepEqual([...eps].sort((a, b) => a.address.localeCompare(b.address)), [
      { address: `127.0.0.1:${port}`, protocol: 'http' },
      { address: '127.0.0.1:50123', protocol: 'grpc' },
    ]);
    withdrawGrpc();
    await until(async () => (await registered(store)).length === 1);
    await new Promise((r) => server.close(r));
    await until(async () => (await store.list(KEYS.instances)).entries.length === 0);
  });
});

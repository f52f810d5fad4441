/**
 * Snapshot deltas on the instance stream (docs/control-plane.md, "The instance stream"). An
 * instance that asks for them (`trellis-stream-features: delta`) gets, after its first whole
 * snapshot, only what changed since the version it ACKed: registrations and deregistrations as
 * single endpoints added and removed, a Service change as that document. Rebuilt on the
 * instance's side, every one equals the whole snapshot a stream without deltas receives at the
 * same version, and each is smaller than that snapshot. A stream that does not ask gets whole
 * snapshots only (older instances keep working). Through `meshClient`, a caller routes to
 * instances as they register and deregister, with the control plane sending deltas.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp } from 'node:fs/promises';
import http from 'node:http';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { AddressInfo } from 'node:net';
import { applyDelta } from '../../src/controlplane/sync/snapshot-delta.js';
import type { DeltaMessage, SnapshotMessage } from '../../src/controlplane/sync/protocol.js';
import { meshClient } from '../../src/mesh-client.js';
import type { Mesh } from '../../src/index.js';
import { hello, rawClient } from '../helpers/raw-stream-client.js';
import type { RawClient } from '../helpers/raw-stream-client.js';
import { makeCaMaterial, meshDoc, MemoryStore, mintToken, putResources, serviceDoc, startCpFixture } from '../helpers/control-plane-fixture.js';
import type { CaMaterial, CpFixture } from '../helpers/control-plane-fixture.js';
import { sampleSum } from '../helpers/prometheus.js';

const DELTAS = { 'trellis-stream-features': 'delta' };
const content = (s: SnapshotMessage): string => JSON.stringify([s.mesh, s.services, s.endpoints]);

/** Follows a stream that asked for deltas: ACKs each message and keeps the snapshot it rebuilds. */
class Follower {
  current: SnapshotMessage | undefined;
  deltas = 0;
  wholes = 0;
  #seen = 0;
  constructor(readonly c: RawClient) {}

  /** Applies and ACKs every message received so far; resolves with the snapshot in force once `pred` holds. */
  async until(pred: (s: SnapshotMessage) => boolean): Promise<SnapshotMessage> {
    for (;;) {
      while (this.#seen < this.c.messages.length) {
        const msg = this.c.messages[this.#seen++] as Record<string, unknown>;
        if (msg.type === 'snapshot') {
          this.wholes++;
          this.current = msg as unknown as SnapshotMessage;
        } else if (msg.type === 'delta') {
          this.deltas++;
          assert.ok(this.current !== undefined, 'a delta before any whole snapshot');
          const line = JSON.stringify(msg);
          this.current = applyDelta(this.current, msg as unknown as DeltaMessage);
          assert.ok(line.length < JSON.stringify(this.current).length, `a delta (${line.length} bytes) larger than its snapshot`);
        } else continue;
        this.c.send({ type: 'ack', version: this.current.version });
      }
      if (this.current !== undefined && pred(this.current)) return this.current;
      await new Promise((r) => setTimeout(r, 10));
    }
  }
}

/** The whole snapshot a stream without deltas gets now (a fresh stream, closed after). */
async function whole(cp: CpFixture, m: CaMaterial, service: string, id: string): Promise<SnapshotMessage & { types: string[] }> {
  const c = await rawClient(cp, m, service);
  try {
    c.send(hello(service, id));
    const s = (await c.next((x) => x.type === 'snapshot')) as unknown as SnapshotMessage;
    return { ...s, types: c.messages.map((x) => String(x.type)) };
  } finally {
    c.close();
  }
}

describe('sync: snapshot deltas', () => {
  let m: CaMaterial;
  let store: MemoryStore;
  let cp: CpFixture;
  const clients: RawClient[] = [];

  before(async () => {
    m = await makeCaMaterial();
    store = new MemoryStore({ sweepMs: 50 });
    // Plaintext mesh traffic: the catalog instances of the second test are plain node:http servers.
    await putResources(store, [meshDoc({ mtls: 'off' }), serviceDoc('checkout', {}), serviceDoc('catalog', {}), serviceDoc('products', { endpoints: [{ address: '127.0.0.1:9001' }] })]);
    // The default lease (15 s): the raw instances here do not ping, and a short lease would take
    // their endpoints away while a loaded machine is still checking them.
    cp = await startCpFixture({ material: m, store });
  });
  after(async () => {
    for (const c of clients) c.close();
    await cp.close();
    await store.close();
  });

  it('registrations, deregistrations and a Service change arrive as deltas that rebuild the whole snapshot exactly', async () => {
    const caller = await rawClient(cp, m, 'checkout', DELTAS);
    clients.push(caller);
    caller.send(hello('checkout', 'co-delta'));
    const f = new Follower(caller);
    await f.until(() => true);
    assert.equal(f.wholes, 1, 'the first message is a whole snapshot');

    const instances: RawClient[] = [];
    const catalog = (s: SnapshotMessage): number => s.endpoints.catalog?.length ?? -1;
    for (let i = 0; i < 8; i++) {
      const inst = await rawClient(cp, m, 'catalog');
      clients.push(inst);
      instances.push(inst);
      inst.send(hello('catalog', `cat-${i}`));
      inst.send({ type: 'register', endpoints: [{ address: `127.0.0.1:${9100 + i}`, protocol: 'http' }] });
      await f.until((s) => catalog(s) === i + 1);
    }
    let now = await f.until((s) => catalog(s) === 8);
    let w = await whole(cp, m, 'checkout', 'co-whole-1');
    assert.deepEqual(w.types, ['snapshot'], 'a stream that did not ask gets whole snapshots');
    assert.equal(content(now), content(w), 'the rebuilt snapshot is the whole one');
    assert.ok(f.deltas >= 8, `registrations came as deltas (${f.deltas} deltas, ${f.wholes} whole)`);

    // Two deregister; a Service document changes.
    instances[2]?.send({ type: 'register', endpoints: [] });
    instances[5]?.send({ type: 'register', endpoints: [] });
    now = await f.until((s) => catalog(s) === 6);
    assert.deepEqual(
      now.endpoints.catalog?.map((e) => e.address),
      [9100, 9101, 9103, 9104, 9106, 9107].map((p) => `127.0.0.1:${p}`),
    );
    await putResources(store, [serviceDoc('products', { endpoints: [{ address: '127.0.0.1:9002' }] })]);
    now = await f.until((s) => JSON.stringify(s.services).includes('127.0.0.1:9002'));
    w = await whole(cp, m, 'checkout', 'co-whole-2');
    assert.equal(content(now), content(w));
    assert.equal(f.wholes, 1, 'after the first snapshot, only deltas');

    const metrics = await cp.registry.metrics();
    const bytes = (kind: string): number => sampleSum(metrics, 'trellis_controlplane_pushed_bytes_total', { kind });
    assert.ok(bytes('delta') > 0, 'delta bytes are counted');
    assert.ok(bytes('snapshot') > 0);
  });

  it('through meshClient: a caller routes to instances as they register and deregister, the control plane sending deltas', async () => {
    const servers: http.Server[] = [];
    const ports: number[] = [];
    for (let i = 0; i < 3; i++) {
      const s = http.createServer((_req, res) => res.end(String(i)));
      await new Promise<void>((resolve) => s.listen(0, '127.0.0.1', resolve));
      servers.push(s);
      ports.push((s.address() as AddressInfo).port);
    }
    const before = await cp.registry.metrics();
    const deltaBytes = (text: string): number => sampleSum(text, 'trellis_controlplane_pushed_bytes_total', { kind: 'delta' });
    let mesh: Mesh | undefined;
    try {
      mesh = await meshClient({ service: 'checkout', controlPlane: [cp.url], token: mintToken(m, 'checkout'), cacheDir: await mkdtemp(path.join(tmpdir(), 'trellis-delta-')), logger: { warn: () => {} } });
      const reached = async (want: Set<string>): Promise<void> => {
        let seen = new Set<string>();
        for (let round = 0; round < 400; round++) {
          seen = new Set<string>();
          for (let i = 0; i < 12; i++) {
            const r = await mesh!.http('catalog').request({ path: '/' }).catch(() => undefined);
            if (r !== undefined) seen.add(await r.body.text());
          }
          if ([...want].every((x) => seen.has(x)) && [...seen].every((x) => want.has(x))) return;
          await new Promise((r) => setTimeout(r, 25));
        }
        assert.fail(`the caller reached ${[...seen].join(',')} instead of ${[...want].join(',')}`);
      };
      const insts: RawClient[] = [];
      for (let i = 0; i < 3; i++) {
        const inst = await rawClient(cp, m, 'catalog');
        clients.push(inst);
        insts.push(inst);
        inst.send(hello('catalog', `real-${i}`));
        inst.send({ type: 'register', endpoints: [{ address: `127.0.0.1:${ports[i]}`, protocol: 'http' }] });
      }
      // Earlier catalog instances of the first test deregistered or still hold addresses nobody
      // listens on: take them out so the caller's view is these three.
      for (const c of clients.slice(0, clients.length - 3)) c.send({ type: 'register', endpoints: [] });
      await reached(new Set(['0', '1', '2']));
      insts[1]?.send({ type: 'register', endpoints: [] });
      await reached(new Set(['0', '2']));
      assert.ok(deltaBytes(await cp.registry.metrics()) > deltaBytes(before), 'the caller got deltas');
    } finally {
      await mesh?.close({ drainTimeoutMs: 100 });
      for (const s of servers) s.close();
    }
  });
});

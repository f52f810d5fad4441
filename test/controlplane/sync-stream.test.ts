/**
 * The instance stream at the wire (docs/control-plane.md, "The instance stream"), against the
 * sync module on a real HTTP/2 + mTLS server with a MemoryStore: snapshots carry exactly the
 * instance's view and follow store writes; ACK/NACK land in the instance's status; register puts
 * a leased record and `register []` removes it; a certificate for one service cannot subscribe
 * as another; unknown fields and oversized lines close the stream with a reason.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { KEYS } from '../../src/controlplane/store/store.js';
import type { InstanceStatus } from '../../src/controlplane/store/store.js';
import { hello, rawClient } from '../helpers/raw-stream-client.js';
import type { RawClient } from '../helpers/raw-stream-client.js';
import { makeCaMaterial, meshDoc, MemoryStore, putResources, serviceDoc, startCpFixture } from '../helpers/control-plane-fixture.js';
import type { CaMaterial, CpFixture } from '../helpers/control-plane-fixture.js';

const isSnapshot = (m: Record<string, unknown>): boolean => m.type === 'snapshot';

async function until<T>(f: () => Promise<T | undefined> | T | undefined): Promise<T> {
  for (;;) {
    const v = await f();
    if (v !== undefined) return v;
    await new Promise((r) => setTimeout(r, 25));
  }
}

describe('sync: the instance stream', () => {
  let m: CaMaterial;
  let store: MemoryStore;
  let cp: CpFixture;
  const clients: RawClient[] = [];

  before(async () => {
    m = await makeCaMaterial();
    store = new MemoryStore({ sweepMs: 50 });
    await putResources(store, [
      meshDoc(),
      serviceDoc('checkout', { protocol: 'http' }),
      serviceDoc('products', { endpoints: [{ address: '127.0.0.1:9001' }] }),
      serviceDoc('payments', { endpoints: [{ address: '127.0.0.1:9002' }], inbound: { authorization: { allow: [{ from: ['frontend'] }] } } }),
      serviceDoc('catalog', {}),
    ]);
    cp = await startCpFixture({ material: m, store, leaseTtlMs: 600 });
  });
  after(async () => {
    for (const c of clients) c.close();
    await cp.close();
    await store.close();
  });

  it('sends the view of the certificate\'s service, then every write that changes it, and records ACKs and NACKs', async () => {
    const c = await rawClient(cp, m, 'checkout');
    clients.push(c);
    c.send(hello('checkout', 'co-1'));
    const first = await c.next(isSnapshot);
    const names = (first.services as { metadata: { name: string } }[]).map((s) => s.metadata.name);
    // Not payments: its authorization admits only frontend.
    assert.deepEqual(names, ['catalog', 'checkout', 'products']);
    assert.deepEqual(first.endpoints, { catalog: [], checkout: [] });
    c.send({ type: 'ack', version: first.version });

    const rev = await putResources(store, [serviceDoc('products', { endpoints: [{ address: '127.0.0.1:9003' }] })]);
    const second = await c.next((x) => isSnapshot(x) && x.version === String(rev));
    const products = (second.services as { metadata: { name: string }; spec: { endpoints: unknown } }[]).find((s) => s.metadata.name === 'products');
    assert.deepEqual(products?.spec.endpoints, [{ address: '127.0.0.1:9003' }]);
    c.send({ type: 'nack', version: second.version, reason: 'spec.routes[0]: bad' });
    const status = await until(async () => {
      const s = (await store.get<InstanceStatus>(KEYS.instanceStatus('checkout', 'co-1')))?.value;
      return s?.nacked !== undefined ? s : undefined;
    });
    assert.equal(status.acked, first.version);
    assert.deepEqual({ version: status.nacked?.version, reason: status.nacked?.reason }, { version: second.version, reason: 'spec.routes[0]: bad' });
    assert.equal(status.sent, second.version);

    // A write outside the view (payments) sends nothing; the NACKed version is not re-sent.
    const before = c.messages.filter(isSnapshot).length;
    await putResources(store, [serviceDoc('payments', { endpoints: [{ address: '127.0.0.1:9004' }], inbound: { authorization: { allow: [{ from: ['frontend'] }] } } })]);
    c.send({ type: 'ping', now: Date.now() });
    await c.next((x) => x.type === 'pong');
    await new Promise((r) => setTimeout(r, 100));
    assert.equal(c.messages.filter(isSnapshot).length, before);
    const metrics = await cp.registry.metrics();
    assert.match(metrics, /trellis_controlplane_nacks_total\{service="checkout"\} 1/);
    assert.match(metrics, /trellis_controlplane_connected_instances 1/);
  });

  it('registers under a lease: appears in the views of callers, goes at once with register [], and when the lease lapses', async () => {
    const caller = await rawClient(cp, m, 'checkout');
    clients.push(caller);
    caller.send(hello('checkout', 'co-2'));
    const s0 = await caller.next(isSnapshot);
    caller.send({ type: 'ack', version: s0.version });

    const inst = await rawClient(cp, m, 'catalog');
    clients.push(inst);
    inst.send(hello('catalog', 'cat-1'));
    inst.send({ type: 'register', endpoints: [{ address: '127.0.0.1:9100', protocol: 'http' }] });
    const withIt = await caller.next((x) => isSnapshot(x) && JSON.stringify(x.endpoints).includes('127.0.0.1:9100'));
    assert.deepEqual((withIt.endpoints as Record<string, unknown>).catalog, [{ address: '127.0.0.1:9100', labels: { zone: 'a' }, instance: 'cat-1' }]);
    caller.send({ type: 'ack', version: withIt.version });
    assert.ok(await store.get(KEYS.instance('catalog', 'cat-1')));

    inst.send({ type: 'register', endpoints: [] });
    const without = await caller.next((x) => isSnapshot(x) && Number(x.version) > Number(withIt.version));
    assert.deepEqual((without.endpoints as Record<string, unknown>).catalog, []);
    caller.send({ type: 'ack', version: without.version });

    // Registered again, then the stream is cut without deregistering: the lease (600 ms here) decides.
    inst.send({ type: 'register', endpoints: [{ address: '127.0.0.1:9101', protocol: 'http' }] });
    const again = await caller.next((x) => isSnapshot(x) && JSON.stringify(x.endpoints).includes('127.0.0.1:9101'));
    caller.send({ type: 'ack', version: again.version });
    inst.close();
    const gone = await caller.next((x) => isSnapshot(x) && Number(x.version) > Number(again.version));
    assert.deepEqual((gone.endpoints as Record<string, unknown>).catalog, []);
    assert.equal(await store.get(KEYS.instance('catalog', 'cat-1')), undefined);
    await until(async () => ((await store.get(KEYS.instanceStatus('catalog', 'cat-1'))) === undefined ? true : undefined));
  });

  it('keeps one snapshot in flight: writes while it is unacknowledged are coalesced into the latest after the ACK', async () => {
    const c = await rawClient(cp, m, 'checkout');
    clients.push(c);
    c.send(hello('checkout', 'co-inflight'));
    const first = await c.next(isSnapshot);
    // Not ACKed: three writes, each followed by a flush window and a ping round trip.
    const pongs = (): number => c.messages.filter((y) => y.type === 'pong').length;
    let last = 0;
    for (const port of [9201, 9202, 9203]) {
      last = await putResources(store, [serviceDoc('products', { endpoints: [{ address: `127.0.0.1:${port}` }] })]);
      await new Promise((r) => setTimeout(r, 60));
      const n = pongs();
      c.send({ type: 'ping', now: Date.now() });
      await until(() => pongs() > n || undefined);
    }
    assert.equal(c.messages.filter(isSnapshot).length, 1);
    c.send({ type: 'ack', version: first.version });
    const next = await c.next((x) => isSnapshot(x) && x !== first);
    assert.equal(next.version, String(last));
    assert.match(JSON.stringify(next.services), /127\.0\.0\.1:9203/);
    assert.equal(c.messages.filter(isSnapshot).length, 2);
  });

  it('pings keep a registered instance\'s lease alive past its TTL', async () => {
    const inst = await rawClient(cp, m, 'catalog');
    clients.push(inst);
    inst.send(hello('catalog', 'cat-alive'));
    inst.send({ type: 'register', endpoints: [{ address: '127.0.0.1:9300', protocol: 'http' }] });
    await until(async () => (await store.get(KEYS.instance('catalog', 'cat-alive'))) !== undefined || undefined);
    // Five lease lives (600 ms each), a ping every 150 ms: the record stays.
    for (let i = 0; i < 20; i++) {
      inst.send({ type: 'ping', now: Date.now() });
      await new Promise((r) => setTimeout(r, 150));
    }
    assert.ok(await store.get(KEYS.instance('catalog', 'cat-alive')));
    inst.close();
    await until(async () => ((await store.get(KEYS.instance('catalog', 'cat-alive'))) === undefined ? true : undefined));
  });

  it('an instance that never registered leaves no status behind when its stream ends', async () => {
    const c = await rawClient(cp, m, 'checkout');
    c.send(hello('checkout', 'co-pure'));
    const s = await c.next(isSnapshot);
    c.send({ type: 'ack', version: s.version });
    await until(async () => (await store.get<InstanceStatus>(KEYS.instanceStatus('checkout', 'co-pure')))?.value.acked);
    c.close();
    await until(async () => ((await store.get(KEYS.instanceStatus('checkout', 'co-pure'))) === undefined ? true : undefined));
  });

  it('a certificate for one service cannot subscribe or register as another', async () => {
    const c = await rawClient(cp, m, 'checkout');
    clients.push(c);
    c.send(hello('payments', 'impostor'));
    const err = await c.next((x) => x.type === 'error');
    assert.equal(err.code, 'TRELLIS_FORBIDDEN');
    assert.match(String(err.message), /spiffe:\/\/sync\.test\/svc\/checkout.*cannot subscribe or register as "payments"/);
    await c.ended;
    assert.equal(c.messages.filter(isSnapshot).length, 0);
    assert.equal(await store.get(KEYS.instanceStatus('payments', 'impostor')), undefined);
  });

  it('refuses unknown fields, messages before hello and oversized lines, closing with the reason', async () => {
    const a = await rawClient(cp, m, 'checkout');
    clients.push(a);
    a.send({ ...hello('checkout', 'co-3'), sneaky: true });
    const e1 = await a.next((x) => x.type === 'error');
    assert.equal(e1.code, 'TRELLIS_INVALID_ARGUMENT');
    assert.match(String(e1.message), /hello\.sneaky: unknown field/);
    await a.ended;

    const b = await rawClient(cp, m, 'checkout');
    clients.push(b);
    b.send({ type: 'ping', now: Date.now() });
    assert.match(String((await b.next((x) => x.type === 'error')).message), /first message must be hello/);

    const d = await rawClient(cp, m, 'catalog');
    clients.push(d);
    d.send(hello('catalog', 'cat-ssrf'));
    d.send({ type: 'register', endpoints: [{ address: '169.254.169.254:80', protocol: 'http' }] });
    assert.match(String((await d.next((x) => x.type === 'error')).message), /169\.254\.169\.254:80 is link-local/);
    assert.equal(await store.get(KEYS.instance('catalog', 'cat-ssrf')), undefined);

    const c = await rawClient(cp, m, 'checkout');
    clients.push(c);
    c.send(hello('checkout', 'co-4'));
    await c.next(isSnapshot);
    c.sendRaw('{"type":"report","x":"' + 'a'.repeat(4 * 1024 * 1024) + '"}\n');
    const e3 = await c.next((x) => x.type === 'error');
    assert.match(String(e3.message), /longer than 4194304 bytes/);
  });
});

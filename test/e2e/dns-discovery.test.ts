/**
 * DNS discovery through the mesh, against a real DNS server on 127.0.0.1: A records and SRV
 * records (as Kubernetes headless services publish them) become endpoints; a changed answer
 * changes them under load without losing a request; a failing DNS server keeps the last answer.
 */
import { describe, it, after } from 'node:test';
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { meshClient } from 'trellis';
import { TestDnsServer } from '../discovery/dns-server.js';
import { quietLogger, runLoad, startServers } from '../helpers/servers.js';

const cleanup: (() => Promise<void> | void)[] = [];
after(async () => {
  for (const c of cleanup.reverse()) await c();
});

describe('DNS discovery', () => {
  it('resolves SRV records to endpoints, follows changes under load, and survives a failing server', async () => {
    const ss = await startServers(3, 'dns');
    cleanup.push(() => Promise.all(ss.map((s) => s.close())).then(() => undefined));
    const [a, b, c] = ss;
    assert.ok(a && b && c);
    const dns = await TestDnsServer.start({
      '_http._tcp.products.shop.svc': { srv: [{ priority: 0, weight: 1, port: a.port, target: 'pod-a.shop.svc' }, { priority: 0, weight: 1, port: b.port, target: 'pod-b.shop.svc' }], ttl: 1 },
      'pod-a.shop.svc': { a: ['127.0.0.1'], ttl: 1 },
      'pod-b.shop.svc': { a: ['127.0.0.1'], ttl: 1 },
    });
    cleanup.push(() => dns.close());
    const logger = quietLogger();
    const mesh = await meshClient({
      logger,
      config: `apiVersion: trellis/v1
kind: Mesh
metadata: { name: default }
spec: { dns: { servers: ["${dns.address}"], refreshInterval: 500ms, minTtl: 200ms } }
---
apiVersion: trellis/v1
kind: Service
metadata: { name: products }
spec:
  dns: _http._tcp.products.shop.svc
  loadBalancer: round-robin
`,
    });
    cleanup.push(() => mesh.close());
    for (let i = 0; i < 4; i++) await (await mesh.http('products').request({ path: '/' })).body.text();
    assert.equal(a.hits, 2);
    assert.equal(b.hits, 2);

    // Scale: c replaces a while requests flow.
    const load = runLoad(1500, 8, async () => {
      const r = await mesh.http('products').request({ path: '/' });
      await r.body.text();
      assert.equal(r.statusCode, 200);
    });
    await sleep(100);
    dns.set('_http._tcp.products.shop.svc', { srv: [{ priority: 0, weight: 1, port: b.port, target: 'pod-b.shop.svc' }, { priority: 0, weight: 1, port: c.port, target: 'pod-b.shop.svc' }], ttl: 1 });
    const result = await load;
    assert.equal(result.errors.length, 0, String(result.errors[0]));
    // Polled on what the mesh reports; the bound only ends a hopeless wait.
    const deadline = Date.now() + 15_000;
    while (Date.now() < deadline && !mesh.inspect().services[0]?.endpoints.some((e) => e.id === c.address)) await sleep(50);
    const ids = mesh.inspect().services[0]?.endpoints.map((e) => e.id).sort();
    assert.deepEqual(ids, [b.address, c.address].sort());

    // The DNS server fails: the last good endpoints stay.
    // The DNS server fails: the last good endpoints stay. Waits for the failure to be seen (the
    // warning, once the next query fails) instead of sleeping a guessed 800 ms.
    const queriesBefore = dns.queries.length;
    dns.mode = 'servfail';
    const failed = (): boolean => logger.messages.some((m) => /keeping the last good endpoints/.test(m));
    const until = Date.now() + 15_000;
    while (Date.now() < until && !failed()) await sleep(50);
    assert.ok(failed(), logger.messages.join('\n'));
    assert.ok(dns.queries.length > queriesBefore, 'the mesh asked the failing server again');
    c.hits = 0;
    b.hits = 0;
    for (let i = 0; i < 4; i++) await (await mesh.http('products').request({ path: '/' })).body.text();
    assert.equal(b.hits + c.hits, 4);
    assert.ok(c.hits > 0 && b.hits > 0, 'both last good endpoints still serve');
  });
});

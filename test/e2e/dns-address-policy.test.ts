/**
 * DNS answers obey the address policy static endpoints obey (RELIABILITY "SSRF through routing
 * data"): against a real DNS server on 127.0.0.1, an A answer of 169.254.169.254 (the cloud
 * metadata service) next to 127.0.0.1, AAAA answers of :: and fe80::1, and an SRV target written
 * as a link-local literal are dropped with one warning per address naming the service, however
 * many refreshes repeat them; only loopback becomes an endpoint and the loopback server sees the
 * requests. An answer of refused addresses only keeps the last good endpoints.
 */
import { describe, it, after } from 'node:test';
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { meshClient } from 'trellis';
import type { Mesh } from 'trellis';
import { TestDnsServer } from '../discovery/dns-server.js';
import { quietLogger, startServer } from '../helpers/servers.js';

const cleanup: (() => Promise<void> | void)[] = [];
after(async () => {
  for (const c of cleanup.reverse()) await c();
});

function config(dnsAddress: string, target: string): string {
  return `apiVersion: trellis/v1
kind: Mesh
metadata: { name: default }
spec: { dns: { servers: ["${dnsAddress}"], refreshInterval: 200ms, minTtl: 50ms } }
---
apiVersion: trellis/v1
kind: Service
metadata: { name: products }
spec:
  dns: ${target}
  loadBalancer: round-robin
`;
}

/** Endpoint ids once discovery has published a non-empty set (polled: discovery is asynchronous). */
async function endpointIds(mesh: Mesh): Promise<string[]> {
  for (let i = 0; i < 500; i++) {
    const eps = mesh.inspect().services[0]?.endpoints ?? [];
    if (eps.length > 0) return eps.map((e) => e.id).sort();
    await sleep(10);
  }
  throw new Error('discovery published no endpoint');
}

/** Waits until the DNS server has answered `n` more questions (several refresh rounds). */
async function refreshes(dns: TestDnsServer, n: number): Promise<void> {
  const target = dns.queries.length + n;
  while (dns.queries.length < target) await sleep(20);
}

describe('DNS answers and the address policy', () => {
  it('drops link-local, unspecified and multicast answers with one warning each; loopback is used', async () => {
    const s = await startServer('products');
    cleanup.push(() => s.close());
    const dns = await TestDnsServer.start({
      'products.shop.svc': { a: ['169.254.169.254', '127.0.0.1', '0.0.0.0', '224.0.0.1'], aaaa: ['::', 'fe80::1'], ttl: 0 },
    });
    cleanup.push(() => dns.close());
    const logger = quietLogger();
    const mesh = await meshClient({ logger, config: config(dns.address, `products.shop.svc:${s.port}`) });
    cleanup.push(() => mesh.close());

    assert.deepEqual(await endpointIds(mesh), [`127.0.0.1:${s.port}`]);
    await refreshes(dns, 8);
    for (const address of ['169.254.169.254', '0.0.0.0', '224.0.0.1', '::', 'fe80::1']) {
      const warnings = logger.messages.filter((m) => m.includes(`DNS answered ${address} `));
      assert.equal(warnings.length, 1, `one warning for ${address}, not one per refresh: ${JSON.stringify(logger.messages)}`);
      assert.match(warnings[0] ?? '', /service products/);
    }
    assert.match(logger.messages.find((m) => m.includes('169.254.169.254')) ?? '', /link-local/);

    for (let i = 0; i < 10; i++) {
      const res = await mesh.http('products').request({ path: '/' });
      assert.equal(res.statusCode, 200);
      await res.body.dump();
    }
    assert.equal(s.hits, 10, 'the loopback server saw every request');

    // An answer of refused addresses only is not taken as "no endpoints": the last good set stays.
    dns.set('products.shop.svc', { a: ['169.254.169.254'], ttl: 0 });
    await refreshes(dns, 6);
    assert.deepEqual(await endpointIds(mesh), [`127.0.0.1:${s.port}`]);
    const res = await mesh.http('products').request({ path: '/' });
    assert.equal(res.statusCode, 200);
    await res.body.dump();
    assert.equal(s.hits, 11);
  });

  it('holds SRV targets written as IP literals to the same policy', async () => {
    const s = await startServer('products');
    cleanup.push(() => s.close());
    const dns = await TestDnsServer.start({
      '_http._tcp.products.shop.svc': {
        srv: [
          { priority: 0, weight: 1, port: s.port, target: '169.254.169.254' },
          { priority: 0, weight: 1, port: s.port, target: 'pod-a.shop.svc' },
        ],
        ttl: 0,
      },
      'pod-a.shop.svc': { a: ['127.0.0.1'], ttl: 0 },
    });
    cleanup.push(() => dns.close());
    const logger = quietLogger();
    const mesh = await meshClient({ logger, config: config(dns.address, '_http._tcp.products.shop.svc') });
    cleanup.push(() => mesh.close());

    assert.deepEqual(await endpointIds(mesh), [`127.0.0.1:${s.port}`]);
    await refreshes(dns, 6);
    assert.equal(logger.messages.filter((m) => m.includes('DNS answered 169.254.169.254 ') && m.includes('service products')).length, 1);
    const res = await mesh.http('products').request({ path: '/' });
    assert.equal(res.statusCode, 200);
    await res.body.dump();
    assert.equal(s.hits, 1);
  });
});

/**
 * dnsSource against a real UDP DNS server on 127.0.0.1 (test/discovery/dns-server.ts):
 * answers, TTL-driven re-resolution, failures, held removals and clean shutdown.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { fileURLToPath } from 'node:url';
import { afterEach, beforeEach, describe, it } from 'node:test';
import { dnsSource, type DnsSourceOptions } from '../../src/discovery/dns-source.js';
import { DnsQueryError } from '../../src/discovery/dns-resolve.js';
import type { EndpointSource } from '../../src/discovery/endpoint.js';
import type { DnsSpec } from '../../src/config/types.js';
import { Collector, sleep, waitFor } from './collector.js';
import { TestDnsServer } from './dns-server.js';

describe('dnsSource over a real DNS server', () => {
  let server: TestDnsServer;
  const sources: EndpointSource[] = [];

  beforeEach(async () => {
    server = await TestDnsServer.start();
  });
  afterEach(async () => {
    for (const s of sources.splice(0)) s.close();
    await server.close();
  });

  function start(spec: Partial<DnsSpec> & { name: string }, opts: Partial<DnsSourceOptions> = {}) {
    const c = new Collector();
    const source = dnsSource(
      { port: undefined, type: 'a', labels: {}, ...spec },
      { servers: [server.address], refreshIntervalMs: 300, minTtlMs: 50, queryTimeoutMs: 150, queryTries: 1, onWarn: c.onWarn, ...opts },
    );
    sources.push(source);
    source.start(c.onUpdate, c.onError);
    return { c, source };
  }

  it('A and AAAA records become endpoints on the spec port, with labels, sorted by id', async () => {
    server.set('products.test', { a: ['127.0.0.2', '127.0.0.1'], aaaa: ['::1'], ttl: 30 });
    const { c, source } = start({ name: 'products.test', port: 8080, labels: { zone: 'a' } });
    await waitFor(() => c.updates.length === 1, 2000, 'first update');
    const eps = c.updates[0]?.value ?? [];
    assert.deepEqual(eps.map((e) => e.id), ['127.0.0.1:8080', '127.0.0.2:8080', '[::1]:8080']);
    assert.deepEqual(eps.map((e) => e.host), ['127.0.0.1', '127.0.0.2', '::1']);
    for (const e of eps) {
      assert.equal(e.port, 8080);
      assert.deepEqual(e.labels, { zone: 'a' });
      assert.equal(e.weight, 1);
    }
    assert.equal(source.description, 'dns products.test:8080');
    assert.deepEqual(c.errors, []);
    assert.ok(server.queries.includes('A products.test') && server.queries.includes('AAAA products.test'));
  });

  it('an IPv6-only name (A is NODATA) resolves to its AAAA records', async () => {
    server.set('v6.test', { aaaa: ['::1'] });
    const { c } = start({ name: 'v6.test', port: 9000 });
    await waitFor(() => c.updates.length === 1, 2000, 'first update');
    assert.deepEqual(c.latestIds(), ['[::1]:9000']);
    assert.deepEqual(c.errors, []);
  });

  it('SRV: lowest-priority group, ports and weights from the records, targets by name or IP', async () => {
    server.set('_http._tcp.products.test', {
      srv: [
        { priority: 10, weight: 30, port: 9001, target: 'a.products.test' },
        { priority: 10, weight: 0, port: 9002, target: 'b.products.test' },
        { priority: 10, weight: 5, port: 9003, target: '127.0.0.3' },
        { priority: 20, weight: 50, port: 9999, target: 'backup.products.test' },
      ],
    });
    server.set('a.products.test', { a: ['127.0.0.1'] });
    server.set('b.products.test', { a: ['127.0.0.2'] });
    server.set('backup.products.test', { a: ['127.0.0.9'] });
    const { c, source } = start({ name: '_http._tcp.products.test', type: 'srv', labels: { via: 'srv' } });
    await waitFor(() => c.updates.length === 1, 2000, 'first update');
    const eps = c.updates[0]?.value ?? [];
    assert.deepEqual(
      eps.map((e) => [e.id, e.weight]),
      [['127.0.0.1:9001', 30], ['127.0.0.2:9002', 1], ['127.0.0.3:9003', 5]],
    );
    assert.deepEqual(eps[0]?.labels, { via: 'srv' });
    assert.equal(source.description, 'dns srv _http._tcp.products.test');
    assert.ok(!server.queries.includes('A backup.products.test'), 'higher priority group not resolved');
  });

  it('SRV: falls to the next priority group only when every target of the lower one is gone', async () => {
    server.set('_svc._tcp.x.test', {
      srv: [
        { priority: 1, weight: 1, port: 1000, target: 'deleted.x.test' },
        { priority: 2, weight: 1, port: 2000, target: 'backup.x.test' },
      ],
    });
    server.set('backup.x.test', { a: ['127.0.0.5'] });
    const { c } = start({ name: '_svc._tcp.x.test', type: 'srv' });
    await waitFor(() => c.updates.length === 1, 2000, 'first update');
    assert.deepEqual(c.latestIds(), ['127.0.0.5:2000']);
  });

  it('re-resolves at the record TTL (1 s) and publishes the changed set, not sooner and not twice', async () => {
    server.set('ttl.test', { a: ['127.0.0.1'], ttl: 1 });
    const { c } = start({ name: 'ttl.test', port: 80 }, { refreshIntervalMs: 5000, minTtlMs: 100 });
    await waitFor(() => c.updates.length === 1, 2000, 'first update');
    const first = c.updates[0]?.at ?? 0;
    server.set('ttl.test', { a: ['127.0.0.1', '127.0.0.2'], ttl: 1 });
    await sleep(600);
    assert.equal(server.queries.filter((q) => q === 'A ttl.test').length, 1, 'no query before the TTL ran out');
    await waitFor(() => c.updates.length === 2, 4500, 'second update');
    assert.deepEqual(c.latestIds(), ['127.0.0.1:80', '127.0.0.2:80']);
    const gap = (c.updates[1]?.at ?? 0) - first;
    // Not before the 1 s TTL (load cannot make it early); well before the 5 s refresh interval
    // (the upper bound only tells the TTL from the interval, with room for a loaded machine).
    assert.ok(gap >= 900 && gap < 4500, `re-resolved after ${gap} ms`);
  });

  it('publishes only when the set changes', async () => {
    server.set('stable.test', { a: ['127.0.0.1'], ttl: 0 });
    const { c } = start({ name: 'stable.test', port: 80 }, { refreshIntervalMs: 100, minTtlMs: 20 });
    await waitFor(() => server.queries.filter((q) => q === 'A stable.test').length >= 4, 2000, 'several queries');
    assert.equal(c.updates.length, 1);
  });

  it('SERVFAIL keeps the last good set, reports an error, backs off and recovers', async () => {
    server.set('flaky.test', { a: ['127.0.0.1'] });
    const { c, source } = start({ name: 'flaky.test', port: 80 }, { refreshIntervalMs: 400, minTtlMs: 50 });
    await waitFor(() => c.updates.length === 1, 2000, 'first update');
    const t0 = performance.now();
    const before = server.queries.filter((q) => q === 'A flaky.test').length;
    server.mode = 'servfail';
    await waitFor(() => c.errors.length >= 3, 10_000, 'three errors');
    await sleep(1000);
    const err = c.errors[0]?.value;
    assert.ok(err instanceof DnsQueryError);
    assert.equal(err.code, 'ESERVFAIL');
    assert.equal(err.hostname, 'flaky.test');
    assert.equal(c.updates.length, 1, 'nothing published while failing');
    assert.ok(source.status().consecutiveFailures >= 3);
    // The backoff, judged by how many queries the server saw: retries wait 50, 100, 200, then
    // 400 ms (minTtl doubling, capped at refreshInterval), so in E ms at most 1 + #{k: S_k <= E}
    // failing queries fit, S_k the sum of the first k waits. A loaded machine only stretches the
    // waits, so fewer queries, never more; without the backoff (every 50 ms) there would be ~25.
    const elapsed = performance.now() - t0;
    let bound = 1;
    for (let k = 1, sum = 0; ; k++) {
      sum += Math.min(50 * 2 ** (k - 1), 400);
      if (sum > elapsed) break;
      bound++;
    }
    const failing = server.queries.filter((q) => q === 'A flaky.test').length - before;
    assert.ok(failing >= 3 && failing <= bound, `${failing} queries in ${elapsed.toFixed(0)} ms of SERVFAIL; backoff allows at most ${bound}`);
    server.set('flaky.test', { a: ['127.0.0.7'] });
    server.mode = 'answer';
    await waitFor(() => c.updates.length === 2, 2000, 'recovery');
    assert.deepEqual(c.latestIds(), ['127.0.0.7:80']);
    assert.equal(source.status().consecutiveFailures, 0);
  });

  it('a server that stops answering (timeout) keeps the last good set and reports ETIMEOUT', async () => {
    server.set('silent.test', { a: ['127.0.0.1'] });
    const { c } = start({ name: 'silent.test', port: 80 });
    await waitFor(() => c.updates.length === 1, 2000, 'first update');
    server.mode = 'drop';
    await waitFor(() => c.errors.length >= 1, 3000, 'an error');
    assert.equal((c.errors[0]?.value as DnsQueryError).code, 'ETIMEOUT');
    assert.deepEqual(c.latestIds(), ['127.0.0.1:80']);
    assert.equal(c.updates.length, 1);
  });

  it('a server that is gone (ECONNREFUSED) keeps the last good set', async () => {
    server.set('refused.test', { a: ['127.0.0.1'] });
    const { c } = start({ name: 'refused.test', port: 80 });
    await waitFor(() => c.updates.length === 1, 2000, 'first update');
    await server.close();
    await waitFor(() => c.errors.length >= 1, 3000, 'an error');
    assert.equal((c.errors[0]?.value as DnsQueryError).code, 'ECONNREFUSED');
    assert.equal(c.updates.length, 1);
    server = await TestDnsServer.start(); // for afterEach
  });

  it('NXDOMAIN after a good answer: held for the grace period with a loud warning, then empty', async () => {
    server.set('deleted.test', { a: ['127.0.0.1', '127.0.0.2'] });
    const { c, source } = start({ name: 'deleted.test', port: 80 }, { refreshIntervalMs: 300, minTtlMs: 50 });
    await waitFor(() => c.updates.length === 1, 2000, 'first update');
    server.remove('deleted.test');
    await waitFor(() => c.warnings.length >= 1, 2000, 'hold warning');
    const held = c.warnings[0]!;
    assert.match(held.value, /HOLDING the last 2 endpoint\(s\) for 300 ms/);
    assert.match(held.value, /NXDOMAIN/);
    assert.ok(source.status().holdingSince !== undefined);
    await waitFor(() => c.updates.length === 2, 2000, 'empty update');
    const removedAt = c.updates[1]!.at;
    assert.deepEqual(c.updates[1]?.value, []);
    assert.ok(removedAt - held.at >= 290, `held ${removedAt - held.at} ms`);
    assert.ok(c.warnings.some((w) => /removing all 2 endpoint/.test(w.value)));
    assert.deepEqual(c.errors, [], 'a gone name is an answer, not an error');
  });

  it('NODATA after a good answer is held too, and records coming back cancel the removal', async () => {
    server.set('blip.test', { a: ['127.0.0.1'] });
    const { c, source } = start({ name: 'blip.test', port: 80 }, { refreshIntervalMs: 400, minTtlMs: 50 });
    await waitFor(() => c.updates.length === 1, 2000, 'first update');
    server.set('blip.test', {}); // the name exists, with no A/AAAA records
    await waitFor(() => c.warnings.length >= 1, 2000, 'hold warning');
    assert.match(c.warnings[0]!.value, /NODATA/);
    server.set('blip.test', { a: ['127.0.0.1'] });
    await waitFor(() => c.warnings.length >= 2, 2000, 'recovery warning');
    assert.match(c.warnings[1]!.value, /back/);
    await sleep(500);
    assert.equal(c.updates.length, 1, 'the set was never emptied');
    assert.equal(source.status().holdingSince, undefined);
  });

  it('a name that never existed publishes an empty set at once, with a warning', async () => {
    const { c } = start({ name: 'typo.test', port: 80 });
    await waitFor(() => c.updates.length === 1, 2000, 'first update');
    assert.deepEqual(c.updates[0]?.value, []);
    assert.match(c.warnings[0]?.value ?? '', /typo\.test.*NXDOMAIN/);
    server.set('typo.test', { a: ['127.0.0.4'] });
    await waitFor(() => c.updates.length === 2, 2000, 'it appears');
    assert.deepEqual(c.latestIds(), ['127.0.0.4:80']);
  });

  it('close() stops queries and callbacks, also with a query in flight', async () => {
    server.set('closing.test', { a: ['127.0.0.1'], ttl: 0 });
    const { c, source } = start({ name: 'closing.test', port: 80 }, { refreshIntervalMs: 100, minTtlMs: 20 });
    await waitFor(() => c.updates.length === 1, 2000, 'first update');
    source.close();
    const queries = server.queries.length;
    await sleep(200);
    assert.equal(server.queries.length, queries, 'no query after close');

    server.mode = 'drop';
    const second = start({ name: 'closing.test', port: 80 }, { queryTimeoutMs: 1000 });
    await waitFor(() => server.queries.length > queries, 2000, 'query in flight');
    second.source.close();
    await sleep(100);
    assert.deepEqual(second.c.updates, []);
    assert.deepEqual(second.c.errors, [], 'a cancelled query reports nothing');
  });

  it('holds nothing that keeps the process alive (unref timers; close cancels queries)', async () => {
    server.set('exit.test', { a: ['127.0.0.1'], ttl: 0 });
    const child = fileURLToPath(new URL('./fixtures/dns-exit-child.ts', import.meta.url));
    for (const mode of ['no-close', 'close-in-flight']) {
      if (mode === 'close-in-flight') server.mode = 'drop';
      const proc = spawn(process.execPath, ['--import', 'tsx', child, server.address, mode], { stdio: ['ignore', 'pipe', 'inherit'] });
      let out = '';
      proc.stdout.on('data', (d: Buffer) => (out += d.toString()));
      const killer = setTimeout(() => proc.kill('SIGKILL'), 15_000);
      const [code] = (await once(proc, 'exit')) as [number | null];
      clearTimeout(killer);
      assert.equal(code, 0, `${mode}: child exited on its own (output: ${out})`);
      if (mode === 'no-close') {
        assert.match(out, /updated 127\.0\.0\.1:80/);
      } else {
        // The dropped query would hold the loop for seconds (c-ares timeout) without close()'s cancel.
        const ms = Number(/closed, exited (\d+) ms later/.exec(out)?.[1] ?? NaN);
        assert.ok(ms < 1000, `${mode}: exited ${ms} ms after close`);
      }
    }
  });
});

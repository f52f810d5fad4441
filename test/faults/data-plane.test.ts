/**
 * The fault matrix, data-plane rows C1-C9 (RELIABILITY §4), against real processes and
 * servers on 127.0.0.1. Each row judges by what the other side saw (the upstream's own record
 * of requests, typed error codes) and prints its figures with t.diagnostic; docs/reliability.md
 * holds the figures observed. Every load loop is bounded in count and in time.
 */
import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { Registry } from 'prom-client';
import { meshClient, isTrellisError } from 'trellis';
import type { Mesh } from 'trellis';
import { quietLogger, serviceYaml, startServer } from '../helpers/servers.js';
import { startFaultProxy } from './fault-proxy.js';
import { boundedLoad, codeOf, codesOf, exited, ms, percentile, rawServer, startCountingUpstream, tally } from './helpers.js';
import type { CountingUpstream } from './helpers.js';

const cleanup: (() => Promise<void> | void)[] = [];
after(async () => {
  for (const c of cleanup.reverse()) await c();
});

async function mesh(config: string, extra: { registry?: Registry; service?: string } = {}): Promise<Mesh> {
  const m = await meshClient({
    config,
    logger: quietLogger(),
    ...(extra.service !== undefined ? { service: extra.service } : {}),
    ...(extra.registry !== undefined ? { metrics: { registry: extra.registry } } : {}),
  });
  cleanup.push(() => m.close());
  return m;
}

/** Polls `cond` every 20 ms for at most `maxMs`; resolves with the time it took, or -1. */
async function waitFor(cond: () => boolean, maxMs: number): Promise<number> {
  const t0 = performance.now();
  while (performance.now() - t0 < maxMs) {
    if (cond()) return performance.now() - t0;
    await sleep(20);
  }
  return cond() ? performance.now() - t0 : -1;
}

const ejected = (m: Mesh, service: string, id: string): boolean =>
  m.inspect().services.find((s) => s.name === service)?.endpoints.find((e) => e.id === id)?.ejected === true;

async function get(m: Mesh, service: string, path: string, headers: Record<string, string> = {}): Promise<{ status: number; text: string }> {
  const res = await m.http(service).request({ method: 'GET', path, headers });
  return { status: res.statusCode, text: await res.body.text() };
}

describe('fault matrix: data plane', () => {
  let c6BodyErrors: string[] = [];
  it('C1: SIGKILL 1 of 3 upstream processes under load: 0 idempotent lost, no POST sent twice', async (t) => {
    const ups: CountingUpstream[] = await Promise.all(['c1a', 'c1b', 'c1c'].map((n) => startCountingUpstream(n, { delayMs: 3 })));
    cleanup.push(() => ups.forEach((u) => u.kill()));
    const m = await mesh(serviceYaml('products', ups.map((u) => ({ address: u.address })), 'loadBalancer: round-robin\nretries: { attempts: 3, on: [connect-failure, reset, gateway-error] }'));
    const call = async (i: number, phase: string): Promise<void> => {
      const id = `${phase}-${i}`;
      const post = i % 4 === 3;
      const res = await m.http('products').request({ method: post ? 'POST' : 'GET', path: `/item/${i}`, headers: { 'x-request-id': id }, ...(post ? { body: 'order' } : {}) });
      await res.body.dump();
      if (res.statusCode !== 200) throw new Error(`status ${res.statusCode}`);
    };
    await boundedLoad(100, 12, 10_000, (i) => call(i, 'warm'));
    const base = await boundedLoad(400, 12, 10_000, (i) => call(i, 'base'));
    assert.equal(base.errors.length, 0, String(base.errors[0]));

    const victim = ups[1] as CountingUpstream;
    let ejectWatch: Promise<number> = Promise.resolve(-1);
    const postErrors: unknown[] = [];
    const getErrors: unknown[] = [];
    const fault = await boundedLoad(1200, 12, 20_000, async (i) => {
      if (i === 200) {
        victim.kill('SIGKILL');
        // Watched while the load runs: the time from the kill to the ejection.
        ejectWatch = waitFor(() => ejected(m, 'products', victim.address), 10_000);
      }
      try {
        await call(i, 'fault');
      } catch (err) {
        (i % 4 === 3 ? postErrors : getErrors).push(err);
        throw err;
      }
    });
    await exited(victim);
    const ejectMs = await ejectWatch;

    // What the upstreams saw: no POST id arrived twice (never retried after bytes were sent).
    const postsSeen = new Map<string, number>();
    for (const u of ups) for (const r of u.seen) if (r.method === 'POST') postsSeen.set(r.id, (postsSeen.get(r.id) ?? 0) + 1);
    const duplicated = [...postsSeen].filter(([, n]) => n > 1);
    const untyped = postErrors.filter((e) => !isTrellisError(e));
    const gets = fault.started - Math.floor(fault.started / 4);
    t.diagnostic(`C1 lost idempotent ${getErrors.length}/${gets}; POST failed ${postErrors.length}/${fault.started - gets} (${tally(postErrors.map(codeOf))}), duplicated POSTs ${duplicated.length}`);
    t.diagnostic(`C1 p99 baseline ${ms(percentile(base.latencies, 99))}, during fault ${ms(percentile(fault.latencies, 99))}; ejected ${ejectMs < 0 ? 'never' : `${ejectMs.toFixed(0)} ms after the kill`}`);
    assert.deepEqual(getErrors.map(codeOf), [], 'no idempotent request lost');
    assert.deepEqual(duplicated, [], 'no POST reached the upstreams twice');
    assert.deepEqual(untyped, [], 'a failed POST fails with a typed error');
    assert.ok(ejectMs >= 0, 'the dead endpoint is ejected');
  });

  it('C2: hung upstream (fault proxy blackhole): perTryTimeout then retry elsewhere; deadline honoured', async (t) => {
    const good = await startServer('c2-good');
    const hungBack = await startServer('c2-behind-proxy');
    const proxy = await startFaultProxy({ port: hungBack.port }, { kind: 'blackhole' });
    cleanup.push(() => good.close(), () => hungBack.close(), () => proxy.close());
    const m = await mesh(
      serviceYaml('products', [{ address: proxy.address }, { address: good.address }], 'loadBalancer: round-robin\noutlierDetection: false\ntimeout: 3s\nretries: { attempts: 2, perTryTimeout: 200ms, on: [timeout] }') +
        '---\n' +
        serviceYaml('lost', [{ address: proxy.address }], 'timeout: 400ms'),
    );
    const r = await boundedLoad(40, 4, 15_000, async (i) => {
      const res = await get(m, 'products', `/c2/${i}`);
      assert.equal(res.status, 200);
    });
    // Deadline: only hung endpoints; the call ends with TRELLIS_TIMEOUT, and the upstream
    // behind the proxy never saw a request.
    const deadlines: string[] = [];
    const messages: string[] = [];
    const elapsed: number[] = [];
    for (let i = 0; i < 3; i++) {
      const t0 = performance.now();
      await get(m, 'lost', '/x').then(
        () => deadlines.push('success'),
        (err: unknown) => {
          deadlines.push(codeOf(err));
          messages.push((err as Error).message);
        },
      );
      elapsed.push(performance.now() - t0);
    }
    t.diagnostic(`C2 ${r.ok}/${r.started} succeeded via the other endpoint, p99 ${ms(percentile(r.latencies, 99))}; hung tries: ${proxy.connections} connections to the blackhole; upstream behind it saw ${hungBack.hits}`);
    t.diagnostic(`C2 timeout 400ms, only hung endpoints: ${tally(deadlines)}, took ${elapsed.map((e) => e.toFixed(0)).join('/')} ms`);
    assert.equal(r.errors.length, 0, String(r.errors[0]));
    assert.ok(good.hits >= 40);
    assert.ok(proxy.connections > 0, 'the hung endpoint was tried');
    assert.equal(hungBack.hits, 0);
    assert.deepEqual(deadlines, ['TRELLIS_TIMEOUT', 'TRELLIS_TIMEOUT', 'TRELLIS_TIMEOUT']);
    // The 400 ms deadline (not a default) is what ended each call, as the error says.
    assert.ok(messages.every((x) => /after 400 ?ms/.test(x)), messages.join('\n'));
  });

  it('C3: slowloris upstream (1 byte/s): per-try timeout, ejected, another destination unaffected', async (t) => {
    const slowBack = await startServer('c3-slow');
    const good = await startServer('c3-good');
    const other = await startServer('c3-other');
    const drip = await startFaultProxy({ port: slowBack.port }, { kind: 'drip', intervalMs: 1000 });
    cleanup.push(() => slowBack.close(), () => good.close(), () => other.close(), () => drip.close());
    const m = await mesh(
      serviceYaml('products', [{ address: drip.address }, { address: good.address }], 'loadBalancer: round-robin\ntimeout: 3s\nretries: { attempts: 2, perTryTimeout: 250ms, on: [timeout] }\noutlierDetection: { consecutiveFailures: 2, ejectionTime: 30s, maxEjectedPercent: 50 }') +
        '---\n' +
        serviceYaml('other', [{ address: other.address }]),
    );
    const base = await boundedLoad(200, 4, 10_000, async (i) => assert.equal((await get(m, 'other', `/b/${i}`)).status, 200));
    const otherDuring = boundedLoad(400, 4, 10_000, async (i) => assert.equal((await get(m, 'other', `/o/${i}`)).status, 200));
    const slow = await boundedLoad(20, 2, 10_000, async (i) => assert.equal((await get(m, 'products', `/p/${i}`)).status, 200));
    const during = await otherDuring;
    const isEjected = ejected(m, 'products', drip.address);
    t.diagnostic(`C3 products ${slow.ok}/${slow.started} ok (retried elsewhere), slow endpoint ${isEjected ? 'ejected' : 'NOT ejected'} after ${drip.connections} connection(s); slow upstream saw ${slowBack.hits}`);
    t.diagnostic(`C3 other destination: ${during.ok}/${during.started} ok; p99 baseline ${ms(percentile(base.latencies, 99))}, during slowloris ${ms(percentile(during.latencies, 99))}`);
    assert.equal(slow.errors.length, 0, String(slow.errors[0]));
    assert.equal(during.errors.length, 0, String(during.errors[0]));
    assert.ok(isEjected, 'the slow endpoint is ejected');
  });

  it('C4: slowloris downstream: 120 sockets at 1 byte/s into mesh.serve are closed; a legitimate caller is served', async (t) => {
    const server = await mesh(serviceYaml('c4', [{ address: '127.0.0.1:9' }]), { service: 'c4' });
    let served = 0;
    const srv = await server.serve(
      (_req, res) => {
        served++;
        res.end('ok');
      },
      { port: 0, host: '127.0.0.1', timeouts: { headersTimeoutMs: 1_500, requestTimeoutMs: 3_000, handshakeTimeoutMs: 1_500, checkIntervalMs: 250 } },
    );
    const caller = await mesh(serviceYaml('c4', [{ address: `127.0.0.1:${srv.port}` }]));
    const base = await boundedLoad(100, 2, 10_000, async (i) => assert.equal((await get(caller, 'c4', `/b/${i}`)).status, 200));
    const rss0 = process.memoryUsage().rss;
    const N = 120;
    const line = Buffer.from('GET / HTTP/1.1\r\nHost: c4\r\nX-Slow: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n');
    let closedByServer = 0;
    const sockets: net.Socket[] = [];
    const timers: NodeJS.Timeout[] = [];
    const t0 = performance.now();
    const closedAt: number[] = [];
    for (let i = 0; i < N; i++) {
      const s = net.connect({ host: '127.0.0.1', port: srv.port });
      s.on('error', () => {});
      let pos = 0;
      const timer = setInterval(() => {
        if (s.destroyed || pos >= line.length) return;
        s.write(line.subarray(pos, pos + 1));
        pos++;
      }, 1000);
      timers.push(timer);
      s.on('close', () => {
        clearInterval(timer);
        if (pos < line.length) {
          closedByServer++;
          closedAt.push(performance.now() - t0);
        }
      });
      sockets.push(s);
    }
    cleanup.push(() => {
      for (const x of timers) clearInterval(x);
      for (const s of sockets) s.destroy();
    });
    const during = await boundedLoad(200, 2, 10_000, async (i) => assert.equal((await get(caller, 'c4', `/d/${i}`)).status, 200));
    await waitFor(() => closedByServer === N, 10_000);
    const rss1 = process.memoryUsage().rss;
    t.diagnostic(`C4 ${closedByServer}/${N} slow sockets closed by the server, the last after ${ms(Math.max(...closedAt))} (headersTimeout 1.5 s)`);
    t.diagnostic(`C4 legitimate caller ${during.ok}/${during.started} ok; p99 baseline ${ms(percentile(base.latencies, 99))}, during ${ms(percentile(during.latencies, 99))}; RSS Δ ${((rss1 - rss0) / 1048576).toFixed(1)} MiB (test process, both sides)`);
    assert.equal(during.errors.length, 0, String(during.errors[0]));
    assert.equal(closedByServer, N, 'every slow socket was closed by the server');
    assert.ok(served >= 300);
  });

  it('C5: reset mid-body (RST after half the body): never a truncated success; small bodies retried, large ones typed', async (t) => {
    // A body of at most 64 KiB with a length is read whole before the caller gets it, so a
    // reset is retried on the other endpoint (docs/resilience.md, "Resets mid-body").
    const body = 'x'.repeat(64 * 1024);
    const back = await startServer('c5', { kind: 'ok', body });
    const good = await startServer('c5-good', { kind: 'ok', body });
    // Headers are ~150 bytes: cut in the middle of the body.
    const proxy = await startFaultProxy({ port: back.port }, { kind: 'rst-after', bytes: 32 * 1024 });
    cleanup.push(() => back.close(), () => good.close(), () => proxy.close());
    const m = await mesh(serviceYaml('products', [{ address: proxy.address }, { address: good.address }], 'loadBalancer: round-robin\noutlierDetection: false\nretries: { attempts: 3, on: [connect-failure, reset] }'));
    let truncated = 0;
    let full = 0;
    const errs: string[] = [];
    for (let i = 0; i < 20; i++) {
      try {
        const res = await get(m, 'products', `/c5/${i}`);
        if (res.text.length === body.length) full++;
        else truncated++;
      } catch (err) {
        errs.push(`${isTrellisError(err) ? '' : 'untyped:'}${codesOf(err).join('<') || String(err)}`);
      }
    }
    t.diagnostic(`C5 20 GETs of 64 KiB, half through a proxy resetting after 32 KiB: full ${full}, truncated successes ${truncated}, errors ${tally(errs)}`);
    assert.equal(truncated, 0, 'never a truncated success');
    assert.equal(full, 20, `lost ${20 - full} idempotent GETs: ${tally(errs)}`);

    // A body too large to hold back reaches the caller as it streams: the cut is a typed
    // TRELLIS_RESET on the body stream, never a short success.
    const large = 'y'.repeat(256 * 1024);
    const bigBack = await startServer('c5-big', { kind: 'ok', body: large });
    const bigProxy = await startFaultProxy({ port: bigBack.port }, { kind: 'rst-after', bytes: 128 * 1024 });
    cleanup.push(() => bigBack.close(), () => bigProxy.close());
    const big = await mesh(serviceYaml('large', [{ address: bigProxy.address }], 'outlierDetection: false\nretries: { attempts: 3, on: [connect-failure, reset] }'));
    const bigErrs: string[] = [];
    let bigTruncated = 0;
    for (let i = 0; i < 5; i++) {
      try {
        const res = await get(big, 'large', `/c5b/${i}`);
        if (res.text.length !== large.length) bigTruncated++;
      } catch (err) {
        bigErrs.push(`${isTrellisError(err) ? '' : 'untyped:'}${codesOf(err).join('<') || String(err)}`);
      }
    }
    t.diagnostic(`C5 5 GETs of 256 KiB cut after 128 KiB: truncated successes ${bigTruncated}, errors ${tally(bigErrs)}`);
    assert.equal(bigTruncated, 0);
    assert.equal(bigErrs.length, 5);
    assert.ok(bigErrs.every((e) => e.startsWith('TRELLIS_RESET')), tally(bigErrs));
  });

  it('C6: malformed responses: typed error, no crash, counted', async (t) => {
    const big = `HTTP/1.1 200 OK\r\nX-Big: ${'a'.repeat(64 * 1024)}\r\nContent-Length: 2\r\n\r\nok`;
    const cases: [string, string][] = [
      ['bad status line', 'HTTP/1.1 abc OK\r\nContent-Length: 2\r\n\r\nok'],
      ['CL+TE', 'HTTP/1.1 200 OK\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n'],
      ['64 KiB header', big],
      ['bad chunk size', 'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nhello\r\n0\r\n\r\n'],
      ['garbage', '\x00\x01\x02 not http at all \xff\xfe'],
    ];
    const rows: string[] = [];
    const failures: string[] = [];
    for (const [name, bytes] of cases) {
      const raw = await rawServer(Buffer.from(bytes, 'latin1'));
      cleanup.push(() => raw.close());
      const registry = new Registry();
      const m = await mesh(serviceYaml('bad', [{ address: raw.address }], 'outlierDetection: false'), { registry });
      const seen: string[] = [];
      for (let i = 0; i < 3; i++) {
        await get(m, 'bad', '/').then(
          (r) => seen.push(`success ${r.status}`),
          (err: unknown) => seen.push(isTrellisError(err) ? codeOf(err) : `untyped ${String(err)}`),
        );
      }
      const metric = await registry.getSingleMetric('trellis_client_requests_total')?.get();
      const counted = (metric?.values ?? []).filter((v) => v.labels.outcome !== 'success').reduce((a, v) => a + v.value, 0);
      rows.push(`${name}: ${tally(seen)} (counted as failures: ${counted})`);
      // A bad chunk is found while the body streams, after the response headers: that error
      // is checked (typed) by the target test below; here: no success, no crash, counted.
      const bodyPhase = name === 'bad chunk size';
      if (bodyPhase) c6BodyErrors = seen;
      if (seen.some((x) => x.startsWith('success')) || counted < 3 || (!bodyPhase && !seen.every((x) => x.startsWith('TRELLIS_')))) failures.push(name);
    }
    for (const r of rows) t.diagnostic(`C6 ${r}`);
    assert.deepEqual(failures, [], rows.join('\n'));
  });

  it('C6: a malformed chunked body surfaces as a typed error', () => {
    assert.ok(c6BodyErrors.length > 0 && c6BodyErrors.every((x) => x.startsWith('TRELLIS_')), tally(c6BodyErrors));
  });

  it('C7: blackholed connect (stopped process, full backlog): connect timeout, fail fast, marked down', async (t) => {
    const stopped = await startCountingUpstream('c7-stopped', { backlog: 1 });
    const good = await startServer('c7-good');
    cleanup.push(() => good.close());
    const fillers: net.Socket[] = [];
    cleanup.push(() => {
      for (const f of fillers) f.destroy();
      stopped.kill('SIGCONT');
      stopped.kill('SIGKILL');
    });
    stopped.kill('SIGSTOP');
    // Fill the accept queue of the stopped process: later SYNs are dropped, connects hang.
    for (let i = 0; i < 8; i++) {
      const f = net.connect({ host: '127.0.0.1', port: stopped.port });
      f.on('error', () => {});
      fillers.push(f);
    }
    await sleep(200);
    const m = await mesh(
      serviceYaml('products', [{ address: stopped.address }, { address: good.address }], 'loadBalancer: round-robin\nconnection: { connectTimeout: 300ms }\nretries: { attempts: 2, on: [connect-failure] }\noutlierDetection: { consecutiveFailures: 2, ejectionTime: 30s, maxEjectedPercent: 50 }') +
        '---\n' +
        serviceYaml('down', [{ address: stopped.address }], 'connection: { connectTimeout: 300ms }\ntimeout: 10s'),
    );
    const r = await boundedLoad(12, 2, 15_000, async (i) => assert.equal((await get(m, 'products', `/c7/${i}`)).status, 200));
    const marked = ejected(m, 'products', stopped.address);
    const codes: string[] = [];
    const took: number[] = [];
    for (let i = 0; i < 2; i++) {
      const t0 = performance.now();
      await get(m, 'down', '/').then(
        () => codes.push('success'),
        (err: unknown) => codes.push(codesOf(err).join('<')),
      );
      took.push(performance.now() - t0);
    }
    t.diagnostic(`C7 with a good peer: ${r.ok}/${r.started} ok, p99 ${ms(percentile(r.latencies, 99))}; blackholed endpoint ${marked ? 'ejected' : 'NOT ejected'}`);
    t.diagnostic(`C7 only the blackholed endpoint (connectTimeout 300ms, timeout 10s): ${tally(codes)}, failed after ${took.map((x) => x.toFixed(0)).join('/')} ms`);
    assert.equal(r.errors.length, 0, String(r.errors[0]));
    assert.ok(marked, 'the blackholed endpoint is marked down');
    // The connect timer ended each attempt, not the 10 s request timeout.
    assert.ok(codes.every((c) => c.includes('TRELLIS_CONNECT_FAILED<UND_ERR_CONNECT_TIMEOUT') && !c.startsWith('TRELLIS_TIMEOUT')), tally(codes));
  });

  it('C8: retry storm over 3 tiers (callee 100% 503): amplification within the budget', async (t) => {
    const callee = await startServer('c8-callee', { kind: 'status', status: 503 });
    cleanup.push(() => callee.close());
    const policy = 'outlierDetection: false\nretries: { attempts: 4, on: [gateway-error], backoff: { base: 1ms, max: 5ms }, budget: { ratio: 0.2, minPerSecond: 1, ttl: 10s } }';
    const mid = await mesh(serviceYaml('callee', [{ address: callee.address }], policy), { service: 'mid' });
    let midHits = 0;
    const midServer = await mid.serve(
      (_req, res) => {
        midHits++;
        mid
          .http('callee')
          .request({ method: 'GET', path: '/' })
          .then(async (r) => {
            await r.body.dump();
            res.statusCode = r.statusCode;
            res.end();
          })
          .catch((err: unknown) => {
            res.statusCode = 503;
            res.end(codeOf(err));
          });
      },
      { port: 0, host: '127.0.0.1' },
    );
    const front = await mesh(serviceYaml('mid', [{ address: `127.0.0.1:${midServer.port}` }], policy));
    const N = 400;
    const t0 = performance.now();
    const statuses: string[] = [];
    const r = await boundedLoad(N, 8, 20_000, async () => {
      const res = await get(front, 'mid', '/');
      statuses.push(String(res.status));
    });
    const windowS = (performance.now() - t0) / 1000;
    // Per tier: attempts <= requests · (1 + ratio) + minPerSecond · ttl (the window never exceeds ttl here).
    const extra = 1 * 10 * Math.max(1, Math.ceil(windowS / 10));
    const midBound = r.started * 1.2 + extra + 1;
    const calleeBound = midHits * 1.2 + extra + 1;
    t.diagnostic(`C8 ${r.started} front requests in ${windowS.toFixed(1)} s → mid saw ${midHits} (×${(midHits / r.started).toFixed(2)}, bound ${midBound.toFixed(0)}) → callee saw ${callee.hits} (×${(callee.hits / r.started).toFixed(2)} end to end; without budgets: ×${(4 * 4).toFixed(0)}); answers ${tally(statuses)}`);
    assert.equal(r.errors.length, 0, String(r.errors[0]));
    assert.ok(midHits <= midBound, `mid tier ${midHits} > ${midBound}`);
    assert.ok(callee.hits <= calleeBound, `callee ${callee.hits} > ${calleeBound}`);
    assert.ok(callee.hits <= r.started * 1.2 * 1.2 + extra * 2.2 + 3);
  });

  it('C9: overload far above a rate limit: fast TRELLIS_RATE_LIMITED, upstream within the limit, memory bounded', async (t) => {
    const s = await startServer('c9');
    cleanup.push(() => s.close());
    const m = await mesh(serviceYaml('products', [{ address: s.address }], 'rateLimit: { requestsPerSecond: 50, burst: 10 }'));
    global.gc?.();
    const heap0 = process.memoryUsage().heapUsed;
    const t0 = performance.now();
    const refusedLat: number[] = [];
    const codes: string[] = [];
    const r = await boundedLoad(5_000, 50, 10_000, async (i) => {
      const a = performance.now();
      try {
        assert.equal((await get(m, 'products', `/c9/${i}`)).status, 200);
      } catch (err) {
        refusedLat.push(performance.now() - a);
        codes.push(codeOf(err));
        throw err;
      }
    });
    const elapsedS = (performance.now() - t0) / 1000;
    const heap1 = process.memoryUsage().heapUsed;
    const bound = 10 + 50 * elapsedS + 1;
    t.diagnostic(`C9 offered ${r.started} in ${elapsedS.toFixed(2)} s (~${(r.started / elapsedS).toFixed(0)}/s vs limit 50/s): admitted ${r.ok} (upstream saw ${s.hits}, bound ${bound.toFixed(0)}), shed ${((100 * r.errors.length) / r.started).toFixed(1)}% as ${tally(codes)}`);
    t.diagnostic(`C9 refusal p99 ${ms(percentile(refusedLat, 99))}, admitted p99 ${ms(percentile(r.latencies, 99))}; heap Δ ${((heap1 - heap0) / 1048576).toFixed(1)} MiB`);
    assert.ok(codes.every((c) => c === 'TRELLIS_RATE_LIMITED'), tally(codes));
    assert.ok(s.hits <= bound, `upstream saw ${s.hits} > ${bound}`);
    assert.ok(r.errors.length > r.started / 2, 'most of the overload is shed');
  });
});

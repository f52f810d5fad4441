/**
 * The caller's own mistakes (no path, a path without '/', CR/LF in a path or header, a bad
 * method, a plain object as body, a signal that is not an AbortSignal...) are refused at the
 * entry with TRELLIS_INVALID_ARGUMENT naming the option: nothing reaches the upstream, nothing
 * is retried, and neither the breaker, the outlier stats nor the retry budget is charged, so a
 * correct call right after succeeds even with a breaker that opens on one failure. The same
 * holds for `mesh.dispatcher`, whose handler gets the typed error and nothing else.
 */
import { describe, it, after } from 'node:test';
import assert from 'node:assert/strict';
import { Readable } from 'node:stream';
import { request } from 'undici';
import type { Dispatcher } from 'undici';
import { meshClient, isTrellisError } from 'trellis';
import type { Mesh } from 'trellis';
import { serviceYaml, startServer } from '../helpers/servers.js';
import type { TestServer } from '../helpers/servers.js';
import { sampleSum } from '../helpers/prometheus.js';

/** Each bad call, and what its error message must name. */
const BAD: { opts: Record<string, unknown>; names: RegExp }[] = [
  { opts: { method: 'GET' }, names: /path/ },
  { opts: { path: 'list' }, names: /path must start with '\/', got "list"/ },
  { opts: { path: 42 }, names: /path/ },
  { opts: { path: '/a b' }, names: /path "\/a b" holds a space/ },
  { opts: { path: '/a\r\nx-injected: 1' }, names: /path .* holds CR/ },
  // Short paths are checked by a loop, long ones by a regular expression: both refuse the same characters.
  { opts: { path: '/a\x7f' }, names: /path .* holds control character 0x7f at index 2/ },
  { opts: { path: '/\u20ac' }, names: /path .* holds character "€" at index 1/ },
  { opts: { path: '/a-longer-path\u20ac' }, names: /path .* holds character "€" at index 14/ },
  { opts: { path: '/ok', method: 'GE T' }, names: /method "GE T"/ },
  { opts: { path: '/ok', method: 'connect' }, names: /CONNECT/ },
  { opts: { path: '/ok', method: 7 }, names: /method must be a string/ },
  { opts: { path: '/ok', headers: { 'x-a': 'v\r\nx-b: 1' } }, names: /header x-a holds CR/ },
  { opts: { path: '/ok', headers: { 'bad name': 'v' } }, names: /header name "bad name"/ },
  { opts: { path: '/ok', headers: ['x-a'] }, names: /even length/ },
  { opts: { path: '/ok', headers: { 'transfer-encoding': 'chunked' } }, names: /transfer-encoding/ },
  { opts: { path: '/ok', headers: { 'content-length': 'abc' } }, names: /content-length/ },
  { opts: { path: '/ok', headers: { 'x-a': { nested: 1 } } }, names: /header x-a must be/ },
  { opts: { path: '/ok', method: 'POST', body: { a: 1 } }, names: /body must be/ },
  { opts: { path: '/ok', signal: 'nope' }, names: /signal must be an AbortSignal/ },
  { opts: { path: '/ok', idempotent: 'yes' }, names: /idempotent must be a boolean/ },
  { opts: { path: '/ok', routeKey: 42 }, names: /routeKey must be a string/ },
  { opts: { path: '/ok?x=1', query: { y: 2 } }, names: /query/ },
];

const cleanup: (() => Promise<void>)[] = [];
after(async () => {
  for (const c of cleanup.reverse()) await c();
});

async function setup(): Promise<{ s: TestServer; mesh: Mesh }> {
  const s = await startServer('products');
  cleanup.push(() => s.close());
  const mesh = await meshClient({
    config: serviceYaml('products', [{ address: s.address }],
      'retries: { attempts: 3, on: [connect-failure, reset, gateway-error, 5xx], budget: { ratio: 0.5, minPerSecond: 1 } }\n'
      + 'circuitBreaker: { errorThresholdPercent: 1, volumeThreshold: 1, resetTimeout: 60s }\n'
      + 'outlierDetection: { consecutiveFailures: 1, ejectionTime: 60s, maxEjectedPercent: 100 }'),
  });
  cleanup.push(() => mesh.close());
  return { s, mesh };
}

describe('invalid arguments', () => {
  it('are refused before the stack: 50 bad calls reach nothing and charge nothing', async () => {
    const { s, mesh } = await setup();
    const products = mesh.http('products');
    const before = mesh.inspect().services[0];
    assert.ok(before);

    for (let i = 0; i < 50; i++) {
      const bad = BAD[i % BAD.length];
      assert.ok(bad);
      await assert.rejects(
        products.request(bad.opts as never),
        (err: unknown) => {
          assert.ok(isTrellisError(err, 'TRELLIS_INVALID_ARGUMENT'), `call ${i} (${JSON.stringify(bad.opts)}) failed with ${String(err)}`);
          assert.match((err as Error).message, bad.names);
          assert.equal((err as { service?: string }).service, 'products');
          return true;
        },
      );
    }

    assert.equal(s.hits, 0, 'the server saw no request');
    const now = mesh.inspect().services[0];
    assert.ok(now);
    assert.equal(now.breaker, 'closed');
    assert.deepEqual(now.budget, before.budget, 'retry budget unchanged');
    assert.equal(now.counters.requests, before.counters.requests, 'no request entered the stack');
    assert.equal(now.counters.retries, 0);
    assert.ok(now.endpoints.every((e) => !e.ejected), 'no endpoint ejected');

    // Counted once each as logical requests with their own outcome; no attempt was made.
    const text = await mesh.metricsRegistry.metrics();
    assert.equal(sampleSum(text, 'trellis_client_requests_total', { service: 'products', outcome: 'invalid_argument' }), 50);
    assert.equal(sampleSum(text, 'trellis_client_attempts_total', { service: 'products' }), 0);

    const res = await products.request({ path: '/after' });
    assert.equal(res.statusCode, 200);
    await res.body.dump();
    assert.equal(s.hits, 1);
  });

  it('accepts every shape undici accepts', async () => {
    const { s, mesh } = await setup();
    const products = mesh.http('products');
    const good: Record<string, unknown>[] = [
      { path: '/a', method: 'get' },
      { path: '/caf%C3%A9?q=1&r=%20' },
      { path: '/q', query: { a: 1, b: 'x y' } },
      { path: '/h', headers: new Headers({ 'x-a': '1' }) },
      { path: '/h', headers: new Map([['x-a', '1']]) },
      { path: '/h', headers: ['x-a', '1', 'x-b', '2'] },
      { path: '/h', headers: [['x-a', '1']] },
      { path: '/h', headers: { 'x-n': 5, 'x-null': null, 'x-undef': undefined, 'x-list': ['a', 'b'], 'x-tab': 'a\tb', Connection: 'keep-alive' } },
      { path: '/b', method: 'POST', body: Buffer.from('x') },
      { path: '/b', method: 'POST', body: new Uint8Array([1, 2]) },
      { path: '/b', method: 'POST', body: Readable.from(['a', 'b']) },
      { path: '/b', method: 'PUT', body: 'text', headers: { 'content-length': '4' } },
      { path: '/s', signal: new AbortController().signal, idempotent: false, routeKey: 'k' },
      { path: '/u', headers: { 'ignored name': undefined } },
    ];
    for (const opts of good) {
      const res = await products.request(opts as never);
      assert.equal(res.statusCode, 200, JSON.stringify(opts));
      await res.body.dump();
    }
    assert.equal(s.hits, good.length);
  });

  it('destroys a stream body handed over with a refused request', async () => {
    const { s, mesh } = await setup();
    const body = Readable.from(['never', 'sent']);
    await assert.rejects(mesh.http('products').request({ path: 'no-slash', method: 'POST', body }), (err: unknown) => isTrellisError(err, 'TRELLIS_INVALID_ARGUMENT'));
    assert.equal(body.destroyed, true);
    assert.equal(s.hits, 0);
  });

  it('through mesh.dispatcher: the handler gets the typed error and the stack is never reached', async () => {
    const { s, mesh } = await setup();

    // undici's request() over the mesh dispatcher (its own validation runs only in its Client).
    await assert.rejects(
      request('http://products/ok', { dispatcher: mesh.dispatcher, headers: { 'x-a': 'v\r\nx-b: 1' } }),
      (err: unknown) => isTrellisError(err, 'TRELLIS_INVALID_ARGUMENT') && /header x-a/.test((err as Error).message),
    );

    // A legacy handler: onError alone, synchronously, no onConnect.
    const legacy: string[] = [];
    let legacyError: unknown;
    mesh.dispatcher.dispatch({ origin: 'http://products', path: 'no-slash', method: 'GET' }, {
      onConnect: () => legacy.push('connect'),
      onHeaders: () => { legacy.push('headers'); return true; },
      onData: () => true,
      onComplete: () => legacy.push('complete'),
      onError: (err: Error) => { legacy.push('error'); legacyError = err; },
    } as Dispatcher.DispatchHandler);
    assert.deepEqual(legacy, ['error']);
    assert.ok(isTrellisError(legacyError, 'TRELLIS_INVALID_ARGUMENT'));

    // A controller-style handler: onResponseError alone.
    const modern: string[] = [];
    let modernError: unknown;
    mesh.dispatcher.dispatch({ origin: 'http://products', path: '/ok', method: 'B@D' }, {
      onRequestStart: () => modern.push('start'),
      onResponseStart: () => modern.push('response'),
      onResponseError: (_c: unknown, err: Error) => { modern.push('error'); modernError = err; },
    } as Dispatcher.DispatchHandler);
    assert.deepEqual(modern, ['error']);
    assert.ok(isTrellisError(modernError, 'TRELLIS_INVALID_ARGUMENT'));

    assert.equal(s.hits, 0);
    const st = mesh.inspect().services[0];
    assert.equal(st?.breaker, 'closed');
    assert.equal(st?.counters.requests, 0);
    const res = await request('http://products/fine', { dispatcher: mesh.dispatcher });
    assert.equal(res.statusCode, 200);
    await res.body.dump();
    assert.equal(s.hits, 1);
  });
});

/**
 * A request whose `content-length` header disagrees with its body is the caller's mistake, through
 * `mesh.http().request()`, undici's request() and fetch() over `mesh.dispatcher`: it fails with
 * TRELLIS_INVALID_ARGUMENT naming the header and the lengths, is not retried, and is charged to no
 * breaker, outlier detector or retry budget, and to no endpoint in metrics. A body of known length
 * is refused before the stack (nothing is sent); a streamed one when it passes or falls short of
 * the length. Before, undici's RequestContentLengthMismatchError was an upstream error of the
 * endpoint: an idempotent call was retried on the next endpoint, each attempt ejected its endpoint
 * and one call opened the breaker; fetch() hung until the overall timeout and was charged as one.
 */
import { after, afterEach, before, beforeEach, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import http2 from 'node:http2';
import type { AddressInfo } from 'node:net';
import { Readable } from 'node:stream';
import { fetch, request } from 'undici';
import { meshClient, trellisErrorOf } from 'trellis';
import type { Mesh } from 'trellis';
import { serviceYaml, startServer } from '../helpers/servers.js';
import type { TestServer } from '../helpers/servers.js';
import { sampleSum } from '../helpers/prometheus.js';

/** A breaker that opens on one failure, ejection on one, retries of resets: any charge shows. */
const POLICY =
  'timeout: 4s\n'
  + 'retries: { attempts: 3, on: [connect-failure, reset, gateway-error, 5xx], budget: { ratio: 0.5, minPerSecond: 1 } }\n'
  + 'circuitBreaker: { errorThresholdPercent: 1, volumeThreshold: 1, resetTimeout: 60s }\n'
  + 'outlierDetection: { consecutiveFailures: 1, ejectionTime: 60s, maxEjectedPercent: 100 }';

/** The typed error, whether thrown as is or wrapped by fetch() (`TypeError: fetch failed`). */
function typed(err: unknown): Error & { service?: string } {
  const e = trellisErrorOf(err);
  assert.equal(e?.code, 'TRELLIS_INVALID_ARGUMENT', `expected TRELLIS_INVALID_ARGUMENT, got ${String(err)} (cause ${String((err as { cause?: unknown }).cause)})`);
  return e as Error & { service?: string };
}

/** A byte stream that has all of `text` and its end queued. */
function ended(text: string): Readable {
  const r = new Readable({ read() {} });
  r.push(text);
  r.push(null);
  return r;
}

async function* chunks(...parts: string[]): AsyncGenerator<Buffer> {
  for (const p of parts) yield Buffer.from(p);
}

describe('a content-length that disagrees with the body is the caller\'s mistake', () => {
  let a: TestServer;
  let b: TestServer;
  let mesh: Mesh;
  const bodies: string[] = [];
  before(async () => {
    const record = (req: import('node:http').IncomingMessage, res: import('node:http').ServerResponse): void => {
      const parts: Buffer[] = [];
      req.on('data', (c: Buffer) => parts.push(c));
      req.on('error', () => undefined);
      req.on('end', () => {
        bodies.push(Buffer.concat(parts).toString());
        res.end('ok');
      });
    };
    a = await startServer('a', { kind: 'ok' }, record);
    b = await startServer('b', { kind: 'ok' }, record);
  });
  // A mesh of its own per test: each shows its charges (or their absence) alone.
  beforeEach(async () => {
    mesh = await meshClient({ service: 'caller', config: serviceYaml('products', [{ address: a.address }, { address: b.address }], POLICY) });
  });
  afterEach(async () => {
    await mesh.close({ drainTimeoutMs: 200 });
  });
  after(async () => {
    await a.close();
    await b.close();
  });

  /** Nothing was charged: breaker closed, no retry, no ejection, no retry token spent, no failed attempt. */
  async function assertUncharged(budgetBefore: { available: number } | undefined): Promise<void> {
    const st = mesh.inspect().services.find((s) => s.name === 'products');
    assert.ok(st);
    assert.equal(st.breaker, 'closed', 'the breaker stays closed');
    assert.equal(st.counters.retries, 0, 'nothing was retried');
    assert.ok(st.endpoints.every((e) => !e.ejected), 'no endpoint ejected');
    // Each call that entered the stack deposits into the budget; a retry would withdraw.
    assert.equal(st.budget?.retries, 0);
    assert.ok((st.budget?.available ?? -1) >= (budgetBefore?.available ?? 0), 'no retry token was spent');
    const text = await mesh.metricsRegistry.metrics();
    for (const outcome of ['failure', 'reset', 'timeout']) {
      assert.equal(sampleSum(text, 'trellis_client_attempts_total', { service: 'products', outcome }), 0, `no attempt counted as ${outcome}`);
      assert.equal(sampleSum(text, 'trellis_client_requests_total', { service: 'products', outcome }), 0, `no request counted as ${outcome}`);
    }
  }

  function budget(): { available: number } | undefined {
    return mesh.inspect().services.find((s) => s.name === 'products')?.budget;
  }

  it('a string or Buffer body: refused before anything is sent, naming the header and both lengths', async () => {
    const before = budget();
    const products = mesh.http('products');
    const hits = a.hits + b.hits;
    // PUT is idempotent: a failure of the endpoint would be retried on the other one.
    await assert.rejects(products.request({ path: '/s', method: 'PUT', body: 'hello world', headers: { 'content-length': '5' } }), (err: unknown) => {
      const e = typed(err);
      assert.match(e.message, /content-length says 5 bytes but the body holds 11 bytes/);
      assert.equal(e.service, 'products');
      return true;
    });
    await assert.rejects(products.request({ path: '/s', method: 'POST', body: Buffer.from('hi'), headers: [['Content-Length', '5']] }), (err: unknown) => {
      assert.match(typed(err).message, /content-length says 5 bytes but the body holds 2 bytes/);
      return true;
    });
    // undici's request() over mesh.dispatcher: refused at the dispatcher's entry.
    await assert.rejects(request('http://products/d', { dispatcher: mesh.dispatcher, method: 'PATCH', body: 'héllo', headers: { 'content-length': '5' } }), (err: unknown) => {
      assert.match(typed(err).message, /content-length says 5 bytes but the body holds 6 bytes/);
      return true;
    });
    assert.equal(a.hits + b.hits, hits, 'no request reached a server');
    await assertUncharged(before);

    // undici's own rule is kept: a GET's length is written from its body, a matching one is fine.
    for (const opts of [
      { path: '/g', method: 'GET', body: 'abc', headers: { 'content-length': '9' } },
      { path: '/p', method: 'PUT', body: 'hello', headers: { 'content-length': '5' } },
      { path: '/e', method: 'POST', body: '', headers: { 'content-length': '0' } },
    ]) {
      const res = await products.request(opts);
      assert.equal(res.statusCode, 200, JSON.stringify(opts));
      await res.body.dump();
    }
    assert.equal(a.hits + b.hits, hits + 3);
  });

  it('a streamed body: fails when it passes or falls short of the length, and is charged to no one', async () => {
    const before = budget();
    const products = mesh.http('products');
    const cases: { body: () => unknown; names: RegExp }[] = [
      { body: () => Readable.from([Buffer.from('hel'), Buffer.from('lo world')], { objectMode: false }), names: /content-length says 5 bytes but the request body streamed at least 11 bytes/ },
      { body: () => Readable.from([Buffer.from('hi')], { objectMode: false }), names: /content-length says 5 bytes but the request body ended after 2 bytes/ },
      // Ended in memory before it is sent (undici would compare its queued length at once).
      { body: () => ended('hi'), names: /content-length says 5 bytes but the request body ended after 2 bytes/ },
      { body: () => ended('hello world'), names: /content-length says 5 bytes but the request body streamed at least 11 bytes/ },
      { body: () => chunks('hel', 'lo world'), names: /content-length says 5 bytes but the request body streamed at least 11 bytes/ },
      { body: () => chunks('h', 'i'), names: /content-length says 5 bytes but the request body ended after 2 bytes/ },
    ];
    for (const c of cases) {
      await assert.rejects(products.request({ path: '/stream', method: 'PUT', body: c.body() as never, headers: { 'content-length': '5' } }), (err: unknown) => {
        const e = typed(err);
        assert.match(e.message, c.names);
        assert.equal(e.service, 'products');
        return true;
      });
    }
    await assertUncharged(before);
    const text = await mesh.metricsRegistry.metrics();
    assert.ok(sampleSum(text, 'trellis_client_requests_total', { service: 'products', outcome: 'invalid_argument' }) >= cases.length);

    // A streamed body that matches its header is sent whole, as it was.
    const seen = bodies.length;
    for (const body of [chunks('hel', 'lo'), Readable.from([Buffer.from('hel'), Buffer.from('lo')], { objectMode: false })]) {
      const res = await products.request({ path: '/fine', method: 'PUT', body: body as never, headers: { 'content-length': '5' } });
      assert.equal(res.statusCode, 200);
      await res.body.dump();
    }
    assert.deepEqual(bodies.slice(seen), ['hello', 'hello']);
  });

  it('over HTTP/2 (where undici does not compare a stream with its header): the same', async () => {
    const h2 = http2.createServer();
    h2.on('session', (session) => session.on('error', () => undefined));
    let answered = 0;
    h2.on('stream', (stream) => {
      stream.on('error', () => undefined);
      stream.resume();
      stream.on('end', () => {
        // A stream the client reset has nothing to answer.
        if (stream.destroyed || stream.closed) return;
        try {
          stream.respond({ ':status': 200 });
          stream.end('ok');
          answered++;
        } catch {
          // Reset meanwhile.
        }
      });
    });
    await new Promise<void>((resolve) => h2.listen(0, '127.0.0.1', resolve));
    const port = (h2.address() as AddressInfo).port;
    const m2 = await meshClient({ service: 'caller', config: `apiVersion: trellis/v1\nkind: Mesh\nmetadata: { name: default }\nspec: { mtls: off }\n---\n${serviceYaml('h2', [{ address: `127.0.0.1:${port}` }], `protocol: http2\n${POLICY}`)}` });
    try {
      const client = m2.http('h2');
      for (const [body, names] of [
        [() => Readable.from([Buffer.from('hi')], { objectMode: false }), /content-length says 5 bytes but the request body ended after 2 bytes/],
        [() => Readable.from([Buffer.from('hello world')], { objectMode: false }), /content-length says 5 bytes but the request body streamed at least 11 bytes/],
        [() => chunks('hello', ' world'), /content-length says 5 bytes but the request body streamed at least 11 bytes/],
      ] as const) {
        await assert.rejects(client.request({ path: '/h2', method: 'PUT', body: body() as never, headers: { 'content-length': '5' } }), (err: unknown) => {
          assert.match(typed(err).message, names);
          return true;
        });
      }
      const st = m2.inspect().services.find((s) => s.name === 'h2');
      assert.equal(st?.breaker, 'closed');
      assert.ok(st?.endpoints.every((e) => !e.ejected), 'no endpoint ejected');
      const res = await client.request({ path: '/h2', method: 'PUT', body: Readable.from([Buffer.from('hello')], { objectMode: false }) as never, headers: { 'content-length': '5' } });
      assert.equal(res.statusCode, 200);
      assert.equal(await res.body.text(), 'ok');
      assert.equal(answered, 1, 'only the correct request was answered');
    } finally {
      await m2.close({ drainTimeoutMs: 100 });
      for (const c of [h2]) await new Promise<void>((resolve) => c.close(() => resolve()));
    }
  });

  it('fetch() over mesh.dispatcher: fails at once with the typed error instead of hanging until the timeout', async () => {
    const before = budget();
    for (const [body, names] of [
      ['hello world', /content-length says 5 bytes but the request body streamed at least 11 bytes/],
      ['hi', /content-length says 5 bytes but the request body ended after 2 bytes/],
    ] as const) {
      await assert.rejects(fetch('http://products/f', { dispatcher: mesh.dispatcher, method: 'PUT', body, headers: { 'content-length': '5' } }), (err: unknown) => {
        assert.match(typed(err).message, names);
        return true;
      });
    }
    await assertUncharged(before);

    // A correct call right after reaches an endpoint, and fetch() without the header is untouched.
    const seen = bodies.length;
    const res = await fetch('http://products/ok', { dispatcher: mesh.dispatcher, method: 'PUT', body: 'hello' });
    assert.equal(res.status, 200);
    assert.equal(await res.text(), 'ok');
    const res2 = await fetch('http://products/ok', { dispatcher: mesh.dispatcher, method: 'PUT', body: 'hello', headers: { 'content-length': '5' } });
    assert.equal(res2.status, 200);
    await res2.text();
    assert.deepEqual(bodies.slice(seen), ['hello', 'hello']);
  });
});

import { test } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { PassThrough, Writable } from 'node:stream';
import { request } from 'undici';
import { CallContext } from '../../src/core/context.js';
import { ManualClock, systemClock } from '../../src/core/clock.js';
import { ERROR_CODES, isTrellisError, TimeoutError } from '../../src/core/errors.js';
import { httpClassifier } from '../../src/client/http-classify.js';
import type { HttpResponse } from '../../src/client/http-transport.js';
import { accessLogFilter, accessLogger, httpAccessLogModule, inboundAccessLog } from '../../src/observability/access-log.js';
import type { AccessLogEntry } from '../../src/observability/access-log.js';

interface Req { method: string }
interface Res { status: number; done?: () => void }

function sink(): { stream: Writable; lines: string[] } {
  const lines: string[] = [];
  const stream = new Writable({
    write(chunk: Buffer, _enc, cb) {
      lines.push(chunk.toString());
      cb();
    },
  });
  return { stream, lines };
}

const outcome = (res: Res | undefined, err: unknown): string =>
  err !== undefined ? (isTrellisError(err) ? ERROR_CODES[err.code].outcome : 'failure') : (res?.status ?? 0) >= 500 ? 'failure' : 'success';

test('one JSON line per entry, fields in the documented order', () => {
  const { stream, lines } = sink();
  const log = accessLogger(stream);
  const entry: AccessLogEntry = { ts: '2023-11-14T22:13:20.000Z', direction: 'inbound', service: 'products', route: null, method: 'GET', status: 200, duration_ms: 1.5, caller: 'unknown', trace_id: null, outcome: 'success' };
  log(entry);
  assert.equal(lines.length, 1);
  assert.equal(lines[0], '{"ts":"2023-11-14T22:13:20.000Z","direction":"inbound","service":"products","route":null,"method":"GET","status":200,"duration_ms":1.5,"caller":"unknown","trace_id":null,"outcome":"success"}\n');
  assert.equal(log.dropped, 0);
});

test('lines are dropped and counted while the stream is not draining', () => {
  const stream = new Writable({ highWaterMark: 1, write(_c, _e, cb) { setTimeout(cb, 10); } });
  const log = accessLogger(stream);
  const entry: AccessLogEntry = { ts: '', direction: 'outbound', service: 's', route: null, method: 'GET', status: null, duration_ms: 0, caller: 'c', trace_id: null, outcome: 'success' };
  log(entry);
  log(entry);
  log(entry);
  assert.equal(log.dropped, 2);
  stream.destroy();
});

test('outbound filter: a line per logical request when the result is done, with route, trace id and outcome', async () => {
  const { stream, lines } = sink();
  const clock = new ManualClock(0, 1_700_000_000_000);
  let finish: (() => void) | undefined;
  const filter = accessLogFilter<Req, Res>(accessLogger(stream), {
    clock,
    caller: 'checkout',
    method: (r) => r.method,
    status: (r) => r.status,
    outcome,
    traceId: () => '4bf92f3577b34da6a3ce929d0e0e4736',
    whenDone: (_res, done) => {
      finish = done;
    },
  });
  const ctx = new CallContext('products', true);
  await filter({ method: 'GET' }, ctx, async (_req, c) => {
    c.route = 'catalog';
    clock.advance(12.3456);
    return { status: 200 };
  });
  assert.equal(lines.length, 0, 'not before the body is done');
  clock.advance(1);
  finish?.();
  assert.deepEqual(JSON.parse(lines[0] as string), {
    ts: '2023-11-14T22:13:20.000Z',
    direction: 'outbound',
    service: 'products',
    route: 'catalog',
    method: 'GET',
    status: 200,
    duration_ms: 13.346,
    caller: 'checkout',
    trace_id: '4bf92f3577b34da6a3ce929d0e0e4736',
    outcome: 'success',
  });
});

test('outbound filter: a failure is logged with its outcome and no status, and still thrown', async () => {
  const { stream, lines } = sink();
  const filter = accessLogFilter<Req, Res>(accessLogger(stream), {
    clock: new ManualClock(),
    caller: undefined,
    method: (r) => r.method,
    status: (r) => r.status,
    outcome,
    traceId: () => undefined,
  });
  const err = new TimeoutError('too slow', { service: 'products' });
  await assert.rejects(filter({ method: 'POST' }, new CallContext('products', false), () => Promise.reject(err)), (e) => e === err);
  const e = JSON.parse(lines[0] as string) as AccessLogEntry;
  assert.equal(e.outcome, 'timeout');
  assert.equal(e.status, null);
  assert.equal(e.caller, 'unknown');
  assert.equal(e.trace_id, null);
  assert.equal(e.route, null);
});

test('http module: outcome from the classifier, timeouts from the error code', async () => {
  const { stream, lines } = sink();
  const classify = httpClassifier(['gateway-error']);
  const mod = httpAccessLogModule(accessLogger(stream), { clock: new ManualClock(), caller: 'checkout', traceId: () => undefined }, classify);
  assert.equal(mod.role, 'access-log');
  const body = new PassThrough();
  const svc = mod.make(async () => ({ statusCode: 503, headers: {}, body }) as unknown as HttpResponse);
  await svc({ method: 'GET', path: '/', headers: {}, body: undefined, replayable: true, classify: undefined, rest: {} }, new CallContext('products', true));
  body.destroy();
  await new Promise((r) => setImmediate(r));
  const e = JSON.parse(lines[0] as string) as AccessLogEntry;
  assert.equal(e.outcome, 'failure');
  assert.equal(e.status, 503);
});

test('inbound: a line per request when the response closes: success, failure, cancelled', async () => {
  const entries: AccessLogEntry[] = [];
  const observe = inboundAccessLog((e) => entries.push(e), { clock: systemClock, traceIdOf: () => 'abc' });
  const server = http.createServer((req, res) => {
    observe(req, res, 'products');
    if (req.url === '/fail') res.writeHead(500).end();
    else if (req.url === '/hang') res.writeHead(200).write('partial');
    else res.end('ok');
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as AddressInfo).port;
  try {
    await (await request(`http://127.0.0.1:${port}/ok`)).body.text();
    await (await request(`http://127.0.0.1:${port}/fail`)).body.text();
    const ac = new AbortController();
    const res = await request(`http://127.0.0.1:${port}/hang`, { signal: ac.signal });
    ac.abort();
    await res.body.text().catch(() => undefined);
    for (let i = 0; i < 50 && entries.length < 3; i++) await new Promise((r) => setTimeout(r, 10));
  } finally {
    server.closeAllConnections();
    await new Promise((r) => server.close(r));
  }
  assert.deepEqual(entries.map((e) => [e.outcome, e.status, e.trace_id, e.service, e.direction, e.caller]), [
    ['success', 200, 'abc', 'products', 'inbound', 'unknown'],
    ['failure', 500, 'abc', 'products', 'inbound', 'unknown'],
    ['cancelled', 200, 'abc', 'products', 'inbound', 'unknown'],
  ]);
});

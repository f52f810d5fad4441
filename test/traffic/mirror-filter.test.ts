import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { Dispatcher } from 'undici';
import type { HttpRequest } from '../../src/client/http-request.js';
import { CallController } from '../../src/core/call-signal.js';
import { ManualClock, seededRandom } from '../../src/core/clock.js';
import { CallContext } from '../../src/core/context.js';
import { TimeoutError } from '../../src/core/errors.js';
import { mirrorFilter, type MirrorDeps, type MirrorDropReason, type MirrorParams } from '../../src/traffic/mirror-filter.js';
import { syntheticHttpResponse } from '../../src/traffic/synthetic-response.js';
import { request } from './helpers.js';

type Res = Dispatcher.ResponseData;

function deferred<T>() {
  let resolve!: (v: T) => void;
  let reject!: (e: unknown) => void;
  const promise = new Promise<T>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  return { promise, resolve, reject };
}

const tick = (): Promise<void> => new Promise((r) => setImmediate(r));

function setup(params: Partial<MirrorParams> = {}, deps: Partial<MirrorDeps> = {}) {
  const sent: { req: HttpRequest; ctx: CallContext; reply: ReturnType<typeof deferred<Res>> }[] = [];
  const drops: MirrorDropReason[] = [];
  const errors: unknown[] = [];
  const filter = mirrorFilter(
    { percent: 100, subset: { version: 'v3' }, maxBodyBytes: 1024, ...params },
    {
      random: seededRandom(5),
      send: (req, ctx) => {
        const reply = deferred<Res>();
        sent.push({ req, ctx, reply });
        return reply.promise;
      },
      onDrop: (r) => drops.push(r),
      onError: (e) => errors.push(e),
      ...deps,
    },
  );
  const primaryRes = syntheticHttpResponse(200, 'primary');
  const next = async (): Promise<Res> => primaryRes;
  return { filter, sent, drops, errors, next, primaryRes };
}

const ctx = (): CallContext => new CallContext('products', true);

test('the copy carries x-trellis-mirror, loses hop-by-hop headers, keeps host, and targets the mirror subset', async () => {
  const s = setup({}, { clock: new ManualClock(1000) });
  const req = request('/list?x=1', {
    method: 'POST',
    body: '{"a":1}',
    headers: {
      host: 'products',
      connection: 'keep-alive, x-hop',
      'x-hop': 'secret',
      'keep-alive': 'timeout=5',
      'transfer-encoding': 'chunked',
      'content-length': '7',
      te: 'trailers',
      upgrade: 'h2c',
      'proxy-authorization': 'Basic x',
      'x-user': 'u1',
    },
  });
  const snapshot = JSON.stringify(req);
  const c = ctx();
  c.subset = { version: 'v1' };
  c.route = 'catalog';
  const res = await s.filter(req, c, s.next);
  assert.equal(res, s.primaryRes);
  assert.equal(JSON.stringify(req), snapshot, 'the primary request is untouched');
  assert.equal(c.subset.version, 'v1', 'the primary context is untouched');
  assert.equal(s.sent.length, 1);
  const copy = s.sent[0]!;
  assert.notEqual(copy.req, req);
  assert.deepEqual(copy.req.headers, { host: 'products', 'x-user': 'u1', 'x-trellis-mirror': '1' });
  assert.equal(copy.req.path, '/list?x=1');
  assert.equal(copy.req.body, '{"a":1}');
  assert.notEqual(copy.ctx, c);
  assert.deepEqual(copy.ctx.subset, { version: 'v3' });
  assert.equal(copy.ctx.route, 'catalog');
  assert.equal(copy.ctx.deadline, 6000, 'own deadline: clock + 5 s');
  assert.ok(copy.ctx.signal !== undefined && copy.ctx.signal !== c.signal);
  copy.reply.resolve(syntheticHttpResponse(200));
});

test('an empty mirror subset means every endpoint', async () => {
  const s = setup({ subset: {} });
  await s.filter(request('/'), ctx(), s.next);
  assert.equal(s.sent[0]!.ctx.subset, undefined);
});

test('a slow mirror does not delay the primary, and the primary promise is returned unchanged', async () => {
  const s = setup();
  const primary = deferred<Res>();
  const returned = s.filter(request('/'), ctx(), () => primary.promise);
  assert.equal(s.sent.length, 1, 'the copy starts with the primary');
  primary.resolve(s.primaryRes);
  assert.equal(await returned, s.primaryRes, 'resolved while the mirror is still pending');
});

test('the caller aborting does not abort the copy', async () => {
  const s = setup();
  const c = ctx();
  const controller = new CallController();
  c.signal = controller.signal;
  await s.filter(request('/'), c, s.next);
  controller.abort(new Error('caller done'));
  assert.equal(s.sent[0]!.ctx.signal?.aborted, false);
});

test('a failing mirror (rejected or throwing) is reported to onError, never to the caller', async () => {
  const failing = setup();
  await failing.filter(request('/'), ctx(), failing.next);
  failing.sent[0]!.reply.reject(new Error('mirror down'));
  await tick();
  assert.equal((failing.errors[0] as Error).message, 'mirror down');

  const throwing = setup({}, { send: () => { throw new Error('sync boom'); } });
  assert.equal(await throwing.filter(request('/'), ctx(), throwing.next), throwing.primaryRes);
  assert.equal((throwing.errors[0] as Error).message, 'sync boom');
});

test("the mirror's response body is always dumped", async () => {
  const s = setup();
  await s.filter(request('/'), ctx(), s.next);
  const mirrorRes = syntheticHttpResponse(200, 'shadow');
  s.sent[0]!.reply.resolve(mirrorRes);
  await tick();
  await tick();
  assert.equal(mirrorRes.body.bodyUsed, true);
  assert.equal(mirrorRes.body.destroyed, true);
});

test('overload: beyond maxInFlight copies are dropped, and room frees when one settles', async () => {
  const s = setup({ maxInFlight: 2 });
  for (let i = 0; i < 4; i++) await s.filter(request('/'), ctx(), s.next);
  assert.equal(s.sent.length, 2);
  assert.deepEqual(s.drops, ['overload', 'overload']);
  s.sent[0]!.reply.resolve(syntheticHttpResponse(200));
  await tick();
  await tick();
  await s.filter(request('/'), ctx(), s.next);
  assert.equal(s.sent.length, 3);
  s.sent[1]!.reply.reject(new Error('x'));
  await tick();
  await s.filter(request('/'), ctx(), s.next);
  assert.equal(s.sent.length, 4);
});

test('body cap: too large or not replayable bodies are not mirrored', async () => {
  const s = setup({ maxBodyBytes: 8 });
  await s.filter(request('/', { method: 'POST', body: '12345678' }), ctx(), s.next);
  await s.filter(request('/', { method: 'POST', body: Buffer.alloc(8) }), ctx(), s.next);
  await s.filter(request('/', { method: 'POST', body: '123456789' }), ctx(), s.next);
  await s.filter(request('/', { method: 'POST', body: 'é'.repeat(5) }), ctx(), s.next); // 10 bytes
  await s.filter(request('/', { method: 'POST', body: 'ok', replayable: false }), ctx(), s.next);
  assert.equal(s.sent.length, 2);
  assert.deepEqual(s.drops, ['body', 'body', 'body']);
});

test('mirrors about percent% of requests', async () => {
  const s = setup({ percent: 10, maxInFlight: 1_000_000 });
  for (let i = 0; i < 10_000; i++) await s.filter(request('/'), ctx(), s.next);
  assert.ok(Math.abs(s.sent.length - 1000) < 120, `mirrored ${s.sent.length}`);
  const none = setup({ percent: 0 }, { random: () => assert.fail('no draw') });
  await none.filter(request('/'), ctx(), none.next);
  assert.equal(none.sent.length, 0);
});

test("the copy's own deadline aborts it with a TimeoutError", async () => {
  const s = setup({ timeoutMs: 20 });
  await s.filter(request('/'), ctx(), s.next);
  const signal = s.sent[0]!.ctx.signal!;
  const keepAlive = setTimeout(() => undefined, 1000); // the mirror's own timer is unref'd
  await new Promise<void>((r) => signal.addEventListener('abort', () => r()));
  clearTimeout(keepAlive);
  assert.ok(signal.reason instanceof TimeoutError);
  s.sent[0]!.reply.reject(signal.reason);
  await tick();
  assert.ok(s.errors[0] instanceof TimeoutError);
});

/**
 * Overload, judged by what each side saw:
 * - a server whose event loop is saturated sheds new requests (503 + x-trellis-shed) and never
 *   sheds while idle; its critical path is never shed for the event loop;
 * - a request shed by a busy instance is retried on another and succeeds, even a POST, without
 *   spending the retry budget, ejecting the busy instance or moving its breaker;
 * - a request whose propagated deadline has passed is refused before the handler runs;
 * - the outbound adaptive limit fails excess calls fast with TRELLIS_OVERLOADED (they never reach
 *   the upstream), or lets them wait for a slot within maxWait.
 */
import { describe, it, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { Pool } from 'undici';
import { meshClient, isTrellisError } from 'trellis';
import type { Mesh } from 'trellis';
import { quietLogger } from '../helpers/servers.js';

const cleanup: (() => Promise<void> | void)[] = [];
after(async () => {
  for (const c of cleanup.reverse()) await c();
});

const fixture = fileURLToPath(new URL('./fixtures/overload-server.ts', import.meta.url));

function startBusyServer(): Promise<{ port: number; stop: () => Promise<void> }> {
  const child = spawn(process.execPath, ['--import', 'tsx', fixture], { stdio: ['ignore', 'pipe', 'inherit'] });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  return new Promise((resolve, reject) => {
    let out = '';
    child.stdout.on('data', (d: Buffer) => {
      out += d.toString();
      const m = /PORT (\d+)/.exec(out);
      if (m?.[1] !== undefined) {
        resolve({
          port: Number(m[1]),
          stop: async () => {
            child.kill('SIGKILL');
            await exited;
          },
        });
      }
    });
    void exited.then(() => reject(new Error('overload server exited before serving')));
  });
}

/** A held handler: requests wait until `release()`; `seen` counts what reached the handler. */
function holdingHandler() {
  const held: (() => void)[] = [];
  const state = {
    seen: 0,
    handler: (_req: unknown, res: { end: (b: string) => void }) => {
      state.seen++;
      held.push(() => res.end('done'));
    },
    release: () => {
      for (const h of held.splice(0)) h();
    },
  };
  return state;
}

describe('overload', () => {
  it('sheds when the event loop is saturated, never when idle, and never a critical path', async () => {
    const busy = await startBusyServer();
    cleanup.push(busy.stop);
    const pool = new Pool(`http://127.0.0.1:${busy.port}`, { connections: 16 });
    cleanup.push(() => pool.close());
    const get = async (path: string): Promise<{ status: number; shed: string | undefined }> => {
      const r = await pool.request({ method: 'GET', path });
      await r.body.dump();
      const shed = r.headers['x-trellis-shed'];
      return { status: r.statusCode, shed: typeof shed === 'string' ? shed : undefined };
    };

    // A process that just started is busy compiling its code, which is load, not idleness:
    // wait until it answers 10 in a row (bounded), then idle means one request at a time.
    for (let streak = 0, n = 0; streak < 10 && n < 500; n++) streak = (await get('/ok')).shed === undefined ? streak + 1 : 0;
    for (let i = 0; i < 30; i++) {
      const r = await get('/ok');
      assert.equal(r.status, 200);
      assert.equal(r.shed, undefined);
    }

    // Saturated: 8 callers keep the loop busy with 40 ms CPU handlers (bounded: 240 requests);
    // a health checker hits the critical path meanwhile.
    let shedSpins = 0;
    let servedSpins = 0;
    const healthz: { status: number; shed: string | undefined }[] = [];
    let spinning = true;
    const spinner = async (): Promise<void> => {
      for (let i = 0; i < 30; i++) {
        const r = await get('/spin?ms=40');
        if (r.shed !== undefined) {
          assert.equal(r.status, 503);
          assert.equal(r.shed, 'event-loop');
          shedSpins++;
        } else servedSpins++;
      }
    };
    const checker = async (): Promise<void> => {
      while (spinning) healthz.push(await get('/healthz'));
    };
    const check = checker();
    await Promise.all(Array.from({ length: 8 }, spinner));
    spinning = false;
    await check;
    assert.ok(shedSpins > 0, `the saturated loop shed nothing (${servedSpins} served)`);
    assert.ok(servedSpins > 0, 'shedding left no capacity at all');
    assert.ok(healthz.length > 0);
    assert.deepEqual(healthz.filter((r) => r.shed !== undefined), [], 'critical path shed');
  });

  it('a shed request is retried on another instance and succeeds, POST included, charging nobody', async () => {
    const busyHold = holdingHandler();
    const busyMesh = await meshClient({
      service: 'api',
      config: 'apiVersion: trellis/v1\nkind: Service\nmetadata: { name: api }\nspec:\n  inbound:\n    overload: { eventLoop: false, deadline: false, concurrency: { initial: 1, min: 1, max: 1 } }\n',
      logger: quietLogger(),
    });
    cleanup.push(() => busyMesh.close());
    const busyServer = await busyMesh.serve(busyHold.handler as never);
    let freeSeen = 0;
    const freeMesh = await meshClient({ service: 'api', config: 'apiVersion: trellis/v1\nkind: Service\nmetadata: { name: api }\nspec: {}\n', logger: quietLogger() });
    cleanup.push(() => freeMesh.close());
    const freeServer = await freeMesh.serve((_req, res) => {
      freeSeen++;
      res.end('free');
    });

    // The busy instance's only slot is taken by a request that waits.
    const blocker = fetch(`http://${busyServer.address}/hold`);
    while (busyHold.seen < 1) await new Promise((r) => setTimeout(r, 5));

    const client: Mesh = await meshClient({
      service: 'caller',
      config: `apiVersion: trellis/v1
kind: Service
metadata: { name: api }
spec:
  endpoints: [ ${busyServer.address}, ${freeServer.address} ]
  loadBalancer: round-robin
  circuitBreaker: { errorThresholdPercent: 1, volumeThreshold: 1, resetTimeout: 30s }
  outlierDetection: { consecutiveFailures: 1, ejectionTime: 30s }
`,
      logger: quietLogger(),
    });
    cleanup.push(() => client.close());
    for (let i = 0; i < 20; i++) {
      const r = await client.http('api').request({ method: 'POST', path: '/orders', body: `{"n":${i}}` });
      assert.equal(r.statusCode, 200);
      assert.equal(await r.body.text(), 'free');
    }
    assert.equal(busyHold.seen, 1, 'nothing but the blocker reached the busy handler');
    assert.equal(freeSeen, 20);
    const shed = busyMesh.inspect().overload?.shed.concurrency ?? 0;
    assert.ok(shed >= 5, `round-robin sent about half to the busy instance first: shed ${shed}`);
    const svc = client.inspect().services.find((s) => s.name === 'api');
    assert.ok(svc !== undefined);
    assert.equal(svc.breaker, 'closed');
    assert.deepEqual(svc.endpoints.filter((e) => e.ejected), [], 'no instance ejected for being busy');
    assert.equal(svc.budget?.retries, 0, 'no retry-budget token spent');
    assert.equal(svc.counters.retries, shed, 'each shed answer was retried once');

    busyHold.release();
    assert.equal((await blocker).status, 200);
  });

  it('refuses a request whose propagated deadline has passed before the handler runs', async () => {
    const mesh = await meshClient({
      service: 'slow',
      config: 'apiVersion: trellis/v1\nkind: Service\nmetadata: { name: slow }\nspec:\n  inbound:\n    overload: { eventLoop: false, concurrency: false }\n',
      logger: quietLogger(),
    });
    cleanup.push(() => mesh.close());
    let seen = 0;
    const server = await mesh.serve((_req, res) => {
      seen++;
      res.end('ok');
    });
    const expired = await fetch(`http://${server.address}/`, { headers: { 'x-trellis-timeout-ms': '0' } });
    assert.equal(expired.status, 503);
    assert.equal(expired.headers.get('x-trellis-shed'), 'deadline');
    assert.equal((await expired.json() as { error: string }).error, 'TRELLIS_OVERLOADED');
    assert.equal(seen, 0);
    const fine = await fetch(`http://${server.address}/`, { headers: { 'x-trellis-timeout-ms': '60000' } });
    assert.equal(fine.status, 200);
    await fine.text();
    const none = await fetch(`http://${server.address}/`);
    assert.equal(none.status, 200);
    await none.text();
    assert.equal(seen, 2);
    const metrics = await mesh.metricsRegistry.metrics();
    assert.match(metrics, /trellis_server_shed_total\{service="slow",reason="deadline"\} 1/);
  });

  it('outbound adaptive concurrency: excess fails fast, or waits for a slot within maxWait', async () => {
    const upstream = holdingHandler();
    const up = await meshClient({ service: 'store', config: 'apiVersion: trellis/v1\nkind: Service\nmetadata: { name: store }\nspec: {}\n', logger: quietLogger() });
    cleanup.push(() => up.close());
    const server = await up.serve(upstream.handler as never);
    const clientFor = (extra: string): Promise<Mesh> =>
      meshClient({
        service: 'caller',
        config: `apiVersion: trellis/v1\nkind: Service\nmetadata: { name: store }\nspec:\n  endpoints: [ ${server.address} ]\n  adaptiveConcurrency: { initial: 2, min: 2, max: 2${extra} }\n`,
        logger: quietLogger(),
      });

    const fast = await clientFor('');
    cleanup.push(() => fast.close());
    const calls = Array.from({ length: 5 }, () => fast.http('store').request({ path: '/' }).then(async (r) => (await r.body.text(), 'ok'), (e: unknown) => e));
    while (upstream.seen < 2) await new Promise((r) => setTimeout(r, 5));
    await new Promise((r) => setTimeout(r, 50));
    upstream.release();
    const results = await Promise.all(calls);
    assert.equal(results.filter((r) => r === 'ok').length, 2);
    const refused = results.filter((r) => isTrellisError(r, 'TRELLIS_OVERLOADED'));
    assert.equal(refused.length, 3, String(results));
    assert.equal(upstream.seen, 2, 'refused calls never reached the upstream');
    assert.equal(fast.inspect().services[0]?.concurrency?.inflight, 0);

    const patient = await clientFor(', maxWait: 30s');
    cleanup.push(() => patient.close());
    const before = upstream.seen;
    const waiting = Array.from({ length: 5 }, () => patient.http('store').request({ path: '/' }).then(async (r) => r.body.text()));
    while (upstream.seen < before + 2) await new Promise((r) => setTimeout(r, 5));
    while (upstream.seen < before + 5) {
      upstream.release();
      await new Promise((r) => setTimeout(r, 5));
    }
    upstream.release();
    assert.deepEqual(await Promise.all(waiting), ['done', 'done', 'done', 'done', 'done']);
  });
});

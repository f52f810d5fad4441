/**
 * How often the hot path reads the clock per request, counted through the mesh's injected clock
 * against a real node:http server. A clock read costs ~50-100 ns on a VM (performance.now()),
 * and it is easy to add one per layer: the call reads it once at its start (the retry budget's
 * deposit, the balancer's latency weighing and the first attempt take that time) and once per
 * point it times — a response read whole first at its body's end (attempt and call settle
 * together), a streamed one at its headers and at its body's end. Before: 6 and 5 reads.
 * Bounds leave room for a background timer or two (the deadline queue's) reading the clock.
 */
import { describe, it, after } from 'node:test';
import assert from 'node:assert/strict';
import { performance } from 'node:perf_hooks';
import { request as undiciRequest } from 'undici';
import { meshClient } from 'trellis';
import { quietLogger, serviceYaml, startServer } from '../helpers/servers.js';

/** The bench's full stack (bench/bench-service.ts): peak-EWMA, timeout, retries with per-try timeout and budget, breaker, outlier detection. */
const FULL = (on: string): string => `loadBalancer: ewma
timeout: 2s
retries: { attempts: 3, perTryTimeout: 500ms, on: [${on}], backoff: { base: 25ms, max: 250ms }, budget: { ratio: 0.2, minPerSecond: 10 } }
circuitBreaker: { errorThresholdPercent: 50, volumeThreshold: 20, resetTimeout: 5s }
outlierDetection: { consecutiveFailures: 5, ejectionTime: 10s, maxEjectedPercent: 50 }`;

const N = 40;

describe('clock reads per request on the hot path', () => {
  const cleanup: (() => Promise<void>)[] = [];
  after(async () => {
    for (const c of cleanup.reverse()) await c();
  });

  it('reads the clock twice for a small body read whole, three times for a streamed one, through mesh.http() and mesh.dispatcher alike', async () => {
    const servers = await Promise.all([startServer('a'), startServer('b')]);
    cleanup.push(() => Promise.all(servers.map((s) => s.close())).then(() => undefined));
    let reads = 0;
    const clock = { now: (): number => (reads++, performance.now()), wall: (): number => Date.now() };
    const eps = servers.map((s) => ({ address: s.address }));
    const mesh = await meshClient({
      // `whole`: a reset is retried, so a small body is read whole first; `streamed`: it is not, so the body streams.
      config: `${serviceYaml('whole', eps, FULL('connect-failure, reset, gateway-error'))}---\n${serviceYaml('streamed', eps, FULL('connect-failure, gateway-error'))}`,
      clock,
      logger: quietLogger(),
    });
    cleanup.push(() => mesh.close());
    const viaHttp = (service: string) => async (): Promise<void> => {
      const res = await mesh.http(service).request({ method: 'GET', path: '/x' });
      assert.equal(res.statusCode, 200);
      await res.body.dump();
    };
    const viaDispatcher = (service: string) => async (): Promise<void> => {
      const res = await undiciRequest(`http://${service}/x`, { dispatcher: mesh.dispatcher });
      assert.equal(res.statusCode, 200);
      await res.body.dump();
    };
    const perRequest = async (call: () => Promise<void>): Promise<number> => {
      for (let i = 0; i < 3; i++) await call();
      const before = reads;
      for (let i = 0; i < N; i++) await call();
      return (reads - before) / N;
    };
    const slack = 4 / N;
    for (const [name, call, most] of [
      ['mesh.http(), read whole', viaHttp('whole'), 2],
      ['mesh.dispatcher, read whole', viaDispatcher('whole'), 2],
      ['mesh.http(), streamed', viaHttp('streamed'), 3],
      ['mesh.dispatcher, streamed', viaDispatcher('streamed'), 3],
    ] as const) {
      const got = await perRequest(call);
      assert.ok(got <= most + slack, `${name}: ${got} clock reads per request, expected at most ${most}`);
      assert.ok(got >= most - slack, `${name}: ${got} clock reads per request: fewer than the ${most} the durations need (is the clock still injected?)`);
    }
  });
});

/**
 * Timers and processes: an open breaker must not keep a process alive, timers must not outlive
 * the request they bound, and a pending retry must keep a script alive until it completes.
 * Each case runs in a child process (`node --import tsx`) and must exit by itself.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const RESILIENCE = new URL('../../src/resilience/index.ts', import.meta.url).href;
const CORE = new URL('../../src/core/', import.meta.url).href;

function runScript(body: string, limitMs: number): Promise<{ code: number | null; out: string; ms: number }> {
  const source = `
    import { CircuitBreaker, BreakerTicker, retryFilter, timeoutFilter, RetryBudget } from '${RESILIENCE}';
    import { CallContext } from '${CORE}context.ts';
    import { systemClock } from '${CORE}clock.ts';
    import { ConnectFailedError } from '${CORE}errors.ts';
    ${body}`;
  return new Promise((resolve, reject) => {
    const t0 = performance.now();
    const child = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', source], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (out += d.toString()));
    const killer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`child did not exit within ${limitMs} ms; output: ${out}`));
    }, limitMs);
    child.on('exit', (code) => {
      clearTimeout(killer);
      resolve({ code, out, ms: performance.now() - t0 });
    });
  });
}

const classify = `(r, e) => (e === undefined && r.status < 500 ? { kind: 'success' } : { kind: 'failure', conditions: e ? ['connect-failure'] : ['gateway-error'] })`;

test('a process with an open breaker (60 s reset timeout, shared ticker) exits by itself', async () => {
  const { code, out } = await runScript(
    `
    const ticker = new BreakerTicker(10_000);
    const b = new CircuitBreaker({ errorThresholdPercent: 50, volumeThreshold: 1, resetTimeoutMs: 60_000, windowMs: 10_000 },
      { classify: ${classify}, service: 'products', rotate: ticker });
    const own = new CircuitBreaker({ errorThresholdPercent: 50, volumeThreshold: 1, resetTimeoutMs: 60_000, windowMs: 10_000 },
      { classify: ${classify}, service: 'orders' });
    for (const x of [b, own]) await x.filter('GET /', new CallContext('products', true), async () => ({ status: 503 }));
    console.log(b.state, own.state);`,
    8000,
  );
  assert.equal(code, 0, out);
  assert.match(out, /open open/);
});

test('timeout and per-try timers are cleared when the request settles', async () => {
  const { code, out, ms } = await runScript(
    `
    const retry = retryFilter({ attempts: 3, on: ['gateway-error'], perTryTimeoutMs: 60_000 },
      { budget: new RetryBudget({ ratio: 0.2, minPerSecond: 10, ttlMs: 10_000 }, systemClock), classify: ${classify},
        discard: () => {}, backoff: () => 0, clock: systemClock, replayable: () => true });
    const timeout = timeoutFilter({ timeoutMs: 60_000 }, { clock: systemClock });
    const r = await timeout('GET /', new CallContext('products', true), (req, ctx) => retry(req, ctx, async () => ({ status: 200 })));
    console.log('status', r.status);`,
    8000,
  );
  assert.equal(code, 0, out);
  assert.match(out, /status 200/);
  assert.ok(ms < 8000);
});

test('a script whose only pending work is a retry backoff still completes the request', async () => {
  const { code, out } = await runScript(
    `
    let n = 0;
    const retry = retryFilter({ attempts: 2, on: ['connect-failure'], perTryTimeoutMs: undefined },
      { budget: new RetryBudget({ ratio: 0.2, minPerSecond: 10, ttlMs: 10_000 }, systemClock), classify: ${classify},
        discard: () => {}, backoff: () => 100, clock: systemClock, replayable: () => true });
    const r = await retry('GET /', new CallContext('products', true), async () => {
      if (n++ === 0) throw new ConnectFailedError('refused');
      return { status: 200 };
    });
    console.log('retried', r.status);`,
    8000,
  );
  assert.equal(code, 0, out);
  assert.match(out, /retried 200/);
});

/**
 * The overload blocks: `{}` switches every part on with its defaults, `false` turns a part off,
 * bounds are checked with a field path, and unknown fields are refused.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { ConfigInvalidError, loadConfig } from 'trellis';

const doc = (spec: string): string => `apiVersion: trellis/v1\nkind: Service\nmetadata: { name: api }\nspec:\n${spec}\n`;

describe('overload config', () => {
  it('overload: {} and adaptiveConcurrency: {} give the documented defaults', async () => {
    const c = await loadConfig(doc('  inbound: { overload: {} }\n  adaptiveConcurrency: {}'));
    const s = c.services.get('api');
    assert.deepEqual(s?.inbound?.overload, {
      eventLoop: { maxUtilization: 0.95, maxDelayMs: 100 },
      concurrency: { initial: 20, min: 4, max: 1000 },
      deadline: true,
      critical: [],
    });
    assert.deepEqual(s?.adaptiveConcurrency, { initial: 20, min: 1, max: 1000, maxWaitMs: 0 });
  });

  it('false turns a part off; written values win', async () => {
    const c = await loadConfig(doc('  inbound:\n    overload: { eventLoop: false, concurrency: { min: 2, max: 10 }, deadline: false, critical: [/healthz, /pay*] }\n  adaptiveConcurrency: { initial: 5, maxWait: 50ms }'));
    const s = c.services.get('api');
    assert.deepEqual(s?.inbound?.overload, { eventLoop: undefined, concurrency: { initial: 10, min: 2, max: 10 }, deadline: false, critical: ['/healthz', '/pay*'] });
    assert.deepEqual(s?.adaptiveConcurrency, { initial: 5, min: 1, max: 1000, maxWaitMs: 50 });
  });

  it('refuses bad bounds, bad paths and unknown fields with their path', async () => {
    const cases: [string, RegExp][] = [
      ['  adaptiveConcurrency: { min: 10, max: 5 }', /spec\.adaptiveConcurrency\.min/],
      ['  adaptiveConcurrency: { initial: 50, max: 5 }', /spec\.adaptiveConcurrency\.initial/],
      ['  inbound: { overload: { eventLoop: { maxUtilization: 1.5 } } }', /spec\.inbound\.overload\.eventLoop/],
      ['  inbound: { overload: { critical: [healthz] } }', /spec\.inbound\.overload\.critical\[0\]/],
      ['  inbound: { overload: { shedAll: true } }', /shedAll/],
    ];
    for (const [spec, path] of cases) {
      await assert.rejects(loadConfig(doc(spec)), (err: unknown) => err instanceof ConfigInvalidError && path.test(err.message), spec);
    }
  });
});

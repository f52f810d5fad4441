/**
 * The breaker state gauge has a series from the moment a destination has a breaker, before any
 * traffic or transition (docs/metrics.md: "1 for the breaker's current state"), and none for a
 * destination without one; removing the breaker from the config removes its series.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { meshClient } from 'trellis';
import { samples, sampleSum } from '../helpers/prometheus.js';

const NAME = 'trellis_client_circuit_breaker_state';

function config(breaker: boolean): string {
  return `
apiVersion: trellis/v1
kind: Service
metadata: { name: guarded }
spec:
  endpoints: [ { address: 127.0.0.1:9 } ]
${breaker ? '  circuitBreaker: { errorThresholdPercent: 50, volumeThreshold: 20, resetTimeout: 10s }\n' : ''}---
apiVersion: trellis/v1
kind: Service
metadata: { name: plain }
spec:
  endpoints: [ { address: 127.0.0.1:9 } ]
`;
}

describe('breaker state gauge', () => {
  it('exists as closed=1 from the start, only for destinations with a breaker, and goes with it', async () => {
    const mesh = await meshClient({ service: 'caller', config: config(true), logger: { warn: () => undefined } });
    try {
      const text = await mesh.metricsRegistry.metrics();
      assert.equal(sampleSum(text, NAME, { service: 'guarded', state: 'closed' }), 1);
      assert.equal(sampleSum(text, NAME, { service: 'guarded', state: 'open' }), 0);
      assert.equal(samples(text, NAME, { service: 'guarded' }).length, 3);
      assert.equal(samples(text, NAME, { service: 'plain' }).length, 0);

      await mesh.reload(config(false));
      const after = await mesh.metricsRegistry.metrics();
      assert.equal(samples(after, NAME, { service: 'guarded' }).length, 0);
    } finally {
      await mesh.close();
    }
  });
});

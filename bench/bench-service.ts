/**
 * The Service every HTTP benchmark sends through: `products` with the full stack (peak-EWMA,
 * timeout, retries with per-try timeout, backoff and budget, breaker, outlier detection). One
 * definition, so `npm run bench`, the A/B, the ablation, the profiler target and the sidecar
 * comparison measure the same thing.
 */

/** The stack's policy lines, by feature (bench/ablation.ts leaves them out one at a time). */
export const FULL_POLICY = {
  loadBalancer: 'loadBalancer: ewma',
  timeout: 'timeout: 2s',
  retries: 'retries: { attempts: 3, perTryTimeout: 500ms, on: [connect-failure, reset, gateway-error], backoff: { base: 25ms, max: 250ms }, budget: { ratio: 0.2, minPerSecond: 10 } }',
  circuitBreaker: 'circuitBreaker: { errorThresholdPercent: 50, volumeThreshold: 20, resetTimeout: 5s }',
  outlierDetection: 'outlierDetection: { consecutiveFailures: 5, ejectionTime: 10s, maxEjectedPercent: 50 }',
};

/** The `products` Service document over loopback `ports`, with `policy` lines (default: the full stack). */
export function benchServiceYaml(ports: readonly number[], policy: readonly string[] = Object.values(FULL_POLICY)): string {
  return `apiVersion: trellis/v1
kind: Service
metadata: { name: products }
spec:
  endpoints:
${ports.map((p) => `    - { address: "127.0.0.1:${p}" }`).join('\n')}
${policy.map((l) => `  ${l}`).join('\n')}
`;
}

// @ts-check
/**
 * The scopes of `npm run mutate`: which src files each mutates and which unit test files (no
 * network, no child servers) are run against its mutants. Read by stryker.config.mjs and
 * scripts/mutate.mjs. New `*-mutants.test.ts` files are picked up by the globs.
 */

/** @type {Record<string, { mutate: string[], tests: string[] }>} */
export const SCOPES = {
  lb: {
    mutate: ['src/lb/*.ts', '!src/lb/index.ts', '!src/lb/balancer.ts'],
    tests: ['test/lb/*.test.ts'],
  },
  resilience: {
    mutate: [
      'src/resilience/retry-budget.ts',
      'src/resilience/backoff.ts',
      'src/resilience/token-bucket.ts',
      'src/resilience/circuit-breaker.ts',
    ],
    tests: [
      'test/resilience/retry-budget*.test.ts',
      'test/resilience/backoff*.test.ts',
      'test/resilience/circuit-breaker*.test.ts',
      'test/resilience/retry-filter*.test.ts',
      'test/resilience/rate-limit.test.ts',
      'test/resilience/token-bucket*.test.ts',
    ],
  },
  config: {
    mutate: [
      'src/config/address.ts',
      'src/config/safe-regex.ts',
      'src/config/service-checks.ts',
      'src/config/schema-common.ts',
      'src/config/limits.ts',
      'src/core/duration.ts',
    ],
    tests: ['test/config/*.test.ts', 'test/core/*.test.ts'],
  },
  traffic: {
    mutate: [
      'src/traffic/route-table.ts',
      'src/traffic/weighted-split.ts',
      'src/traffic/normalize-path.ts',
      'src/traffic/rewrite.ts',
    ],
    tests: [
      'test/traffic/route-table*.test.ts',
      'test/traffic/weighted-split*.test.ts',
      'test/traffic/normalize-path*.test.ts',
      'test/traffic/rewrite*.test.ts',
    ],
  },
  server: {
    mutate: ['src/server/authorization.ts'],
    tests: ['test/server/authorization*.test.ts'],
  },
  tls: {
    mutate: ['src/tls/tokens.ts', 'src/tls/spiffe.ts'],
    tests: ['test/tls/tokens*.test.ts', 'test/tls/spiffe*.test.ts'],
  },
  observability: {
    mutate: ['src/observability/metrics-labels.ts'],
    tests: ['test/observability/metrics.test.ts', 'test/observability/metrics-labels*.test.ts'],
  },
};

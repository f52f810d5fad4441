/**
 * The configuration example of DESIGN.md (the public contract), loaded end to end: every field
 * it shows is accepted and comes out normalized (durations in milliseconds, lists as lists,
 * defaults filled in).
 */

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { parseConfigText } from '../../src/config/index.js';

const DESIGN_EXAMPLE = `apiVersion: trellis/v1
kind: Mesh
metadata: { name: default }
spec:
  trustDomain: example.org          # identities are spiffe://example.org/svc/<service>
  mtls: strict                      # strict | permissive | off.
  certificateTTL: 24h               # renewed at two thirds of its life
  tracing: { sampling: 0.1, propagation: [tracecontext, b3] }
---
apiVersion: trellis/v1
kind: Service
metadata: { name: products }
spec:
  protocol: http                    # http | http2 | grpc | tcp
  endpoints:                        # static; or \`dns: products.shop.svc:8080\` (A/AAAA, SRV);
    - { address: 127.0.0.1:8081, labels: { version: v1 } }   # or, with neither, the registry
  loadBalancer: least-request       # round-robin | random | least-request | ewma | ring-hash
  timeout: 2s
  retries: { attempts: 3, perTryTimeout: 500ms, on: [connect-failure, reset, gateway-error],
             backoff: { base: 25ms, max: 250ms }, budget: { ratio: 0.2, minPerSecond: 10 } }
  circuitBreaker: { errorThresholdPercent: 50, volumeThreshold: 20, resetTimeout: 10s }
  outlierDetection: { consecutiveFailures: 5, ejectionTime: 30s, maxEjectedPercent: 50 }
  rateLimit: { requestsPerSecond: 100, burst: 20 }               # outbound, per instance
  routes:                           # first match wins; the last may omit match
    - name: catalog
      match: { pathPrefix: [/listv1, /catalog], methods: [GET], headers: { x-beta: "1" } }
      rewrite: { path: /listproducts }
      backends: [ { subset: { version: v2 }, weight: 90 }, { subset: { version: v3 }, weight: 10 } ]
      mirror: { subset: { version: v3 }, percent: 5 }
      fault: { delay: { duration: 100ms, percent: 5 }, abort: { status: 503, percent: 1 } }
      timeout: 1s
    - name: default
      backends: [ { subset: { version: v1 } } ]
  inbound:
    authorization: { allow: [ { from: [checkout, frontend], methods: [GET], paths: [/list*] } ] }
    rateLimit: { requestsPerSecond: 500, burst: 100, scope: instance }   # or scope: global (Redis)
`;

test('the DESIGN.md example loads', () => {
  const config = parseConfigText(DESIGN_EXAMPLE, 'mesh.yaml');
  assert.deepEqual(config.sources, ['mesh.yaml']);
  assert.deepEqual([...config.services.keys()], ['products']);
});

test('the DESIGN.md Mesh document normalizes', () => {
  const { mesh } = parseConfigText(DESIGN_EXAMPLE);
  assert.deepEqual(mesh, {
    name: 'default',
    trustDomain: 'example.org',
    mtls: 'strict',
    certificateTTLMs: 86_400_000,
    tracing: { sampling: 0.1, propagation: ['tracecontext', 'b3'], otlp: undefined },
    dns: { servers: undefined, refreshIntervalMs: 30_000, minTtlMs: 1000 },
    redis: undefined,
  });
});

test('the DESIGN.md Service document normalizes', () => {
  const products = parseConfigText(DESIGN_EXAMPLE).services.get('products');
  assert.ok(products);
  assert.equal(products.protocol, 'http');
  assert.deepEqual(products.endpoints, [{ host: '127.0.0.1', port: 8081, labels: { version: 'v1' } }]);
  assert.equal(products.dns, undefined);
  assert.equal(products.mtls, undefined);
  assert.equal(products.loadBalancer, 'least-request');
  assert.equal(products.timeoutMs, 2000);
  assert.deepEqual(products.retries, {
    attempts: 3,
    perTryTimeoutMs: 500,
    on: ['connect-failure', 'reset', 'gateway-error'],
    backoff: { baseMs: 25, maxMs: 250 },
    budget: { ratio: 0.2, minPerSecond: 10, ttlMs: 10_000 },
    maxReplayBytes: 65_536,
    explicit: true,
  });
  assert.deepEqual(products.circuitBreaker, { errorThresholdPercent: 50, volumeThreshold: 20, resetTimeoutMs: 10_000, windowMs: 10_000 });
  assert.deepEqual(products.outlierDetection, { consecutiveFailures: 5, ejectionTimeMs: 30_000, maxEjectionTimeMs: 300_000, maxEjectedPercent: 50 });
  assert.deepEqual(products.rateLimit, { requestsPerSecond: 100, burst: 20, scope: 'instance' });
  assert.deepEqual(products.connection, { maxConnections: 100, connectTimeoutMs: 1000, keepAliveTimeoutMs: 4000 });
  assert.deepEqual(products.inbound, {
    authorization: { allow: [{ from: ['checkout', 'frontend'], methods: ['GET'], paths: ['/list*'] }], deny: [] },
    rateLimit: { requestsPerSecond: 500, burst: 100, scope: 'instance' },
    fault: undefined,
  });
});

test('the DESIGN.md routes normalize', () => {
  const products = parseConfigText(DESIGN_EXAMPLE).services.get('products');
  assert.ok(products);
  const [catalog, fallback] = products.routes;
  assert.deepEqual(catalog, {
    name: 'catalog',
    match: {
      pathExact: [],
      pathPrefix: ['/listv1', '/catalog'],
      pathRegex: [],
      methods: ['GET'],
      headers: [{ name: 'x-beta', exact: '1' }],
      query: [],
    },
    rewrite: { path: '/listproducts', authority: undefined },
    backends: [
      { subset: { version: 'v2' }, weight: 90 },
      { subset: { version: 'v3' }, weight: 10 },
    ],
    mirror: { subset: { version: 'v3' }, percent: 5, maxBodyBytes: 65_536 },
    fault: { delay: { durationMs: 100, percent: 5 }, abort: { status: 503, percent: 1, grpcStatus: undefined } },
    timeoutMs: 1000,
    retries: undefined,
    rateLimit: undefined,
    hashOn: undefined,
  });
  assert.deepEqual(fallback, {
    name: 'default',
    match: undefined,
    rewrite: undefined,
    backends: [{ subset: { version: 'v1' }, weight: 1 }],
    mirror: undefined,
    fault: undefined,
    timeoutMs: undefined,
    retries: undefined,
    rateLimit: undefined,
    hashOn: undefined,
  });
});

test('the extra Mesh fields of the brief (dns, redis) load', () => {
  const text = `apiVersion: trellis/v1
kind: Mesh
metadata: { name: prod }
spec:
  dns: { servers: ["127.0.0.1:5353"], refreshInterval: 30s, minTtl: 1s }
  redis: { url: "redis://127.0.0.1:6379" }
`;
  const { mesh } = parseConfigText(text);
  assert.equal(mesh.name, 'prod');
  assert.deepEqual(mesh.dns, { servers: ['127.0.0.1:5353'], refreshIntervalMs: 30_000, minTtlMs: 1000 });
  assert.deepEqual(mesh.redis, { url: 'redis://127.0.0.1:6379' });
});

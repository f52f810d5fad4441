/**
 * Defaults and normalization: what a Service or Mesh gets for each field it leaves out, how the
 * short forms (bare endpoint strings, dns strings, string-or-list matches) come out, and how a
 * route's retries merge over its service's.
 */

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { parseConfigDocuments, parseConfigText } from '../../src/config/index.js';
import type { ServiceSpec } from '../../src/config/index.js';
import { serviceYaml } from './helpers.js';

function service(specLines: string, name = 'svc'): ServiceSpec {
  const spec = parseConfigText(serviceYaml(name, specLines)).services.get(name);
  assert.ok(spec);
  return spec;
}

test('no Mesh document: mesh defaults', () => {
  const config = parseConfigText('');
  assert.deepEqual(config.mesh, {
    name: 'default',
    trustDomain: 'cluster.local',
    mtls: undefined,
    certificateTTLMs: 24 * 3_600_000,
    tracing: undefined,
    dns: { servers: undefined, refreshIntervalMs: 30_000, minTtlMs: 1000 },
    redis: undefined,
  });
  assert.equal(config.services.size, 0);
});

test('tracing block with no fields: sample everything, W3C trace context', () => {
  const { mesh } = parseConfigText('apiVersion: trellis/v1\nkind: Mesh\nmetadata: { name: m }\nspec: { tracing: {} }\n');
  assert.deepEqual(mesh.tracing, { sampling: 1, propagation: ['tracecontext'], otlp: undefined });
});

test('a Service with no spec gets every default', () => {
  const svc = parseConfigText('apiVersion: trellis/v1\nkind: Service\nmetadata: { name: bare }\n').services.get('bare');
  assert.deepEqual(svc, {
    name: 'bare',
    protocol: 'http',
    endpoints: undefined,
    dns: undefined,
    mtls: undefined,
    loadBalancer: 'ewma',
    timeoutMs: 15_000,
    retries: {
      attempts: 2,
      perTryTimeoutMs: undefined,
      on: ['connect-failure'],
      backoff: { baseMs: 25, maxMs: 250 },
      budget: { ratio: 0.2, minPerSecond: 10, ttlMs: 10_000 },
      maxReplayBytes: 65_536,
      explicit: false,
    },
    circuitBreaker: undefined,
    outlierDetection: { consecutiveFailures: 5, ejectionTimeMs: 30_000, maxEjectionTimeMs: 300_000, maxEjectedPercent: 50 },
    rateLimit: undefined,
    routes: [],
    inbound: undefined,
    connection: { maxConnections: 100, connectTimeoutMs: 1000, keepAliveTimeoutMs: 4000 },
  });
});

test('an empty retries block is explicit, with the explicit defaults', () => {
  const http = service('retries: {}');
  assert.equal(http.retries.explicit, true);
  assert.equal(http.retries.attempts, 3);
  assert.deepEqual(http.retries.on, ['connect-failure', 'reset', 'gateway-error']);
  assert.deepEqual(http.retries.backoff, { baseMs: 25, maxMs: 250 });
  assert.deepEqual(http.retries.budget, { ratio: 0.2, minPerSecond: 10, ttlMs: 10_000 });
  assert.equal(http.retries.maxReplayBytes, 65_536);
  const grpc = service('protocol: grpc\nretries: { attempts: 4 }');
  assert.deepEqual(grpc.retries.on, ['connect-failure', 'unavailable']);
  assert.equal(grpc.retries.attempts, 4);
});

test('retry conditions: numbers become strings, duplicates go', () => {
  const svc = service('retries: { on: [5xx, 503, "409", unavailable, resource-exhausted, 503, retriable-4xx, timeout] }');
  assert.deepEqual(svc.retries.on, ['5xx', '503', '409', 'unavailable', 'resource-exhausted', 'retriable-4xx', 'timeout']);
});

test('a backoff base above the default max raises the max', () => {
  assert.deepEqual(service('retries: { backoff: { base: 1s } }').retries.backoff, { baseMs: 1000, maxMs: 1000 });
});

test('circuit breaker: absent is off, present fills defaults', () => {
  assert.equal(service('timeout: 1s').circuitBreaker, undefined);
  assert.deepEqual(service('circuitBreaker: { volumeThreshold: 5 }').circuitBreaker, {
    errorThresholdPercent: 50,
    volumeThreshold: 5,
    resetTimeoutMs: 10_000,
    windowMs: 10_000,
  });
});

test('outlier detection: on by default, false turns it off, true means the defaults', () => {
  assert.equal(service('outlierDetection: false').outlierDetection, undefined);
  assert.deepEqual(service('outlierDetection: true').outlierDetection, service('timeout: 1s').outlierDetection);
  assert.deepEqual(service('outlierDetection: { ejectionTime: 10m }').outlierDetection, {
    consecutiveFailures: 5,
    ejectionTimeMs: 600_000,
    maxEjectionTimeMs: 600_000,
    maxEjectedPercent: 50,
  });
});

test('rate limit: burst defaults to one second of rate, scope to instance', () => {
  assert.deepEqual(service('rateLimit: { requestsPerSecond: 50 }').rateLimit, { requestsPerSecond: 50, burst: 50, scope: 'instance' });
  assert.deepEqual(service('rateLimit: { requestsPerSecond: 0.5 }').rateLimit, { requestsPerSecond: 0.5, burst: 1, scope: 'instance' });
});

test('timeout: 0 disables; tcp has no timeout by default', () => {
  assert.equal(service('timeout: 0').timeoutMs, 0);
  assert.equal(service('timeout: "0"').timeoutMs, 0);
  assert.equal(service('protocol: tcp').timeoutMs, 0);
  assert.equal(service('connection: { connectTimeout: 250ms }').connection.connectTimeoutMs, 250);
});

test('endpoint short forms and IPv6', () => {
  const svc = service('endpoints: ["127.0.0.1:8081", "[::1]:8082", { address: "10.0.0.7:80", labels: { zone: a } }, "localhost:9000"]');
  assert.deepEqual(svc.endpoints, [
    { host: '127.0.0.1', port: 8081, labels: {} },
    { host: '::1', port: 8082, labels: {} },
    { host: '10.0.0.7', port: 80, labels: { zone: 'a' } },
    { host: 'localhost', port: 9000, labels: {} },
  ]);
});

test('dns: string and object forms', () => {
  assert.deepEqual(service('dns: products.shop.svc:8080').dns, { name: 'products.shop.svc', port: 8080, type: 'a', labels: {} });
  assert.deepEqual(service('dns: _http._tcp.products.shop.svc').dns, { name: '_http._tcp.products.shop.svc', port: undefined, type: 'srv', labels: {} });
  assert.deepEqual(service('dns: { name: products, port: 80, labels: { version: v2 } }').dns, {
    name: 'products',
    port: 80,
    type: 'a',
    labels: { version: 'v2' },
  });
  assert.deepEqual(service('dns: { name: _grpc._tcp.x, type: srv }').dns, { name: '_grpc._tcp.x', port: undefined, type: 'srv', labels: {} });
});

test('route defaults and match normalization', () => {
  const svc = service(`
loadBalancer: ring-hash
routes:
- name: api
  match:
    path: /exact
    pathPrefix: /api/
    pathRegex: "/users/[0-9]+"
    methods: [GET, POST, GET]
    headers: { X-Tenant: acme, x-debug: { present: true }, x-v: { regex: "v[0-9]" }, x-e: { exact: "1" } }
    query: { Debug: "1", trace: { present: false } }
  mirror: { subset: { version: v2 } }
  fault: { abort: { grpcStatus: unavailable } }
  hashOn: { header: X-User }
- name: rest
  match: {}
`);
  const [api, rest] = svc.routes;
  assert.ok(api && rest);
  assert.deepEqual(api.match, {
    pathExact: ['/exact'],
    pathPrefix: ['/api/'],
    pathRegex: ['/users/[0-9]+'],
    methods: ['GET', 'POST'],
    headers: [
      { name: 'x-tenant', exact: 'acme' },
      { name: 'x-debug', present: true },
      { name: 'x-v', regex: 'v[0-9]' },
      { name: 'x-e', exact: '1' },
    ],
    query: [
      { name: 'Debug', exact: '1' },
      { name: 'trace', present: false },
    ],
  });
  assert.deepEqual(api.backends, [{ subset: {}, weight: 1 }]);
  assert.deepEqual(api.mirror, { subset: { version: 'v2' }, percent: 100, maxBodyBytes: 65_536 });
  assert.deepEqual(api.fault, { delay: undefined, abort: { status: 503, percent: 100, grpcStatus: 'unavailable' } });
  assert.deepEqual(api.hashOn, { header: 'x-user' });
  assert.equal(rest.match, undefined, 'an empty match matches everything');
});

test('route retries merge over the service retries, field by field', () => {
  const svc = service(`
retries: { attempts: 4, perTryTimeout: 1s, on: [5xx], backoff: { base: 50ms, max: 500ms }, budget: { ratio: 0.5 } }
routes:
- name: a
  match: { path: /a }
  retries: { attempts: 2, backoff: { max: 2s } }
- name: b
`);
  const [a, b] = svc.routes;
  assert.deepEqual(a?.retries, {
    attempts: 2,
    perTryTimeoutMs: 1000,
    on: ['5xx'],
    backoff: { baseMs: 50, maxMs: 2000 },
    budget: { ratio: 0.5, minPerSecond: 10, ttlMs: 10_000 },
    maxReplayBytes: 65_536,
    explicit: true,
  });
  assert.equal(b?.retries, undefined, 'a route without retries uses the service retries');
});

test('route retries over an implicit service policy start from the explicit defaults', () => {
  const svc = service('routes:\n- name: a\n  retries: { perTryTimeout: 300ms }');
  assert.equal(svc.retries.explicit, false);
  assert.deepEqual(svc.routes[0]?.retries, {
    attempts: 3,
    perTryTimeoutMs: 300,
    on: ['connect-failure', 'reset', 'gateway-error'],
    backoff: { baseMs: 25, maxMs: 250 },
    budget: { ratio: 0.2, minPerSecond: 10, ttlMs: 10_000 },
    maxReplayBytes: 65_536,
    explicit: true,
  });
});

test('inbound: authorization deny rules, fault, rate limit; bare strings become lists', () => {
  const svc = service(`
inbound:
  authorization:
    deny: [ { from: legacy } ]
    allow: [ { from: "*", methods: GET, paths: "*" } ]
  fault: { delay: { duration: 50ms } }
  rateLimit: { requestsPerSecond: 10, scope: instance }
`);
  assert.deepEqual(svc.inbound, {
    authorization: {
      allow: [{ from: ['*'], methods: ['GET'], paths: ['*'] }],
      deny: [{ from: ['legacy'], methods: [], paths: [] }],
    },
    rateLimit: { requestsPerSecond: 10, burst: 10, scope: 'instance' },
    fault: { delay: { durationMs: 50, percent: 100 }, abort: undefined },
  });
});

test('global rate limits load when the Mesh has a Redis', () => {
  const config = parseConfigText(`apiVersion: trellis/v1
kind: Mesh
metadata: { name: m }
spec: { redis: { url: "redis://127.0.0.1:6379" } }
---
${serviceYaml('svc', 'inbound: { rateLimit: { requestsPerSecond: 5, scope: global } }')}`);
  assert.equal(config.services.get('svc')?.inbound?.rateLimit?.scope, 'global');
});

test('parsed objects load like YAML', () => {
  const config = parseConfigDocuments([
    { apiVersion: 'trellis/v1', kind: 'Service', metadata: { name: 'a' }, spec: { timeout: '3s', endpoints: ['127.0.0.1:1'] } },
  ]);
  assert.equal(config.services.get('a')?.timeoutMs, 3000);
  assert.deepEqual(config.sources, ['<inline>']);
});

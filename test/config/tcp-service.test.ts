/**
 * A `protocol: tcp` Service refuses at load what mesh.connect and mesh.listen cannot honour
 * (a declared option that does nothing is a defect), each with its field path; what they do
 * honour loads.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { loadConfig } from '../../src/config/load.js';
import { issueAt, issuesOfAsync, serviceYaml } from './helpers.js';

/** `lines` are spec lines indented by two spaces, as written under `spec:`. */
const tcp = (lines: string): string => serviceYaml('kv', `protocol: tcp\nendpoints: ["127.0.0.1:6379"]\n${lines.replace(/^  /gm, '')}`);

test('a tcp service with what connect and listen honour loads', async () => {
  const config = await loadConfig(tcp('  loadBalancer: least-request\n  timeout: 2s\n  retries: { attempts: 3, on: [connect-failure, timeout], perTryTimeout: 200ms }\n  circuitBreaker: { volumeThreshold: 5 }\n  rateLimit: { requestsPerSecond: 10 }\n  connection: { connectTimeout: 250ms }\n  inbound:\n    authorization: { allow: [ { from: [checkout] } ], deny: [ { from: [unknown] } ] }\n'));
  assert.equal(config.services.get('kv')?.protocol, 'tcp');
});

test('a tcp service refuses request-level retry conditions, faults, mirrors, hashOn and adaptive concurrency', async () => {
  const issues = await issuesOfAsync(() => loadConfig(tcp(`  loadBalancer: ring-hash
  retries: { on: [connect-failure, reset] }
  adaptiveConcurrency: {}
  routes:
    - name: all
      backends: [ { subset: {} } ]
      fault: { delay: { duration: 10ms } }
      mirror: { subset: { v: "2" }, percent: 5 }
      hashOn: { header: x-user }
`)));
  assert.match(issueAt(issues, 'spec.retries.on[1]').message, /"reset" cannot occur/);
  assert.match(issueAt(issues, 'spec.adaptiveConcurrency').message, /protocol tcp/);
  assert.match(issueAt(issues, 'spec.routes[0].fault').message, /protocol tcp/);
  assert.match(issueAt(issues, 'spec.routes[0].mirror').message, /protocol tcp/);
  assert.match(issueAt(issues, 'spec.routes[0].hashOn').message, /routeKey/);
});

test('a tcp service refuses inbound rules naming methods or paths, and inbound rate limits, faults and overload', async () => {
  const issues = await issuesOfAsync(() => loadConfig(tcp(`  inbound:
    authorization: { allow: [ { from: [checkout], methods: [GET] } ], deny: [ { paths: ["/admin*"] } ] }
    rateLimit: { requestsPerSecond: 5 }
    fault: { abort: { status: 503, percent: 1 } }
`)));
  assert.match(issueAt(issues, 'spec.inbound.authorization.allow[0].methods').message, /by caller \(from\) only/);
  assert.match(issueAt(issues, 'spec.inbound.authorization.deny[0].paths').message, /no path/);
  assert.match(issueAt(issues, 'spec.inbound.rateLimit').message, /protocol tcp/);
  assert.match(issueAt(issues, 'spec.inbound.fault').message, /protocol tcp/);
});

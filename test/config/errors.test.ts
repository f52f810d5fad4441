/**
 * Refused configurations: each kind of mistake is reported with the file, the document index,
 * the field path and the line, with a message that quotes the bad value; and all problems come
 * back together, not just the first.
 */

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { parseConfigDocuments, parseConfigText } from '../../src/config/index.js';
import { issueAt, issuesOf, serviceYaml } from './helpers.js';

const MESH = 'apiVersion: trellis/v1\nkind: Mesh\nmetadata: { name: default }\n';

test('a bad duration in the second document names file, document, path, line and value', () => {
  const text = `${MESH}---\n${serviceYaml('products', 'protocol: http\nretries:\n  backoff: { base: 2 sec }')}`;
  const issues = issuesOf(() => parseConfigText(text, 'mesh.yaml'));
  assert.equal(issues.length, 1);
  assert.deepEqual(issues[0], {
    file: 'mesh.yaml',
    document: 1,
    path: 'spec.retries.backoff.base',
    message: 'invalid duration "2 sec" (use 250ms, 2s, 1m, 24h)',
    line: 11,
  });
});

test('the error message names file, document and path', () => {
  try {
    parseConfigText(serviceYaml('a', 'timeout: soon'), 'svc.yaml');
    assert.fail('should throw');
  } catch (err) {
    assert.match(String((err as Error).message), /TRELLIS_CONFIG_INVALID: svc\.yaml:5 \(document 0\) spec\.timeout: invalid duration "soon"/);
  }
});

test('unknown fields are errors, with a suggestion', () => {
  const issues = issuesOf(() => parseConfigText(serviceYaml('a', 'timout: 2s\nretries: { attempts: 2, perTryTimeot: 1s }\nfoo: 1')));
  assert.equal(issueAt(issues, 'spec.timout').message, 'unknown field "timout" (did you mean "timeout"?)');
  assert.equal(issueAt(issues, 'spec.timout').line, 5);
  assert.match(issueAt(issues, 'spec.retries.perTryTimeot').message, /did you mean "perTryTimeout"/);
  assert.match(issueAt(issues, 'spec.foo').message, /unknown field "foo" \(known fields: protocol, endpoints/);
  assert.equal(issueAt(issues, 'spec.foo').line, 7);
});

test('negative and all-zero weights', () => {
  const issues = issuesOf(() =>
    parseConfigText(
      serviceYaml(
        'a',
        `routes:
- name: neg
  match: { path: /a }
  backends: [ { weight: 1 }, { weight: -5 } ]
- name: zero
  backends:
  - { subset: { v: a }, weight: 0 }
  - { subset: { v: b }, weight: 0 }`,
      ),
    ),
  );
  const neg = issueAt(issues, 'spec.routes[0].backends[1].weight');
  assert.equal(neg.message, 'must be at least 0, got -5');
  assert.equal(neg.line, 8);
  const zero = issueAt(issues, 'spec.routes[1].backends');
  assert.match(zero.message, /all backend weights are 0/);
  assert.equal(zero.line, 10);
});

test('unknown load balancer', () => {
  const issue = issueAt(issuesOf(() => parseConfigText(serviceYaml('a', 'loadBalancer: fastest'))), 'spec.loadBalancer');
  assert.equal(issue.message, 'unknown load balancer "fastest" (expected round-robin | random | least-request | ewma | ring-hash)');
  assert.equal(issue.line, 5);
});

test('duplicate Service names across documents', () => {
  const text = `${serviceYaml('products', 'timeout: 1s')}---\n${serviceYaml('products', 'timeout: 2s')}`;
  const issue = issueAt(issuesOf(() => parseConfigText(text, 'm.yaml')), 'metadata.name');
  assert.equal(issue.document, 1);
  assert.equal(issue.line, 9);
  assert.match(issue.message, /duplicate Service "products" \(first defined in m\.yaml document 0\)/);
});

test('more than one Mesh document', () => {
  const issue = issueAt(issuesOf(() => parseConfigText(`${MESH}---\n${MESH}`)), 'kind');
  assert.equal(issue.document, 1);
  assert.match(issue.message, /more than one Mesh document/);
});

test('conflicting routes: a match-all route that is not last, and a repeated match', () => {
  const issues = issuesOf(() =>
    parseConfigText(
      serviceYaml(
        'a',
        `routes:
- name: everything
- name: api
  match: { pathPrefix: /api }
- name: api-again
  match: { pathPrefix: [/api] }
- name: api
  match: { pathPrefix: /other }`,
      ),
    ),
  );
  const shadow = issueAt(issues, 'spec.routes[0]');
  assert.match(shadow.message, /^conflicting routes: route "everything" matches every request/);
  assert.equal(shadow.line, 6);
  assert.match(issueAt(issues, 'spec.routes[2].match').message, /conflicting routes: route "api-again" has the same match as route "api"/);
  assert.match(issueAt(issues, 'spec.routes[3].name').message, /duplicate route name "api"/);
});

test('endpoints and dns both set', () => {
  const issue = issueAt(issuesOf(() => parseConfigText(serviceYaml('a', 'endpoints: ["127.0.0.1:1"]\ndns: a.b:80'))), 'spec.dns');
  assert.match(issue.message, /endpoints and dns are both set/);
  assert.equal(issue.line, 6);
});

test('unsafe and invalid regexes', () => {
  const issues = issuesOf(() =>
    parseConfigText(
      serviceYaml(
        'a',
        `routes:
- name: r
  match:
    pathRegex: ["a(?!b)", "ok/[0-9]+"]
    headers: { x-a: { regex: "([" } }
    query: { q: { regex: "(\\\\w+)\\\\1" } }`,
      ),
    ),
  );
  assert.match(issueAt(issues, 'spec.routes[0].match.pathRegex[0]').message, /regex "a\(\?!b\)" is not a valid RE2 regular expression: .*lookahead and lookbehind are not supported/);
  assert.equal(issueAt(issues, 'spec.routes[0].match.pathRegex[0]').line, 8);
  assert.match(issueAt(issues, 'spec.routes[0].match.headers.x-a.regex').message, /is not a valid RE2 regular expression: error parsing regexp: missing closing \]/);
  assert.match(issueAt(issues, 'spec.routes[0].match.query.q.regex').message, /backreferences are not supported/);
});

test('unknown kind and apiVersion name the document', () => {
  const issues = issuesOf(() => parseConfigText(`${MESH}---\napiVersion: trellis/v2\nkind: Gateway\nmetadata: { name: g }\n`, 'x.yaml'));
  assert.deepEqual(
    issues.map((i) => [i.document, i.path, i.message, i.line]),
    [
      [1, 'apiVersion', 'unknown apiVersion "trellis/v2" (expected trellis/v1)', 5],
      [1, 'kind', 'unknown kind "Gateway" (expected Mesh or Service)', 6],
    ],
  );
});

test('every problem is reported, not only the first', () => {
  const issues = issuesOf(() =>
    parseConfigText(
      `${serviceYaml('a', 'timeout: 2 sec\nloadBalancer: x\nretries: { attempts: 0, on: [bogus] }')}---\n${serviceYaml('b', 'rateLimit: { requestsPerSecond: -1 }')}`,
    ),
  );
  assert.deepEqual(
    issues.map((i) => `${i.document} ${i.path}`),
    ['0 spec.timeout', '0 spec.loadBalancer', '0 spec.retries.attempts', '0 spec.retries.on[0]', '1 spec.rateLimit.requestsPerSecond'],
  );
});

test('wrong types quote the value and suggest quoting numbers meant as strings', () => {
  const issues = issuesOf(() =>
    parseConfigText(serviceYaml('a', 'endpoints: [ { address: "127.0.0.1:1", labels: { version: 2 } } ]\nroutes:\n- name: r\n  match: { headers: { x-beta: 1 } }')),
  );
  assert.equal(issueAt(issues, 'spec.endpoints[0].labels.version').message, 'expected a string, got number 2 (quote it: "2")');
  assert.equal(issueAt(issues, 'spec.routes[0].match.headers.x-beta').message, 'expected a string or a mapping, got number 1 (quote it: "1")');
});

test('refused endpoint addresses name the field (SSRF policy)', () => {
  const issues = issuesOf(() =>
    parseConfigText(
      serviceYaml(
        'a',
        `endpoints:
- "0.0.0.0:80"
- { address: "169.254.169.254:80" }
- "[fe80::1]:80"
- "224.0.0.1:80"
- "[::]:80"
- "[::ffff:169.254.169.254]:80"
- "127.0.0.1:0"
- "127.0.0.1:65536"
- "example.com:80"
- "::1:80"`,
      ),
    ),
  );
  assert.match(issueAt(issues, 'spec.endpoints[0]').message, /unspecified/);
  assert.match(issueAt(issues, 'spec.endpoints[1].address').message, /"169\.254\.169\.254:80": is link-local/);
  assert.equal(issueAt(issues, 'spec.endpoints[1].address').line, 7);
  assert.match(issueAt(issues, 'spec.endpoints[2]').message, /link-local/);
  assert.match(issueAt(issues, 'spec.endpoints[3]').message, /multicast/);
  assert.match(issueAt(issues, 'spec.endpoints[4]').message, /unspecified/);
  assert.match(issueAt(issues, 'spec.endpoints[5]').message, /carries an IPv4 address that is link-local/);
  assert.match(issueAt(issues, 'spec.endpoints[6]').message, /port "0" is not 1\.\.65535/);
  assert.match(issueAt(issues, 'spec.endpoints[7]').message, /port "65536"/);
  assert.match(issueAt(issues, 'spec.endpoints[8]').message, /not an IP address .*use dns: for names/);
  assert.match(issueAt(issues, 'spec.endpoints[9]').message, /IPv6 addresses need brackets/);
});

test('other field checks: names, methods, paths, percentages, dns forms, hashOn, global scope', () => {
  const issues = issuesOf(() =>
    parseConfigDocuments(
      [
        { apiVersion: 'trellis/v1', kind: 'Service', metadata: { name: 'Bad_Name' } },
        {
          apiVersion: 'trellis/v1',
          kind: 'Service',
          metadata: { name: 'b' },
          spec: {
            dns: 'products',
            rateLimit: { requestsPerSecond: 5, scope: 'global' },
            routes: [{ name: 'r', match: { methods: ['get'], path: 'no-slash' }, mirror: { percent: 101 }, hashOn: { header: 'x-user' } }],
          },
        },
        { apiVersion: 'trellis/v1', kind: 'Service', metadata: { name: 'c' }, spec: { dns: { name: 'x.y' }, circuitBreaker: { window: 5 } } },
      ],
      'api',
    ),
  );
  assert.match(issueAt(issues, 'metadata.name').message, /invalid name "Bad_Name"/);
  assert.match(issueAt(issues, 'spec.dns').message, /dns "products" needs a port/);
  assert.match(issueAt(issues, 'spec.routes[0].match.methods[0]').message, /invalid method "get"/);
  assert.match(issueAt(issues, 'spec.routes[0].match.path').message, /invalid path "no-slash"/);
  assert.equal(issueAt(issues, 'spec.routes[0].mirror.percent').message, 'must be at most 100, got 101');
  assert.match(issueAt(issues, 'spec.routes[0].hashOn').message, /hashOn needs loadBalancer: ring-hash/);
  assert.match(issueAt(issues, 'spec.dns.port').message, /A\/AAAA lookups need a port/);
  assert.match(issueAt(issues, 'spec.circuitBreaker.window').message, /invalid duration 5 \(durations are strings with a unit/);
  // No Redis in the configuration: a global limit could not work. (Reported once the spec is otherwise valid.)
  const onlyGlobal = issuesOf(() =>
    parseConfigDocuments([{ apiVersion: 'trellis/v1', kind: 'Service', metadata: { name: 'g' }, spec: { rateLimit: { requestsPerSecond: 5, scope: 'global' } } }]),
  );
  assert.match(issueAt(onlyGlobal, 'spec.rateLimit.scope').message, /scope: global needs a Redis/);
  assert.ok(issues.every((i) => i.file === 'api' && i.line === undefined));
});

test('YAML syntax errors and duplicate keys carry a line', () => {
  const syntax = issuesOf(() => parseConfigText('apiVersion: trellis/v1\nkind: Service\nmetadata: { name: a\n'));
  assert.match(syntax[0]?.message ?? '', /^YAML: /);
  assert.equal(typeof syntax[0]?.line, 'number');
  const dup = issuesOf(() => parseConfigText('apiVersion: trellis/v1\nkind: Service\nkind: Service\n'));
  assert.deepEqual([dup[0]?.line, dup[0]?.message], [3, 'YAML: duplicate key "kind" (map keys must be unique)']);
  // 1 and "1" are one key once converted to JavaScript: refused too.
  const same = issuesOf(() => parseConfigText('apiVersion: trellis/v1\nkind: Service\nmetadata: { name: a }\nspec: { 1: a, "1": b }\n'));
  assert.deepEqual([same[0]?.line, same[0]?.message], [4, 'YAML: duplicate key "1" (map keys must be unique)']);
});

test('a document that is not a mapping', () => {
  const issue = issuesOf(() => parseConfigText('- a\n- b\n'))[0];
  assert.equal(issue?.path, '');
  assert.match(issue?.message ?? '', /a document is a mapping with apiVersion, kind, metadata and spec, got a list/);
});

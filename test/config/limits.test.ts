/**
 * Hostile input (RELIABILITY.md, "DoS through config"): alias bombs, oversize text, too many
 * documents or routes, long strings, deep nesting (which once crashed the process inside the
 * YAML composer), recursive aliases and cyclic objects are refused quickly with a typed error.
 */

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { CONFIG_LIMITS, parseConfigDocuments, parseConfigText } from '../../src/config/index.js';
import { issueAt, issuesOf, serviceYaml } from './helpers.js';

test('a YAML alias bomb is refused', () => {
  const bomb = `apiVersion: trellis/v1
kind: Service
metadata: { name: a }
spec:
  a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]
  b: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]
  c: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b]
  d: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c]
  e: &e [*d,*d,*d,*d,*d,*d,*d,*d,*d]
  f: &f [*e,*e,*e,*e,*e,*e,*e,*e,*e]
`;
  const started = performance.now();
  const issues = issuesOf(() => parseConfigText(bomb, 'bomb.yaml'));
  assert.ok(performance.now() - started < 1000);
  assert.match(issues[0]?.message ?? '', /aliases expand too much \(over maxAliasCount 100/);
  assert.equal(issues[0]?.file, 'bomb.yaml');
});

test('a few ordinary aliases are fine', () => {
  const text = `apiVersion: trellis/v1
kind: Service
metadata: { name: a }
spec:
  endpoints:
  - { address: "127.0.0.1:1", labels: &l { version: v1 } }
  - { address: "127.0.0.1:2", labels: *l }
`;
  assert.deepEqual(parseConfigText(text).services.get('a')?.endpoints?.[1]?.labels, { version: 'v1' });
});

test('an alias that contains itself is refused', () => {
  const issues = issuesOf(() => parseConfigText('apiVersion: trellis/v1\nkind: Service\nmetadata: { name: a }\nspec: &s { x: *s }\n'));
  assert.match(issues[0]?.message ?? '', /alias refers to a node that contains it/);
});

test('text over 4 MiB is refused before parsing', () => {
  const big = `# ${'x'.repeat(CONFIG_LIMITS.maxTextBytes)}\n`;
  const issues = issuesOf(() => parseConfigText(big, 'big.yaml'));
  assert.deepEqual([issues[0]?.file, issues[0]?.document], ['big.yaml', 0]);
  assert.match(issues[0]?.message ?? '', /over the 4 MiB limit/);
});

test('more than 1000 documents are refused', () => {
  const doc = 'apiVersion: trellis/v1\nkind: Mesh\nmetadata: { name: m }\n---\n';
  const issues = issuesOf(() => parseConfigText(doc.repeat(1001)));
  assert.match(issues[0]?.message ?? '', /more than 1000 documents/);
  const objects = Array.from({ length: 1001 }, () => ({}));
  assert.match(issuesOf(() => parseConfigDocuments(objects))[0]?.message ?? '', /more than 1000 documents/);
});

test('more than 1000 routes in a service are refused', () => {
  const routes = Array.from({ length: 1001 }, (_, i) => ({ name: `r${i}`, match: { path: `/r${i}` } }));
  const issues = issuesOf(() => parseConfigDocuments([{ apiVersion: 'trellis/v1', kind: 'Service', metadata: { name: 'a' }, spec: { routes } }]));
  assert.equal(issueAt(issues, 'spec.routes').message, 'allows at most 1000 items, got 1001');
});

test('strings over 8 KiB are refused, keys too', () => {
  const long = 'x'.repeat(CONFIG_LIMITS.maxStringLength + 1);
  const issues = issuesOf(() => parseConfigText(serviceYaml('a', `routes:\n- name: r\n  match: { path: "/${long}" }`)));
  assert.match(issueAt(issues, 'spec.routes[0].match.path').message, /string of 8194 characters is over the 8192-character limit/);
  const keyIssues = issuesOf(() => parseConfigDocuments([{ apiVersion: 'trellis/v1', kind: 'Service', metadata: { name: 'a' }, spec: { [long]: 1 } }]));
  assert.match(keyIssues[0]?.message ?? '', /key of 8193 characters/);
});

test('regexes over 1 KiB are refused', () => {
  const issues = issuesOf(() => parseConfigText(serviceYaml('a', `routes:\n- name: r\n  match: { pathRegex: "${'a'.repeat(1025)}" }`)));
  assert.match(issueAt(issues, 'spec.routes[0].match.pathRegex').message, /over the 1024-character limit/);
});

test('deep nesting is refused before the YAML composer recurses', () => {
  // Twice in one process: a stack overflow inside the composer has aborted Node outright.
  for (const depth of [1000, 10_000]) {
    const text = `apiVersion: trellis/v1\nkind: Service\nspec: ${'['.repeat(depth)}${']'.repeat(depth)}\n`;
    const issues = issuesOf(() => parseConfigText(text));
    assert.deepEqual([issues[0]?.line, issues[0]?.message], [3, 'nesting deeper than 32 levels']);
  }
  let block = 'apiVersion: trellis/v1\nkind: Service\nspec:\n';
  for (let i = 1; i <= 40; i++) block += `${' '.repeat(i)}k:\n`;
  assert.match(issuesOf(() => parseConfigText(block))[0]?.message ?? '', /nesting deeper than 32 levels/);
});

test('aliases cannot smuggle depth past the nesting limit', () => {
  let text = 'apiVersion: trellis/v1\nkind: Service\nmetadata: { name: a }\nx0: &a0 [[[[[[[[[[1]]]]]]]]]]\n';
  for (let i = 1; i <= 5; i++) text += `x${i}: &a${i} [[[[[[[[[[*a${i - 1}]]]]]]]]]]\n`;
  assert.match(issuesOf(() => parseConfigText(text))[0]?.message ?? '', /aliases expand to nesting deeper than 32 levels/);
});

test('cyclic and exotic objects passed in directly are refused', () => {
  const cyclic: Record<string, unknown> = { apiVersion: 'trellis/v1', kind: 'Service', metadata: { name: 'a' } };
  cyclic['spec'] = { routes: [cyclic] };
  assert.match(issuesOf(() => parseConfigDocuments([cyclic]))[0]?.message ?? '', /nesting deeper than 32 levels/);
  const exotic = { apiVersion: 'trellis/v1', kind: 'Service', metadata: { name: 'a' }, spec: { timeout: new Date() } };
  assert.match(issueAt(issuesOf(() => parseConfigDocuments([exotic])), 'spec.timeout').message, /unsupported object/);
});

// How long it takes lives in bench/, not here: the suite must pass on a loaded machine.
test('a large but legal configuration loads', () => {
  const routes = Array.from({ length: 1000 }, (_, i) => ({
    name: `r${i}`,
    match: { pathPrefix: [`/p${i}`], headers: { 'x-tenant': { regex: `t${i}-[a-z]+` } } },
    backends: [{ subset: { version: 'v1' }, weight: 9 }, { subset: { version: 'v2' }, weight: 1 }],
    retries: { attempts: 2 },
  }));
  const config = parseConfigDocuments([{ apiVersion: 'trellis/v1', kind: 'Service', metadata: { name: 'a' }, spec: { routes } }]);
  assert.equal(config.services.get('a')?.routes.length, 1000);
});

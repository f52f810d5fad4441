/**
 * Hostile input (RELIABILITY.md, "DoS through config"): alias bombs, oversize text, too many
 * documents or routes, long strings, deep nesting (which once crashed the process inside the
 * YAML composer), recursive aliases and cyclic objects are refused quickly with a typed error.
 * Shapes just under 4 MiB that once cost 1-2 GB and tens of seconds are parsed in a child
 * process with a 256 MB heap: if one blows memory again, the child crashes and the test fails.
 */

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { CONFIG_LIMITS, loadConfig, parseConfigDocuments, parseConfigText } from '../../src/config/index.js';
import { runNode } from '../helpers/processes.js';
import { issueAt, issuesOf, issuesOfAsync, serviceYaml } from './helpers.js';
import { HOSTILE_SHAPES } from './hostile-yaml.js';

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
  const issues = issuesOf(() => parseConfigText(bomb, 'bomb.yaml'));
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

test('more than 10000 documents are refused', () => {
  // Small documents: 10,001 real ones would be over the node budget first.
  const doc = 'a: 1\n---\n';
  const issues = issuesOf(() => parseConfigText(doc.repeat(10_001)));
  assert.match(issues[0]?.message ?? '', /more than 10000 documents in this configuration \(maxDocuments\)/);
  const objects = Array.from({ length: 10_001 }, () => ({}));
  assert.match(issuesOf(() => parseConfigDocuments(objects))[0]?.message ?? '', /more than 10000 documents/);
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

test('hostile 4 MiB shapes are refused by a named limit, within a 256 MB heap (child process)', async () => {
  const expected: Record<string, RegExp> = {
    'many-documents': /more than 10000 documents/,
    'flow-sequence': /more than 100000 YAML nodes .*\(maxYamlNodes\)/,
    'block-sequence': /\(maxYamlNodes\)/,
    'flow-mapping-keys': /\(maxYamlNodes\)/,
    'block-mapping-keys': /\(maxYamlNodes\)/,
    'deep-collections': /\(maxYamlNodes\)/,
    'long-keys': /\(maxYamlNodes\)/,
    'long-string': /a scalar of \d+ characters, far over the 8192-character string limit/,
    'many-routes': /\(maxYamlNodes\)/,
    'comment-lines': /more than 400000 YAML tokens .*\(maxYamlTokens\)/,
    'many-aliases': /\(maxYamlNodes\)/,
  };
  assert.deepEqual(Object.keys(expected).sort(), Object.keys(HOSTILE_SHAPES).sort());
  const { code, out, err } = await runNode(['--max-old-space-size=256', 'test/config/hostile-child.ts', ...Object.keys(expected)], 600_000);
  assert.equal(code, 0, err.slice(-2000));
  const results = JSON.parse(out) as Record<string, { code: string; file?: string; line?: number; message?: string }>;
  for (const [shape, message] of Object.entries(expected)) {
    const r = results[shape];
    assert.equal(r?.code, 'TRELLIS_CONFIG_INVALID', shape);
    assert.equal(r.file, `${shape}.yaml`);
    assert.match(r.message ?? '', message, shape);
  }
});

test('list length, mapping size and duplicate keys are checked before composing', () => {
  const list = issuesOf(() => parseConfigText(serviceYaml('a', `x: [${'1,'.repeat(10_001)}1]`)));
  assert.deepEqual([list[0]?.line, list[0]?.message], [5, 'list of more than 10000 items (maxListLength)']);
  const keys = Array.from({ length: 1001 }, (_, i) => `k${i}: 1`).join(', ');
  const map = issuesOf(() => parseConfigText(serviceYaml('a', `x: { ${keys} }`)));
  assert.deepEqual([map[0]?.line, map[0]?.message], [5, 'mapping of more than 1000 keys (maxMapEntries)']);
});

test('the node budget is shared by every file of one load', async () => {
  // Each text holds ~40 000 nodes (a flow item is two: the value and its comma): alone it is refused only for its unknown field x; three
  // files together are over the budget, refused in the third.
  const lists = Array.from({ length: 2 }, (_, i) => `x${i}: [${'1,'.repeat(9_990)}1]`).join('\n');
  const text = (name: string): string => serviceYaml(name, lists);
  assert.doesNotMatch(issuesOf(() => parseConfigText(text('a')))[0]?.message ?? '', /maxYamlNodes/);
  const issues = await issuesOfAsync(() => loadConfig([text('a'), text('b'), text('c')]));
  assert.equal(issues.filter((i) => /\(maxYamlNodes\)/.test(i.message)).length, 1);
});

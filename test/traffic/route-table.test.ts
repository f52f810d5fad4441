import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { HttpHeaders } from '../../src/client/http-request.js';
import { ConfigInvalidError } from '../../src/core/errors.js';
import { compileRoutes, type RouteTable } from '../../src/traffic/route-table.js';
import { route } from './helpers.js';

function hit(table: RouteTable, path: string, method = 'GET', headers: HttpHeaders = {}): string | undefined {
  return table.match({ method, path, headers })?.name;
}

test("Istio's products example: /listv1 and /catalog prefixes go to catalog, the rest to default", () => {
  const table = compileRoutes([route('catalog', { pathPrefix: ['/listv1', '/catalog'] }), route('default')]);
  const rows: [string, string][] = [
    ['/listv1', 'catalog'],
    ['/listv1/123', 'catalog'],
    ['/catalog', 'catalog'],
    ['/catalog/books?page=2', 'catalog'],
    ['/listv2', 'default'],
    ['/listv12', 'default'], // segment-aware prefix
    ['/catalogue', 'default'],
    ['/', 'default'],
  ];
  for (const [path, want] of rows) assert.equal(hit(table, path), want, path);
});

test('no route matches: undefined (the caller uses its default route)', () => {
  const table = compileRoutes([route('catalog', { pathPrefix: ['/catalog'] })]);
  assert.equal(table.match({ method: 'GET', path: '/other', headers: {} }), undefined);
  assert.equal(compileRoutes([]).match({ method: 'GET', path: '/', headers: {} }), undefined);
});

test('first match wins, and a route without match matches everything', () => {
  const table = compileRoutes([route('all'), route('never-reached', { pathExact: ['/x'] })]);
  assert.equal(hit(table, '/x'), 'all');
  const ordered = compileRoutes([route('a', { pathPrefix: ['/api'] }), route('b', { pathPrefix: ['/api/v1'] })]);
  assert.equal(hit(ordered, '/api/v1/x'), 'a');
});

test('exact, prefix and regex paths are ORed; the regex matches the whole path without the query', () => {
  const table = compileRoutes([
    route('exact', { pathExact: ['/health'] }),
    route('users', { pathRegex: ['/users/[0-9]+'] }),
    route('mixed', { pathExact: ['/a'], pathPrefix: ['/b'] }),
  ]);
  assert.equal(hit(table, '/health'), 'exact');
  assert.equal(hit(table, '/health/x'), undefined);
  assert.equal(hit(table, '/users/42'), 'users');
  assert.equal(hit(table, '/users/42?x=1'), 'users');
  assert.equal(hit(table, '/users/42/delete'), undefined);
  assert.equal(hit(table, '/a'), 'mixed');
  assert.equal(hit(table, '/b/c'), 'mixed');
});

test('reports the matched prefix (longest first) and the root prefix', () => {
  const table = compileRoutes([route('r', { pathPrefix: ['/api', '/api/v1/', '/'] })]);
  assert.equal(table.match({ method: 'GET', path: '/api/v1/x', headers: {} })?.matchedPrefix, '/api/v1');
  assert.equal(table.match({ method: 'GET', path: '/api/v2', headers: {} })?.matchedPrefix, '/api');
  assert.equal(table.match({ method: 'GET', path: '/other', headers: {} })?.matchedPrefix, '/');
  const exact = compileRoutes([route('e', { pathExact: ['/api'] })]);
  assert.equal(exact.match({ method: 'GET', path: '/api', headers: {} })?.matchedPrefix, undefined);
});

test('methods', () => {
  const table = compileRoutes([route('reads', { methods: ['GET', 'HEAD'] }), route('rest')]);
  assert.equal(hit(table, '/', 'GET'), 'reads');
  assert.equal(hit(table, '/', 'HEAD'), 'reads');
  assert.equal(hit(table, '/', 'POST'), 'rest');
});

test('headers: exact, regex, present and absent; multi-valued headers match on any value', () => {
  const table = compileRoutes([
    route('beta', { headers: [{ name: 'x-beta', exact: '1' }] }),
    route('mobile', { headers: [{ name: 'user-agent', regex: '.*(Android|iPhone).*' }] }),
    route('traced', { headers: [{ name: 'x-debug', present: true }, { name: 'x-internal', present: false }] }),
    route('default'),
  ]);
  assert.equal(hit(table, '/', 'GET', { 'x-beta': '1' }), 'beta');
  assert.equal(hit(table, '/', 'GET', { 'x-beta': '10' }), 'default');
  assert.equal(hit(table, '/', 'GET', { 'x-beta': ['0', '1'] }), 'beta');
  assert.equal(hit(table, '/', 'GET', { 'user-agent': 'Mozilla (iPhone; CPU)' }), 'mobile');
  assert.equal(hit(table, '/', 'GET', { 'user-agent': 'curl/8' }), 'default');
  assert.equal(hit(table, '/', 'GET', { 'x-debug': '' }), 'traced');
  assert.equal(hit(table, '/', 'GET', { 'x-debug': '1', 'x-internal': 'yes' }), 'default');
});

test('config header names match case-insensitively', () => {
  const table = compileRoutes([route('beta', { headers: [{ name: 'X-Beta', exact: '1' }] })]);
  assert.equal(hit(table, '/', 'GET', { 'x-beta': '1' }), 'beta');
});

test('all conditions of a route must hold', () => {
  const table = compileRoutes([
    route('catalog', { pathPrefix: ['/listv1', '/catalog'], methods: ['GET'], headers: [{ name: 'x-beta', exact: '1' }] }),
    route('default'),
  ]);
  assert.equal(hit(table, '/catalog', 'GET', { 'x-beta': '1' }), 'catalog');
  assert.equal(hit(table, '/catalog', 'POST', { 'x-beta': '1' }), 'default');
  assert.equal(hit(table, '/catalog', 'GET'), 'default');
  assert.equal(hit(table, '/other', 'GET', { 'x-beta': '1' }), 'default');
});

test('query parameters: exact, regex, present, absent, repeated', () => {
  const table = compileRoutes([
    route('v2', { query: [{ name: 'version', exact: 'v2' }] }),
    route('num', { query: [{ name: 'id', regex: '[0-9]+' }] }),
    route('dbg', { query: [{ name: 'debug', present: true }, { name: 'nodebug', present: false }] }),
    route('default'),
  ]);
  assert.equal(hit(table, '/p?version=v2'), 'v2');
  assert.equal(hit(table, '/p?version=v1&version=v2'), 'v2');
  assert.equal(hit(table, '/p?version=v2x'), 'default');
  assert.equal(hit(table, '/p?id=123'), 'num');
  assert.equal(hit(table, '/p?id=12a'), 'default');
  assert.equal(hit(table, '/p?debug'), 'dbg');
  assert.equal(hit(table, '/p?debug&nodebug=1'), 'default');
  assert.equal(hit(table, '/p'), 'default');
  assert.equal(hit(table, '/p?name=a%20b&version=v%32'), 'v2'); // decoded as URLSearchParams does
});

test('matches the normalized path, and hands back the normalized path to send', () => {
  const table = compileRoutes([
    route('admin', { pathPrefix: ['/admin'] }),
    route('list', { pathExact: ['/list'] }),
    route('b', { pathExact: ['/b'] }),
    route('ab', { pathExact: ['/a/b'] }),
  ]);
  const rows: [string, string | undefined, string][] = [
    ['//list', 'list', '/list'],
    ['/%2e%2e/admin', 'admin', '/admin'],
    ['/public/../admin/users', 'admin', '/admin/users'],
    ['/a/../b', 'b', '/b'],
    ['/a%2Fb', 'ab', '/a/b'],
    ['/a%2fb?x=%2F', 'ab', '/a/b?x=%2F'],
    ['/list?q=1', 'list', '/list?q=1'],
  ];
  for (const [path, name, sent] of rows) {
    const m = table.match({ method: 'GET', path, headers: {} });
    assert.equal(m?.name, name, path);
    assert.equal(m?.path, sent, path);
  }
});

test('config paths are normalized like request paths', () => {
  const table = compileRoutes([route('x', { pathExact: ['/a//b'], pathPrefix: ['/c/./d/'] })]);
  assert.equal(hit(table, '/a/b'), 'x');
  assert.equal(hit(table, '/c/d/e'), 'x');
});

test('refuses unsafe rewrites and regexes at compile time', () => {
  const bad = [
    route('r', undefined, { rewrite: { path: 'relative', authority: undefined } }),
    route('r', undefined, { rewrite: { path: '/a\r\nx-evil: 1', authority: undefined } }),
    route('r', undefined, { rewrite: { path: '/a/../b', authority: undefined } }),
    route('r', undefined, { rewrite: { path: '/a?b', authority: undefined } }),
    route('r', undefined, { rewrite: { path: undefined, authority: 'host\r\nx: 1' } }),
    route('r', { pathRegex: ['(a)\\1'] }),
    route('r', { headers: [{ name: 'x', regex: 'a(?=b)' }] }),
    route('r', { query: [{ name: 'q', regex: `${'a{0,40}'.repeat(30)}b` }] }),
  ];
  for (const r of bad) assert.throws(() => compileRoutes([r]), ConfigInvalidError, JSON.stringify(r.rewrite ?? r.match));
  assert.throws(() => compileRoutes([route('ok'), bad[0]!]), /routes\[1\]\.rewrite\.path/);
  assert.throws(() => compileRoutes([route('ok'), bad[7]!]), /routes\[1\]\.match\.query\[0\]\.regex/);
});

// Matching cost on long inputs is tested in a child process (test/config/config-regex.test.ts).
test('nested quantifiers, once refused for V8, are accepted and match as RE2 does', () => {
  const table = compileRoutes([
    route('nested', { pathRegex: ['/(a+)+'] }),
    route('alt', { headers: [{ name: 'x', regex: '(a|aa)*' }] }),
    route('stars', { query: [{ name: 'q', regex: `${'a*'.repeat(10)}b` }] }),
  ]);
  assert.equal(hit(table, `/${'a'.repeat(20)}!`), undefined);
  assert.equal(hit(table, '/x', 'GET', { x: `${'a'.repeat(20)}!` }), undefined);
  assert.equal(hit(table, `/x?q=${'a'.repeat(20)}`), undefined);
  assert.equal(hit(table, `/x?q=${'a'.repeat(20)}b`), 'stars');
  assert.equal(hit(table, '/x', 'GET', { x: 'aaa' }), 'alt');
});

test('exposes the compiled routes with spec, name and checked rewrite', () => {
  const spec = route('catalog', { pathPrefix: ['/listv1'] }, { rewrite: { path: '/listproducts', authority: 'catalog.internal:8080' } });
  const table = compileRoutes([spec]);
  const r = table.routes[0]!;
  assert.equal(r.spec, spec);
  assert.equal(r.name, 'catalog');
  assert.equal(r.rewritePath, '/listproducts');
  assert.equal(r.rewriteAuthority, 'catalog.internal:8080');
  const m = table.match({ method: 'GET', path: '/listv1/1', headers: {} });
  assert.equal(m?.route, r);
  assert.equal(m?.spec, spec);
});

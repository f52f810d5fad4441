import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { RouteSpec } from '../../src/config/types.js';
import { compileRoutes } from '../../src/traffic/route-table.js';
import { rewriteRequest } from '../../src/traffic/rewrite.js';
import { request, route } from './helpers.js';

function rewritten(spec: RouteSpec, path: string, headers: Record<string, string> = {}) {
  const table = compileRoutes([spec]);
  const req = request(path, { headers });
  const m = table.match(req);
  assert.ok(m !== undefined, `no match for ${path}`);
  const before = JSON.stringify(req);
  const out = rewriteRequest(req, m.route, m.matchedPrefix);
  assert.equal(JSON.stringify(req), before, 'the original request is not mutated');
  return out;
}

const rw = (path: string | undefined, authority?: string): Partial<RouteSpec> => ({ rewrite: { path, authority } });

test('a prefix match replaces the matched prefix, keeping the rest and the query', () => {
  const spec = route('catalog', { pathPrefix: ['/listv1', '/catalog'] }, rw('/listproducts'));
  assert.equal(rewritten(spec, '/listv1/123').path, '/listproducts/123');
  assert.equal(rewritten(spec, '/listv1').path, '/listproducts');
  assert.equal(rewritten(spec, '/catalog/a/b?x=1&y=%2F').path, '/listproducts/a/b?x=1&y=%2F');
});

test('a rewrite to "/" or ending in "/" does not double the slash', () => {
  assert.equal(rewritten(route('r', { pathPrefix: ['/api'] }, rw('/')), '/api/users').path, '/users');
  assert.equal(rewritten(route('r', { pathPrefix: ['/api'] }, rw('/')), '/api').path, '/');
  assert.equal(rewritten(route('r', { pathPrefix: ['/api/'] }, rw('/v2/')), '/api/users').path, '/v2/users');
  assert.equal(rewritten(route('r', { pathPrefix: ['/'] }, rw('/base')), '/users').path, '/base/users');
});

test('exact, regex and match-all routes replace the whole path', () => {
  assert.equal(rewritten(route('r', { pathExact: ['/old'] }, rw('/new')), '/old?q=1').path, '/new?q=1');
  assert.equal(rewritten(route('r', { pathRegex: ['/u/[0-9]+'] }, rw('/user')), '/u/7').path, '/user');
  assert.equal(rewritten(route('r', undefined, rw('/fixed')), '/anything/at/all').path, '/fixed');
});

test('the prefix is replaced in the normalized path', () => {
  const spec = route('r', { pathPrefix: ['/listv1'] }, rw('/listproducts'));
  assert.equal(rewritten(spec, '//listv1/./a/../123').path, '/listproducts/123');
  assert.equal(rewritten(spec, '/listv1%2F123').path, '/listproducts/123');
});

test('authority sets the host header, in a new headers object', () => {
  const out = rewritten(route('r', undefined, rw(undefined, 'catalog.internal:8080')), '/x', { host: 'products', 'x-a': '1' });
  assert.deepEqual(out.headers, { host: 'catalog.internal:8080', 'x-a': '1' });
  assert.equal(out.path, '/x');
});

test('returns the request itself when nothing changes, and normalizes without a route', () => {
  const req = request('/a/b?x=1');
  assert.equal(rewriteRequest(req, undefined, undefined), req);
  const odd = request('/a/../b//c?x=1');
  const out = rewriteRequest(odd, undefined, undefined);
  assert.notEqual(out, odd);
  assert.equal(out.path, '/b/c?x=1');
  assert.equal(odd.path, '/a/../b//c?x=1');
});

/**
 * Inbound authorization as a table: Istio's order (deny wins, no allow rules = allow, else an
 * allow rule must match), callers (`*` = any verified, `unknown` only when written), methods,
 * `*` globs, and the path bypasses of matrix row B10 — each refused or matched consistently,
 * with a 403 body that names no rule.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { PassThrough } from 'node:stream';
import http from 'node:http';
import { compileAuthorization, compileGlob, forbiddenBody, forCaseInsensitiveRouting, isAmbiguousPath, writeForbidden } from '../../src/server/authorization.js';
import type { AuthorizationSpec } from '../../src/server/authorization.js';
import type { AuthorizationRuleSpec } from '../../src/config/types.js';

function rule(r: Partial<AuthorizationRuleSpec>): AuthorizationRuleSpec {
  return { from: r.from ?? [], methods: r.methods ?? [], paths: r.paths ?? [] };
}

function spec(allow: Partial<AuthorizationRuleSpec>[], deny: Partial<AuthorizationRuleSpec>[] = []): AuthorizationSpec {
  return { allow: allow.map(rule), deny: deny.map(rule) };
}

type Row = [caller: string, method: string, path: string, allowed: boolean];

function check(s: AuthorizationSpec | undefined, rows: Row[]): void {
  const authz = compileAuthorization(s);
  for (const [caller, method, path, allowed] of rows) {
    assert.equal(authz.authorize({ caller, method, path }).allowed, allowed, `${caller} ${method} ${path} should be ${allowed ? 'allowed' : 'denied'}`);
  }
}

describe('compileAuthorization', () => {
  it('no authorization configured: everything is allowed, even odd paths (nothing to bypass)', () => {
    const authz = compileAuthorization(undefined);
    assert.equal(authz.enabled, false);
    check(undefined, [
      ['unknown', 'GET', '/', true],
      ['checkout', 'DELETE', '//admin/../x', true],
    ]);
  });

  it('the DESIGN.md example: checkout and frontend may GET /list*', () => {
    check(spec([{ from: ['checkout', 'frontend'], methods: ['GET'], paths: ['/list*'] }]), [
      ['checkout', 'GET', '/list', true],
      ['frontend', 'GET', '/listproducts?page=2', true],
      ['checkout', 'GET', '/list/v1', true],
      ['checkout', 'HEAD', '/list', true],
      ['checkout', 'POST', '/list', false],
      ['checkout', 'GET', '/admin', false],
      ['checkout', 'GET', '/lis', false],
      ['payments', 'GET', '/list', false],
      ['unknown', 'GET', '/list', false],
    ]);
  });

  it('deny wins over allow', () => {
    check(spec([{ from: ['*'] }], [{ from: ['legacy'] }, { paths: ['/admin*'] }]), [
      ['checkout', 'GET', '/list', true],
      ['legacy', 'GET', '/list', false],
      ['checkout', 'GET', '/admin', false],
      ['checkout', 'GET', '/admin/users', false],
    ]);
  });

  it('only deny rules: everything else is allowed', () => {
    check(spec([], [{ methods: ['DELETE'] }]), [
      ['unknown', 'GET', '/x', true],
      ['checkout', 'DELETE', '/x', false],
      ['unknown', 'DELETE', '/x', false],
    ]);
  });

  it('`*` is any verified caller; `unknown` matches only when written', () => {
    check(spec([{ from: ['*'] }]), [
      ['checkout', 'GET', '/', true],
      ['unknown', 'GET', '/', false],
    ]);
    check(spec([{ from: ['unknown'], paths: ['/health'] }, { from: ['*'] }]), [
      ['unknown', 'GET', '/health', true],
      ['unknown', 'GET', '/list', false],
      ['checkout', 'GET', '/list', true],
    ]);
    // A rule without `from` is any caller, unknown included (as an Istio rule without `from`).
    check(spec([{ paths: ['/public*'] }]), [
      ['unknown', 'GET', '/public/a', true],
      ['unknown', 'GET', '/private', false],
    ]);
    // Deny `*` leaves unknown callers to the allow rules.
    check(spec([{ from: ['unknown'] }], [{ from: ['*'] }]), [
      ['unknown', 'GET', '/', true],
      ['checkout', 'GET', '/', false],
    ]);
  });

  it('fields are ANDed, values ORed', () => {
    check(spec([{ from: ['a', 'b'], methods: ['GET', 'PUT'], paths: ['/x', '/y*'] }]), [
      ['a', 'PUT', '/y/1', true],
      ['b', 'GET', '/x', true],
      ['b', 'GET', '/x/1', false],
      ['a', 'POST', '/x', false],
      ['c', 'GET', '/x', false],
    ]);
  });

  it('a deny on GET also covers HEAD (frameworks answer HEAD with the GET handler)', () => {
    check(spec([], [{ methods: ['GET'], paths: ['/secret'] }]), [
      ['checkout', 'HEAD', '/secret', false],
      ['checkout', 'GET', '/secret', false],
      ['checkout', 'POST', '/secret', true],
    ]);
  });

  it('the query string is not part of the path', () => {
    check(spec([{ paths: ['/list'] }], [{ paths: ['/admin'] }]), [
      ['a', 'GET', '/list?x=/admin', true],
      ['a', 'GET', '/list?x=/../admin', true],
      ['a', 'GET', '/admin?x=1', false],
      ['a', 'GET', '/list?', true],
    ]);
  });

  describe('B10 path bypasses', () => {
    const authz = compileAuthorization(spec([{ from: ['checkout'], paths: ['/list*'] }], [{ paths: ['/admin*'] }]));
    const denied = (path: string, caller = 'checkout'): void =>
      assert.equal(authz.authorize({ caller, method: 'GET', path }).allowed, false, `${path} must be denied`);

    it('refuses paths a framework could read two ways, whatever the rules say', () => {
      for (const p of [
        '//list', '//admin', '/list//x', '/%2e%2e/admin', '/list/../admin', '/list/./x', '/list/%2E/x', '/list/.%2e/admin',
        '/list/..', '/list/.', '/list%2Fx', '/list%2fx', '/%2Fadmin', '/list%5Cx', '/list%5cx', '/list\\x', '/list;x', '/admin;x',
        '/list%252Fx', '/list%255c', '/list/%252e%252e/admin', '/list/%2573ecret', '/list/x%2541', '/list/%25c3%25a4', '/list#x', 'http://evil/list', '*', 'list',
        '/list/\u00e4', '/list\tx', '/list x',
      ]) denied(p);
      for (const p of ['//list', '/list;x', '/%2e%2e/admin']) assert.equal(authz.authorize({ caller: 'checkout', method: 'GET', path: p }).reason, 'unsafe-path');
    });

    it('dots inside a segment and escapes of other characters are fine', () => {
      for (const p of ['/list.json', '/list/..x', '/list/x..', '/list/a.b.c', '/list/%41', '/list/%20space', '/list%3Bx', '/list/100%25', '/list/%25off']) {
        assert.equal(authz.authorize({ caller: 'checkout', method: 'GET', path: p }).allowed, true, p);
      }
    });

    it('matches the normalized path: escaped unreserved characters are decoded once', () => {
      // `/%61dmin` is `/admin` to the rules (and to any handler that decodes).
      denied('/%61dmin');
      denied('/%61%64%6D%69%6E/users');
      assert.equal(authz.authorize({ caller: 'checkout', method: 'GET', path: '/%6Cist' }).allowed, true);
    });

    it('rule paths with non-ASCII characters match their percent-encoded form, in any hex case', () => {
      const a = compileAuthorization(spec([{ paths: ['/caf\u00e9*'] }], [{ paths: ['/\u00e4dmin'] }]));
      assert.equal(a.authorize({ caller: 'x', method: 'GET', path: '/caf%C3%A9/menu' }).allowed, true);
      assert.equal(a.authorize({ caller: 'x', method: 'GET', path: '/caf%c3%a9' }).allowed, true);
      assert.equal(a.authorize({ caller: 'x', method: 'GET', path: '/%C3%A4dmin' }).allowed, false);
      assert.equal(a.authorize({ caller: 'x', method: 'GET', path: '/%c3%a4DMIN' }).allowed, false);
    });

    it('deny paths also match ignoring case and a trailing slash (Express routes /ADMIN and /admin/ to /admin)', () => {
      const a = compileAuthorization(spec([], [{ paths: ['/admin'] }]));
      for (const p of ['/admin', '/ADMIN', '/Admin/', '/admin/']) assert.equal(a.authorize({ caller: 'x', method: 'GET', path: p }).allowed, false, p);
      assert.equal(a.authorize({ caller: 'x', method: 'GET', path: '/admin/x' }).allowed, true);
    });

    it('allow paths match exactly as written', () => {
      const a = compileAuthorization(spec([{ paths: ['/list'] }]));
      assert.equal(a.authorize({ caller: 'x', method: 'GET', path: '/list' }).allowed, true);
      for (const p of ['/LIST', '/list/', '/list2']) assert.equal(a.authorize({ caller: 'x', method: 'GET', path: p }).allowed, false, p);
    });
  });

  it('the 403 body names the code and this service, nothing about rules, caller or path', async () => {
    const body = forbiddenBody('products');
    assert.deepEqual(JSON.parse(body), { error: 'TRELLIS_FORBIDDEN', service: 'products' });
    const req = new http.IncomingMessage(new PassThrough() as never);
    const res = new http.ServerResponse(req);
    const sink = new PassThrough();
    let wire = '';
    sink.on('data', (c: Buffer) => (wire += c.toString()));
    res.assignSocket(sink as never);
    writeForbidden(req, res, 'products');
    assert.equal(res.statusCode, 403);
    assert.equal(res.getHeader('content-type'), 'application/json');
    await new Promise((r) => setImmediate(r));
    assert.ok(wire.endsWith(body), wire);
    assert.doesNotMatch(wire, /admin|checkout|deny|allow|rule|unsafe/i);
  });
});

describe('forCaseInsensitiveRouting', () => {
  // Fastify's caseSensitive: false lower-cases the decoded path with toLowerCase: U+212A (Kelvin)
  // becomes `k`. Rules cannot know every router's fold, so non-ASCII paths are refused there.
  const base = compileAuthorization(spec([{ paths: ['/api/*', '/caf\u00e9'] }], [{ paths: ['/api/keys'] }]));
  const folding = forCaseInsensitiveRouting(base);

  it('refuses any percent-encoded non-ASCII byte, as an unsafe path', () => {
    for (const p of ['/api/%E2%84%AAeys', '/api/%e2%84%aaeys', '/api/%C5%BFecret', '/api/%C4%B0d', '/caf%C3%A9', '/api/x%80', '/api/%FF?q=1']) {
      assert.deepEqual(folding.authorize({ caller: 'x', method: 'GET', path: p }), { allowed: false, reason: 'unsafe-path' }, p);
    }
    // Case-sensitive routing keeps them: the rules match their encoded form.
    assert.equal(base.authorize({ caller: 'x', method: 'GET', path: '/caf%C3%A9' }).allowed, true);
    assert.equal(base.authorize({ caller: 'x', method: 'GET', path: '/api/%E2%84%AAeys' }).allowed, true);
  });

  it('leaves ASCII paths to the rules, query strings included', () => {
    assert.equal(folding.authorize({ caller: 'x', method: 'GET', path: '/api/orders?name=%C3%A9' }).allowed, true);
    assert.equal(folding.authorize({ caller: 'x', method: 'GET', path: '/api/KEYS' }).allowed, false);
    assert.equal(folding.authorize({ caller: 'x', method: 'GET', path: '/api/%7E' }).allowed, true);
  });

  it('is memoized per authorizer and leaves "no authorization" open', () => {
    assert.equal(forCaseInsensitiveRouting(base), folding);
    const open = compileAuthorization(undefined);
    assert.equal(forCaseInsensitiveRouting(open), open);
  });
});

describe('compileGlob', () => {
  const rows: [pattern: string, input: string, match: boolean][] = [
    ['/list', '/list', true],
    ['/list', '/list/', false],
    ['/list*', '/list', true],
    ['/list*', '/listings/a/b', true],
    ['/list*', '/lis', false],
    ['*', '', true],
    ['*.json', '/a/b.json', true],
    ['*.json', '/a/b.jsonx', false],
    ['/a/*/b', '/a/x/y/b', true],
    ['/a/*/b', '/a/b', false],
    ['/a*b*c', '/abc', true],
    ['/a*b*c', '/aXbYc', true],
    ['/a*b*c', '/acb', false],
    ['/a*bb*bb', '/abbb', false],
    ['/a*bb*bb', '/abbbb', true],
    ['/a**b', '/ab', true],
  ];
  it('matches `*` globs', () => {
    for (const [p, s, m] of rows) assert.equal(compileGlob(p)(s), m, `${p} ~ ${s}`);
  });

  it('is linear on adversarial input (no backtracking)', () => {
    const g = compileGlob(`/${'a*'.repeat(30)}b`);
    const s = `/${'a'.repeat(50_000)}`;
    const t0 = performance.now();
    assert.equal(g(s), false);
    // Backtracking over 30 stars and 50,000 characters would not finish at all.
    assert.ok(performance.now() - t0 < 2000);
  });
});

describe('isAmbiguousPath', () => {
  it('accepts ordinary paths', () => {
    for (const p of ['/', '/a', '/a/b/', '/a.b', '/a..b', '/%41', '/~user', '/a-b_c']) assert.equal(isAmbiguousPath(p), false, p);
  });
});

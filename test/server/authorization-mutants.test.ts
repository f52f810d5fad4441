/**
 * Inbound authorization decisions that a one-line change could flip (STYLE.md; measured by
 * `npm run mutate -- security`). Complements authorization.test.ts: the reasons given, method
 * case on both sides, HEAD only from GET, rule fields left out versus present, and the order of
 * deny and allow rules.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { AuthorizationRuleSpec } from '../../src/config/types.js';
import { compileAuthorization, type AuthorizationSpec } from '../../src/server/authorization.js';

const rule = (r: Partial<AuthorizationRuleSpec>): AuthorizationRuleSpec => ({ from: r.from ?? [], methods: r.methods ?? [], paths: r.paths ?? [] });
const spec = (allow: Partial<AuthorizationRuleSpec>[], deny: Partial<AuthorizationRuleSpec>[] = []): AuthorizationSpec => ({ allow: allow.map(rule), deny: deny.map(rule) });
const decide = (s: AuthorizationSpec, caller: string, method: string, path: string) => compileAuthorization(s).authorize({ caller, method, path });

describe('authorization decisions (mutation-level)', () => {
  it('a configured authorizer says it is enabled, even with no rules, and then allows', () => {
    const a = compileAuthorization(spec([], []));
    assert.equal(a.enabled, true);
    assert.deepEqual(a.authorize({ caller: 'unknown', method: 'GET', path: '/' }), { allowed: true });
  });

  it('each denial carries its reason; an allowed request carries none', () => {
    const s = spec([{ from: ['checkout'] }], [{ paths: ['/admin'] }]);
    assert.deepEqual(decide(s, 'checkout', 'GET', '/list'), { allowed: true });
    assert.deepEqual(decide(s, 'checkout', 'GET', '/admin'), { allowed: false, reason: 'deny-rule' });
    assert.deepEqual(decide(s, 'payments', 'GET', '/list'), { allowed: false, reason: 'no-allow-rule' });
    assert.deepEqual(decide(s, 'checkout', 'GET', '//list'), { allowed: false, reason: 'unsafe-path' });
  });

  it('the request method is compared upper-cased: a lower-case method cannot slip past a deny', () => {
    const s = spec([], [{ methods: ['DELETE'] }]);
    assert.equal(decide(s, 'a', 'delete', '/x').allowed, false);
    assert.equal(decide(s, 'a', 'Delete', '/x').allowed, false);
    assert.equal(decide(s, 'a', 'get', '/x').allowed, true);
    const allow = spec([{ methods: ['GET'] }]);
    assert.equal(decide(allow, 'a', 'get', '/x').allowed, true);
  });

  it('rule methods are upper-cased too', () => {
    const s = spec([{ methods: ['get'] }], [{ methods: ['put'] }]);
    assert.equal(decide(s, 'a', 'GET', '/x').allowed, true);
    assert.equal(decide(s, 'a', 'HEAD', '/x').allowed, true);
    assert.equal(decide(s, 'a', 'PUT', '/x').allowed, false);
    assert.equal(decide(s, 'a', 'POST', '/x').allowed, false);
  });

  it('HEAD is added only for GET: a rule naming POST does not allow HEAD', () => {
    const s = spec([{ methods: ['POST'] }]);
    assert.equal(decide(s, 'a', 'POST', '/x').allowed, true);
    assert.equal(decide(s, 'a', 'HEAD', '/x').allowed, false);
    assert.equal(decide(s, 'a', 'GET', '/x').allowed, false);
  });

  it('a rule with from lists only those callers: an empty names list is not "anyone"', () => {
    const s = spec([{ from: ['checkout'] }]);
    assert.equal(decide(s, 'checkout', 'GET', '/').allowed, true);
    assert.equal(decide(s, 'frontend', 'GET', '/').allowed, false);
    assert.equal(decide(s, 'unknown', 'GET', '/').allowed, false);
    // `*` plus a name: the name still counts, `unknown` still does not
    const star = spec([{ from: ['*', 'unknown'] }]);
    assert.equal(decide(star, 'unknown', 'GET', '/').allowed, true);
    assert.equal(decide(star, 'anyone', 'GET', '/').allowed, true);
  });

  it('a deny rule with only from denies those callers on every path and method', () => {
    const s = spec([{ from: ['*'] }], [{ from: ['legacy'] }]);
    for (const [m, p] of [['GET', '/'], ['POST', '/a/b'], ['DELETE', '/x.json']] as const) {
      assert.equal(decide(s, 'legacy', m, p).allowed, false, `${m} ${p}`);
      assert.equal(decide(s, 'checkout', m, p).allowed, true, `${m} ${p}`);
    }
  });

  it('paths: a rule matches when any one of its paths does, and `*` among them matches all', () => {
    const s = spec([{ paths: ['/a', '/b*'] }]);
    assert.equal(decide(s, 'x', 'GET', '/a').allowed, true);
    assert.equal(decide(s, 'x', 'GET', '/b/c').allowed, true);
    assert.equal(decide(s, 'x', 'GET', '/c').allowed, false);
    const any = spec([{ paths: ['/a', '*'] }]);
    assert.equal(decide(any, 'x', 'GET', '/zzz').allowed, true);
  });

  it('the first matching allow rule allows; later non-matching ones do not undo it', () => {
    const s = spec([{ from: ['a'] }, { from: ['b'], methods: ['GET'] }]);
    assert.equal(decide(s, 'a', 'POST', '/').allowed, true);
    assert.equal(decide(s, 'b', 'GET', '/').allowed, true);
    assert.equal(decide(s, 'b', 'POST', '/').allowed, false);
  });

  it('any matching deny rule wins, not only the first', () => {
    const s = spec([{ from: ['*'] }], [{ from: ['x'] }, { paths: ['/secret'] }]);
    assert.equal(decide(s, 'y', 'GET', '/secret').allowed, false);
    assert.equal(decide(s, 'y', 'GET', '/SECRET/').allowed, false);
    assert.equal(decide(s, 'y', 'GET', '/public').allowed, true);
  });

  it('deny rule paths are read loosely too: a deny written /Admin/ still covers /admin', () => {
    const s = spec([], [{ paths: ['/Admin/'] }, { paths: ['/Ops*'] }]);
    for (const p of ['/admin', '/ADMIN', '/admin/', '/ops', '/ops/x']) assert.equal(decide(s, 'x', 'GET', p).allowed, false, p);
    assert.equal(decide(s, 'x', 'GET', '/public').allowed, true);
    // allow rule paths stay exact
    const allow = spec([{ paths: ['/List'] }]);
    assert.equal(decide(allow, 'x', 'GET', '/List').allowed, true);
    assert.equal(decide(allow, 'x', 'GET', '/list').allowed, false);
  });

  it('the query is cut at the first `?` only; a path without one is used whole', () => {
    const s = spec([{ paths: ['/list'] }]);
    assert.equal(decide(s, 'x', 'GET', '/list?a=?b').allowed, true);
    assert.equal(decide(s, 'x', 'GET', '/list').allowed, true);
    assert.equal(decide(s, 'x', 'GET', '/lis?t').allowed, false);
  });
});

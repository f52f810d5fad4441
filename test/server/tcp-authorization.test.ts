/**
 * Authorization of connections by caller (src/server/tcp-authorization.ts): Istio's order, `from`
 * semantics shared with request authorization, and rules naming methods or paths read so they can
 * only refuse more (an HTTP service that also listens on TCP).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { compileCallerAuthorization } from '../../src/server/tcp-authorization.js';

const rule = (from: string[], methods: string[] = [], paths: string[] = []) => ({ from, methods, paths });

test('no authorization allows every caller, unknown included', () => {
  const a = compileCallerAuthorization(undefined);
  assert.equal(a.enabled, false);
  assert.equal(a.authorize('unknown').allowed, true);
});

test('allow rules: listed callers only; * is any verified caller, never unknown', () => {
  const a = compileCallerAuthorization({ allow: [rule(['checkout'])], deny: [] });
  assert.deepEqual(a.authorize('checkout'), { allowed: true });
  assert.deepEqual(a.authorize('frontend'), { allowed: false, reason: 'no-allow-rule' });
  assert.equal(a.authorize('unknown').allowed, false);
  const star = compileCallerAuthorization({ allow: [rule(['*'])], deny: [] });
  assert.equal(star.authorize('anything').allowed, true);
  assert.equal(star.authorize('unknown').allowed, false);
  const explicitUnknown = compileCallerAuthorization({ allow: [rule(['unknown'])], deny: [] });
  assert.equal(explicitUnknown.authorize('unknown').allowed, true);
});

test('a matching deny wins over an allow; deny without from denies everyone; no allow rules allow the rest', () => {
  const a = compileCallerAuthorization({ allow: [rule(['checkout', 'batch'])], deny: [rule(['batch'])] });
  assert.deepEqual(a.authorize('batch'), { allowed: false, reason: 'deny-rule' });
  assert.equal(a.authorize('checkout').allowed, true);
  const denyOnly = compileCallerAuthorization({ allow: [], deny: [rule(['batch'])] });
  assert.equal(denyOnly.authorize('checkout').allowed, true);
  assert.equal(denyOnly.authorize('batch').allowed, false);
  const denyAll = compileCallerAuthorization({ allow: [], deny: [rule([])] });
  assert.equal(denyAll.authorize('checkout').allowed, false);
});

test('rules naming methods or paths only ever refuse more: such a deny denies, such an allow allows nothing', () => {
  const a = compileCallerAuthorization({ allow: [rule(['checkout'], ['GET'], ['/list*'])], deny: [] });
  // The only allow rule is an HTTP one: the listener must not become open, nor allow checkout.
  assert.deepEqual(a.authorize('checkout'), { allowed: false, reason: 'no-allow-rule' });
  const d = compileCallerAuthorization({ allow: [rule(['checkout'])], deny: [rule(['checkout'], ['POST'])] });
  assert.deepEqual(d.authorize('checkout'), { allowed: false, reason: 'deny-rule' });
});

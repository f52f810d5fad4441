import assert from 'node:assert/strict';
import { test } from 'node:test';
import { normalizePath, normalizePathOnly } from '../../src/traffic/normalize-path.js';

const cases: [string, string][] = [
  ['/list', '/list'],
  ['/', '/'],
  ['//list', '/list'],
  ['/a//b///c', '/a/b/c'],
  ['/a/../b', '/b'],
  ['/a/./b/', '/a/b/'],
  ['/a/b/..', '/a/'],
  ['/../../etc/passwd', '/etc/passwd'],
  ['/%2e%2e/admin', '/admin'],
  ['/%2E%2e/admin', '/admin'],
  ['/public/%2e%2e/admin', '/admin'],
  ['/a%2Fb', '/a/b'],
  ['/a%2fb/..%2fadmin', '/a/admin'],
  ['/a%5Cb', '/a/b'],
  ['/a\\..\\admin', '/admin'],
  ['/%61bc', '/abc'],
  ['/a%3fb', '/a%3Fb'],
  ['/a%252Fb', '/a%252Fb'],
  ['/a%zzb', '/a%zzb'],
  ['/a;x=1/b', '/a;x=1/b'],
  ['/.well-known/x', '/.well-known/x'],
  ['*', '*'],
];

for (const [input, want] of cases) {
  test(`normalizes ${JSON.stringify(input)} to ${JSON.stringify(want)}`, () => {
    assert.equal(normalizePathOnly(input), want);
    assert.equal(normalizePathOnly(want), want, 'idempotent');
  });
}

test('keeps the query string byte for byte', () => {
  assert.equal(normalizePath('//a/../b?x=%2F..//&y'), '/b?x=%2F..//&y');
  assert.equal(normalizePath('/b?x=1'), '/b?x=1');
});

test('returns the same string for a normal path', () => {
  const p = '/api/v1/items?x=1';
  assert.equal(normalizePath(p), p);
});

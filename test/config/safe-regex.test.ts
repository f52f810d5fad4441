/**
 * The conservative regex checker: the exponential shapes are refused, ordinary route regexes
 * pass, and accepted regexes are compiled anchored (whole-value match, as Istio does).
 */

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { compileMatcherRegex, regexProblem } from '../../src/config/index.js';

test('ordinary route regexes are accepted', () => {
  for (const ok of [
    '/users/[0-9]+',
    '/api/v[12]/orders/[a-f0-9-]{36}',
    '^/static/.*\\.(css|js)$',
    '/(en|fr|de)/home',
    '(?:\\.\\d+)?',
    '(?<id>[0-9]+)',
    '/a/.*/b/.*',
    'v[0-9]',
    '[(a+)+]',
    'a{2}',
  ]) {
    assert.equal(regexProblem(ok), undefined, ok);
  }
});

test('nested quantifiers and repeated alternations are refused', () => {
  for (const bad of ['(a+)+', '(a*)*', '(a|aa)*', '(\\w+\\s?)*$', '((ab)*c)+', '(?:a+){2,}', '(a?){10}', '(x+x+)+y', '(.*a){3,5}']) {
    assert.match(regexProblem(bad) ?? '', /repeats a group that contains a quantifier or an alternation/, bad);
  }
});

test('backreferences, lookaround, too many wildcards, bad syntax and length are refused', () => {
  assert.match(regexProblem('(a)\\1') ?? '', /backreference/);
  assert.match(regexProblem('(?<x>a)\\k<x>') ?? '', /backreference/);
  assert.match(regexProblem('a(?=b)') ?? '', /lookahead or lookbehind/);
  assert.match(regexProblem('(?<!a)b') ?? '', /lookahead or lookbehind/);
  assert.match(regexProblem('.*a.*b.*c.*d') ?? '', /4 unbounded wildcards/);
  assert.match(regexProblem('([') ?? '', /not a valid regular expression/);
  assert.match(regexProblem('a'.repeat(1025)) ?? '', /over the 1024-character limit/);
});

test('compiled regexes match the whole value', () => {
  const re = compileMatcherRegex('/users/[0-9]+|/health');
  assert.ok(re.test('/users/42'));
  assert.ok(re.test('/health'));
  assert.ok(!re.test('/users/42/delete'));
  assert.ok(!re.test('/x/health'));
  assert.throws(() => compileMatcherRegex('(a+)+'), /regex "\(a\+\)\+" repeats a group/);
});

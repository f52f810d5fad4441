/**
 * Config regexes run on RE2 (re2js), never on V8's backtracking engine: ordinary route regexes
 * are accepted, what RE2 cannot do (backreferences, lookaround) and oversized programs are
 * refused at load with the field path, and patterns that take V8 seconds to minutes per
 * request match 100 000-char inputs in a child process. That child is killed by a generous
 * timeout should a backtracking engine come back; nothing here measures wall-clock time.
 */

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { compileMatcherRegex, CONFIG_LIMITS, regexProblem } from '../../src/config/index.js';
import { programSizeBound } from '../../src/config/config-regex.js';
import { runNode } from '../helpers/processes.js';

test('ordinary route regexes are accepted and run on RE2', () => {
  for (const ok of [
    '/users/[0-9]+',
    '/api/v[12]/orders/[a-f0-9-]{36}',
    '^/static/.*\\.(css|js)$',
    '/(en|fr|de)/home',
    '(?:\\.\\d+)?',
    '(?<id>[0-9]+)',
    '(?P<id>[0-9]+)',
    '/a/.*/b/.*',
    'v[0-9]',
    '[(a+)+]',
    'a{2}',
    '.*a.*b.*c.*d',
    '(a+)+',
    '(\\w+\\s?)*',
  ]) {
    assert.equal(regexProblem(ok), undefined, ok);
    assert.equal(compileMatcherRegex(ok).engine, 're2');
  }
});

test('backreferences, lookaround, bad syntax, length and program size are refused', () => {
  assert.match(regexProblem('(a)\\1') ?? '', /not a valid RE2 regular expression: .*backreferences are not supported/);
  assert.match(regexProblem('(?<x>a)\\k<x>') ?? '', /backreferences are not supported/);
  assert.match(regexProblem('a(?=b)') ?? '', /lookahead and lookbehind are not supported/);
  assert.match(regexProblem('(?<!a)b') ?? '', /lookahead and lookbehind are not supported/);
  assert.match(regexProblem('([') ?? '', /not a valid RE2 regular expression: error parsing regexp: missing closing \]/);
  assert.match(regexProblem('a'.repeat(1025)) ?? '', /over the 1024-character limit/);
  assert.match(regexProblem('a{1001}') ?? '', /too large/);
  // Refused by the bound on the source, before compiling (compiling it takes seconds and 90 MB).
  assert.match(regexProblem('\\d{0,1000}'.repeat(100)) ?? '', /would exceed 200 instructions/);
  // Under the bound but over the exact cap: refused by the compiled program's size.
  const exact = regexProblem('[a-z]'.repeat(201));
  assert.match(exact ?? '', /its RE2 program has \d+ instructions, over the 200-instruction limit/);
});

test('the size bound never under-counts the compiled program', () => {
  for (const source of [
    '/api/v[12]/orders/[a-f0-9-]{36}', '(a{3}){4}', '((ab|cd){2,5}x)?', '[]a]{9}', '[^]x]{2}(y)', '\\x{41}{7}', '\\pL{1,5}',
    '(?:a|b|c|d){3,}', '(?i)[a-z]{2}-[0-9]{1,3}', 'a*b+c?', '(((a)))', '[[:alpha:]]{10}', '\\Q{5}\\E',
  ]) {
    const size = compileMatcherRegex(source).programSize;
    assert.ok(programSizeBound(source) >= size, `${source}: bound ${programSizeBound(source)} < size ${size}`);
  }
});

test('compiled regexes match the whole value', () => {
  const re = compileMatcherRegex('/users/[0-9]+|/health');
  assert.ok(re.test('/users/42'));
  assert.ok(re.test('/health'));
  assert.ok(!re.test('/users/42/delete'));
  assert.ok(!re.test('/x/health'));
  assert.throws(() => compileMatcherRegex('(a)\\1'), /regex "\(a\)\\1" is not a valid RE2 regular expression/);
});

test('patterns that stall V8 are refused at load or match 100 000-char inputs (child process)', async () => {
  // V8: a*×10 b on 26 chars 6.6 s, a{0,40}×30 b 10.5 s, .*.*.*! on 1 500 chars 3.3 s, (a+)+ never
  // ends on 100 000. A backtracking engine would be SIGKILLed here long before finishing.
  const { code, out, err } = await runNode(['--max-old-space-size=256', 'test/config/regex-child.ts'], 90_000);
  assert.equal(code, 0, err);
  const results = JSON.parse(out) as { regex: string; accepted: boolean; engine?: string; matched?: unknown[]; path?: string; message?: string }[];
  const byRegex = new Map(results.map((r) => [r.regex, r]));
  for (const regex of [`${'a*'.repeat(10)}b`, '.*.*.*!', '(a+)+', '(a|aa)*']) {
    assert.deepEqual(byRegex.get(regex), { regex, accepted: true, engine: 're2', matched: [null, null, null] });
  }
  const big = byRegex.get(`${'a{0,40}'.repeat(30)}b`);
  assert.equal(big?.accepted, false);
  assert.equal(big?.path, 'routes[0].match.headers[0].regex');
  assert.match(big?.message ?? '', new RegExp(`too large: its RE2 program would exceed ${CONFIG_LIMITS.maxRegexProgramSize}`));
});

/**
 * Child process for config-regex.test.ts: compiles route regexes through `compileRoutes` (the
 * place request-path regexes are compiled) and matches each accepted one against 100 000-char
 * inputs built to make a backtracking engine explore every split. Prints one JSON line. Run in
 * its own process so a regression (a backtracking engine) is killed by the test's generous
 * timeout instead of hanging the runner. Not a test file itself (no `.test.ts`).
 */
import { compileRoutes } from '../../src/traffic/route-table.js';
import { compileMatcherRegex } from '../../src/config/config-regex.js';
import { ConfigInvalidError } from '../../src/core/errors.js';
import { route } from '../traffic/helpers.js';

const patterns: [string, string][] = [
  [`${'a*'.repeat(10)}b`, 'a'.repeat(100_000)],
  [`${'a{0,40}'.repeat(30)}b`, 'a'.repeat(100_000)],
  ['.*.*.*!', 'x'.repeat(100_000)],
  ['(a+)+', `${'a'.repeat(100_000)}!`],
  ['(a|aa)*', `${'a'.repeat(100_000)}!`],
];

const results = patterns.map(([regex, input]) => {
  try {
    const table = compileRoutes([
      route('h', { headers: [{ name: 'x', regex }] }),
      route('q', { query: [{ name: 'q', regex }] }),
      route('p', { pathRegex: [`/x/${regex}`] }),
    ]);
    const matched = [
      table.match({ method: 'GET', path: '/', headers: { x: input } })?.name,
      table.match({ method: 'GET', path: `/?q=${input}`, headers: {} })?.name,
      table.match({ method: 'GET', path: `/x/${input}`, headers: {} })?.name,
    ];
    return { regex, accepted: true, engine: compileMatcherRegex(regex).engine, matched };
  } catch (err) {
    if (!(err instanceof ConfigInvalidError)) throw err;
    return { regex, accepted: false, message: err.issues[0]?.message, path: err.issues[0]?.path };
  }
});
process.stdout.write(`${JSON.stringify(results)}\n`);

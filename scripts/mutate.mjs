#!/usr/bin/env node
// Runs Stryker once per scope of stryker.config.mjs, one after another (the machine is shared).
//   npm run mutate                      all scopes
//   npm run mutate -- server lb          only these
//   npm run mutate -- tls --incremental --mutate=src/tls/tokens.ts
//                                       arguments starting with `-` go to `stryker run` as they are
// Prints the wall time of each scope and of the whole run.
import { spawnSync } from 'node:child_process';
import { SCOPES } from './mutation-scopes.mjs';

const args = process.argv.slice(2);
const wanted = args.filter((a) => !a.startsWith('-'));
const strykerArgs = args.filter((a) => a.startsWith('-'));
const names = wanted.length > 0 ? wanted : Object.keys(SCOPES);
const unknown = names.filter((n) => !(n in SCOPES));
if (unknown.length > 0) {
  console.error(`unknown scope(s): ${unknown.join(', ')}; known: ${Object.keys(SCOPES).join(', ')}`);
  process.exit(2);
}

const started = Date.now();
let failed = false;
for (const name of names) {
  const t0 = Date.now();
  console.log(`\n=== mutate ${name} ===`);
  const run = spawnSync('npx', ['stryker', 'run', 'stryker.config.mjs', ...strykerArgs], {
    stdio: 'inherit',
    env: { ...process.env, TRELLIS_MUTATE_SCOPE: name },
  });
  console.log(`=== ${name}: exit ${run.status}, ${((Date.now() - t0) / 1000).toFixed(0)}s ===`);
  if (run.status !== 0) failed = true;
}
console.log(`\nmutate: ${names.join(', ')} in ${((Date.now() - started) / 1000).toFixed(0)}s; reports in reports/mutation/`);
process.exit(failed ? 1 : 0);

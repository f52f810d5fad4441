// @ts-check
/**
 * Mutation testing (StrykerJS) for the unit-level rules: `npm run mutate` (all scopes, one after
 * another) or `npm run mutate -- resilience tls` (named scopes). Not part of `npm test` or CI.
 * See docs/testing.md for what each scope covers and the scores.
 *
 * One scope per run, chosen by TRELLIS_MUTATE_SCOPE (scripts/mutate.mjs sets it); the scopes are
 * in scripts/mutation-scopes.mjs. Each scope
 * mutates a few src files and runs only the unit test files that exercise them, so a run takes
 * minutes: no network, no child servers, no e2e.
 *
 * HOW MUTANTS REACH THE TESTS. Stryker instruments the TypeScript in src/ inside a sandbox copy
 * and the tap runner runs each test file as `node --import tsx <file>` (one process per file,
 * node:test's TAP on stdout). The unit tests in the scopes below import from `../../src/...`, so
 * tsx loads the instrumented sources directly; nothing is built. Two guards keep it that way:
 *  - TSX_TSCONFIG_PATH=tsconfig.typecheck.json makes tsx resolve the bare specifier `trellis`
 *    through that tsconfig's `paths` to src/index.ts (the same mapping `npm run typecheck` uses),
 *    so a unit test that imports `trellis` also sees the mutant, in the same module instance as
 *    its relative imports. It only affects processes started by this config.
 *  - dist/ is not copied into the sandbox (ignorePatterns), so nothing can silently test the
 *    built, unmutated copy: an import that escaped the mapping would fail loudly instead.
 * Having Stryker run `npm run build` instead would need one tsc build per mutant (or mutating
 * dist/*.js, which loses the TypeScript checker and maps survivors to compiled lines).
 *
 * `node --test` is NOT used: it runs each file in a child process, where the runner's coverage
 * hook (and the active-mutant switch) would not be seen. Running the file directly with
 * `--test-reporter=tap` keeps node:test's own TAP output, in one process.
 *
 * The TypeScript checker drops mutants that do not compile (against tsconfig.build.json: src only,
 * strict), so they are not counted as killed by a crash.
 */

import { readdirSync } from 'node:fs';
import { SCOPES } from './scripts/mutation-scopes.mjs';

const scopeName = process.env.TRELLIS_MUTATE_SCOPE ?? '';
const scope = SCOPES[scopeName];
if (scope === undefined) {
  throw new Error(
    `TRELLIS_MUTATE_SCOPE must be one of ${Object.keys(SCOPES).join(', ')} (got "${scopeName}"); use npm run mutate`,
  );
}

/**
 * The scope's test files, globs expanded here (only `*` in the file name is used). With
 * TRELLIS_MUTATE_BASELINE=1 the `*-mutants.test.ts` files are left out: that is the score of the
 * tests as they were before mutation testing was adopted (docs/testing.md reports both).
 */
function testFiles(patterns) {
  const files = new Set();
  for (const pattern of patterns) {
    const slash = pattern.lastIndexOf('/');
    const dir = pattern.slice(0, slash);
    const name = new RegExp(`^${pattern.slice(slash + 1).replace(/[.+?^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '.*')}$`);
    let entries = [];
    try {
      entries = readdirSync(dir);
    } catch {
      continue; // a folder with no tests yet
    }
    for (const entry of entries.sort()) if (name.test(entry)) files.add(`${dir}/${entry}`);
  }
  const baseline = process.env.TRELLIS_MUTATE_BASELINE === '1';
  return [...files].filter((f) => !(baseline && f.endsWith('-mutants.test.ts')));
}

// Inherited by the test processes the tap runner spawns (see the comment above).
process.env.TSX_TSCONFIG_PATH = 'tsconfig.typecheck.json';

/** @type {import('@stryker-mutator/api/core').PartialStrykerOptions} */
export default {
  testRunner: 'tap',
  tap: {
    testFiles: testFiles(scope.tests),
    nodeArgs: ['--import', 'tsx', '--test-reporter=tap', '--test-timeout=60000', '{{testFile}}'],
    forceBail: true,
  },
  checkers: ['typescript'],
  tsconfigFile: 'tsconfig.build.json',
  typescriptChecker: { prioritizePerformanceOverAccuracy: true },
  mutate: scope.mutate,
  coverageAnalysis: 'perTest',
  // The machine is shared: two test processes at most, plus one checker.
  concurrency: Number(process.env.TRELLIS_MUTATE_CONCURRENCY ?? 2),
  // .stryker-tmp: the other scopes' sandboxes (tempDirName is per scope, so only this one is
  // ignored by default).
  ignorePatterns: ['dist', 'bench', 'examples', 'reports', '.trellis-tmp', '.stryker-tmp'],
  // With --incremental, results are reused for mutants whose code and covering tests did not change.
  incrementalFile: `reports/mutation/${scopeName}.incremental.json`,
  tempDirName: `.stryker-tmp/${scopeName}`,
  reporters: ['clear-text', 'json', 'html'],
  jsonReporter: { fileName: `reports/mutation/${scopeName}.json` },
  htmlReporter: { fileName: `reports/mutation/${scopeName}.html` },
  clearTextReporter: { allowColor: false, logTests: false, reportScoreTable: true },
  // A mutant that loops forever costs timeoutMS on top of the expected time; 8 s is ample for
  // these files on a loaded 2-core machine and keeps such mutants cheap.
  timeoutMS: 8000,
  timeoutFactor: 2,
};

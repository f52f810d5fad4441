/**
 * Test helpers for config tests: run a load expected to fail and hand back its issues, and
 * find one issue by path. Not a test file itself (no `.test.ts`).
 */

import assert from 'node:assert/strict';
import { ConfigInvalidError, type ConfigIssue } from '../../src/core/errors.js';

/** Runs `fn`, which must throw ConfigInvalidError, and returns its issues. */
export function issuesOf(fn: () => unknown): readonly ConfigIssue[] {
  try {
    fn();
  } catch (err) {
    assert.ok(err instanceof ConfigInvalidError, `expected ConfigInvalidError, got ${String(err)}`);
    assert.equal(err.code, 'TRELLIS_CONFIG_INVALID');
    return err.issues;
  }
  assert.fail('expected the configuration to be refused');
}

/** Async variant of `issuesOf`. */
export async function issuesOfAsync(fn: () => Promise<unknown>): Promise<readonly ConfigIssue[]> {
  try {
    await fn();
  } catch (err) {
    assert.ok(err instanceof ConfigInvalidError, `expected ConfigInvalidError, got ${String(err)}`);
    return err.issues;
  }
  assert.fail('expected the configuration to be refused');
}

/** The one issue at `path`; fails listing all issues when there is none. */
export function issueAt(issues: readonly ConfigIssue[], path: string): ConfigIssue {
  const found = issues.find((i) => i.path === path);
  assert.ok(found, `no issue at ${path}; got:\n${issues.map((i) => `  ${i.path}: ${i.message}`).join('\n')}`);
  return found;
}

/** A Service document as YAML text, with `spec` lines indented under it. */
export function serviceYaml(name: string, specLines: string): string {
  const spec = specLines
    .trim()
    .split('\n')
    .map((l) => `  ${l}`)
    .join('\n');
  return `apiVersion: trellis/v1\nkind: Service\nmetadata: { name: ${name} }\nspec:\n${spec}\n`;
}

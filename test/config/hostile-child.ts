/**
 * Child process for limits.test.ts: parses each hostile shape named on the command line and
 * prints, per shape, the error code and first issue. Started with a small heap
 * (`--max-old-space-size=256`), so a regression that lets a shape cost gigabytes crashes the
 * child and fails the test, without any timing assertion. Not a test file itself.
 */
import { parseConfigText } from '../../src/config/load.js';
import { ConfigInvalidError } from '../../src/core/errors.js';
import { HOSTILE_SHAPES } from './hostile-yaml.js';

const results: Record<string, { code: string; file?: string; line?: number | undefined; message?: string }> = {};
for (const shape of process.argv.slice(2)) {
  const make = HOSTILE_SHAPES[shape];
  if (make === undefined) throw new Error(`unknown shape ${shape}`);
  try {
    parseConfigText(make(), `${shape}.yaml`);
    results[shape] = { code: 'accepted' };
  } catch (err) {
    if (!(err instanceof ConfigInvalidError)) throw err;
    const first = err.issues[0];
    results[shape] = { code: err.code, file: first?.file, line: first?.line, message: first?.message };
  }
}
process.stdout.write(`${JSON.stringify(results)}\n`);

#!/usr/bin/env node
/**
 * The `trellis` executable (package.json `bin`). All behaviour is in `run.ts` and the command
 * files; this only connects them to the process.
 */
import { readFileSync } from 'node:fs';
import { systemClock } from '../core/clock.js';
import { commands } from './commands/index.js';
import { runCli } from './run.js';

function packageVersion(): string {
  try {
    // dist/cli/main.js and src/cli/main.ts both sit two levels below package.json.
    const pkg: unknown = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8'));
    const v = typeof pkg === 'object' && pkg !== null ? (pkg as { version?: unknown }).version : undefined;
    return typeof v === 'string' ? v : 'unknown';
  } catch {
    return 'unknown';
  }
}

const code = await runCli(
  process.argv.slice(2),
  { stdout: (t) => process.stdout.write(t), stderr: (t) => process.stderr.write(t), env: process.env, clock: systemClock },
  commands,
  { version: packageVersion() },
);
process.exitCode = code;

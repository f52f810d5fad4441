#!/usr/bin/env node
/**
 * The `trellis` executable (package.json `bin`). All behaviour is in `run.ts` and the command
 * files; this only connects them to the process.
 */
import { systemClock } from '../core/clock.js';
import { commands } from './commands/index.js';
import { runCli } from './run.js';

const code = await runCli(
  process.argv.slice(2),
  { stdout: (t) => process.stdout.write(t), stderr: (t) => process.stderr.write(t), env: process.env, clock: systemClock },
  commands,
);
process.exitCode = code;

/**
 * What a `trellis` subcommand is: the words that select it, its options (node:util parseArgs
 * config), a one-line summary and a run function. Each command lives in its own file under
 * `commands/` and is listed once in `commands/index.ts`; `run.ts` does the parsing, help and
 * error reporting for all of them, so a command only does its work.
 *
 * Exit codes: 0 success, 1 the command failed (the message says what and where), 2 the command
 * line was wrong (the message names the option, and the usage follows).
 */
import type { ParseArgsConfig } from 'node:util';
import type { Clock } from '../core/clock.js';

/** Where a command reads and writes; injected so commands run in-process in tests. */
export interface CliIo {
  readonly stdout: (text: string) => void;
  readonly stderr: (text: string) => void;
  readonly env: Readonly<Record<string, string | undefined>>;
  readonly clock: Clock;
}

export type OptionValues = Record<string, string | boolean | string[] | boolean[] | undefined>;

export interface Command {
  /** The words that select it, e.g. `['ca', 'init']`. */
  readonly path: readonly string[];
  readonly summary: string;
  /** Option lines for `--help`, one per option. */
  readonly help: readonly string[];
  readonly options: NonNullable<ParseArgsConfig['options']>;
  /** Positional arguments after the command's words (`get service NAME`): their names for the usage line, and how many are required. None when absent. */
  readonly positionals?: { readonly names: readonly string[]; readonly required: number };
  run(values: OptionValues, io: CliIo, positionals: readonly string[]): Promise<number>;
}

/** The command line was wrong: exit 2 with the message and the command's usage. */
export class UsageError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'UsageError';
  }
}

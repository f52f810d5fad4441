/**
 * The `trellis` command line: picks the command whose words prefix the arguments (longest
 * match), parses its options strictly with node:util `parseArgs`, runs it, and turns failures
 * into a message on stderr and an exit code (see `command.ts`).
 *
 * Why node:util parseArgs rather than commander or yargs: the commands are few and flat,
 * strict parsing (unknown options and missing values are errors) is built in, and it adds no
 * dependency to a package people install into their services.
 */
import { parseArgs } from 'node:util';
import { ConfigInvalidError, isTrellisError } from '../core/errors.js';
import { UsageError, type CliIo, type Command } from './command.js';

function usageOf(cmd: Command): string {
  const column = Math.max(8, ...cmd.help.map((h) => /^.*?\S\s{2,}/.exec(h)?.[0].length ?? 0));
  return [`Usage: trellis ${cmd.path.join(' ')}${cmd.positionals !== undefined ? ` ${cmd.positionals.usage}` : ''} [options]`, '', cmd.summary, '', 'Options:', ...cmd.help.map((h) => `  ${h}`), `  ${'--help'.padEnd(column)}show this help`].join('\n');
}

function overview(commands: readonly Command[]): string {
  const width = Math.max(...commands.map((c) => c.path.join(' ').length));
  return ['Usage: trellis <command> [options]', '', 'Commands:', ...commands.map((c) => `  ${c.path.join(' ').padEnd(width)}  ${c.summary}`), '', 'Run `trellis <command> --help` for its options.'].join('\n');
}

function match(argv: readonly string[], commands: readonly Command[]): Command | undefined {
  let best: Command | undefined;
  for (const c of commands) {
    if (c.path.length <= argv.length && c.path.every((w, i) => argv[i] === w) && (best === undefined || c.path.length > best.path.length)) best = c;
  }
  return best;
}

/** Runs the command line `argv` (without `node` and the script) and returns the exit code. */
export async function runCli(argv: readonly string[], io: CliIo, commands: readonly Command[]): Promise<number> {
  if (argv.length === 0 || argv[0] === 'help' || argv[0] === '--help' || argv[0] === '-h') {
    (argv.length === 0 ? io.stderr : io.stdout)(`${overview(commands)}\n`);
    return argv.length === 0 ? 2 : 0;
  }
  const cmd = match(argv, commands);
  if (cmd === undefined) {
    const words = argv.filter((a) => !a.startsWith('-')).slice(0, 2).join(' ');
    io.stderr(`error: unknown command "${words}"\n\n${overview(commands)}\n`);
    return 2;
  }
  try {
    let parsed;
    try {
      parsed = parseArgs({ args: argv.slice(cmd.path.length), options: { ...cmd.options, help: { type: 'boolean', short: 'h' } }, strict: true, allowPositionals: cmd.positionals !== undefined });
    } catch (err) {
      throw new UsageError((err as Error).message);
    }
    if (parsed.positionals.length > (cmd.positionals?.max ?? 0)) throw new UsageError(`unexpected argument "${(parsed.positionals[cmd.positionals?.max ?? 0] ?? '').slice(0, 64)}"`);
    if (parsed.values.help === true) {
      io.stdout(`${usageOf(cmd)}\n`);
      return 0;
    }
    return await cmd.run(parsed.values as Record<string, string | boolean | undefined>, io, parsed.positionals);
  } catch (err) {
    if (err instanceof UsageError) {
      io.stderr(`error: ${err.message}\n\n${usageOf(cmd)}\n`);
      return 2;
    }
    if (err instanceof ConfigInvalidError) {
      // Files, not YAML documents: "file: message" reads better than the config-issue format.
      for (const i of err.issues) io.stderr(`error: ${i.file}${i.path !== '' ? ` ${i.path}` : ''}: ${i.message}\n`);
      return 1;
    }
    if (isTrellisError(err)) {
      io.stderr(`error: ${err.message}\n`);
      return 1;
    }
    const e = err as NodeJS.ErrnoException;
    io.stderr(`error: ${e.code !== undefined ? `${e.code}: ` : ''}${e.message ?? String(err)}\n`);
    return 1;
  }
}

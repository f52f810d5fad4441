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
import { closestName } from '../core/did-you-mean.js';
import { ConfigInvalidError, isTrellisError } from '../core/errors.js';
import { UsageError, type CliIo, type Command } from './command.js';
import { ControlPlaneCallError } from './control-plane-client.js';

/** What `trellis --version` prints; main.ts passes the package's version. */
export interface CliInfo {
  readonly version: string;
}

function usageOf(cmd: Command): string {
  const column = Math.max(8, ...cmd.help.map((h) => /^.*?\S\s{2,}/.exec(h)?.[0].length ?? 0));
  const positional = cmd.positionals === undefined ? '' : ` ${cmd.positionals.names.map((n, i) => (i < cmd.positionals!.required ? n : `[${n}]`)).join(' ')}`;
  return [`Usage: trellis ${cmd.path.join(' ')}${positional} [options]`, '', cmd.summary, '', 'Options:', ...cmd.help.map((h) => `  ${h}`), `  ${'--help'.padEnd(column)}show this help`].join('\n');
}

function overview(commands: readonly Command[], prefix: readonly string[] = []): string {
  const width = Math.max(...commands.map((c) => c.path.join(' ').length));
  const head = prefix.length === 0 ? 'Usage: trellis <command> [options]' : `Usage: trellis ${prefix.join(' ')} <subcommand> [options]`;
  return [head, '', prefix.length === 0 ? 'Commands:' : 'Subcommands:', ...commands.map((c) => `  ${c.path.join(' ').padEnd(width)}  ${c.summary}`), '', 'Run `trellis <command> --help` for its options.'].join('\n');
}

/** "did you mean" for the first word of `argv` that no command path continues with. */
function suggestion(argv: readonly string[], commands: readonly Command[]): string {
  for (let depth = 0; depth < argv.length; depth++) {
    const here = commands.filter((c) => c.path.length > depth && c.path.slice(0, depth).every((w, i) => argv[i] === w));
    if (here.length === 0) return '';
    const word = argv[depth] as string;
    const next = new Set(here.map((c) => c.path[depth] as string));
    if (next.has(word)) continue;
    const best = closestName(word, next);
    return best === undefined ? '' : ` (did you mean "${[...argv.slice(0, depth), best].join(' ')}"?)`;
  }
  return '';
}

function match(argv: readonly string[], commands: readonly Command[]): Command | undefined {
  let best: Command | undefined;
  for (const c of commands) {
    if (c.path.length <= argv.length && c.path.every((w, i) => argv[i] === w) && (best === undefined || c.path.length > best.path.length)) best = c;
  }
  return best;
}

/** Runs the command line `argv` (without `node` and the script) and returns the exit code. */
export async function runCli(argv: readonly string[], io: CliIo, commands: readonly Command[], info: CliInfo = { version: 'unknown' }): Promise<number> {
  if (argv.length === 0 || argv[0] === 'help' || argv[0] === '--help' || argv[0] === '-h') {
    (argv.length === 0 ? io.stderr : io.stdout)(`${overview(commands)}\n`);
    return argv.length === 0 ? 2 : 0;
  }
  if (argv[0] === '--version' || argv[0] === '-v' || argv[0] === 'version') {
    io.stdout(`trellis ${info.version}\n`);
    return 0;
  }
  const cmd = match(argv, commands);
  if (cmd === undefined) {
    // A partial command (`trellis ca`, `trellis token`) lists what can follow it.
    const words = argv.filter((a) => !a.startsWith('-'));
    const under = commands.filter((c) => c.path.length > words.length && words.length > 0 && words.every((w, i) => c.path[i] === w));
    if (under.length > 0 && words.length === argv.length) {
      io.stdout(`${overview(under, words)}\n`);
      return 0;
    }
    let known = 0; // how many leading words some command path starts with
    while (known < words.length && commands.some((c) => words.slice(0, known + 1).every((w, i) => c.path[i] === w))) known++;
    io.stderr(`error: unknown command "${words.slice(0, known + 1).join(' ')}"${suggestion(argv, commands)}\n\n${overview(commands)}\n`);
    return 2;
  }
  try {
    let parsed;
    try {
      parsed = parseArgs({ args: argv.slice(cmd.path.length), options: { ...cmd.options, help: { type: 'boolean', short: 'h' } }, strict: true, allowPositionals: cmd.positionals !== undefined });
    } catch (err) {
      const m = /Unknown option '(--?[\w-]+)'/.exec((err as Error).message);
      const known = Object.keys(cmd.options).map((o) => `--${o}`);
      const hint = m?.[1] !== undefined ? closestName(m[1], known) : undefined;
      throw new UsageError(`${(err as Error).message}${hint !== undefined ? ` (did you mean "${hint}"?)` : ''}`);
    }
    if (parsed.values.help === true) {
      io.stdout(`${usageOf(cmd)}\n`);
      return 0;
    }
    const positionals = parsed.positionals;
    if (cmd.positionals !== undefined) {
      if (positionals.length < cmd.positionals.required) throw new UsageError(`missing ${cmd.positionals.names.slice(positionals.length, cmd.positionals.required).join(' ')}`);
      if (positionals.length > cmd.positionals.names.length) throw new UsageError(`unexpected argument "${String(positionals[cmd.positionals.names.length]).slice(0, 64)}"`);
    }
    return await cmd.run(parsed.values as Record<string, string | boolean | undefined>, io, positionals);
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
    if (err instanceof ControlPlaneCallError) {
      io.stderr(`error: ${err.message}\n`);
      for (const i of err.issues) io.stderr(`  ${i.file}${i.line !== undefined ? `:${i.line}` : ''} (document ${i.document}) ${i.path === '' ? '<root>' : i.path}: ${i.message}\n`);
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

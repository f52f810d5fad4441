/**
 * `trellis apply -f FILE [--dry-run]`: sends Mesh and Service documents (YAML or JSON, several
 * at once; `-f -` reads stdin) to the control plane, which validates them whole and applies all
 * or nothing. Prints one line per resource (`service/products created`); a refusal exits 1 with
 * every problem on stderr as `FILE:LINE (document N) field.path: message`.
 */
import { readFile } from 'node:fs/promises';
import { extname } from 'node:path';
import { requiredString } from '../args.js';
import { UsageError, type Command } from '../command.js';
import { connectControlPlane, ControlPlaneCallError, CONTROL_PLANE_HELP, CONTROL_PLANE_OPTIONS } from '../control-plane-client.js';

const MAX_INPUT = 4 * 1024 * 1024;

async function readStdin(): Promise<string> {
  const parts: Buffer[] = [];
  let size = 0;
  for await (const chunk of process.stdin) {
    size += (chunk as Buffer).length;
    if (size > MAX_INPUT) throw new UsageError(`stdin is over the ${MAX_INPUT / 1024 / 1024} MiB limit`);
    parts.push(chunk as Buffer);
  }
  return Buffer.concat(parts).toString('utf8');
}

interface ApplyAnswer {
  dryRun: boolean;
  revision: number;
  resources: { kind: string; name: string; revision: number; action: string }[];
}

export const apply: Command = {
  path: ['apply'],
  summary: 'Apply Mesh and Service documents to the control plane (validated whole; all or nothing).',
  help: ['-f, --filename FILE    YAML or JSON documents (- for stdin)', '--dry-run              validate and show what would change; change nothing', ...CONTROL_PLANE_HELP],
  options: { filename: { type: 'string', short: 'f' }, 'dry-run': { type: 'boolean' }, ...CONTROL_PLANE_OPTIONS },
  async run(values, io) {
    const file = requiredString(values, 'filename');
    const dryRun = values['dry-run'] === true;
    let text: string;
    if (file === '-') text = await readStdin();
    else {
      try {
        text = await readFile(file, 'utf8');
      } catch (err) {
        io.stderr(`error: ${file}: ${(err as NodeJS.ErrnoException).code === 'ENOENT' ? 'file not found' : (err as Error).message}\n`);
        return 1;
      }
    }
    const shown = file === '-' ? '<stdin>' : file;
    const contentType = extname(file).toLowerCase() === '.json' ? 'application/json' : 'application/yaml';
    const cp = await connectControlPlane(values, io);
    try {
      const r = await cp.call('POST', `/v1/apply${dryRun ? '?dryRun=true' : ''}`, { text, contentType });
      const answer = r.body as ApplyAnswer;
      for (const res of answer.resources) io.stdout(`${res.kind.toLowerCase()}/${res.name} ${res.action}${dryRun ? ' (dry run)' : ''}\n`);
      if (!dryRun) io.stderr(`configuration version ${answer.revision}\n`);
      return 0;
    } catch (err) {
      if (!(err instanceof ControlPlaneCallError)) throw err;
      const [code] = err.message.split(':');
      io.stderr(`error: ${shown}: ${dryRun ? 'dry run: ' : ''}refused (${code}), nothing was applied\n`);
      if (err.issues.length === 0) io.stderr(`error: ${err.message}\n`);
      for (const i of err.issues) {
        const where = i.file === '<request>' ? shown : i.file;
        io.stderr(`error: ${where}${i.line !== undefined ? `:${i.line}` : ''} (document ${i.document}) ${i.path === '' ? '<root>' : i.path}: ${i.message}\n`);
      }
      return 1;
    } finally {
      cp.close();
    }
  },
};

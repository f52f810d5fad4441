/**
 * `trellis delete service NAME [--revision N]`: removes a Service document (conditionally on
 * its revision when `--revision` is given).
 */
import { optionalString } from '../args.js';
import { UsageError, type Command } from '../command.js';
import { connectControlPlane, CONTROL_PLANE_HELP, CONTROL_PLANE_OPTIONS } from '../control-plane-client.js';

export const deleteService: Command = {
  path: ['delete', 'service'],
  summary: 'Delete a Service document.',
  help: ['--revision N           delete only if the stored revision is N', ...CONTROL_PLANE_HELP],
  options: { revision: { type: 'string' }, ...CONTROL_PLANE_OPTIONS },
  positionals: { names: ['NAME'], required: 1 },
  async run(values, io, positionals) {
    const name = positionals[0] as string;
    const revision = optionalString(values, 'revision');
    if (revision !== undefined && !/^\d{1,15}$/.test(revision)) throw new UsageError(`--revision must be a whole number, not "${revision.slice(0, 20)}"`);
    const cp = await connectControlPlane(values, io);
    try {
      const r = await cp.call('DELETE', `/v1/services/${encodeURIComponent(name)}${revision !== undefined ? `?revision=${revision}` : ''}`);
      io.stdout(`service/${name} deleted\n`);
      io.stderr(`configuration version ${(r.body as { revision: number }).revision}\n`);
      return 0;
    } finally {
      cp.close();
    }
  },
};

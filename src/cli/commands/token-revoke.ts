/**
 * `trellis token revoke JTI`: revokes a bootstrap token the control plane issued (by the `jti`
 * `token create` printed on stderr): it gets no more certificates. Certificates already issued
 * with it stay valid until they expire.
 */
import type { Command } from '../command.js';
import { UsageError } from '../command.js';
import { connectControlPlane, CONTROL_PLANE_HELP, CONTROL_PLANE_OPTIONS } from '../control-plane-client.js';

export const tokenRevoke: Command = {
  path: ['token', 'revoke'],
  summary: 'Revoke a bootstrap token by its jti: it gets no more certificates.',
  help: [...CONTROL_PLANE_HELP],
  options: { ...CONTROL_PLANE_OPTIONS },
  positionals: { names: ['JTI'], required: 1 },
  async run(values, io, positionals) {
    const jti = positionals[0] as string;
    if (!/^[A-Za-z0-9_-]{1,128}$/.test(jti)) throw new UsageError(`"${jti.slice(0, 64)}" is not a token id (the jti token create printed)`);
    const cp = await connectControlPlane(values, io);
    try {
      const r = await cp.call('DELETE', `/v1/tokens/${jti}`);
      const { service } = r.body as { service: string };
      io.stdout(`token ${jti} (service ${service}) revoked\n`);
      return 0;
    } finally {
      cp.close();
    }
  },
};

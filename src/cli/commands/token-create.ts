/**
 * `trellis token create --service NAME [--ttl 1h]`: prints a bootstrap token for one service.
 * With a control plane (`--control-plane URL` or TRELLIS_CONTROL_PLANE, and the admin token),
 * the control plane makes it, and it pins the control plane's CA (`cah`), so an instance needs
 * nothing else to join. With `--dir DIR` it is signed locally with the CA directory's token key
 * (for `localAuthoritySigner`, no control plane). The token alone goes to stdout (so it can be
 * captured: `TRELLIS_TOKEN=$(trellis token create ...)`); what it is and when it expires go to
 * stderr. Tokens are short-lived by default (1 h, at most 30 days).
 */
import { createToken, DEFAULT_TOKEN_TTL_MS, MAX_TOKEN_TTL_MS, verifyToken } from '../../tls/tokens.js';
import { loadTokenKey } from '../../tls/authority-files.js';
import { durationOption, optionalString, serviceOption } from '../args.js';
import { UsageError, type Command } from '../command.js';
import { connectControlPlane, controlPlaneConfigured, CONTROL_PLANE_HELP, CONTROL_PLANE_OPTIONS } from '../control-plane-client.js';

export const tokenCreate: Command = {
  path: ['token', 'create'],
  summary: 'Print a bootstrap token that lets an instance obtain a certificate for one service.',
  help: [
    '--service NAME         the service the token is bound to',
    '--ttl DURATION         token life (default 1h, at most 720h)',
    '--dir DIR              sign locally with the CA directory\'s token.key (no control plane)',
    ...CONTROL_PLANE_HELP,
  ],
  options: {
    service: { type: 'string' },
    dir: { type: 'string' },
    ttl: { type: 'string' },
    ...CONTROL_PLANE_OPTIONS,
  },
  async run(values, io) {
    const service = serviceOption(values);
    const ttlMs = durationOption(values, 'ttl', DEFAULT_TOKEN_TTL_MS);
    if (ttlMs < 1000 || ttlMs > MAX_TOKEN_TTL_MS) throw new UsageError('--ttl must be between 1s and 720h (30 days)');
    const dir = optionalString(values, 'dir');
    if (dir !== undefined) {
      const key = await loadTokenKey(dir, { onWarn: (m) => io.stderr(`warning: ${m}\n`) });
      const token = createToken(key, { service, ttlMs }, io.clock);
      const { jti, exp } = verifyToken(key, token, io.clock);
      io.stderr(`Token for service ${service}, expires at ${new Date(exp).toISOString()}, jti ${jti}\n`);
      io.stdout(`${token}\n`);
      return 0;
    }
    if (!controlPlaneConfigured(values, io)) throw new UsageError('give --dir DIR (a local CA) or a control plane (--control-plane URL or TRELLIS_CONTROL_PLANE)');
    const cp = await connectControlPlane(values, io);
    try {
      const seconds = Math.ceil(ttlMs / 1000);
      const r = await cp.call('POST', '/v1/tokens', { text: JSON.stringify({ service, ttl: `${seconds}s` }), contentType: 'application/json' });
      const { token, jti, expiresAt } = r.body as { token: string; jti: string; expiresAt: number };
      io.stderr(`Token for service ${service} from ${cp.url}, expires at ${new Date(expiresAt).toISOString()}, jti ${jti}, pins ${cp.trust.pins[0] ?? ''}\n`);
      io.stdout(`${token}\n`);
      return 0;
    } finally {
      cp.close();
    }
  },
};

/**
 * `trellis token create --service NAME --dir DIR [--ttl 1h]`: prints a bootstrap token for one
 * service, signed with the CA directory's token key. The token alone goes to stdout (so it can
 * be captured: `TRELLIS_TOKEN=$(trellis token create ...)`); what it is and when it expires go
 * to stderr. Tokens are short-lived by default (1 h, at most 30 days).
 */
import { createToken, DEFAULT_TOKEN_TTL_MS, MAX_TOKEN_TTL_MS, verifyToken } from '../../tls/tokens.js';
import { loadTokenKey } from '../../tls/authority-files.js';
import { durationOption, requiredString, serviceOption } from '../args.js';
import { UsageError, type Command } from '../command.js';

export const tokenCreate: Command = {
  path: ['token', 'create'],
  summary: 'Print a bootstrap token that lets an instance obtain a certificate for one service.',
  help: [
    '--service NAME    the service the token is bound to',
    '--dir DIR         the CA directory holding token.key',
    '--ttl DURATION    token life (default 1h, at most 720h)',
  ],
  options: {
    service: { type: 'string' },
    dir: { type: 'string' },
    ttl: { type: 'string' },
  },
  async run(values, io) {
    const service = serviceOption(values);
    const dir = requiredString(values, 'dir');
    const ttlMs = durationOption(values, 'ttl', DEFAULT_TOKEN_TTL_MS);
    if (ttlMs < 1000 || ttlMs > MAX_TOKEN_TTL_MS) throw new UsageError('--ttl must be between 1s and 720h (30 days)');
    const key = await loadTokenKey(dir, { onWarn: (m) => io.stderr(`warning: ${m}\n`) });
    const token = createToken(key, { service, ttlMs }, io.clock);
    const { jti, exp } = verifyToken(key, token, io.clock);
    io.stderr(`Token for service ${service}, expires at ${new Date(exp).toISOString()}, jti ${jti}\n`);
    io.stdout(`${token}\n`);
    return 0;
  },
};

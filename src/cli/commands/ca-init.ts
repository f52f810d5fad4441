/**
 * `trellis ca init --dir DIR --trust-domain TD [--anchor-passphrase-env VAR]`: creates a CA
 * directory — trust anchor, issuer, trust bundle and the bootstrap-token signing key — with
 * key files 0600 (layout in src/tls/authority-files.ts). The anchor passphrase is read from the
 * named environment variable, never from the command line (it would show in `ps` and shell
 * history). Refuses to overwrite an existing CA.
 */
import { join } from 'node:path';
import { DEFAULT_ANCHOR_TTL_MS, DEFAULT_ISSUER_TTL_MS, createAuthority } from '../../tls/authority.js';
import { CA_FILES, saveAuthority, saveTokenKey } from '../../tls/authority-files.js';
import { generateTokenKey, tokenKeyId } from '../../tls/tokens.js';
import { durationOption, requiredString, secretFromEnv, trustDomainOption } from '../args.js';
import type { Command } from '../command.js';

export const caInit: Command = {
  path: ['ca', 'init'],
  summary: 'Create a certificate authority (trust anchor + issuer) and a token-signing key in a directory.',
  help: [
    '--dir DIR                    directory to create (0700); must not already hold a CA',
    '--trust-domain TD            trust domain, e.g. example.org (identities are spiffe://TD/svc/<service>)',
    '--anchor-passphrase-env VAR  encrypt anchor.key with the passphrase in environment variable VAR',
    '--anchor-ttl DURATION        trust anchor life (default 87600h, 10 years)',
    '--issuer-ttl DURATION        issuer life (default 8760h, 1 year)',
  ],
  options: {
    dir: { type: 'string' },
    'trust-domain': { type: 'string' },
    'anchor-passphrase-env': { type: 'string' },
    'anchor-ttl': { type: 'string' },
    'issuer-ttl': { type: 'string' },
  },
  async run(values, io) {
    const dir = requiredString(values, 'dir');
    const trustDomain = trustDomainOption(values);
    const passphrase = secretFromEnv(values, 'anchor-passphrase-env', io);
    const anchorTtlMs = durationOption(values, 'anchor-ttl', DEFAULT_ANCHOR_TTL_MS);
    const issuerTtlMs = durationOption(values, 'issuer-ttl', DEFAULT_ISSUER_TTL_MS);
    const ca = await createAuthority({ trustDomain, anchorTtlMs, issuerTtlMs }, io.clock);
    await saveAuthority(ca, dir, passphrase !== undefined ? { anchorPassphrase: passphrase } : {});
    const tokenKey = await generateTokenKey();
    await saveTokenKey(tokenKey, dir);
    io.stdout(
      [
        `Created a CA for trust domain ${trustDomain} in ${dir}:`,
        `  ${join(dir, CA_FILES.anchorCert)}   trust anchor, NotAfter ${new Date(ca.anchor.notAfter).toISOString()} (SHA-256 ${ca.anchor.cert.fingerprint256})`,
        `  ${join(dir, CA_FILES.anchorKey)}  anchor key${passphrase !== undefined ? ', passphrase-encrypted' : ''} (0600): move it offline once issuers are made`,
        `  ${join(dir, CA_FILES.issuerCert)}  issuer, NotAfter ${new Date(ca.issuer.notAfter).toISOString()}`,
        `  ${join(dir, CA_FILES.issuerKey)}  issuer key (0600)`,
        `  ${join(dir, CA_FILES.bundle)}  trust bundle to give every workload`,
        `  ${join(dir, CA_FILES.tokenKey)}   bootstrap-token signing key (0600), key id ${tokenKeyId(tokenKey)}`,
        '',
      ].join('\n'),
    );
    return 0;
  },
};

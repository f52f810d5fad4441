/**
 * `trellis cert issue --service NAME --dir DIR [--out DIR] [--ttl 24h]`: issues a workload
 * certificate from the CA in DIR without a control plane. The key is generated here (P-256)
 * and written next to the certificate: `ca.pem` (trust bundle), `svc.pem` (leaf + issuer
 * chain), `svc.key` (0600) — the files `meshClient({ tls: { ca, cert, key } })` reads, and
 * reloads when this command is run again. Files are replaced atomically, key first.
 */
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { authorityWarnings, issueLeaf } from '../../tls/authority.js';
import { loadAuthority } from '../../tls/authority-files.js';
import { writeFileAtomic } from '../../tls/atomic-write.js';
import { generateP256KeyPair, privateKeyPem } from '../../tls/keys.js';
import { DEFAULT_CERTIFICATE_TTL_MS } from '../../tls/local-signer.js';
import { durationOption, optionalString, requiredString, serviceOption } from '../args.js';
import type { Command } from '../command.js';

export const certIssue: Command = {
  path: ['cert', 'issue'],
  summary: 'Issue a workload certificate and key for a service from a local CA directory.',
  help: [
    '--service NAME    the service the certificate identifies (spiffe://TD/svc/NAME)',
    '--dir DIR         the CA directory (from `trellis ca init`)',
    '--out DIR         where to write ca.pem, svc.pem and svc.key (default: the current directory)',
    '--ttl DURATION    certificate life (default 24h; never past the issuer)',
  ],
  options: {
    service: { type: 'string' },
    dir: { type: 'string' },
    out: { type: 'string' },
    ttl: { type: 'string' },
  },
  async run(values, io) {
    const service = serviceOption(values);
    const dir = requiredString(values, 'dir');
    const out = optionalString(values, 'out') ?? '.';
    const ttlMs = durationOption(values, 'ttl', DEFAULT_CERTIFICATE_TTL_MS);
    const ca = await loadAuthority(dir, { onWarn: (m) => io.stderr(`warning: ${m}\n`) });
    for (const w of authorityWarnings(ca, io.clock)) io.stderr(`warning: ${w}\n`);
    const keys = await generateP256KeyPair();
    const leaf = issueLeaf(ca, { service, publicKey: keys.publicKey, ttlMs }, io.clock);
    await mkdir(out, { recursive: true });
    const paths = { ca: join(out, 'ca.pem'), cert: join(out, 'svc.pem'), key: join(out, 'svc.key') };
    await writeFileAtomic(paths.key, privateKeyPem(keys.privateKey), 0o600);
    await writeFileAtomic(paths.cert, leaf.certificateChainPem, 0o644);
    await writeFileAtomic(paths.ca, leaf.caBundlePem, 0o644);
    if (leaf.notAfter - io.clock.wall() < ttlMs - 120_000) {
      io.stderr(`warning: the certificate ends at the issuer's NotAfter (${new Date(leaf.notAfter).toISOString()}), sooner than --ttl asked\n`);
    }
    io.stdout(
      [
        `Issued ${leaf.spiffeId}, NotAfter ${new Date(leaf.notAfter).toISOString()} (serial ${leaf.serialNumber}):`,
        `  ${paths.ca}   trust bundle`,
        `  ${paths.cert}  certificate chain`,
        `  ${paths.key}  private key (0600)`,
        '',
      ].join('\n'),
    );
    return 0;
  },
};

/**
 * The soak's mTLS upstream (bench/soak.ts), in its own process so its handshakes do not share
 * a CPU with the caller's: the Service `secure`, strict mTLS, holding an identity issued by the
 * CA in DIR (saveAuthority + saveTokenKey) with a 20 s life. Prints `PORT <n>` once serving;
 * exits when its stdin closes (so it never outlives the soak).
 * Usage: node --import tsx bench/soak-server.ts NAME DIR
 */
import { createToken, issuedIdentity, localAuthoritySigner, meshClient } from 'trellis';
import type { Clock } from 'trellis';
import { loadAuthority, loadTokenKey } from '../src/tls/authority-files.js';

const dir = process.argv[3] ?? '.';
const clock: Clock = { now: () => performance.now(), wall: () => Date.now() };
const [ca, tokenKey] = await Promise.all([loadAuthority(dir), loadTokenKey(dir)]);
const token = createToken(tokenKey, { service: 'secure', ttlMs: 24 * 3_600_000 }, clock);
const identity = issuedIdentity(
  { service: 'secure', trustDomain: ca.trustDomain, ttlMs: 20_000, sign: localAuthoritySigner(ca, tokenKey, token, { clock, ttlMs: 20_000 }) },
  { clock, onWarn: (m) => process.stderr.write(`soak-server: ${m}\n`), renewCheckMs: 500 },
);
// The soak reads stdout; once it is gone, so is this process.
process.stdout.on('error', () => process.exit(0));
identity.on('rotated', () => process.stdout.write('ROTATED\n'));
const mesh = await meshClient({
  service: 'secure',
  config: `apiVersion: trellis/v1\nkind: Mesh\nmetadata: { name: default }\nspec: { trustDomain: ${ca.trustDomain}, mtls: strict }\n---\napiVersion: trellis/v1\nkind: Service\nmetadata: { name: secure }\nspec: { protocol: http }\n`,
  identity,
});
const served = await mesh.serve((_req, res) => res.end('ok'), { maxConnectionAgeMs: 30_000 });
process.stdout.write(`PORT ${served.port}\n`);
process.stdin.resume();
process.stdin.on('end', () => process.exit(0));

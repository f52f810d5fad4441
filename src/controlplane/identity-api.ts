/**
 * Routes for identity: the trust bundle (`GET /v1/ca`, open: it is what the pin checks),
 * certificates (`POST /v1/certificates`: with a bootstrap token, the token's service and
 * nothing else — a token for `checkout` never yields `products`; or, for a renewal, with the
 * instance's current certificate, whose service is the only one it may renew), and bootstrap
 * tokens (`POST /v1/tokens`, admin), which carry the CA pin (`cah`), and their revocation
 * (`DELETE /v1/tokens/JTI`, admin: a revoked token gets no more certificates).
 *
 * Certificates live for the Mesh document's `certificateTTL` (default 24 h), never past the
 * issuer. Issued tokens are recorded under `KEYS.token(jti)` (never the token itself).
 */
import { z } from 'zod';
import type { Clock } from '../core/clock.js';
import { parseDuration } from '../core/duration.js';
import { ForbiddenError, NotFoundError, TokenInvalidError } from '../core/errors.js';
import { issueLeaf } from '../tls/authority.js';
import { parseCsr } from '../tls/csr.js';
import { DEFAULT_CERTIFICATE_TTL_MS } from '../tls/local-signer.js';
import { signCsr } from '../tls/signer.js';
import { isServiceName } from '../tls/spiffe.js';
import { createToken, DEFAULT_TOKEN_TTL_MS, MAX_TOKEN_TTL_MS, verifyToken } from '../tls/tokens.js';
import { ApiError } from './api-error.js';
import type { ControlPlaneAuthority } from './authority-state.js';
import { bearerOf } from './caller.js';
import { jsonBody } from './json-body.js';
import type { Router } from './router.js';
import { KEYS, type Store, type StoredResource } from './store/store.js';

export interface IdentityApiDeps {
  readonly store: Store;
  readonly authority: ControlPlaneAuthority;
  readonly clock: Clock;
}

const serviceField = z.string().max(63).refine(isServiceName, { message: 'not a service name (a DNS label: lowercase letters, digits and "-")' });
const certificateRequest = z.strictObject({ service: serviceField, csrPem: z.string().max(16 * 1024) });
const tokenRequest = z.strictObject({
  service: serviceField,
  ttl: z
    .string()
    .max(32)
    .refine((t) => {
      const ms = parseDuration(t);
      return ms !== undefined && ms >= 1000 && ms <= MAX_TOKEN_TTL_MS;
    }, { message: 'a duration between 1s and 720h (30 days)' })
    .optional(),
});

/** What the store keeps of an issued token (`KEYS.token(jti)`): never the token itself. */
export interface TokenRecord {
  readonly jti: string;
  readonly service: string;
  readonly exp: number;
  readonly revoked?: boolean;
}

async function certificateTtl(store: Store): Promise<number> {
  const { entries } = await store.list<StoredResource>(KEYS.resource('Mesh', ''));
  const spec = entries[0]?.value.spec as { certificateTTL?: unknown } | undefined;
  const ttl = typeof spec?.certificateTTL === 'string' ? parseDuration(spec.certificateTTL) : undefined;
  return ttl ?? DEFAULT_CERTIFICATE_TTL_MS;
}

export function registerIdentityApi(router: Router, deps: IdentityApiDeps): void {
  const { store, authority, clock } = deps;

  router.route('GET', '/v1/ca', async () => ({ body: { bundlePem: authority.ca.bundlePem, pins: authority.pins, trustDomain: authority.ca.trustDomain } }), { auth: 'none', query: [] });

  router.route(
    'POST',
    '/v1/certificates',
    async (req) => {
      const token = bearerOf(req.headers);
      const caller = req.caller;
      if (token === undefined && caller.kind !== 'instance') {
        throw new TokenInvalidError('a certificate needs a bootstrap token (Authorization: Bearer) or, to renew, the current instance certificate (mutual TLS)');
      }
      if (token !== undefined && token.startsWith('trellis-admin.')) throw new TokenInvalidError('the admin token is not a bootstrap token; create one with POST /v1/tokens');
      // The token is verified before the body is parsed: an unauthenticated caller costs no CSR parsing.
      if (token !== undefined) {
        const { jti } = verifyToken(authority.tokenKey, token, clock);
        const record = await store.get<TokenRecord>(KEYS.token(jti));
        if (record?.value.revoked === true) throw new TokenInvalidError(`bootstrap token refused: revoked (jti ${jti})`);
      }
      const body = await jsonBody(req, certificateRequest);
      const ttlMs = await certificateTtl(store);
      if (token !== undefined) {
        const r = signCsr({ token, csrPem: body.csrPem, service: body.service }, { issuer: authority.ca, tokenKey: authority.tokenKey, ttlMs, clock });
        return { body: { certificateChainPem: r.certificateChainPem, caBundlePem: r.caBundlePem, notAfter: r.notAfter, spiffeId: r.spiffeId } };
      }
      if (caller.kind !== 'instance') throw new TokenInvalidError('no credentials');
      if (body.service !== caller.service) {
        throw new ForbiddenError(`${caller.spiffeId} may renew only its own certificate, not one for service ${body.service}`);
      }
      const { publicKey } = parseCsr(body.csrPem);
      const leaf = issueLeaf(authority.ca, { service: caller.service, publicKey, ttlMs }, clock);
      return { body: { certificateChainPem: leaf.certificateChainPem, caBundlePem: leaf.caBundlePem, notAfter: leaf.notAfter, spiffeId: leaf.spiffeId } };
    },
    { auth: 'none', query: [], maxBodyBytes: 32 * 1024 },
  );

  router.route(
    'POST',
    '/v1/tokens',
    async (req) => {
      const body = await jsonBody(req, tokenRequest);
      const ttlMs = body.ttl !== undefined ? (parseDuration(body.ttl) as number) : DEFAULT_TOKEN_TTL_MS;
      const token = createToken(authority.tokenKey, { service: body.service, ttlMs, caHash: authority.pin }, clock);
      const { jti, exp } = verifyToken(authority.tokenKey, token, clock);
      const record: TokenRecord = { jti, service: body.service, exp };
      await store.commit([{ type: 'put', key: KEYS.token(jti), value: record }]);
      return { status: 201, body: { token, jti, expiresAt: exp } };
    },
    { auth: 'admin', query: [] },
  );

  router.route(
    'DELETE',
    '/v1/tokens/:jti',
    async (req) => {
      const jti = req.params['jti'] ?? '';
      if (!/^[A-Za-z0-9_-]{1,128}$/.test(jti)) throw new ApiError(400, 'TRELLIS_INVALID_ARGUMENT', 'a token id (jti) is base64url, at most 128 characters');
      const entry = await store.get<TokenRecord>(KEYS.token(jti));
      if (entry === undefined) throw new NotFoundError(`no token with jti ${jti} was issued by this control plane`);
      const revoked: TokenRecord = { ...entry.value, revoked: true };
      await store.commit([{ type: 'put', key: KEYS.token(jti), value: revoked, ifModRevision: entry.modRevision }]);
      return { body: revoked };
    },
    { auth: 'admin', query: [] },
  );
}

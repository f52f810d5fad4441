/**
 * The `sign` function an instance's identity uses against the control plane: POST
 * /v1/certificates with `{ service, csrPem }`, authenticated by the bootstrap token for the
 * first certificate and by the current certificate (mTLS) for renewals, so a token only needs
 * to live long enough for the first start. Each URL is tried in turn; the first answer wins.
 */
import https from 'node:https';
import type { SignFunction } from '../tls/issued-identity.js';
import type { TlsMaterial } from '../tls/material.js';
import { controlPlaneServerIdentity } from './server-identity.js';

const TIMEOUT_MS = 10_000;
const MAX_BODY_BYTES = 256 * 1024;

export interface CertificateSignerParams {
  readonly urls: readonly string[];
  readonly service: string;
  readonly trust: () => { bundlePem: string; trustDomain: string };
  readonly token: string | undefined;
  /** The certificate in force (renewals authenticate with it). */
  readonly current: () => TlsMaterial | undefined;
}

function post(url: string, body: string, options: https.RequestOptions): Promise<{ certificateChainPem: string; caBundlePem: string }> {
  return new Promise((resolve, reject) => {
    const req = https.request(new URL('/v1/certificates', url), { method: 'POST', timeout: TIMEOUT_MS, ...options }, (res) => {
      const chunks: Buffer[] = [];
      let size = 0;
      res.on('data', (c: Buffer) => {
        size += c.length;
        if (size > MAX_BODY_BYTES) req.destroy(new Error('answer too large'));
        else chunks.push(c);
      });
      res.on('end', () => {
        const text = Buffer.concat(chunks).toString('utf8');
        let parsed: Record<string, unknown> = {};
        try {
          parsed = JSON.parse(text) as Record<string, unknown>;
        } catch {
          // reported below
        }
        if (res.statusCode !== 200) {
          const e = parsed.error as { code?: string; message?: string } | undefined;
          return reject(new Error(`${url} refused the certificate request (${res.statusCode}${e?.code !== undefined ? ` ${e.code}` : ''}): ${e?.message ?? text.slice(0, 200)}`));
        }
        if (typeof parsed.certificateChainPem !== 'string' || typeof parsed.caBundlePem !== 'string') return reject(new Error(`${url} answered the certificate request without certificateChainPem/caBundlePem`));
        resolve({ certificateChainPem: parsed.certificateChainPem, caBundlePem: parsed.caBundlePem });
      });
      res.on('error', reject);
    });
    req.on('timeout', () => req.destroy(new Error(`no answer within ${TIMEOUT_MS} ms`)));
    req.on('error', reject);
    req.end(body);
  });
}

/** A SignFunction for `issuedIdentity` that asks the control plane. */
export function controlPlaneSigner(params: CertificateSignerParams): SignFunction {
  let next = 0;
  return async (csrPem) => {
    const { bundlePem, trustDomain } = params.trust();
    const cur = params.current();
    const headers: Record<string, string> = { 'content-type': 'application/json' };
    const tls: https.RequestOptions = { ca: bundlePem, checkServerIdentity: controlPlaneServerIdentity(trustDomain), agent: false };
    if (cur !== undefined) {
      tls.cert = cur.cert;
      tls.key = cur.key;
    } else if (params.token !== undefined) headers.authorization = `Bearer ${params.token}`;
    else throw new Error('no certificate in force and no bootstrap token to get one (meshClient.token)');
    const body = JSON.stringify({ service: params.service, csrPem });
    const errors: string[] = [];
    for (let i = 0; i < params.urls.length; i++) {
      const url = params.urls[(next + i) % params.urls.length] as string;
      try {
        const res = await post(url, body, { ...tls, headers });
        next = (next + i) % params.urls.length;
        return res;
      } catch (err) {
        errors.push(`${url}: ${(err as Error).message}`);
      }
    }
    throw new Error(errors.join('; '));
  };
}

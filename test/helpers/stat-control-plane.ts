/**
 * A stand-in for the control plane's REST surface that `trellis stat` uses, until the real
 * control plane is merged: real HTTPS on 127.0.0.1 with a serving certificate from a real CA
 * (node-forge, SANs IP 127.0.0.1 and DNS localhost), `GET /v1/ca` with the bundle and its pin,
 * and `GET /v1/stat` behind the admin token (`trellis-admin.<pin>.<secret>`), answering with
 * `fleet.stat()` and the documented error body.
 */
import { createHash, generateKeyPairSync, randomBytes, timingSafeEqual, X509Certificate } from 'node:crypto';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import forge from 'node-forge';
import type { Fleet } from '../../src/controlplane/fleet/index.js';
import { isTrellisError } from '../../src/core/errors.js';

const DAY = 86_400_000;

function key(): { pem: string; priv: forge.pki.rsa.PrivateKey; pub: forge.pki.rsa.PublicKey } {
  const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const pem = privateKey.export({ format: 'pem', type: 'pkcs1' }).toString();
  const priv = forge.pki.privateKeyFromPem(pem);
  return { pem, priv, pub: forge.pki.setRsaPublicKey(priv.n, priv.e) };
}

function certificate(subject: string, pub: forge.pki.rsa.PublicKey, issuer: string, signer: forge.pki.rsa.PrivateKey, ca: boolean): string {
  const c = forge.pki.createCertificate();
  c.publicKey = pub;
  c.serialNumber = `01${randomBytes(8).toString('hex')}`;
  c.validity.notBefore = new Date(Date.now() - DAY);
  c.validity.notAfter = new Date(Date.now() + 30 * DAY);
  c.setSubject([{ name: 'commonName', value: subject }]);
  c.setIssuer([{ name: 'commonName', value: issuer }]);
  c.setExtensions(
    ca
      ? [{ name: 'basicConstraints', cA: true, critical: true }, { name: 'keyUsage', keyCertSign: true, cRLSign: true, critical: true }]
      : [
          { name: 'basicConstraints', cA: false, critical: true },
          { name: 'keyUsage', digitalSignature: true, keyEncipherment: true, critical: true },
          { name: 'extKeyUsage', serverAuth: true },
          { name: 'subjectAltName', altNames: [{ type: 7, ip: '127.0.0.1' }, { type: 2, value: 'localhost' }, { type: 6, value: 'spiffe://example.org/controlplane' }] },
        ],
  );
  c.sign(signer, forge.md.sha256.create());
  return forge.pki.certificateToPem(c);
}

export interface StatControlPlane {
  readonly url: string;
  readonly adminToken: string;
  /** Requests to /v1/stat it answered, with their query. */
  readonly statQueries: string[];
  close(): Promise<void>;
}

export async function startStatControlPlane(fleet: Fleet): Promise<StatControlPlane> {
  const caKey = key();
  const caPem = certificate('Trellis Test Control Plane CA', caKey.pub, 'Trellis Test Control Plane CA', caKey.priv, true);
  const serverKey = key();
  const serverPem = certificate('controlplane', serverKey.pub, 'Trellis Test Control Plane CA', caKey.priv, false);
  const spki = new X509Certificate(caPem).publicKey.export({ type: 'spki', format: 'der' });
  const pinHex = createHash('sha256').update(spki).digest('hex');
  const secret = randomBytes(32).toString('base64url');
  const adminToken = `trellis-admin.${pinHex}.${secret}`;
  const expected = createHash('sha256').update(secret).digest();
  const statQueries: string[] = [];

  const send = (res: import('node:http').ServerResponse, status: number, body: unknown): void => {
    res.writeHead(status, { 'content-type': 'application/json' });
    res.end(JSON.stringify(body));
  };
  const server = https.createServer({ key: serverKey.pem, cert: serverPem }, (req, res) => {
    const u = new URL(req.url ?? '/', 'https://x');
    if (req.method === 'GET' && u.pathname === '/v1/ca') return send(res, 200, { bundlePem: caPem, pins: [`sha256:${pinHex}`], trustDomain: 'example.org' });
    if (req.method === 'GET' && u.pathname === '/v1/stat') {
      const got = /^Bearer trellis-admin\.[0-9a-f]{64}\.([A-Za-z0-9_-]{43})$/.exec(req.headers.authorization ?? '');
      const ok = got !== null && timingSafeEqual(createHash('sha256').update(got[1] ?? '').digest(), expected);
      if (!ok) return send(res, 401, { error: { code: 'TRELLIS_UNAUTHENTICATED', message: 'admin token required' } });
      statQueries.push(u.search);
      fleet.stat(u.searchParams).then(
        (body) => send(res, 200, body),
        (err: unknown) => send(res, isTrellisError(err) ? 400 : 500, { error: { code: isTrellisError(err) ? err.code : 'TRELLIS_INTERNAL', message: (err as Error).message } }),
      );
      return;
    }
    send(res, 404, { error: { code: 'TRELLIS_NOT_FOUND', message: `no ${req.method} ${u.pathname}` } });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    url: `https://127.0.0.1:${(server.address() as AddressInfo).port}`,
    adminToken,
    statQueries,
    close: () => new Promise<void>((r) => {
      server.closeAllConnections();
      server.close(() => r());
    }),
  };
}

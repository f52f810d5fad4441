/**
 * Fixtures for the control-plane API tests: an in-process control plane on 127.0.0.1:0 in a
 * temporary data directory, an HTTPS caller that trusts its bundle (HTTP/1.1, or HTTP/2 for the
 * stream), and an instance identity obtained the way an instance gets one (bootstrap token →
 * CSR → certificate).
 */
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { connect as h2connect } from 'node:http2';
import { request } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startControlPlane, type ControlPlane, type ControlPlaneOptions } from '../../src/controlplane/control-plane.js';
import { checkControlPlaneIdentity } from '../../src/controlplane-client/pin.js';
import { buildCsr } from '../../src/tls/csr.js';
import { generateP256KeyPair, privateKeyPem } from '../../src/tls/keys.js';

export interface TestPlane {
  readonly cp: ControlPlane;
  readonly dir: string;
  readonly adminToken: string;
  readonly bundlePem: string;
  close(): Promise<void>;
}

export async function startTestPlane(options: Partial<ControlPlaneOptions> = {}, dir?: string): Promise<TestPlane> {
  const dataDir = dir ?? (await mkdtemp(join(tmpdir(), 'trellis-cp-api-')));
  const cp = await startControlPlane({ dataDir, listen: '127.0.0.1:0', trustDomain: 'example.org', onWarn: () => {}, ...options });
  const adminToken = (await readFile(join(dataDir, 'admin-token'), 'utf8')).trim();
  const bundlePem = (await readFile(join(dataDir, 'ca', 'bundle.pem'), 'utf8'));
  return {
    cp,
    dir: dataDir,
    adminToken,
    bundlePem,
    close: async () => {
      await cp.close();
      if (dir === undefined) await rm(dataDir, { recursive: true, force: true });
    },
  };
}

export interface CallOptions {
  readonly token?: string;
  readonly body?: string | Buffer;
  readonly contentType?: string;
  readonly headers?: Record<string, string>;
  /** Client certificate chain and key (mutual TLS). */
  readonly cert?: string;
  readonly key?: string;
}

export interface CallResult {
  readonly status: number;
  readonly headers: Record<string, string | string[] | undefined>;
  readonly text: string;
  readonly json: any; // eslint-disable-line @typescript-eslint/no-explicit-any -- test convenience
}

export function call(plane: TestPlane, method: string, path: string, options: CallOptions = {}): Promise<CallResult> {
  return new Promise((resolve, reject) => {
    const headers: Record<string, string> = { ...(options.headers ?? {}) };
    if (options.token !== undefined) headers['authorization'] = `Bearer ${options.token}`;
    if (options.contentType !== undefined) headers['content-type'] = options.contentType;
    const req = request(
      new URL(path, plane.cp.url),
      {
        method,
        headers,
        agent: false,
        ca: plane.bundlePem,
        checkServerIdentity: checkControlPlaneIdentity(plane.cp.trustDomain),
        ...(options.cert !== undefined ? { cert: options.cert, key: options.key } : {}),
      },
      (res) => {
        const parts: Buffer[] = [];
        res.on('data', (c: Buffer) => parts.push(c));
        res.on('end', () => {
          const text = Buffer.concat(parts).toString('utf8');
          let json: unknown;
          try {
            json = JSON.parse(text);
          } catch {
            json = undefined;
          }
          resolve({ status: res.statusCode ?? 0, headers: res.headers, text, json });
        });
        res.on('error', reject);
      },
    );
    req.on('error', reject);
    req.end(options.body);
  });
}

/** POST over HTTP/2; answers the status and body (the stream is ended by the client right away). */
export function callHttp2(plane: TestPlane, path: string, options: CallOptions = {}): Promise<{ status: number; text: string }> {
  return new Promise((resolve, reject) => {
    const session = h2connect(plane.cp.url, {
      ca: plane.bundlePem,
      checkServerIdentity: checkControlPlaneIdentity(plane.cp.trustDomain),
      ...(options.cert !== undefined ? { cert: options.cert, key: options.key } : {}),
    });
    session.on('error', reject);
    const stream = session.request({ ':method': 'POST', ':path': path, 'content-type': 'application/x-ndjson' });
    let status = 0;
    const parts: Buffer[] = [];
    stream.on('response', (h) => {
      status = Number(h[':status']);
    });
    stream.on('data', (c: Buffer) => parts.push(c));
    stream.on('end', () => {
      session.close();
      resolve({ status, text: Buffer.concat(parts).toString('utf8') });
    });
    stream.on('error', (err) => {
      session.close();
      reject(err);
    });
    stream.end();
  });
}

/** A bootstrap token for `service`, from the API. */
export async function bootstrapToken(plane: TestPlane, service: string, ttl = '10m'): Promise<string> {
  const r = await call(plane, 'POST', '/v1/tokens', { token: plane.adminToken, contentType: 'application/json', body: JSON.stringify({ service, ttl }) });
  if (r.status !== 201) throw new Error(`token: ${r.status} ${r.text}`);
  return r.json.token as string;
}

/** A key and a CSR for it. */
export async function keyAndCsr(): Promise<{ keyPem: string; csrPem: string }> {
  const keys = await generateP256KeyPair();
  return { keyPem: privateKeyPem(keys.privateKey), csrPem: buildCsr(keys, 'ignored') };
}

/** An instance identity for `service`: bootstrap token → CSR → certificate chain. */
export async function instanceIdentity(plane: TestPlane, service: string): Promise<{ cert: string; key: string; notAfter: number }> {
  const token = await bootstrapToken(plane, service);
  const { keyPem, csrPem } = await keyAndCsr();
  const r = await call(plane, 'POST', '/v1/certificates', { token, contentType: 'application/json', body: JSON.stringify({ service, csrPem }) });
  if (r.status !== 200) throw new Error(`certificate: ${r.status} ${r.text}`);
  return { cert: r.json.certificateChainPem as string, key: keyPem, notAfter: r.json.notAfter as number };
}

export const SERVICE_YAML = `apiVersion: trellis/v1
kind: Service
metadata: { name: products }
spec:
  protocol: http
  endpoints: [{ address: 127.0.0.1:8081, labels: { version: v1 } }]
`;

export const MESH_YAML = `apiVersion: trellis/v1
kind: Mesh
metadata: { name: default }
spec: { trustDomain: example.org, certificateTTL: 2h }
`;

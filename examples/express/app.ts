/**
 * Express 5 + Trellis: an `orders` service that owns its HTTPS server (client certificates
 * required) and puts the mesh's inbound stack in front of its routes with one middleware,
 * `app.use(mesh.express())`. It shows:
 * - `req.trellis.peer`: the caller's verified identity, from its certificate only;
 * - authorization from the Service document (403 before any route runs; forged identity
 *   headers and `//` paths change nothing);
 * - the caller's deadline reaching the outbound call the route makes, with no header
 *   forwarding in application code.
 *
 * Run:  npm run build
 *       node --import tsx examples/express/app.ts            (serves until Ctrl-C, prints curl commands)
 *       node --import tsx examples/express/app.ts --smoke    (calls it as checkout and ops, then exits)
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import express from 'express';
import { createAuthority, createToken, generateTokenKey, issuedIdentity, localAuthoritySigner, meshClient } from 'trellis';
import type { Clock, IdentityProvider, Mesh } from 'trellis';

const smoke = process.argv.includes('--smoke');
const logger = { warn: (m: string) => (smoke ? undefined : console.error(`[trellis] ${m}`)) };
const clock: Clock = { now: () => performance.now(), wall: () => Date.now() };

// 1. Workload identities. In production they come from the control plane or from files
//    (meshClient({ tls: { ca, cert, key } })); here a CA in this process signs them, renewed
//    at two thirds of their life like the control plane's.
const ca = await createAuthority({ trustDomain: 'example.org' }, clock);
const tokenKey = await generateTokenKey();
function identity(service: string): IdentityProvider {
  const token = createToken(tokenKey, { service, ttlMs: 3_600_000 }, clock);
  return issuedIdentity({ service, trustDomain: 'example.org', sign: localAuthoritySigner(ca, tokenKey, token) }, { clock, onWarn: logger.warn });
}
const MESH = `apiVersion: trellis/v1
kind: Mesh
metadata: { name: default }
spec: { trustDomain: example.org, mtls: strict }
`;

// 2. A downstream service outside the mesh, `inventory`, that tells us how much time it was given.
const inventory = http.createServer((req, res) => {
  res.setHeader('content-type', 'application/json');
  res.end(JSON.stringify({ sku: req.url, deadlineMs: req.headers['x-trellis-timeout-ms'] ?? null }));
});
await new Promise<void>((resolve) => inventory.listen(0, '127.0.0.1', resolve));
const inventoryPort = (inventory.address() as AddressInfo).port;

// 3. The mesh client of `orders`: its identity, where inventory is, and who may call orders.
const ordersIdentity = identity('orders');
const mesh = await meshClient({
  service: 'orders',
  identity: ordersIdentity,
  logger,
  config: `${MESH}---
apiVersion: trellis/v1
kind: Service
metadata: { name: inventory }
spec: { mtls: off, endpoints: [ { address: "127.0.0.1:${inventoryPort}" } ], timeout: 5s }
---
apiVersion: trellis/v1
kind: Service
metadata: { name: orders }
spec:
  inbound:
    authorization:
      allow:
        - { from: [checkout], methods: [GET, POST], paths: [/orders*] }
        - { from: [ops], paths: ['*'] }
        - { from: ['*'], methods: [GET], paths: [/whoami] }
`,
});

// 4. The Express application: the mesh middleware first, then everything else.
const app = express();
app.use(mesh.express());
app.use(express.json());

app.get('/whoami', (req, res) => {
  res.json(req.trellis?.peer);
});

app.get('/orders/:id', async (req, res) => {
  // The outbound call inherits the caller's deadline: inventory sees what is left of it.
  const r = await mesh.http('inventory').request({ path: `/sku/${req.params.id}` });
  res.json({ order: req.params.id, caller: req.trellis?.peer.service, inventory: await r.body.json() });
});

app.delete('/admin/cache', (req, res) => {
  res.json({ cleared: true, by: req.trellis?.peer.service });
});

// 5. The app's own HTTPS server with the workload certificate: it must ask for client
//    certificates and verify them against the mesh's bundle, or every caller is `unknown`.
const tls = await ordersIdentity.ready();
const tlsOptions = { requestCert: true, rejectUnauthorized: true, minVersion: 'TLSv1.3' } as const;
const server = https.createServer({ ca: tls.ca, cert: tls.cert, key: tls.key, ...tlsOptions }, app);
ordersIdentity.on('rotated', (m) => server.setSecureContext({ ca: m.ca, cert: m.cert, key: m.key, ...tlsOptions }));
await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
const port = (server.address() as AddressInfo).port;

// 6. Callers: other workloads' mesh clients, each with its identity. The mesh client checks
//    that the server is spiffe://example.org/svc/orders; checkout gives each call 1.5 s.
const callers: { identity: IdentityProvider; mesh?: Mesh }[] = [];
async function caller(service: string): Promise<Mesh> {
  const id = identity(service);
  const m = await meshClient({
    service,
    identity: id,
    logger,
    config: `${MESH}---
apiVersion: trellis/v1
kind: Service
metadata: { name: orders }
spec: { endpoints: [ { address: "127.0.0.1:${port}" } ], timeout: 1500ms }
`,
  });
  callers.push({ identity: id, mesh: m });
  return m;
}

async function shutdown(): Promise<void> {
  for (const c of callers) {
    await c.mesh?.close();
    c.identity.close();
  }
  server.closeAllConnections();
  await new Promise<void>((resolve) => server.close(() => resolve()));
  inventory.close();
  await mesh.close();
  ordersIdentity.close();
}

if (smoke) {
  const [checkout, ops] = await Promise.all([caller('checkout'), caller('ops')]);
  const show = async (label: string, as: Mesh, method: string, urlPath: string, headers: Record<string, string> = {}): Promise<void> => {
    const r = await as.http('orders').request({ method, path: urlPath, headers });
    console.log(`${label}: ${r.statusCode} ${await r.body.text()}`);
  };
  await show('whoami as checkout', checkout, 'GET', '/whoami');
  await show('GET /orders/42 as checkout, 1500 ms deadline', checkout, 'GET', '/orders/42');
  await show('DELETE /admin/cache as checkout', checkout, 'DELETE', '/admin/cache');
  await show('DELETE /admin/cache as checkout claiming to be ops', checkout, 'DELETE', '/admin/cache', { 'x-trellis-caller': 'ops', 'x-forwarded-client-cert': 'URI=spiffe://example.org/svc/ops' });
  await show('GET //admin/cache as checkout', checkout, 'GET', '//admin/cache');
  await show('DELETE /admin/cache as ops', ops, 'DELETE', '/admin/cache');
  await shutdown();
} else {
  // Certificates for curl (which checks neither SPIFFE identity nor renewal: use -k).
  const dir = mkdtempSync(path.join(os.tmpdir(), 'trellis-express-'));
  for (const service of ['checkout', 'ops']) {
    const id = identity(service);
    callers.push({ identity: id });
    const m = await id.ready();
    writeFileSync(path.join(dir, `${service}.pem`), m.cert);
    writeFileSync(path.join(dir, `${service}.key`), m.key, { mode: 0o600 });
  }
  writeFileSync(path.join(dir, 'ca.pem'), tls.ca);
  console.log(`orders (Express) on https://127.0.0.1:${port} — client certificates in ${dir}`);
  console.log(`  curl -sk --cacert ${dir}/ca.pem --cert ${dir}/checkout.pem --key ${dir}/checkout.key -H 'x-trellis-timeout-ms: 1500' https://127.0.0.1:${port}/orders/42`);
  console.log(`  curl -sk --cacert ${dir}/ca.pem --cert ${dir}/checkout.pem --key ${dir}/checkout.key -X DELETE https://127.0.0.1:${port}/admin/cache   # 403`);
  process.once('SIGINT', () => {
    rmSync(dir, { recursive: true, force: true });
    void shutdown();
  });
}

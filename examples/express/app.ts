/**
 * Express 5 + Trellis: an `orders` service that owns its HTTPS server (client certificates
 * required) and puts the mesh's inbound stack in front of its routes with one middleware. It shows:
 * - `req.trellis.peer`: the caller's verified identity, from its certificate only;
 * - authorization from the Service document (403 before any route runs; forged identity
 *   headers change nothing);
 * - the caller's deadline (`x-trellis-timeout-ms`) reaching the outbound call the route makes,
 *   with no header forwarding in application code.
 *
 * Run:  node --import tsx examples/express/app.ts            (serves until Ctrl-C, prints curl commands)
 *       node --import tsx examples/express/app.ts --smoke    (makes the calls below itself and exits)
 *
 * Until `mesh.express()` is wired into the Mesh class, the middleware is built here from its
 * parts (marked "wiring"); afterwards these lines become `app.use(mesh.express())` and the
 * imports come from 'trellis'.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import express from 'express';
import { meshClient } from '../../src/mesh-client.js';
import { systemClock, systemRandom } from '../../src/core/clock.js';
import { compileAuthorization } from '../../src/server/authorization.js';
import { expressMiddleware } from '../../src/server/express.js';
import { peerResolver } from '../../src/server/peer.js';
import { checkServerIdentityFor, createAuthority, generateP256KeyPair, issueLeaf, peerIdentity, privateKeyPem } from '../../src/tls/index.js';

const smoke = process.argv.includes('--smoke');
const TRUST_DOMAIN = 'example.org';

// 1. Workload certificates. In production they come from the control plane or from files
//    (meshClient({ tls: { ca, cert, key } })); here a CA made in memory issues them.
const ca = await createAuthority({ trustDomain: TRUST_DOMAIN }, systemClock);
async function workload(service: string): Promise<{ ca: string; cert: string; key: string }> {
  const keys = await generateP256KeyPair();
  const leaf = issueLeaf(ca, { service, publicKey: keys.publicKey, ttlMs: 3_600_000 }, systemClock);
  return { ca: leaf.caBundlePem, cert: leaf.certificateChainPem, key: privateKeyPem(keys.privateKey) };
}
const [orders, checkout, ops] = await Promise.all([workload('orders'), workload('checkout'), workload('ops')]);

// 2. A downstream service, `inventory`, that tells us how much time its caller gave it.
const inventory = http.createServer((req, res) => {
  res.setHeader('content-type', 'application/json');
  res.end(JSON.stringify({ sku: req.url, deadlineMs: req.headers['x-trellis-timeout-ms'] ?? null }));
});
await new Promise<void>((resolve) => inventory.listen(0, '127.0.0.1', resolve));
const inventoryPort = (inventory.address() as AddressInfo).port;

// 3. The mesh client of `orders`: where inventory is, and who may call orders.
const mesh = await meshClient({
  service: 'orders',
  logger: { warn: (m) => (smoke ? undefined : console.error(`[trellis] ${m}`)) },
  config: `
apiVersion: trellis/v1
kind: Service
metadata: { name: inventory }
spec: { endpoints: [ { address: 127.0.0.1:${inventoryPort} } ], timeout: 5s }
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

// 4. The Express application.
const app = express();
// wiring: after `mesh.express()` exists, this block is `app.use(mesh.express());`
{
  const authorizer = compileAuthorization(mesh.config?.services.get('orders')?.inbound?.authorization);
  app.use(
    expressMiddleware({
      clock: systemClock,
      random: systemRandom,
      service: 'orders',
      policy: () => ({ limiter: undefined, fault: undefined, authorizer }),
      peers: peerResolver({ trustDomain: TRUST_DOMAIN, identify: peerIdentity }),
    }),
  );
}
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

const server = https.createServer(
  { ca: orders.ca, cert: orders.cert, key: orders.key, requestCert: true, rejectUnauthorized: true, minVersion: 'TLSv1.3' },
  app,
);
await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
const port = (server.address() as AddressInfo).port;

/** A call as another workload would make it: its certificate, and the SPIFFE check of `orders`. */
function callAs(who: { ca: string; cert: string; key: string }, method: string, urlPath: string, headers: Record<string, string> = {}): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = https.request(
      { host: '127.0.0.1', port, method, path: urlPath, headers, ca: who.ca, cert: who.cert, key: who.key, agent: false, checkServerIdentity: checkServerIdentityFor(TRUST_DOMAIN, 'orders') },
      (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (c: string) => (body += c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
      },
    );
    req.on('error', reject);
    req.end();
  });
}

async function shutdown(): Promise<void> {
  server.closeAllConnections();
  await new Promise<void>((resolve) => server.close(() => resolve()));
  inventory.close();
  await mesh.close();
}

if (smoke) {
  const show = (label: string, r: { status: number; body: string }): void => console.log(`${label}: ${r.status} ${r.body}`);
  show('whoami as checkout', await callAs(checkout, 'GET', '/whoami'));
  show('GET /orders/42 as checkout, 1500 ms deadline', await callAs(checkout, 'GET', '/orders/42', { 'x-trellis-timeout-ms': '1500' }));
  show('DELETE /admin/cache as checkout', await callAs(checkout, 'DELETE', '/admin/cache'));
  show('DELETE /admin/cache as checkout claiming to be ops', await callAs(checkout, 'DELETE', '/admin/cache', { 'x-trellis-caller': 'ops', 'x-forwarded-client-cert': `URI=spiffe://${TRUST_DOMAIN}/svc/ops` }));
  show('GET //admin/cache as checkout', await callAs(checkout, 'GET', '//admin/cache'));
  show('DELETE /admin/cache as ops', await callAs(ops, 'DELETE', '/admin/cache'));
  await shutdown();
} else {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'trellis-express-'));
  for (const [name, m] of Object.entries({ checkout, ops })) {
    writeFileSync(path.join(dir, `${name}.pem`), m.cert);
    writeFileSync(path.join(dir, `${name}.key`), m.key, { mode: 0o600 });
  }
  writeFileSync(path.join(dir, 'ca.pem'), orders.ca);
  console.log(`orders (Express) on https://127.0.0.1:${port} — client certificates in ${dir}`);
  console.log(`  curl -sk --cacert ${dir}/ca.pem --cert ${dir}/checkout.pem --key ${dir}/checkout.key -H 'x-trellis-timeout-ms: 1500' https://127.0.0.1:${port}/orders/42`);
  console.log(`  curl -sk --cacert ${dir}/ca.pem --cert ${dir}/checkout.pem --key ${dir}/checkout.key -X DELETE https://127.0.0.1:${port}/admin/cache   # 403`);
  process.once('SIGINT', () => {
    rmSync(dir, { recursive: true, force: true });
    void shutdown();
  });
}

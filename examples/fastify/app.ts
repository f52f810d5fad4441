/**
 * Fastify 5 + Trellis: an `orders` service on Fastify's own HTTPS server (client certificates
 * required), with the mesh's inbound stack registered as one plugin (it applies to the whole
 * application, encapsulated child plugins included). It shows:
 * - `req.trellis.peer`: the caller's verified identity, from its certificate only;
 * - authorization from the Service document (403 before any route runs; forged identity
 *   headers change nothing);
 * - the caller's deadline (`x-trellis-timeout-ms`) reaching the outbound call the route makes,
 *   with no header forwarding in application code.
 *
 * Run:  node --import tsx examples/fastify/app.ts            (serves until Ctrl-C, prints curl commands)
 *       node --import tsx examples/fastify/app.ts --smoke    (makes the calls below itself and exits)
 *
 * Until `mesh.fastify()` is wired into the Mesh class, the plugin is built here from its parts
 * (marked "wiring"); afterwards these lines become `await app.register(mesh.fastify())` and the
 * imports come from 'trellis'.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import Fastify from 'fastify';
import { meshClient } from '../../src/mesh-client.js';
import { systemClock, systemRandom } from '../../src/core/clock.js';
import { compileAuthorization } from '../../src/server/authorization.js';
import { fastifyPlugin } from '../../src/server/fastify.js';
import type { TrellisRequestInfo } from '../../src/server/inbound-security.js';
import { peerResolver } from '../../src/server/peer.js';
import { checkServerIdentityFor, createAuthority, generateP256KeyPair, issueLeaf, peerIdentity, privateKeyPem } from '../../src/tls/index.js';

// `request.trellis`, typed for this application (the plugin decorates it).
declare module 'fastify' {
  interface FastifyRequest {
    trellis: TrellisRequestInfo | null;
  }
}

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

// 4. The Fastify application, on its own HTTPS server.
const app = Fastify({
  https: { ca: orders.ca, cert: orders.cert, key: orders.key, requestCert: true, rejectUnauthorized: true, minVersion: 'TLSv1.3' },
});
// wiring: after `mesh.fastify()` exists, this block is `await app.register(mesh.fastify());`
{
  const authorizer = compileAuthorization(mesh.config?.services.get('orders')?.inbound?.authorization);
  await app.register(
    fastifyPlugin({
      clock: systemClock,
      random: systemRandom,
      service: 'orders',
      policy: () => ({ limiter: undefined, fault: undefined, authorizer }),
      peers: peerResolver({ trustDomain: TRUST_DOMAIN, identify: peerIdentity }),
    }),
  );
}

app.get('/whoami', async (request) => request.trellis?.peer);

app.get<{ Params: { id: string } }>('/orders/:id', async (request) => {
  // The outbound call inherits the caller's deadline: inventory sees what is left of it.
  const r = await mesh.http('inventory').request({ path: `/sku/${request.params.id}` });
  return { order: request.params.id, caller: request.trellis?.peer.service, inventory: await r.body.json() };
});

// Routes in an encapsulated plugin are covered too.
await app.register(
  async (admin) => {
    admin.delete('/cache', async (request) => ({ cleared: true, by: request.trellis?.peer.service }));
  },
  { prefix: '/admin' },
);

await app.listen({ port: 0, host: '127.0.0.1' });
const port = (app.server.address() as AddressInfo).port;

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
  await app.close();
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
  const dir = mkdtempSync(path.join(os.tmpdir(), 'trellis-fastify-'));
  for (const [name, m] of Object.entries({ checkout, ops })) {
    writeFileSync(path.join(dir, `${name}.pem`), m.cert);
    writeFileSync(path.join(dir, `${name}.key`), m.key, { mode: 0o600 });
  }
  writeFileSync(path.join(dir, 'ca.pem'), orders.ca);
  console.log(`orders (Fastify) on https://127.0.0.1:${port} — client certificates in ${dir}`);
  console.log(`  curl -sk --cacert ${dir}/ca.pem --cert ${dir}/checkout.pem --key ${dir}/checkout.key -H 'x-trellis-timeout-ms: 1500' https://127.0.0.1:${port}/orders/42`);
  console.log(`  curl -sk --cacert ${dir}/ca.pem --cert ${dir}/checkout.pem --key ${dir}/checkout.key -X DELETE https://127.0.0.1:${port}/admin/cache   # 403`);
  process.once('SIGINT', () => {
    rmSync(dir, { recursive: true, force: true });
    void shutdown();
  });
}

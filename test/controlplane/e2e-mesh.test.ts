/**
 * End to end on one real control-plane process (embedded store) and real instance processes,
 * each a meshClient given nothing but the control plane's URL and a bootstrap token made with
 * `trellis token create`: certificates from the control plane's CA, configuration pushed to
 * them, registration when they serve, calls between them over mTLS to registry endpoints; the
 * registry following instances as they come, close and die (kill -9: lease expiry), and callers
 * following the registry; golden metrics reported on the stream and shown by `trellis stat`;
 * a snapshot an instance refuses (NACK) shown by `trellis check` with its reason; and the API's
 * refusals seen from outside (invalid apply, admin token missing or wrong, an instance
 * certificate writing, a bootstrap token for another service).
 */
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { Agent, request } from 'undici';
import { buildCsr } from '../../src/tls/csr.js';
import { generateP256KeyPair } from '../../src/tls/keys.js';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { Registry } from 'prom-client';
import { startControlPlaneClient } from '../../src/controlplane-client/index.js';
import { systemClock, systemRandom } from '../../src/core/clock.js';
import { bootstrapToken, eventually, killAll, startCpProcess, startInstance, trellis, type CpProcess, type InstanceProcess, E2E_SHOP_YAML, E2E_TRUST_DOMAIN } from '../helpers/cp-process.js';

const TD = E2E_TRUST_DOMAIN;
const MESH = E2E_SHOP_YAML;

describe('e2e: instances on a real control plane', () => {
  let dir: string;
  let cp: CpProcess;
  let productsToken: string;
  let frontendToken: string;
  const instances: InstanceProcess[] = [];
  const start = async (name: string, service: string, token: string, extra: { labels?: Record<string, string> } = {}): Promise<InstanceProcess> => {
    const i = await startInstance({ name, service, urls: [cp.url], token, cacheDir: path.join(dir, `cache-${name}`), ...extra });
    instances.push(i);
    return i;
  };

  before(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'trellis-e2e-mesh-'));
    cp = await startCpProcess({ dataDir: path.join(dir, 'cp'), trustDomain: TD });
    await writeFile(path.join(dir, 'mesh.yaml'), MESH);
    const applied = await trellis(['apply', '-f', path.join(dir, 'mesh.yaml')], cp);
    assert.equal(applied.code, 0, applied.err);
    productsToken = await bootstrapToken(cp, 'products');
    frontendToken = await bootstrapToken(cp, 'frontend');
  });

  after(async () => {
    await killAll();
    await rm(dir, { recursive: true, force: true });
  });

  it('bootstraps, registers when serving, and calls between instances go to registry endpoints over mTLS', async () => {
    const p1 = await start('products-1', 'products', productsToken);
    const p2 = await start('products-2', 'products', productsToken);
    const fe = await start('frontend-1', 'frontend', frontendToken);
    // Both products instances are in the frontend's configuration once they registered.
    await fe.waitFor(/^EVENT configured products 2$/m, 'both products endpoints');
    const r = await fe.call('products', 40);
    assert.equal(r.failed, 0, JSON.stringify(r));
    assert.ok((r.servers['products-1'] ?? 0) > 0 && (r.servers['products-2'] ?? 0) > 0, JSON.stringify(r));
    // The registry as the operator sees it.
    const got = await trellis(['get', 'instances', 'products', '-o', 'json'], cp);
    assert.equal(got.code, 0, got.err);
    const items = JSON.parse(got.out) as { record: { endpoints: { address: string }[] } | null }[];
    const addresses = items.flatMap((i) => i.record?.endpoints.map((e) => e.address) ?? []).sort();
    assert.deepEqual(addresses, [`127.0.0.1:${p1.port}`, `127.0.0.1:${p2.port}`].sort());
  });

  it('the servers saw the caller by its verified certificate (mTLS from the control plane\'s CA)', async () => {
    const fe = instances.find((i) => i.name === 'frontend-1') as InstanceProcess;
    // The answer names the caller the server's inbound side verified: only an mTLS peer has one.
    const r = await fe.call('products', 5);
    assert.deepEqual(r.seenAs, { frontend: 5 }, JSON.stringify(r));
    const got = await trellis(['get', 'instances', 'frontend', '-o', 'json'], cp);
    const fronts = JSON.parse(got.out) as { status: { acked: string | null } | null }[];
    assert.ok(fronts.length === 1 && fronts[0]?.status?.acked !== null, got.out);
  });

  it('trellis stat shows the traffic the instances reported on their streams', async () => {
    const fe = instances.find((i) => i.name === 'frontend-1') as InstanceProcess;
    const body = await eventually('products traffic in trellis stat', async () => {
      await fe.call('products', 10);
      const r = await trellis(['stat', '-o', 'json', '--window', '10m'], cp);
      if (r.code !== 0) throw new Error(r.err);
      const b = JSON.parse(r.out) as { services: { name: string; inbound: { requests: number } | null }[]; edges: { from: string; to: string; requests: number }[] };
      const products = b.services.find((s) => s.name === 'products');
      const edge = b.edges.find((e) => e.from === 'frontend' && e.to === 'products');
      return (products?.inbound?.requests ?? 0) > 0 && (edge?.requests ?? 0) > 0 ? b : undefined;
    }, 90_000);
    assert.ok(body.services.some((s) => s.name === 'frontend'));
    const table = await trellis(['stat'], cp);
    assert.equal(table.code, 0, table.err);
    assert.match(table.out, /^products\s+2\s+\d/m, table.out);
  });

  it('an instance that closes leaves the registry at once and callers stop sending to it', async () => {
    const fe = instances.find((i) => i.name === 'frontend-1') as InstanceProcess;
    const p2 = instances.find((i) => i.name === 'products-2') as InstanceProcess;
    const from = fe.stdout.text.length;
    assert.equal(await p2.stop(), 0);
    await fe.waitFor(/^EVENT configured products 1$/m, 'products-2 gone from the frontend', 60_000, from);
    const r = await fe.call('products', 20);
    assert.deepEqual([r.ok, r.failed, r.servers], [20, 0, { 'products-1': 20 }], JSON.stringify(r));
  });

  it('an instance killed with SIGKILL leaves the registry when its lease expires, and callers stop sending to it', async () => {
    const fe = instances.find((i) => i.name === 'frontend-1') as InstanceProcess;
    const p3 = await start('products-3', 'products', productsToken);
    await fe.waitFor(/^EVENT configured products 2$/m, 'products-3 in the frontend', 60_000, fe.stdout.text.lastIndexOf('EVENT configured products 1'));
    const p1 = instances.find((i) => i.name === 'products-1') as InstanceProcess;
    const from = fe.stdout.text.length;
    await p1.kill();
    await fe.waitFor(/^EVENT configured products 1$/m, 'products-1 gone after its lease expired', 90_000, from);
    const r = await fe.call('products', 20);
    assert.deepEqual([r.ok, r.failed, r.servers], [20, 0, { 'products-3': 20 }], JSON.stringify(r));
    const got = await trellis(['get', 'instances', 'products', '-o', 'json'], cp);
    const items = JSON.parse(got.out) as { record: { endpoints: { address: string }[] } | null }[];
    assert.deepEqual(items.flatMap((i) => i.record?.endpoints.map((e) => e.address) ?? []), [`127.0.0.1:${p3.port}`]);
  });

  it('refuses at the edges: an invalid apply changes nothing and names the field; no or a wrong admin token; an instance certificate writing; a token for one service asking for another\'s certificate', async () => {
    const before = await trellis(['get', 'service', 'products', '-o', 'json'], cp);
    await writeFile(path.join(dir, 'bad.yaml'), MESH.replace('timeout: 2s\n  retries', 'timeout: fast\n  retries'));
    const bad = await trellis(['apply', '-f', path.join(dir, 'bad.yaml')], cp);
    assert.notEqual(bad.code, 0);
    assert.match(bad.err, /spec\.timeout/);
    assert.equal((await trellis(['get', 'service', 'products', '-o', 'json'], cp)).out, before.out);

    const bundle = await readFile(path.join(dir, 'cp', 'ca', 'bundle.pem'), 'utf8');
    const agent = (tls: { cert?: string; key?: string } = {}): Agent => new Agent({ connect: { ca: bundle, ...tls } });
    const call = async (method: 'POST' | 'DELETE', p: string, o: { auth?: string; body?: string; type?: string; tls?: { cert: string; key: string } } = {}): Promise<{ status: number; code: string | undefined }> => {
      const a = agent(o.tls);
      try {
        const res = await request(`${cp.url}${p}`, { method, dispatcher: a, headers: { ...(o.auth !== undefined ? { authorization: `Bearer ${o.auth}` } : {}), ...(o.type !== undefined ? { 'content-type': o.type } : {}) }, ...(o.body !== undefined ? { body: o.body } : {}) });
        const text = await res.body.text();
        return { status: res.statusCode, code: (JSON.parse(text) as { error?: { code?: string } }).error?.code };
      } finally {
        await a.close();
      }
    };
    const doc = JSON.stringify({ apiVersion: 'trellis/v1', kind: 'Service', metadata: { name: 'intruder' }, spec: { protocol: 'http' } });
    assert.deepEqual(await call('POST', '/v1/apply', { body: doc, type: 'application/json' }), { status: 401, code: 'TRELLIS_TOKEN_INVALID' });
    const wrong = cp.adminToken.replace(/\.[^.]+$/, `.${'A'.repeat(43)}`);
    assert.deepEqual(await call('POST', '/v1/apply', { auth: wrong, body: doc, type: 'application/json' }), { status: 401, code: 'TRELLIS_TOKEN_INVALID' });
    // The frontend instance's own certificate and key, as its cacheDir keeps them.
    const kept = JSON.parse(await readFile(path.join(dir, 'cache-frontend-1', 'identity.json'), 'utf8')) as { content: string };
    const identity = JSON.parse(kept.content) as { cert: string; key: string };
    assert.deepEqual(await call('DELETE', '/v1/services/products', { tls: identity }), { status: 403, code: 'TRELLIS_FORBIDDEN' });
    assert.deepEqual(await call('POST', '/v1/apply', { tls: identity, body: doc, type: 'application/json' }), { status: 403, code: 'TRELLIS_FORBIDDEN' });
    // products' bootstrap token asking for a frontend certificate.
    const csrPem = buildCsr(await generateP256KeyPair(), 'frontend');
    const stolen = await call('POST', '/v1/certificates', { auth: productsToken, body: JSON.stringify({ service: 'frontend', csrPem }), type: 'application/json' });
    assert.ok(stolen.status === 401 || stolen.status === 403, JSON.stringify(stolen));
    const got = await trellis(['get', 'service', '-o', 'json'], cp);
    assert.doesNotMatch(got.out, /intruder/);
    assert.match((await trellis(['get', 'service', 'products', '-o', 'json'], cp)).out, /"name": "products"/);
  });

  it('an instance with labels a Service cannot carry is refused before it can freeze its callers', async () => {
    // Every caller validates its snapshot with the config code; an endpoint with such a label in
    // it would make every caller of products NACK every snapshot. The instance refuses to start,
    // and a stream that says it anyway is refused by the control plane.
    const odd = await startInstance({ name: 'products-odd', service: 'products', urls: [cp.url], token: productsToken, cacheDir: path.join(dir, 'cache-odd'), labels: { version: 'canary build' } }).then(
      (i) => (instances.push(i), i),
      (err: unknown) => err,
    );
    assert.ok(odd instanceof Error, 'the instance did not start');
    assert.match(String(odd.message), /labels\.version/);
    const fe = instances.find((i) => i.name === 'frontend-1') as InstanceProcess;
    const r = await fe.call('products', 10);
    assert.equal(r.failed, 0, JSON.stringify(r));
  });

  it('a snapshot an instance refuses is NACKed, keeps its configuration, and trellis check shows the reason', async () => {
    const before = await trellis(['check'], cp);
    assert.equal(before.code, 0, before.out + before.err);
    // A real control-plane client (bootstrap by token, mTLS stream) whose instance refuses every
    // snapshot after the first, as an instance on a version that does not know a new field would.
    const client = await startControlPlaneClient({
      service: 'frontend',
      urls: [cp.url],
      token: frontendToken,
      cacheDir: path.join(dir, 'cache-refusing'),
      clock: systemClock,
      random: systemRandom,
      onWarn: () => undefined,
    });
    let refusing = false;
    try {
      client.attach({
        applyConfig: () => {
          if (refusing) throw new Error('refused on purpose: this instance does not accept the new configuration');
        },
        emit: () => true,
        metricsRegistry: new Registry(),
      });
      refusing = true;
      // A change every frontend sees: a new snapshot version is pushed.
      await writeFile(path.join(dir, 'frontend-v2.yaml'), 'apiVersion: trellis/v1\nkind: Service\nmetadata: { name: frontend }\nspec: { protocol: http, timeout: 3s }\n');
      const applied = await trellis(['apply', '-f', path.join(dir, 'frontend-v2.yaml')], cp);
      assert.equal(applied.code, 0, applied.err);
      const check = await eventually('trellis check to fail on the NACK', async () => {
        const r = await trellis(['check'], cp);
        return r.code !== 0 && /NACKed/.test(r.out) ? r : undefined;
      }, 90_000);
      assert.match(check.out, /instance \S+ of frontend NACKed version \d+: .*refused on purpose/i, check.out);
      // The real instances ACKed the same version and keep calling.
      const fe = instances.find((i) => i.name === 'frontend-1') as InstanceProcess;
      const r = await fe.call('products', 10);
      assert.equal(r.failed, 0, JSON.stringify(r));
    } finally {
      client.close();
    }
  });
});

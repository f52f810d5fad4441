/**
 * The control plane's resource API over real TLS on 127.0.0.1: apply (YAML and JSON, several
 * documents, dry run, whole or nothing, conditional on metadata.revision), get, list, delete,
 * and who may do it (admin token only; no token or a wrong one 401; an instance certificate
 * 403). Judged by what the store holds afterwards.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { KEYS } from '../../src/controlplane/store/store.js';
import { call, instanceIdentity, MESH_YAML, SERVICE_YAML, startTestPlane, type TestPlane } from './api-fixtures.js';

const yaml = 'application/yaml';

describe('control-plane API: resources', () => {
  let plane: TestPlane;
  before(async () => {
    plane = await startTestPlane();
  });
  after(async () => {
    await plane.close();
  });

  async function stored(): Promise<Record<string, unknown>> {
    const { entries } = await plane.cp.store.list(KEYS.resources);
    return Object.fromEntries(entries.map((e) => [e.key, e.value]));
  }

  it('applies several documents at once, gets and lists them with their revision', async () => {
    const r = await call(plane, 'POST', '/v1/apply', { token: plane.adminToken, contentType: yaml, body: `${MESH_YAML}---\n${SERVICE_YAML}` });
    assert.equal(r.status, 200, r.text);
    assert.equal(r.json.dryRun, false);
    assert.deepEqual(
      r.json.resources.map((x: { kind: string; name: string; action: string }) => `${x.kind}/${x.name} ${x.action}`),
      ['Mesh/default created', 'Service/products created'],
    );
    const rev = r.json.revision as number;
    assert.ok(rev > 0);
    const svc = await call(plane, 'GET', '/v1/services/products', { token: plane.adminToken });
    assert.equal(svc.status, 200);
    assert.equal(svc.json.metadata.revision, rev);
    assert.equal(svc.json.spec.endpoints[0].address, '127.0.0.1:8081');
    const list = await call(plane, 'GET', '/v1/services', { token: plane.adminToken });
    assert.deepEqual(list.json.items.map((i: { metadata: { name: string } }) => i.metadata.name), ['products']);
    const mesh = await call(plane, 'GET', '/v1/mesh', { token: plane.adminToken });
    assert.equal(mesh.json.spec.trustDomain, 'example.org');

    const again = await call(plane, 'POST', '/v1/apply', { token: plane.adminToken, contentType: yaml, body: SERVICE_YAML });
    assert.equal(again.json.resources[0].action, 'unchanged');
    assert.equal(again.json.resources[0].revision, rev);
  });

  it('accepts JSON: one document or a list', async () => {
    const doc = { apiVersion: 'trellis/v1', kind: 'Service', metadata: { name: 'reviews' }, spec: { protocol: 'http', dns: 'reviews.example:8080' } };
    const r = await call(plane, 'POST', '/v1/apply', { token: plane.adminToken, contentType: 'application/json', body: JSON.stringify([doc]) });
    assert.equal(r.status, 200, r.text);
    assert.equal(r.json.resources[0].action, 'created');
    assert.ok((await stored())[KEYS.resource('Service', 'reviews')]);
  });

  it('refuses an invalid apply whole, naming file, document and field, and changes nothing', async () => {
    const before = await stored();
    const revision = await plane.cp.store.revision();
    const bad = `${SERVICE_YAML.replace('products', 'orders')}---\n${SERVICE_YAML.replace('protocol: http', 'protocol: http\n  retries: { attempts: -1 }')}`;
    const r = await call(plane, 'POST', '/v1/apply', { token: plane.adminToken, contentType: yaml, body: bad });
    assert.equal(r.status, 400, r.text);
    assert.equal(r.json.error.code, 'TRELLIS_CONFIG_INVALID');
    const issue = r.json.error.issues[0];
    assert.equal(issue.file, '<request>');
    assert.equal(issue.document, 1);
    assert.equal(issue.path, 'spec.retries.attempts');
    assert.deepEqual(await stored(), before, 'the valid first document was not applied either');
    assert.equal(await plane.cp.store.revision(), revision);
  });

  it('validates against the stored documents too (one Mesh, its trust domain)', async () => {
    const other = await call(plane, 'POST', '/v1/apply', { token: plane.adminToken, contentType: yaml, body: MESH_YAML.replace('trustDomain: example.org', 'trustDomain: other.org') });
    assert.equal(other.status, 400);
    assert.equal(other.json.error.issues[0].path, 'spec.trustDomain');
    assert.match(other.json.error.issues[0].message, /example\.org/);
    // A global rate limit needs the Mesh's Redis: the stored Mesh has none.
    const global = SERVICE_YAML.replace('products', 'limited').replace('protocol: http', 'protocol: http\n  inbound: { rateLimit: { requestsPerSecond: 10, burst: 5, scope: global } }');
    const r = await call(plane, 'POST', '/v1/apply', { token: plane.adminToken, contentType: yaml, body: global });
    assert.equal(r.status, 400, r.text);
    assert.match(r.json.error.issues[0].message, /Redis/);
  });

  it('a dry run validates and reports, and changes nothing', async () => {
    const before = await stored();
    const r = await call(plane, 'POST', '/v1/apply?dryRun=true', { token: plane.adminToken, contentType: yaml, body: SERVICE_YAML.replace('products', 'drafts') });
    assert.equal(r.status, 200, r.text);
    assert.equal(r.json.dryRun, true);
    assert.equal(r.json.resources[0].action, 'created');
    assert.deepEqual(await stored(), before);
    const bad = await call(plane, 'POST', '/v1/apply?dryRun=true', { token: plane.adminToken, contentType: yaml, body: SERVICE_YAML.replace('http', 'htp') });
    assert.equal(bad.status, 400);
  });

  it('a conditional apply on a stale revision is refused with 409 TRELLIS_CONFLICT', async () => {
    const current = (await call(plane, 'GET', '/v1/services/products', { token: plane.adminToken })).json.metadata.revision as number;
    const stale = SERVICE_YAML.replace('metadata: { name: products }', `metadata: { name: products, revision: ${current - 1} }`).replace('version: v1', 'version: v2');
    const r = await call(plane, 'POST', '/v1/apply', { token: plane.adminToken, contentType: yaml, body: stale });
    assert.equal(r.status, 409, r.text);
    assert.equal(r.json.error.code, 'TRELLIS_CONFLICT');
    assert.equal((await call(plane, 'GET', '/v1/services/products', { token: plane.adminToken })).json.spec.endpoints[0].labels.version, 'v1');
    const fresh = await call(plane, 'POST', '/v1/apply', { token: plane.adminToken, contentType: yaml, body: stale.replace(`revision: ${current - 1}`, `revision: ${current}`) });
    assert.equal(fresh.status, 200, fresh.text);
    assert.equal(fresh.json.resources[0].action, 'updated');
    const mustNotExist = await call(plane, 'POST', '/v1/apply', { token: plane.adminToken, contentType: yaml, body: SERVICE_YAML.replace('{ name: products }', '{ name: products, revision: 0 }') });
    assert.equal(mustNotExist.status, 409);
  });

  it('deletes, conditionally on the revision when asked, and answers 404 for what is not there', async () => {
    await call(plane, 'POST', '/v1/apply', { token: plane.adminToken, contentType: yaml, body: SERVICE_YAML.replace('products', 'doomed') });
    const rev = (await call(plane, 'GET', '/v1/services/doomed', { token: plane.adminToken })).json.metadata.revision as number;
    const stale = await call(plane, 'DELETE', `/v1/services/doomed?revision=${rev + 100}`, { token: plane.adminToken });
    assert.equal(stale.status, 409);
    const ok = await call(plane, 'DELETE', `/v1/services/doomed?revision=${rev}`, { token: plane.adminToken });
    assert.equal(ok.status, 200, ok.text);
    assert.equal((await stored())[KEYS.resource('Service', 'doomed')], undefined);
    assert.equal((await call(plane, 'DELETE', '/v1/services/doomed', { token: plane.adminToken })).status, 404);
    const gone = await call(plane, 'GET', '/v1/services/doomed', { token: plane.adminToken });
    assert.equal(gone.status, 404);
    assert.equal(gone.json.error.code, 'TRELLIS_NOT_FOUND');
  });

  it('refuses writes without the admin token (401), with a wrong one (401), and from an instance certificate (403)', async () => {
    const before = await stored();
    const body = SERVICE_YAML.replace('products', 'intruder');
    const none = await call(plane, 'POST', '/v1/apply', { contentType: yaml, body });
    assert.equal(none.status, 401);
    assert.equal(none.json.error.code, 'TRELLIS_TOKEN_INVALID');
    const secret = plane.adminToken.split('.')[2] as string;
    const wrong = plane.adminToken.replace(secret, `${secret[0] === 'A' ? 'B' : 'A'}${secret.slice(1)}`);
    assert.equal((await call(plane, 'POST', '/v1/apply', { token: wrong, contentType: yaml, body })).status, 401);
    const pin = plane.adminToken.split('.')[1] as string;
    const otherPin = plane.adminToken.replace(pin, `${pin[0] === '0' ? '1' : '0'}${pin.slice(1)}`);
    const pinned = await call(plane, 'POST', '/v1/apply', { token: otherPin, contentType: yaml, body });
    assert.equal(pinned.status, 401, 'the right secret with another CA pin is not this control plane\'s token');
    assert.match(pinned.json.error.message, /pins another CA/);
    assert.equal((await call(plane, 'DELETE', '/v1/services/products', { token: wrong })).status, 401);
    assert.equal((await call(plane, 'POST', '/v1/tokens', { token: wrong, contentType: 'application/json', body: '{"service":"x"}' })).status, 401);

    const id = await instanceIdentity(plane, 'checkout');
    const asInstance = await call(plane, 'POST', '/v1/apply', { cert: id.cert, key: id.key, contentType: yaml, body });
    assert.equal(asInstance.status, 403, asInstance.text);
    assert.equal(asInstance.json.error.code, 'TRELLIS_FORBIDDEN');
    assert.equal((await call(plane, 'DELETE', '/v1/services/products', { cert: id.cert, key: id.key })).status, 403);
    assert.equal((await call(plane, 'POST', '/v1/tokens', { cert: id.cert, key: id.key, contentType: 'application/json', body: '{"service":"checkout"}' })).status, 403);
    assert.equal((await call(plane, 'GET', '/v1/services', { cert: id.cert, key: id.key })).status, 403, 'instances read through their stream, not the admin API');
    assert.deepEqual(await stored(), before);
  });

  it('lists registry records joined with their status', async () => {
    await plane.cp.store.commit([
      { type: 'put', key: KEYS.instance('products', 'i-1'), value: { id: 'i-1', service: 'products', labels: { version: 'v1' }, endpoints: [{ address: '127.0.0.1:9001', protocol: 'http' }], replica: plane.cp.replicaId, connectedAt: 1 } },
      { type: 'put', key: KEYS.instanceStatus('products', 'i-1'), value: { id: 'i-1', service: 'products', sent: '7', acked: '7', ackedAt: 2, lastSeen: 3 } },
    ]);
    const r = await call(plane, 'GET', '/v1/instances?service=products', { token: plane.adminToken });
    assert.equal(r.status, 200, r.text);
    assert.equal(r.json.items.length, 1);
    assert.equal(r.json.items[0].record.endpoints[0].address, '127.0.0.1:9001');
    assert.equal(r.json.items[0].status.acked, '7');
    const status = await call(plane, 'GET', '/v1/status', { token: plane.adminToken });
    assert.equal(status.json.instances.registered, 1);
    assert.equal(status.json.store.ok, true);
    assert.equal(status.json.ca.trustDomain, 'example.org');
  });
});

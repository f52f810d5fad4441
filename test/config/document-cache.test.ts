/**
 * A mesh's loads remember the last good load's Service documents (src/config/document-cache.ts):
 * an unchanged document is not validated again and yields the same ServiceSpec object, while a
 * changed one is validated and normalized anew, checks across documents still run on every load,
 * and a refused load leaves the remembered documents as they were.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { meshClient } from 'trellis';
import { DocumentCache } from '../../src/config/document-cache.js';
import { loadConfigCached } from '../../src/config/load.js';
import { issuesOfAsync } from './helpers.js';

type Doc = { apiVersion: string; kind: string; metadata: { name: string }; spec: Record<string, unknown> };

function service(name: string, spec: Record<string, unknown> = {}): Doc {
  return { apiVersion: 'trellis/v1', kind: 'Service', metadata: { name }, spec: { endpoints: [{ address: '127.0.0.1:9' }], timeout: '2s', ...spec } };
}

const many = (over: Record<string, Record<string, unknown>> = {}): Doc[] => Array.from({ length: 50 }, (_, i) => service(`s${i}`, over[`s${i}`]));

test('unchanged documents give back the same specs; a changed one is validated and normalized anew', async () => {
  const cache = new DocumentCache();
  const a = await loadConfigCached(many(), {}, cache);
  const b = await loadConfigCached(many({ s3: { timeout: '150ms' } }), {}, cache);
  for (const [name, spec] of a.services) {
    if (name === 's3') assert.notEqual(b.services.get(name), spec);
    else assert.equal(b.services.get(name), spec, name);
  }
  assert.equal(b.services.get('s3')?.timeoutMs, 150);
  assert.equal(a.services.get('s3')?.timeoutMs, 2000);
});

test('a document that was valid is refused when it changes to invalid, and a refused load keeps the last good documents', async () => {
  const cache = new DocumentCache();
  const a = await loadConfigCached(many(), {}, cache);
  const issues = await issuesOfAsync(() => loadConfigCached(many({ s7: { timeout: '2 sec' } }), {}, cache));
  assert.equal(issues[0]?.path, 'spec.timeout');
  const again = await loadConfigCached(many(), {}, cache);
  assert.equal(again.services.get('s7'), a.services.get('s7'), 'the refused load did not replace what was remembered');
});

test('a load refused by a loader limit leaves the remembered documents as they were', async () => {
  const cache = new DocumentCache();
  const a = await loadConfigCached(many(), {}, cache);
  // The changed s3 is valid; the load is refused as a whole for its number of documents.
  const issues = await issuesOfAsync(() => loadConfigCached(many({ s3: { timeout: '150ms' } }), { limits: { maxDocuments: 49 } }, cache));
  assert.match(issues[0]?.message ?? '', /more than 49 documents \(maxDocuments\)|more than 49 documents in this configuration/);
  const again = await loadConfigCached(many(), {}, cache);
  for (const [name, spec] of a.services) assert.equal(again.services.get(name), spec, name);
});

test('checks across documents run whatever is remembered', async () => {
  const cache = new DocumentCache();
  const mesh = { apiVersion: 'trellis/v1', kind: 'Mesh', metadata: { name: 'default' }, spec: { redis: { url: 'redis://127.0.0.1:6379' } } };
  const global = service('g', { rateLimit: { requestsPerSecond: 10, burst: 1, scope: 'global' } });
  await loadConfigCached([mesh, global, ...many()], {}, cache);
  // The same Service documents, now without the Mesh's Redis: the global limit cannot work.
  const noRedis = await issuesOfAsync(() => loadConfigCached([global, ...many()], {}, cache));
  assert.match(noRedis[0]?.message ?? '', /scope: global needs a Redis/);
  // A remembered document twice is a duplicate.
  const dup = await issuesOfAsync(() => loadConfigCached([mesh, global, ...many(), service('s1')], {}, cache));
  assert.match(dup[0]?.message ?? '', /duplicate Service "s1"/);
});

test('a value JSON cannot write exactly (NaN, undefined) is validated every time, never taken for another', async () => {
  const cache = new DocumentCache();
  // { timeout: undefined } reads as an absent timeout; the NaN weight is refused, again and again.
  const withUndefined = service('u', { timeout: undefined });
  const c1 = await loadConfigCached([withUndefined], {}, cache);
  const c2 = await loadConfigCached([service('u', { timeout: undefined })], {}, cache);
  assert.notEqual(c2.services.get('u'), c1.services.get('u'), 'not remembered: validated again');
  const nan = service('n', { routes: [{ name: 'r', backends: [{ subset: {}, weight: Number.NaN }] }] });
  for (let i = 0; i < 2; i++) {
    const issues = await issuesOfAsync(() => loadConfigCached([nan], {}, cache));
    assert.equal(issues[0]?.path, 'spec.routes[0].backends[0].weight');
  }
});

test('mesh.reload() uses it: equal documents keep their specs and destinations', async () => {
  const mesh = await meshClient({ config: many(), logger: { warn: () => {} } });
  try {
    const before = mesh.config;
    await mesh.reload(many({ s9: { timeout: '3s' } }));
    const after = mesh.config;
    assert.ok(before !== undefined && after !== undefined);
    assert.equal(after.services.get('s0'), before.services.get('s0'));
    assert.equal(after.services.get('s9')?.timeoutMs, 3000);
    assert.match(mesh.inspect().services.find((s) => s.name === 's9')?.stack ?? '', /timeout .*3s/);
  } finally {
    await mesh.close();
  }
});

/**
 * Apply's guarantee under concurrency, on the reference store: what is stored was validated
 * as a whole. A writer that changes the configuration between another apply's read and its
 * commit makes that commit fail its fence, and the apply is judged again against what is now
 * stored (here: refused, because the Mesh it relied on lost its Redis). Concurrent applies of
 * unrelated documents all land.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ConfigInvalidError } from '../../src/core/errors.js';
import { applyDocuments } from '../../src/controlplane/apply.js';
import { MemoryStore } from '../../src/controlplane/store/memory-store.js';
import { KEYS, type StoreOp } from '../../src/controlplane/store/store.js';

const MESH_WITH_REDIS = `apiVersion: trellis/v1
kind: Mesh
metadata: { name: default }
spec: { trustDomain: example.org, redis: { url: "redis://127.0.0.1:6379" } }
`;
const MESH_WITHOUT = `apiVersion: trellis/v1
kind: Mesh
metadata: { name: default }
spec: { trustDomain: example.org }
`;
const GLOBAL_LIMITED = `apiVersion: trellis/v1
kind: Service
metadata: { name: limited }
spec:
  protocol: http
  inbound: { rateLimit: { requestsPerSecond: 10, burst: 5, scope: global } }
`;

/** A MemoryStore that runs `before` once, just before the first commit touching `key`. */
class RacingStore extends MemoryStore {
  before: (() => Promise<void>) | undefined;
  constructor(readonly key: string) {
    super();
  }
  override async commit(ops: readonly StoreOp[]): Promise<number> {
    const hook = this.before;
    if (hook !== undefined && ops.some((o) => o.key === this.key)) {
      this.before = undefined;
      await hook();
    }
    return super.commit(ops);
  }
}

const options = { dryRun: false, trustDomain: 'example.org' };

describe('apply under concurrency', () => {
  it('a change that races an apply makes it be validated again, against what is stored now', async () => {
    const store = new RacingStore(KEYS.resource('Service', 'limited'));
    try {
      await applyDocuments(store, { kind: 'yaml', text: MESH_WITH_REDIS }, options);
      // Between the Service's validation (Mesh has Redis) and its commit, the Mesh loses Redis.
      store.before = async () => {
        await applyDocuments(store, { kind: 'yaml', text: MESH_WITHOUT }, options);
      };
      await assert.rejects(applyDocuments(store, { kind: 'yaml', text: GLOBAL_LIMITED }, options), (err: unknown) => {
        assert.ok(err instanceof ConfigInvalidError);
        assert.match(err.message, /Redis/);
        return true;
      });
      assert.equal(await store.get(KEYS.resource('Service', 'limited')), undefined, 'never stored beside a Mesh without Redis');
      const mesh = await store.get<{ spec: { redis?: unknown } }>(KEYS.resource('Mesh', 'default'));
      assert.equal(mesh?.value.spec.redis, undefined);
    } finally {
      await store.close();
    }
  });

  it('concurrent applies of different documents all land', async () => {
    const store = new MemoryStore();
    try {
      const names = ['a', 'b', 'c', 'd'];
      const results = await Promise.all(names.map((n) => applyDocuments(store, { kind: 'yaml', text: `apiVersion: trellis/v1\nkind: Service\nmetadata: { name: ${n} }\nspec: { protocol: http }\n` }, options)));
      assert.deepEqual(results.map((r) => r.resources[0]?.action), ['created', 'created', 'created', 'created']);
      const { entries } = await store.list(KEYS.resources);
      assert.equal(entries.length, 4);
    } finally {
      await store.close();
    }
  });
});

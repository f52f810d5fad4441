/**
 * End to end, two control-plane processes sharing a real 3-member etcd cluster, with real
 * instance processes: an apply on one replica reaches an instance connected only to the other;
 * killing (SIGKILL) the replica an instance uses moves it to the other while callers keep calling,
 * with no failed request and no endpoint lost (the registry entries the dead replica kept under
 * its lease are taken over by the survivor's).
 */
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { Agent, request } from 'undici';
import { etcdSkipReason, startEtcd, type EtcdCluster } from '../helpers/etcd.js';
import { bootstrapToken, eventually, killAll, startCpProcess, startInstance, trellis, type CallResult, type CpProcess, type InstanceProcess, E2E_SHOP_YAML, E2E_TRUST_DOMAIN } from '../helpers/cp-process.js';

const TD = E2E_TRUST_DOMAIN;
const SERVICES = E2E_SHOP_YAML;

const marker = (n: number): string => `apiVersion: trellis/v1\nkind: Service\nmetadata: { name: marker-${n} }\nspec: { protocol: http, endpoints: ["127.0.0.1:9"] }\n`;

describe('e2e: two control-plane replicas on a 3-member etcd', { skip: etcdSkipReason() }, () => {
  let dir: string;
  let etcd: EtcdCluster;
  let a: CpProcess;
  let b: CpProcess;

  before(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'trellis-e2e-replicas-'));
    etcd = await startEtcd(3);
    a = await startCpProcess({ dataDir: path.join(dir, 'a'), etcd: etcd.endpoints, trustDomain: TD });
    b = await startCpProcess({ dataDir: path.join(dir, 'b'), etcd: etcd.endpoints, adminToken: a.adminToken });
    await writeFile(path.join(dir, 'services.yaml'), SERVICES);
    const r = await trellis(['apply', '-f', path.join(dir, 'services.yaml')], a);
    assert.equal(r.code, 0, r.err);
  });

  after(async () => {
    await killAll();
    await etcd?.stop();
    await rm(dir, { recursive: true, force: true });
  });

  it('an apply on one replica reaches an instance connected to the other', async () => {
    // The token comes from B, the apply goes to A: they share the CA and the store.
    const x = await startInstance({ name: 'x', service: 'frontend', urls: [b.url], token: await bootstrapToken(b, 'frontend'), cacheDir: path.join(dir, 'cache-x'), serve: false });
    for (let n = 1; n <= 3; n++) {
      await writeFile(path.join(dir, `marker-${n}.yaml`), marker(n));
      const from = x.stdout.text.length;
      const t0 = Date.now();
      const r = await trellis(['apply', '-f', path.join(dir, `marker-${n}.yaml`)], a);
      assert.equal(r.code, 0, r.err);
      await x.waitFor(new RegExp(`^EVENT config .*\\bmarker-${n}\\b`, 'm'), `marker-${n} applied on A to reach x through B`, 60_000, from);
      console.log(`# apply on replica A to config event on an instance of replica B: ${Date.now() - t0} ms (including the CLI process start)`);
    }
    // The same through the API, timed from A's answer to the instance's event (no CLI start in it).
    const agent = new Agent({ connect: { ca: await readFile(path.join(dir, 'a', 'ca', 'bundle.pem'), 'utf8') } });
    const took: number[] = [];
    for (let n = 4; n <= 8; n++) {
      const from = x.stdout.text.length;
      const res = await request(`${a.url}/v1/apply`, { method: 'POST', dispatcher: agent, headers: { authorization: `Bearer ${a.adminToken}`, 'content-type': 'application/yaml' }, body: marker(n) });
      const text = await res.body.text();
      const t0 = Date.now();
      assert.equal(res.statusCode, 200, text);
      await x.waitFor(new RegExp(`^EVENT config .*\\bmarker-${n}\\b`, 'm'), `marker-${n} to reach x`, 60_000, from);
      took.push(Date.now() - t0);
    }
    await agent.close();
    console.log(`# apply answered by replica A to the config event of an instance on replica B, 5 applies: ${took.join(', ')} ms`);
    await x.stop();
  });

  it('killing the replica an instance uses moves it to the other with no failed request', async () => {
    const urls = [a.url, b.url];
    const pToken = await bootstrapToken(a, 'products');
    const p1 = await startInstance({ name: 'products-1', service: 'products', urls, token: pToken, cacheDir: path.join(dir, 'cache-p1') });
    const p2 = await startInstance({ name: 'products-2', service: 'products', urls, token: pToken, cacheDir: path.join(dir, 'cache-p2') });
    const fe: InstanceProcess = await startInstance({ name: 'frontend-1', service: 'frontend', urls, token: await bootstrapToken(b, 'frontend'), cacheDir: path.join(dir, 'cache-fe') });
    await fe.waitFor(/^EVENT configured products 2$/m, 'both products in the frontend');
    // The replica the frontend's stream is on, as its registry record says.
    const fronts = JSON.parse((await trellis(['get', 'instances', 'frontend', '-o', 'json'], a)).out) as { record: { replica: string } | null }[];
    const replica = fronts.find((f) => f.record !== null)?.record?.replica;
    assert.ok(replica === a.replicaId || replica === b.replicaId, JSON.stringify(fronts));
    const [victim, survivor] = replica === a.replicaId ? [a, b] : [b, a];

    // Callers keep calling throughout: batches of sequential calls, back to back.
    const results: CallResult[] = [];
    let calling = true;
    const caller = (async () => {
      while (calling) results.push(await fe.call('products', 20));
    })();
    while (results.length < 2) await new Promise((r) => setTimeout(r, 50));

    const from = fe.stdout.text.length;
    const t0 = Date.now();
    await victim.kill();
    const escaped = survivor.url.replace(/[.]/g, '\\.');
    await fe.waitFor(new RegExp(`^EVENT control-plane connected ${escaped}$`, 'm'), 'the frontend on the surviving replica', 90_000, from);
    console.log(`# failover: SIGKILL of the replica to the instance connected to the other: ${Date.now() - t0} ms`);
    // The servers too: every registry record is the survivor's now.
    await eventually('every instance registered through the survivor', async () => {
      const items = JSON.parse((await trellis(['get', 'instances', '-o', 'json'], survivor)).out) as { service: string; record: { replica: string } | null }[];
      const live = items.filter((i) => i.service !== 'frontend' || i.record !== null);
      return live.length >= 3 && live.every((i) => i.record?.replica === survivor.replicaId) ? true : undefined;
    }, 90_000);

    // A change made on the survivor reaches the frontend: it really moved.
    await writeFile(path.join(dir, 'marker-9.yaml'), marker(9));
    const fromApply = fe.stdout.text.length;
    assert.equal((await trellis(['apply', '-f', path.join(dir, 'marker-9.yaml')], survivor)).code, 0);
    await fe.waitFor(/^EVENT config .*\bmarker-9\b/m, 'an apply on the survivor', 60_000, fromApply);

    // Past the registry lease (15 s) the dead replica held the products' entries under, they
    // are still there: the survivor took them over. The calls go on meanwhile.
    const until = results.length + 8;
    await new Promise<void>((resolve) => {
      const t = setInterval(() => {
        if (results.length >= until) {
          clearInterval(t);
          resolve();
        }
      }, 100);
    });
    await new Promise((r) => setTimeout(r, 16_000));
    const more = results.length + 2;
    while (results.length < more) await new Promise((r) => setTimeout(r, 100));
    calling = false;
    await caller;

    const failed = results.reduce((n, r) => n + r.failed, 0);
    const ok = results.reduce((n, r) => n + r.ok, 0);
    assert.equal(failed, 0, JSON.stringify(results.filter((r) => r.failed > 0)));
    assert.ok(ok >= 20 * 12, `${ok} calls`);
    assert.doesNotMatch(fe.stdout.text.slice(from), /^EVENT configured products [01]$/m, 'a products endpoint was dropped');
    const got = await trellis(['get', 'instances', 'products', '-o', 'json'], survivor);
    const records = (JSON.parse(got.out) as { record: { endpoints: { address: string }[] } | null }[]).flatMap((i) => i.record?.endpoints.map((e) => e.address) ?? []);
    assert.deepEqual(records.sort(), [`127.0.0.1:${p1.port}`, `127.0.0.1:${p2.port}`].sort(), got.out);
  });
});

/**
 * End to end, the embedded store's promises with real control-plane processes: a restart keeps
 * every resource (same revisions) and every token (the admin token, and a bootstrap token made
 * before it still gets a certificate after); a kill -9 in the middle of a stream of applies loses
 * no acknowledged apply and leaves none half-written; and with the control plane gone, instances
 * keep routing and serving, and a fresh instance process started from the kept snapshot and
 * certificate (its cacheDir, no token) routes and serves too.
 */
import assert from 'node:assert/strict';
import { readFile, mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { Agent, request } from 'undici';
import { bootstrapToken, killAll, startCpProcess, startInstance, trellis, type CpProcess } from '../helpers/cp-process.js';

const TD = 'e2e.test';
const SERVICES = `apiVersion: trellis/v1
kind: Mesh
metadata: { name: default }
spec: { trustDomain: ${TD} }
---
apiVersion: trellis/v1
kind: Service
metadata: { name: products }
spec: { protocol: http, timeout: 2s }
---
apiVersion: trellis/v1
kind: Service
metadata: { name: frontend }
spec: { protocol: http, timeout: 2s }
`;

interface Doc {
  kind: string;
  metadata: { name: string; revision: number };
  spec: Record<string, unknown>;
}

async function services(cp: CpProcess): Promise<Doc[]> {
  const r = await trellis(['get', 'service', '-o', 'json'], cp);
  assert.equal(r.code, 0, r.err);
  return JSON.parse(r.out) as Doc[];
}

describe('e2e: the embedded store across restarts and crashes', () => {
  let dir: string;
  before(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'trellis-e2e-durable-'));
  });
  after(async () => {
    await killAll();
    await rm(dir, { recursive: true, force: true });
  });

  it('a restart keeps every resource, the admin token, and bootstrap tokens made before it', async () => {
    const data = path.join(dir, 'restart');
    let cp = await startCpProcess({ dataDir: data, trustDomain: TD });
    await writeFile(path.join(dir, 'restart.yaml'), SERVICES);
    assert.equal((await trellis(['apply', '-f', path.join(dir, 'restart.yaml')], cp)).code, 0);
    const token = await bootstrapToken(cp, 'products');
    const mesh1 = await trellis(['get', 'mesh', '-o', 'json'], cp);
    const before1 = await services(cp);
    assert.equal(before1.length, 2);
    assert.equal(await cp.stop(), 0, cp.stderr.text);

    cp = await startCpProcess({ dataDir: data, listen: `127.0.0.1:${cp.port}` });
    assert.doesNotMatch(cp.stdout.text, /created now/);
    // The same admin token (read from the file again: unchanged) is accepted.
    assert.equal((await readFile(path.join(data, 'admin-token'), 'utf8')).trim(), cp.adminToken);
    assert.deepEqual(await services(cp), before1);
    assert.equal((await trellis(['get', 'mesh', '-o', 'json'], cp)).out, mesh1.out);
    // The bootstrap token from before the restart still gets a certificate: an instance starts with it.
    const p = await startInstance({ name: 'p', service: 'products', urls: [cp.url], token, cacheDir: path.join(dir, 'cache-restart') });
    await p.stop();
    await cp.kill();
  });

  it('kill -9 in the middle of applies loses no acknowledged apply and leaves none half-written', async () => {
    const data = path.join(dir, 'crash');
    let cp = await startCpProcess({ dataDir: data, trustDomain: TD });
    const bundle = await readFile(path.join(data, 'ca', 'bundle.pem'), 'utf8');
    const agent = new Agent({ connect: { ca: bundle }, pipelining: 0 });
    const acked = new Set<number>();
    const sent = new Set<number>();
    let next = 0;
    let stop = false;
    // Each apply writes two Services at once (a-N and b-N), the second naming the first's number:
    // after the crash, each pair is there whole or not at all.
    const applier = async (): Promise<void> => {
      while (!stop) {
        const n = next++;
        sent.add(n);
        const body = [0, 1]
          .map((k) => `apiVersion: trellis/v1\nkind: Service\nmetadata: { name: ${k === 0 ? 'a' : 'b'}-${n} }\nspec: { protocol: http, endpoints: ["127.0.0.1:${1000 + n}"], timeout: ${n + 1}ms }\n`)
          .join('---\n');
        try {
          const res = await request(`${cp.url}/v1/apply`, { method: 'POST', dispatcher: agent, headers: { authorization: `Bearer ${cp.adminToken}`, 'content-type': 'application/yaml' }, body });
          const text = await res.body.text();
          if (res.statusCode === 200) acked.add(n);
          else if (res.statusCode !== 429) throw new Error(`apply ${n}: ${res.statusCode} ${text}`);
        } catch (err) {
          if (!stop) throw err;
          return; // the crash cut it: not acknowledged
        }
      }
    };
    let failure: unknown;
    const appliers = [applier(), applier(), applier(), applier()].map((a) => a.catch((err: unknown) => void (failure ??= err)));
    // Crash once a good number were acknowledged, with four applies in flight.
    while (acked.size < 40 && failure === undefined) await new Promise((r) => setTimeout(r, 20));
    if (failure !== undefined) throw failure;
    stop = true;
    await cp.kill();
    await Promise.allSettled(appliers);
    await agent.close();
    const ackedAtCrash = new Set(acked);
    console.log(`# kill -9 with applies in flight: ${sent.size} sent, ${ackedAtCrash.size} acknowledged before the crash`);

    cp = await startCpProcess({ dataDir: data });
    const stored = new Map((await services(cp)).map((d) => [d.metadata.name, d]));
    for (const n of ackedAtCrash) assert.ok(stored.has(`a-${n}`) && stored.has(`b-${n}`), `acknowledged apply ${n} was lost`);
    for (const n of sent) {
      const a = stored.get(`a-${n}`);
      const b = stored.get(`b-${n}`);
      assert.equal(a === undefined, b === undefined, `apply ${n} is half-written`);
      if (a === undefined || b === undefined) continue;
      assert.equal(a.metadata.revision, b.metadata.revision, `apply ${n}'s documents were written apart`);
      assert.deepEqual(a.spec, { protocol: 'http', endpoints: [`127.0.0.1:${1000 + n}`], timeout: `${n + 1}ms` });
    }
    assert.equal(stored.size % 2, 0);
    const whole = [...sent].filter((n) => stored.has(`a-${n}`)).length;
    console.log(`# after the restart: ${whole} applies there whole (every acknowledged one, and ${whole - ackedAtCrash.size} in flight at the crash), none half-written`);
    // And the store takes writes again.
    await writeFile(path.join(dir, 'after.yaml'), SERVICES);
    assert.equal((await trellis(['apply', '-f', path.join(dir, 'after.yaml')], cp)).code, 0);
    await cp.kill();
  });

  it('with the control plane down, instances keep routing and serving; a fresh one starts from its cacheDir and serves', async () => {
    const data = path.join(dir, 'down');
    const cp = await startCpProcess({ dataDir: data, trustDomain: TD });
    await writeFile(path.join(dir, 'down.yaml'), SERVICES);
    assert.equal((await trellis(['apply', '-f', path.join(dir, 'down.yaml')], cp)).code, 0);
    const cache = (n: string): string => path.join(dir, `cache-down-${n}`);
    const p = await startInstance({ name: 'products-1', service: 'products', urls: [cp.url], token: await bootstrapToken(cp, 'products'), cacheDir: cache('p') });
    const fe = await startInstance({ name: 'frontend-1', service: 'frontend', urls: [cp.url], token: await bootstrapToken(cp, 'frontend'), cacheDir: cache('fe') });
    await fe.waitFor(/^EVENT configured products 1$/m, 'products in the frontend');
    await p.waitFor(/^EVENT configured frontend 1$/m, 'frontend in products');
    assert.equal((await fe.call('products', 5)).ok, 5);

    await cp.kill();
    // Both saw it go and kept trying; several reconnection attempts later (past the 15 s
    // registry lease) nothing was evicted.
    for (const i of [fe, p]) await i.waitFor(/^EVENT control-plane disconnected .*\n(?:.*\n)*EVENT control-plane disconnected .*\n(?:.*\n)*EVENT control-plane disconnected /m, 'three failed reconnections', 120_000);
    const r1 = await fe.call('products', 20);
    assert.deepEqual([r1.ok, r1.failed, r1.seenAs], [20, 0, { frontend: 20 }], JSON.stringify(r1));
    const r2 = await p.call('frontend', 5);
    assert.deepEqual([r2.ok, r2.servers], [5, { 'frontend-1': 5 }], JSON.stringify(r2));

    // A fresh frontend process from the same cacheDir, no token, no control plane: it starts from
    // the kept snapshot and certificate, routes to products and serves on its old port.
    const port = fe.port;
    await fe.kill();
    const fresh = await startInstance({ name: 'frontend-2', service: 'frontend', urls: [cp.url], cacheDir: cache('fe'), ...(port !== undefined ? { port } : {}) });
    await fresh.stderr.wait(/starting from the snapshot kept in/, 30_000, 'the fresh instance to say it started from its cache');
    const r3 = await fresh.call('products', 10);
    assert.deepEqual([r3.ok, r3.failed, r3.seenAs], [10, 0, { frontend: 10 }], JSON.stringify(r3));
    const r4 = await p.call('frontend', 5);
    assert.deepEqual([r4.ok, r4.servers, r4.seenAs], [5, { 'frontend-2': 5 }, { products: 5 }], JSON.stringify(r4));
  });
});

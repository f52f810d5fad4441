/**
 * mesh.dispatcher as the global dispatcher: Node 20's built-in fetch reaches mesh services by
 * name, and other hosts pass through untouched.
 */
import { describe, it, after, before } from 'node:test';
import assert from 'node:assert/strict';
import { getGlobalDispatcher, setGlobalDispatcher, request } from 'undici';
import type { Dispatcher } from 'undici';
import { meshClient } from 'trellis';
import type { Mesh } from 'trellis';
import { serviceYaml, startServers } from '../helpers/servers.js';
import type { TestServer } from '../helpers/servers.js';

describe('mesh.dispatcher', () => {
  let ss: TestServer[];
  let other: TestServer[];
  let mesh: Mesh;
  let previous: Dispatcher;
  before(async () => {
    ss = await startServers(2, 'svc');
    other = await startServers(1, 'outside');
    mesh = await meshClient({ config: serviceYaml('products', ss.map((s) => ({ address: s.address })), 'loadBalancer: round-robin') });
    previous = getGlobalDispatcher();
    setGlobalDispatcher(mesh.dispatcher);
  });
  after(async () => {
    setGlobalDispatcher(previous);
    await mesh.close();
    await Promise.all([...ss, ...other].map((s) => s.close()));
  });

  it("routes Node's built-in fetch to http://<service>/ through the mesh", async () => {
    const seen = new Set<string>();
    for (let i = 0; i < 4; i++) {
      const res = await fetch('http://products/list?i=' + i);
      assert.equal(res.status, 200);
      const json = (await res.json()) as { server: string; path: string };
      assert.equal(json.path, '/list?i=' + i);
      seen.add(json.server);
    }
    assert.equal(seen.size, 2, 'balanced over both endpoints');
  });

  it("fetch's resource timing has its response-start time (the mesh passes undici's onResponseStarted on)", async () => {
    const url = 'http://products/timing?' + Date.now();
    const res = await fetch(url);
    await res.text();
    let entry: { responseStart: number; requestStart: number } | undefined;
    for (let i = 0; i < 200 && entry === undefined; i++) {
      entry = performance.getEntriesByName(url, 'resource')[0] as { responseStart: number; requestStart: number } | undefined;
      if (entry === undefined) await new Promise((r) => setTimeout(r, 5));
    }
    assert.ok(entry !== undefined, 'fetch marked its resource timing');
    assert.ok(entry.responseStart > 0, `responseStart ${entry.responseStart}`);
    assert.ok(entry.responseStart >= entry.requestStart, `responseStart ${entry.responseStart} before requestStart ${entry.requestStart}`);
  });

  it('sends a fetch POST body and reads response headers', async () => {
    const res = await fetch('http://products/orders', { method: 'POST', body: JSON.stringify({ a: 1 }), headers: { 'content-type': 'application/json' } });
    assert.equal(res.status, 200);
    assert.ok(res.headers.get('x-server')?.startsWith('svc'));
    const json = (await res.json()) as { body: string; method: string };
    assert.equal(json.method, 'POST');
    assert.equal(json.body, '{"a":1}');
  });

  it('passes other hosts through untouched', async () => {
    const o = other[0];
    assert.ok(o);
    const res = await fetch(`http://${o.address}/direct`);
    const json = (await res.json()) as { server: string };
    assert.equal(json.server, 'outside0');
    const r2 = await request(`http://${o.address}/undici`);
    assert.equal(r2.statusCode, 200);
    await r2.body.dump();
  });

  it("serves undici's request() to a mesh service", async () => {
    const res = await request('http://products/via-undici', { dispatcher: mesh.dispatcher });
    assert.equal(res.statusCode, 200);
    const json = (await res.body.json()) as { path: string };
    assert.equal(json.path, '/via-undici');
  });

  it('reads headers given as a one-shot iterator once: checked and sent, none lost', async () => {
    function* pairs(): Generator<[string, string]> {
      yield ['x-one', '1'];
      yield ['x-two', '2'];
    }
    const res = await request('http://products/iterated', { dispatcher: mesh.dispatcher, headers: pairs() as unknown as Record<string, string> });
    assert.equal(res.statusCode, 200);
    const json = (await res.body.json()) as { server: string };
    const seen = ss.find((s) => s.name === json.server)?.lastHeaders;
    assert.equal(seen?.['x-one'], '1');
    assert.equal(seen?.['x-two'], '2');
  });

  it('mesh.http().request() reads a one-shot iterator of headers once too', async () => {
    function* pairs(): Generator<[string, string]> {
      yield ['x-three', '3'];
    }
    const res = await mesh.http('products').request({ method: 'GET', path: '/http-iterated', headers: pairs() as unknown as Record<string, string> });
    assert.equal(res.statusCode, 200);
    const json = (await res.body.json()) as { server: string };
    assert.equal(ss.find((s) => s.name === json.server)?.lastHeaders?.['x-three'], '3');
  });
});

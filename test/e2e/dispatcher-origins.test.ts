/**
 * What mesh.dispatcher does with each kind of origin, with real fetch() and undici.request()
 * against real servers: known services (default port) through the mesh; https:// or another port
 * on a known service and unknown single-label hosts refused with a TrellisError that
 * isTrellisError sees through fetch's `TypeError: fetch failed`; real hostnames and IPs passed
 * through; `unknownHosts: 'pass'` sends single-label hosts to DNS. The judge is the servers' hit
 * counts (nothing reached them when refused).
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { request } from 'undici';
import { isTrellisError, meshClient, trellisErrorOf } from 'trellis';
import type { Mesh } from 'trellis';
import { serviceYaml, startServers } from '../helpers/servers.js';
import type { TestServer } from '../helpers/servers.js';

const quiet = { warn: (): void => {} };

/** Node's fetch takes an undici dispatcher through this non-standard init field (types differ by package). */
function via(mesh: Mesh): RequestInit {
  return { dispatcher: mesh.dispatcher } as unknown as RequestInit;
}

async function fetchError(url: string, mesh: Mesh): Promise<unknown> {
  return fetch(url, via(mesh)).then(
    () => assert.fail(`${url} was expected to fail`),
    (e: unknown) => e,
  );
}

describe('mesh.dispatcher origins', () => {
  let ss: TestServer[];
  let outside: TestServer[];
  let mesh: Mesh;
  before(async () => {
    ss = await startServers(1, 'svc');
    outside = await startServers(1, 'outside');
    mesh = await meshClient({ service: 'caller', config: serviceYaml('inventory', ss.map((s) => ({ address: s.address }))), logger: quiet });
  });
  after(async () => {
    await mesh.close();
    await Promise.all([...ss, ...outside].map((s) => s.close()));
  });

  it('sends http://inventory and http://inventory:80 through the mesh', async () => {
    const s = ss[0];
    assert.ok(s);
    const before = s.hits;
    for (const url of ['http://inventory/a', 'http://inventory:80/b']) {
      const res = await fetch(url, via(mesh));
      assert.equal(res.status, 200);
      await res.arrayBuffer();
    }
    assert.equal(s.hits - before, 2);
  });

  it('refuses https://<service> with TRELLIS_INVALID_ARGUMENT explaining mTLS is the mesh job', async () => {
    const s = ss[0];
    assert.ok(s);
    const before = s.hits;
    const err = await fetchError('https://inventory/a', mesh);
    assert.ok(err instanceof TypeError, 'fetch wraps dispatcher errors');
    assert.equal(isTrellisError(err, 'TRELLIS_INVALID_ARGUMENT'), true, String(err));
    assert.match(trellisErrorOf(err)?.message ?? '', /mTLS.*Use http:\/\/inventory /);
    const withPort = await fetchError('https://inventory:8443/a', mesh);
    assert.match(trellisErrorOf(withPort)?.message ?? '', /Use http:\/\/inventory \(no port/, 'the suggestion is one the dispatcher accepts');
    assert.equal(s.hits, before);
  });

  it('refuses http://<service>:<port> naming the port, for fetch and undici.request', async () => {
    const err = await fetchError('http://inventory:9001/a', mesh);
    assert.equal(isTrellisError(err, 'TRELLIS_INVALID_ARGUMENT'), true, String(err));
    assert.match(trellisErrorOf(err)?.message ?? '', /port 9001.*Use http:\/\/inventory/);
    await assert.rejects(request('http://inventory:9001/a', { dispatcher: mesh.dispatcher }), (e: unknown) => isTrellisError(e, 'TRELLIS_INVALID_ARGUMENT'));
  });

  it('refuses an unknown single-label host with TRELLIS_UNKNOWN_SERVICE and a did-you-mean', async () => {
    const err = await fetchError('http://inventroy/a', mesh);
    assert.equal(isTrellisError(err, 'TRELLIS_UNKNOWN_SERVICE'), true, String(err));
    assert.match(trellisErrorOf(err)?.message ?? '', /did you mean "inventory".*unknownHosts: 'pass'/);
    await assert.rejects(request('http://cache:6379/', { dispatcher: mesh.dispatcher }), (e: unknown) => isTrellisError(e, 'TRELLIS_UNKNOWN_SERVICE'));
  });

  it('passes IP literals and localhost through untouched', async () => {
    const o = outside[0];
    assert.ok(o);
    const before = o.hits;
    const a = await fetch(`http://${o.address}/ip`, via(mesh));
    assert.equal(a.status, 200);
    await a.arrayBuffer();
    const b = await request(`http://localhost:${o.port}/localhost`, { dispatcher: mesh.dispatcher });
    assert.equal(b.statusCode, 200);
    await b.body.dump();
    assert.equal(o.hits - before, 2);
  });

  it("with unknownHosts: 'pass', a single-label host goes to DNS (and fails there, not in the mesh)", async () => {
    const passing = await meshClient({ service: 'caller', config: serviceYaml('inventory', ss.map((s) => ({ address: s.address }))), logger: quiet, dispatcher: { unknownHosts: 'pass' } });
    try {
      const err = await fetchError('http://no-such-host-trellis-test/a', passing);
      assert.equal(isTrellisError(err), false, String(err));
      const code = ((err as Error).cause as { code?: string } | undefined)?.code;
      assert.ok(code === 'ENOTFOUND' || code === 'EAI_AGAIN', `a DNS failure, got ${String(code)}`);
    } finally {
      await passing.close();
    }
  });
});

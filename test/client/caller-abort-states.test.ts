/**
 * The caller's abort function (now reached through a link the call cuts in
 * #finish) still aborts the call at each moment it is alive: inside onConnect, during a retry's
 * backoff, during an injected delay, while a mirrored copy runs, while the body streams, while a
 * small body is read whole before delivery. Each ends in TRELLIS_ABORTED, sends nothing more, and
 * leaves the endpoint's outstanding count at 0.
 */
import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Dispatcher } from 'undici';
import { isTrellisError, meshClient } from 'trellis';
import type { Mesh } from 'trellis';
import { serviceYaml } from '../helpers/servers.js';
import { TestDnsServer } from '../discovery/dns-server.js';

const cleanup: (() => Promise<void>)[] = [];
after(async () => {
  for (const c of cleanup.reverse()) await c();
});

interface Srv { address: string; seen: string[]; wrote: Promise<void>; }

async function server(): Promise<Srv> {
  let wrote!: () => void;
  const s: Srv = { address: '', seen: [], wrote: new Promise<void>((r) => { wrote = r; }) };
  const srv = http.createServer((req, res) => {
    s.seen.push(req.url ?? '');
    if (req.url === '/503') {
      res.writeHead(503, { 'content-length': 0 });
      res.end(() => wrote());
    } else if (req.url === '/partial') {
      res.writeHead(200, { 'content-length': 100 });
      res.write('x'.repeat(10), () => wrote());
    } else if (req.url === '/ok') {
      res.end('ok');
    }
    // else: /hang never answers
  });
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  s.address = `127.0.0.1:${(srv.address() as AddressInfo).port}`;
  cleanup.push(async () => {
    srv.closeAllConnections();
    await new Promise<void>((r) => srv.close(() => r()));
  });
  return s;
}

async function meshFor(yaml: string): Promise<Mesh> {
  const m = await meshClient({ service: 'caller', config: yaml });
  cleanup.push(() => m.close({ drainTimeoutMs: 100 }));
  return m;
}

type When = 'connect' | 'headers' | 'data' | 'manual';

function call(mesh: Mesh, path: string, when: When): { abort: () => void; done: Promise<{ err?: Error; headers: boolean }> } {
  let abortFn: ((e?: Error) => void) | undefined;
  let headers = false;
  const done = new Promise<{ err?: Error; headers: boolean }>((resolve) => {
    const handler = {
      onConnect(a: (e?: Error) => void) {
        abortFn = a;
        if (when === 'connect') a(new Error('gone'));
      },
      onHeaders() {
        headers = true;
        if (when === 'headers') abortFn?.(new Error('gone'));
        return true;
      },
      onData() {
        if (when === 'data') abortFn?.(new Error('gone'));
        return true;
      },
      onComplete() { resolve({ headers }); },
      onError(err: Error) { resolve({ err, headers }); },
    } as unknown as Dispatcher.DispatchHandler;
    mesh.dispatcher.dispatch({ origin: 'http://svc', path, method: 'GET' }, handler);
  });
  return { abort: () => abortFn?.(new Error('gone')), done };
}

function aborted(r: { err?: Error }): void {
  assert.ok(r.err !== undefined && isTrellisError(r.err, 'TRELLIS_ABORTED'), String(r.err));
  assert.match(String((r.err as Error & { cause?: unknown }).cause), /gone/);
}

async function released(mesh: Mesh): Promise<void> {
  for (let i = 0; i < 20; i++) await new Promise((r) => setImmediate(r));
  for (const e of mesh.inspect().services.find((s) => s.name === 'svc')?.endpoints ?? []) assert.equal(e.outstanding, 0, e.id);
}

const tick = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

describe('the caller abort at each moment of the call', () => {
  it('inside onConnect, before the first attempt: nothing is sent', async () => {
    const s = await server();
    const mesh = await meshFor(serviceYaml('svc', [{ address: s.address }], 'timeout: 60s'));
    aborted(await call(mesh, '/ok', 'connect').done);
    await tick(20);
    assert.deepEqual(s.seen, []);
    await released(mesh);
  });

  it('during a retry backoff: the retry is never sent', async () => {
    const s = await server();
    const mesh = await meshFor(serviceYaml('svc', [{ address: s.address }], 'timeout: 60s\noutlierDetection: false\nretries: { attempts: 2, on: [gateway-error], backoff: { base: 30s, max: 30s }, budget: { ratio: 1, minPerSecond: 100 } }'));
    const c = call(mesh, '/503', 'manual');
    await s.wrote;
    await tick(50);
    c.abort();
    aborted(await c.done);
    await tick(20);
    assert.deepEqual(s.seen, ['/503']);
    await released(mesh);
  });

  it('during an injected delay: nothing is sent', async () => {
    const s = await server();
    const mesh = await meshFor(serviceYaml('svc', [{ address: s.address }], 'timeout: 60s\nroutes:\n  - name: slow\n    fault: { delay: { duration: 30s, percent: 100 } }'));
    const c = call(mesh, '/ok', 'manual');
    await tick(20);
    c.abort();
    aborted(await c.done);
    await tick(20);
    assert.deepEqual(s.seen, []);
  });

  it('while a mirrored copy runs', async () => {
    const s = await server();
    const copy = await server();
    const mesh = await meshFor(serviceYaml('svc', [{ address: s.address, labels: { v: '1' } }, { address: copy.address, labels: { v: '2' } }], 'timeout: 60s\nroutes:\n  - name: all\n    backends: [ { subset: { v: "1" } } ]\n    mirror: { subset: { v: "2" }, percent: 100 }'));
    const c = call(mesh, '/hang', 'manual');
    for (let i = 0; i < 100 && (s.seen.length === 0 || copy.seen.length === 0); i++) await tick(10);
    assert.deepEqual([s.seen, copy.seen], [['/hang'], ['/hang']]);
    c.abort();
    aborted(await c.done);
  });

  it('while the body streams to the caller', async () => {
    const s = await server();
    const mesh = await meshFor(serviceYaml('svc', [{ address: s.address }], 'timeout: 60s\nretries: { attempts: 1 }'));
    const r = await call(mesh, '/partial', 'data').done;
    aborted(r);
    assert.equal(r.headers, true);
    await released(mesh);
  });

  it('while a small body is read whole, before the caller has the headers', async () => {
    const s = await server();
    const mesh = await meshFor(serviceYaml('svc', [{ address: s.address }], 'timeout: 60s\nretries: { attempts: 3, on: [reset], budget: { ratio: 1, minPerSecond: 100 } }'));
    const c = call(mesh, '/partial', 'manual');
    await s.wrote;
    await tick(50);
    c.abort();
    const r = await c.done;
    aborted(r);
    assert.equal(r.headers, false, 'read whole first: the caller had nothing yet');
    assert.deepEqual(s.seen, ['/partial']);
    await released(mesh);
  });

  it('while waiting for discovery: nothing is sent, and no attempt starts later', async () => {
    const s = await server();
    const port = Number(s.address.split(':')[1]);
    const dns = await TestDnsServer.start({ 'svc.test': { a: ['127.0.0.1'], ttl: 1 } });
    dns.mode = 'drop';
    cleanup.push(() => dns.close());
    const mesh = await meshFor(`apiVersion: trellis/v1
kind: Mesh
metadata: { name: default }
spec: { dns: { servers: ["${dns.address}"], refreshInterval: 200ms, minTtl: 100ms } }
---
apiVersion: trellis/v1
kind: Service
metadata: { name: svc }
spec:
  dns: svc.test:${port}
  timeout: 60s
`);
    const c = call(mesh, '/ok', 'manual');
    await tick(50);
    c.abort();
    aborted(await c.done);
    dns.mode = 'answer';
    // Discovery answers now: the aborted call must not send anything then.
    const ok = await mesh.http('svc').request({ path: '/ok' });
    assert.equal(await ok.body.text(), 'ok');
    assert.deepEqual(s.seen, ['/ok']);
    await released(mesh);
  });
});

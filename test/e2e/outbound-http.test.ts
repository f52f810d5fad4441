/**
 * The outbound HTTP surface through the package name: undici's request() shape, streaming
 * bodies both ways, the logical host, and an unknown service.
 */
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { Readable } from 'node:stream';
import { meshClient, isTrellisError } from 'trellis';
import type { Mesh } from 'trellis';
import { startServer, serviceYaml } from '../helpers/servers.js';
import type { TestServer } from '../helpers/servers.js';

describe('mesh.http(service).request()', () => {
  let srv: TestServer;
  let mesh: Mesh;
  before(async () => {
    srv = await startServer('a', { kind: 'ok' }, (req, res) => {
      if (req.url === '/stream') {
        res.write('one,');
        setTimeout(() => res.end('two'), 20);
        return;
      }
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        res.setHeader('content-type', 'application/json');
        res.end(JSON.stringify({ method: req.method, url: req.url, host: req.headers.host, body: Buffer.concat(chunks).toString(), x: req.headers['x-test'] }));
      });
    });
    mesh = await meshClient({ service: 'tester', config: serviceYaml('products', [{ address: srv.address }]) });
  });
  after(async () => {
    await mesh.close();
    await srv.close();
  });

  it('returns statusCode, headers and a body stream as undici does', async () => {
    const res = await mesh.http('products').request({ method: 'GET', path: '/list?x=1', headers: { 'x-test': 'yes' } });
    assert.equal(res.statusCode, 200);
    assert.equal(res.headers['content-type'], 'application/json');
    const json = (await res.body.json()) as Record<string, string>;
    assert.equal(json.url, '/list?x=1');
    assert.equal(json.x, 'yes');
    assert.equal(json.host, 'products', 'the logical service name is the authority');
  });

  it('streams a request body and a response body', async () => {
    const body = Readable.from(['alpha', '-', 'beta']);
    const res = await mesh.http('products').request({ method: 'POST', path: '/upload', body });
    const json = (await res.body.json()) as Record<string, string>;
    assert.equal(json.body, 'alpha-beta');
    const s = await mesh.http('products').request({ path: '/stream' });
    const parts: string[] = [];
    for await (const chunk of s.body) parts.push(String(chunk));
    assert.equal(parts.join(''), 'one,two');
  });

  it('sends buffered bodies and query options', async () => {
    const res = await mesh.http('products').request({ method: 'PUT', path: '/q', query: { a: '1' }, body: 'hello' });
    const json = (await res.body.json()) as Record<string, string>;
    assert.equal(json.url, '/q?a=1');
    assert.equal(json.body, 'hello');
  });

  it('refuses an unknown service with a typed error', async () => {
    await assert.rejects(mesh.http('nope').request({ path: '/' }), (err: unknown) => isTrellisError(err, 'TRELLIS_UNKNOWN_SERVICE') && /nope/.test((err as Error).message));
  });

  it('describes the stack it runs', () => {
    const svc = mesh.inspect().services.find((s) => s.name === 'products');
    assert.ok(svc);
    assert.match(svc.stack, /timeout[\s\S]*retry[\s\S]*balancer[\s\S]*endpoint/);
  });
});

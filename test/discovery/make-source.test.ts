import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { makeEndpointSource } from '../../src/discovery/make-source.js';

const mesh = { dns: { servers: ['127.0.0.1:1'], refreshIntervalMs: 1000, minTtlMs: 100 } };

describe('makeEndpointSource', () => {
  it('static endpoints give a static source', () => {
    const source = makeEndpointSource({ endpoints: [{ host: '127.0.0.1', port: 80, labels: {} }] }, mesh);
    assert.equal(source?.description, 'static (1 endpoint)');
  });

  it('dns gives a dns source (not started: no query, nothing to close but close works)', () => {
    const source = makeEndpointSource({ dns: { name: 'products.test', port: 8080, type: 'a', labels: {} } }, mesh);
    assert.equal(source?.description, 'dns products.test:8080');
    source?.close();
    const srv = makeEndpointSource({ dns: { name: '_http._tcp.products.test', port: undefined, type: 'srv', labels: {} } }, mesh);
    assert.equal(srv?.description, 'dns srv _http._tcp.products.test');
    srv?.close();
  });

  it('neither gives undefined (the registry supplies the source)', () => {
    assert.equal(makeEndpointSource({}, mesh), undefined);
  });

  it('both is a wiring bug and throws', () => {
    assert.throws(() =>
      makeEndpointSource({ endpoints: [], dns: { name: 'x.test', port: 1, type: 'a', labels: {} } }, mesh),
    );
  });

  it('bad DNS settings fail at construction', () => {
    const dns = { name: 'x.test', port: 1, type: 'a' as const, labels: {} };
    assert.throws(() => makeEndpointSource({ dns }, { dns: { ...mesh.dns, servers: ['not a server!'] } }));
    assert.throws(() => makeEndpointSource({ dns }, { dns: { ...mesh.dns, refreshIntervalMs: 0 } }), RangeError);
    assert.throws(() => makeEndpointSource({ dns: { ...dns, port: undefined } }, mesh), RangeError);
  });
});

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { staticSource } from '../../src/discovery/static-source.js';
import type { Endpoint } from '../../src/discovery/endpoint.js';

describe('staticSource', () => {
  it('delivers the set synchronously in start, sorted by id, with labels and weight 1', () => {
    const source = staticSource([
      { host: '127.0.0.2', port: 8081, labels: { version: 'v2' } },
      { host: '::1', port: 8080, labels: {} },
      { host: '127.0.0.1', port: 8081, labels: { version: 'v1' } },
    ]);
    const got: (readonly Endpoint[])[] = [];
    source.start((eps) => got.push(eps), () => assert.fail('no errors expected'));
    assert.equal(got.length, 1, 'delivered before start returned');
    assert.deepEqual(got[0]?.map((e) => e.id), ['127.0.0.1:8081', '127.0.0.2:8081', '[::1]:8080']);
    assert.deepEqual(got[0]?.[0]?.labels, { version: 'v1' });
    assert.equal(got[0]?.[0]?.weight, 1);
    assert.ok(Object.isFrozen(got[0]));
    assert.equal(source.description, 'static (3 endpoints)');
    source.close();
  });

  it('never changes: later starts see the same set, duplicates keep the first entry', async () => {
    const specs = [
      { host: '10.0.0.1', port: 80, labels: { a: '1' } },
      { host: '10.0.0.1', port: 80, labels: { a: '2' } },
    ];
    const source = staticSource(specs);
    specs.push({ host: '10.0.0.9', port: 80, labels: { a: '3' } }); // mutating the input changes nothing
    let calls = 0;
    let last: readonly Endpoint[] = [];
    source.start((eps) => {
      calls++;
      last = eps;
    }, () => {});
    await new Promise((r) => setTimeout(r, 20));
    assert.equal(calls, 1);
    assert.deepEqual(last.map((e) => [e.id, e.labels['a']]), [['10.0.0.1:80', '1']]);
  });

  it('an empty list delivers an empty set; after close, start delivers nothing', () => {
    const empty = staticSource([]);
    let got: readonly Endpoint[] | undefined;
    empty.start((eps) => (got = eps), () => {});
    assert.deepEqual(got, []);
    const closed = staticSource([{ host: '127.0.0.1', port: 1, labels: {} }]);
    closed.close();
    closed.start(() => assert.fail('closed source must not deliver'), () => {});
  });
});

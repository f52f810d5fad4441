/**
 * What `trellis check` warns about in a valid configuration: callers named in
 * `authorization.from` with no Service document, and route subsets (backends, mirror) that
 * select no endpoint — static endpoints' labels, or registered instances' for a registry
 * Service. `*` and DNS-discovered Services are not warned about.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { configWarnings } from '../../src/cli/config-warnings.js';

const svc = (name: string, spec: unknown) => ({ metadata: { name }, spec });

describe('configWarnings', () => {
  it('names callers without a Service document, not * and not known ones', () => {
    const w = configWarnings({
      services: [
        svc('products', { inbound: { authorization: { allow: [{ from: ['checkout', 'frontend', '*'] }], deny: [{ from: 'crawler' }] } } }),
        svc('checkout', {}),
      ],
      instanceLabels: new Map(),
    });
    assert.equal(w.length, 2);
    assert.match(w[0] as string, /Service products: .*"frontend", which has no Service document/);
    assert.match(w[1] as string, /"crawler"/);
  });

  it('names subsets that select no static endpoint or registered instance', () => {
    const routes = [{ name: 'canary', backends: [{ subset: { version: 'v1' }, weight: 90 }, { subset: { version: 'v3' }, weight: 10 }], mirror: { subset: { version: 'v9' } } }];
    const w = configWarnings({
      services: [
        svc('products', { endpoints: [{ address: '127.0.0.1:1', labels: { version: 'v1' } }], routes }),
        svc('orders', { routes }),
        svc('reviews', { dns: 'reviews.svc:80', routes }),
      ],
      instanceLabels: new Map([['orders', [{ version: 'v3', zone: 'a' }]]]),
    });
    assert.deepEqual(w, [
      'Service products route canary: backend subset {version: v3} selects no endpoint',
      'Service products route canary: mirror subset {version: v9} selects no endpoint',
      'Service orders route canary: backend subset {version: v1} selects no registered instance',
      'Service orders route canary: mirror subset {version: v9} selects no registered instance',
    ]);
  });

  it('a registry Service with no instance: every subset selects nothing, and says so', () => {
    const w = configWarnings({ services: [svc('orders', { routes: [{ backends: [{ subset: { version: 'v1' } }] }] })], instanceLabels: new Map() });
    assert.deepEqual(w, ['Service orders route #0: backend subset {version: v1} selects no registered instance (there are none)']);
  });
});

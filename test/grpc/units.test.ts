/**
 * The pure parts of the gRPC edge: authorization rules, the classifier, status mapping, target
 * parsing, the mesh registry, and the wiring against a Mesh made by the public `meshClient`.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { Metadata, status as Status } from '@grpc/grpc-js';
import { meshClient } from '../../src/mesh-client.js';
import { CircuitOpenError, RateLimitedError, TimeoutError } from '../../src/core/errors.js';
import { compileAuthorization } from '../../src/grpc/authorization.js';
import { grpcClassifier } from '../../src/grpc/classify.js';
import type { GrpcResult } from '../../src/grpc/grpc-call.js';
import { MeshRegistry } from '../../src/grpc/registry.js';
import type { GrpcMeshSource } from '../../src/grpc/registry.js';
import { parseTrellisTarget } from '../../src/grpc/resolver.js';
import { grpcCodeName, grpcCodeOf, statusForError } from '../../src/grpc/status.js';
import { serviceOfCertificate } from '../../src/grpc/identity.js';
import { watchMeshEvents } from '../../src/grpc/channel.js';
import type { PeerCertificate } from 'node:tls';

function result(code: number, md = new Metadata()): GrpcResult {
  return { status: { code, details: '', metadata: md }, metadata: undefined, message: undefined, hasMessage: false, injected: false, refusal: undefined };
}

describe('gRPC edge units', () => {
  it('authorization: deny first, then allow; `*` needs a verified caller; path prefixes', () => {
    const check = compileAuthorization({
      allow: [
        { from: ['checkout'], methods: [], paths: ['/shop.Products/*'] },
        { from: ['*'], methods: ['POST'], paths: ['/shop.Health/Check'] },
      ],
      deny: [{ from: [], methods: [], paths: ['/shop.Products/Delete'] }],
    });
    assert.equal(check('checkout', 'POST', '/shop.Products/Get').allowed, true);
    assert.equal(check('checkout', 'POST', '/shop.Products/Delete').allowed, false);
    assert.equal(check('frontend', 'POST', '/shop.Products/Get').allowed, false);
    assert.equal(check('frontend', 'POST', '/shop.Health/Check').allowed, true);
    assert.equal(check('unknown', 'POST', '/shop.Health/Check').allowed, false);
    assert.equal(check('frontend', 'GET', '/shop.Health/Check').allowed, false);
    assert.equal(compileAuthorization(undefined)('unknown', 'POST', '/x/y').allowed, true);
    assert.equal(compileAuthorization({ allow: [], deny: [{ from: ['*'], methods: [], paths: [] }] })('unknown', 'POST', '/a/b').allowed, true);
  });

  it('classifier: failure codes, listed codes, connect failures, resets, application answers', () => {
    const c = grpcClassifier(['connect-failure', 'unavailable', 'aborted']);
    assert.deepEqual(c(result(Status.OK), undefined), { kind: 'success' });
    assert.deepEqual(c(result(Status.UNAVAILABLE), undefined), { kind: 'failure', conditions: ['unavailable'] });
    assert.deepEqual(c(result(Status.RESOURCE_EXHAUSTED), undefined), { kind: 'failure', conditions: ['resource-exhausted'] });
    assert.deepEqual(c(result(Status.ABORTED), undefined), { kind: 'failure', conditions: ['aborted'] });
    assert.deepEqual(c(result(Status.NOT_FOUND), undefined), { kind: 'success' });
    assert.deepEqual(c(result(Status.CANCELLED), undefined), { kind: 'failure', conditions: ['reset', 'cancelled', 'unavailable'] });
    assert.deepEqual(c({ ...result(Status.UNAVAILABLE), refusal: 'connect-failure' }, undefined), { kind: 'failure', conditions: ['connect-failure', 'unavailable'] });
    assert.deepEqual(c({ ...result(Status.UNAVAILABLE), refusal: 'peer-identity' }, undefined), { kind: 'failure', conditions: [] });
    // What the picker's refusals are known by is the result's `refusal` (from the pick ticket), never a trailer a server could send.
    const md = new Metadata();
    md.set('x-trellis-connect-failure', '1');
    md.set('x-trellis-error', 'TRELLIS_PEER_IDENTITY');
    assert.deepEqual(c(result(Status.UNAVAILABLE, md), undefined), { kind: 'failure', conditions: ['unavailable'] });
    assert.deepEqual(c({ ...result(Status.UNAVAILABLE), injected: true }, undefined), { kind: 'ignore' });
    assert.equal(c(undefined, new CircuitOpenError('open')).kind, 'ignore');
    assert.equal(c(undefined, new TimeoutError('t')).kind, 'failure');
  });

  it('status names and the error table', () => {
    assert.equal(grpcCodeOf('resource-exhausted'), Status.RESOURCE_EXHAUSTED);
    assert.equal(grpcCodeOf('UNAVAILABLE'), Status.UNAVAILABLE);
    assert.equal(grpcCodeName(Status.DEADLINE_EXCEEDED), 'deadline-exceeded');
    const s = statusForError(new RateLimitedError('slow down'));
    assert.equal(s.code, Status.RESOURCE_EXHAUSTED);
    assert.deepEqual(s.metadata.get('x-trellis-error'), ['TRELLIS_RATE_LIMITED']);
    assert.equal(statusForError(new TimeoutError('late')).code, Status.DEADLINE_EXCEEDED);
    assert.equal(statusForError(new Error('boom')).code, Status.INTERNAL);
  });

  it('targets: trellis://<mesh>/<service>, trellis:///<service>, trellis:<service>', () => {
    assert.deepEqual(parseTrellisTarget('trellis://m3/products'), { mesh: 'm3', service: 'products' });
    assert.deepEqual(parseTrellisTarget('trellis:///products'), { mesh: '', service: 'products' });
    assert.deepEqual(parseTrellisTarget('trellis:products'), { mesh: '', service: 'products' });
    assert.equal(parseTrellisTarget('dns:///products:50051'), undefined);
    assert.equal(parseTrellisTarget('127.0.0.1:50051'), undefined);
  });

  it('registry: one id per mesh; the empty id means the only mesh', () => {
    const r = new MeshRegistry();
    const fake = (): GrpcMeshSource => ({ clock: { now: () => 0, wall: () => 0 }, endpointSet: () => undefined, watch: () => () => undefined, client: { clock: { now: () => 0, wall: () => 0 }, unaryCore: () => undefined } });
    const a = fake();
    const b = fake();
    const ida = r.register(a);
    assert.equal(r.get(''), a);
    const idb = r.register(b);
    assert.notEqual(ida, idb);
    assert.equal(r.get(ida), a);
    assert.equal(r.get(''), undefined, 'ambiguous with two meshes');
    r.unregister(ida);
    assert.equal(r.get(ida), undefined);
    assert.equal(r.get(''), b);
  });

  it('caller identity: one SPIFFE URI SAN of our trust domain', () => {
    const cert = (san: string): PeerCertificate => ({ subjectaltname: san }) as PeerCertificate;
    assert.equal(serviceOfCertificate(cert('URI:spiffe://example.org/svc/checkout'), 'example.org'), 'checkout');
    assert.equal(serviceOfCertificate(cert('DNS:x, URI:spiffe://example.org/svc/checkout'), 'example.org'), 'checkout');
    assert.equal(serviceOfCertificate(cert('URI:spiffe://evil.org/svc/checkout'), 'example.org'), undefined);
    assert.equal(serviceOfCertificate(cert('URI:spiffe://example.org/svc/a, URI:spiffe://example.org/svc/b'), 'example.org'), undefined);
    assert.equal(serviceOfCertificate(undefined, 'example.org'), undefined);
  });

  it('a Mesh from meshClient (protocol: grpc) feeds watchMeshEvents', async () => {
    const mesh = await meshClient({
      service: 'checkout',
      config: `apiVersion: trellis/v1
kind: Service
metadata: { name: products }
spec:
  protocol: grpc
  endpoints: [ { address: 127.0.0.1:50051 } ]
  retries: { attempts: 3 }
`,
    });
    const seen: (string | undefined)[] = [];
    const stop = watchMeshEvents(mesh)((s) => seen.push(s));
    assert.deepEqual(mesh.config?.services.get('products')?.retries.on, ['connect-failure', 'unavailable']);
    await mesh.reload();
    stop();
    await mesh.reload();
    await mesh.close();
    assert.ok(seen.includes(undefined));
    assert.equal(seen.filter((s) => s === undefined).length, 1);
  });
});

/**
 * grpc-node's own interop cases (test/vendor/grpc-interop: their client's cases against their
 * server's handlers, the list of grpc-node's test/api/interop_sanity_test.js), run
 * (a) with a plain grpc-js client, the baseline;
 * (b) through the mesh as a user writes it: `meshClient` with a grpc Service, then
 *     `new TestService(mesh.grpc.target(...), mesh.grpc.credentials(), mesh.grpc.clientOptions())`
 *     (and with `clientOptions('testservice')`, the interceptor bound to its destination),
 *     with timeout, retries, breaker and outlier detection configured so every layer is in the path;
 * (c) the same over strict mTLS, the server bound with `mesh.grpc.listen` and the mesh's server
 *     interceptors;
 * (d) through the mesh to two endpoints of which one is dead (nothing listens): every case still
 *     passes, as over plain grpc-js, because calls that reached no server are retried elsewhere.
 * Each case is its own test, so a failure names the case.
 * (e) A destination whose only endpoint is dead: every new client's failure says why (grpc-js
 *     reports "Last error: null" to a channel that joins a failing subchannel).
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createRequire } from 'node:module';
import * as grpc from '@grpc/grpc-js';
import { meshClient } from 'trellis';
import type { Mesh } from 'trellis';
import { makeIdentities } from '../helpers/identities.js';
import type { Identities } from '../helpers/identities.js';
import { sampleSum } from '../helpers/prometheus.js';
import { deadAddress, quietLogger } from '../helpers/servers.js';

interface InteropCase {
  run(client: grpc.Client, done: () => void): void;
  Client: grpc.ServiceClientConstructor;
}

const require = createRequire(import.meta.url);
const interopClient = require('../vendor/grpc-interop/interop_client.js') as { test_cases: Record<string, InteropCase> };
const interopServer = require('../vendor/grpc-interop/interop_server.js') as {
  testService: grpc.ServiceDefinition;
  testServiceImplementation: grpc.UntypedServiceImplementation;
};

/** grpc-node's test/api/interop_sanity_test.js list. */
const CASES = [
  'empty_unary',
  'large_unary',
  'client_streaming',
  'server_streaming',
  'ping_pong',
  'empty_stream',
  'cancel_after_begin',
  'cancel_after_first_response',
  'timeout_on_sleeping_server',
  'custom_metadata',
  'status_code_and_message',
  'special_status_message',
  'unimplemented_service',
  'unimplemented_method',
] as const;

const CASE_TIMEOUT_MS = 15_000;

/**
 * Runs one case with a client from `makeClient`. The cases assert inside grpc-js callbacks, so a
 * failed assertion is an uncaught exception: it is caught here and fails the case.
 */
function runCase(name: string, makeClient: (Client: grpc.ServiceClientConstructor) => grpc.Client): Promise<void> {
  const testCase = interopClient.test_cases[name];
  assert.ok(testCase, `case ${name} is in the vendored client`);
  const client = makeClient(testCase.Client);
  return new Promise<void>((resolve, reject) => {
    const onUncaught = (err: Error): void => reject(err);
    process.once('uncaughtException', onUncaught);
    const finish = (err?: Error): void => {
      process.off('uncaughtException', onUncaught);
      client.close();
      if (err === undefined) resolve();
      else reject(err);
    };
    try {
      testCase.run(client, () => setImmediate(finish));
    } catch (err) {
      finish(err as Error);
    }
  });
}

async function startInteropServer(opts: { interceptors?: grpc.ServerInterceptor[] } = {}): Promise<grpc.Server> {
  const server = new grpc.Server({ interceptors: opts.interceptors ?? [] });
  server.addService(interopServer.testService, interopServer.testServiceImplementation);
  return server;
}

function bind(server: grpc.Server): Promise<string> {
  return new Promise((resolve, reject) =>
    server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (err, port) => (err ? reject(err) : resolve(`127.0.0.1:${port}`))),
  );
}


const meshDoc = (mtls: string): string => `apiVersion: trellis/v1
kind: Mesh
metadata: { name: default }
spec: { trustDomain: example.org, mtls: ${mtls} }
---
`;

/**
 * The interop Service with every layer on: a route timeout, retries, a breaker and outlier
 * detection. Thresholds leave room for the cases' own UNKNOWN and DEADLINE_EXCEEDED answers.
 */
const testServiceDoc = (endpoints: readonly string[], outlierFailures = 5): string => `apiVersion: trellis/v1
kind: Service
metadata: { name: testservice }
spec:
  protocol: grpc
  endpoints:
${endpoints.map((a) => `    - { address: ${a} }`).join('\n')}
  loadBalancer: round-robin
  timeout: 10s
  retries: { attempts: 3, on: [unavailable], backoff: { base: 1ms, max: 5ms } }
  circuitBreaker: { errorThresholdPercent: 50, volumeThreshold: 100, resetTimeout: 1s }
  outlierDetection: { consecutiveFailures: ${outlierFailures}, ejectionTime: 1s }
`;

/** Every case with a client built as a user builds one; `bound`: `clientOptions('testservice')`. */
function meshCases(label: string, mesh: () => Mesh, bound = false): void {
  for (const name of CASES) {
    it(`${label}: ${name}`, { timeout: CASE_TIMEOUT_MS }, () => {
      const m = mesh();
      const options = bound ? m.grpc.clientOptions('testservice') : m.grpc.clientOptions();
      return runCase(name, (Client) => new Client(m.grpc.target('testservice'), m.grpc.credentials(), options));
    });
  }
}

describe('grpc-node interop cases', () => {
  const servers: grpc.Server[] = [];
  const meshes: Mesh[] = [];
  const listeners: { close(): Promise<void> }[] = [];
  let ids: Identities;
  let address = '';

  before(async () => {
    ids = await makeIdentities();
    const server = await startInteropServer();
    servers.push(server);
    address = await bind(server);
  });
  after(async () => {
    for (const l of listeners) await l.close();
    for (const m of meshes) await m.close();
    for (const s of servers) s.forceShutdown();
    ids.close();
  });

  describe('(a) plain grpc-js', () => {
    for (const name of CASES) {
      it(`plain: ${name}`, { timeout: CASE_TIMEOUT_MS }, () => runCase(name, (Client) => new Client(address, grpc.credentials.createInsecure())));
    }
  });

  describe('(b) through the mesh', () => {
    let mesh: Mesh | undefined;
    before(async () => {
      mesh = await meshClient({ service: 'interop-client', config: meshDoc('off') + testServiceDoc([address]), logger: quietLogger() });
      meshes.push(mesh);
    });
    meshCases('mesh', () => mesh as Mesh);
    // The interceptor bound to its destination is another code path (no per-call target lookup).
    meshCases('mesh, bound options', () => mesh as Mesh, true);
    it('mesh: the calls went through the mesh', async () => {
      const text = await (mesh as Mesh).metricsRegistry.metrics();
      assert.ok(sampleSum(text, 'trellis_client_requests_total', { service: 'testservice' }) >= 2 * CASES.length, text);
    });
  });

  describe('(c) through the mesh over strict mTLS (mesh.grpc.listen, server interceptors)', () => {
    let client: Mesh | undefined;
    let serverMesh: Mesh | undefined;
    before(async () => {
      serverMesh = await meshClient({ service: 'testservice', config: meshDoc('strict') + testServiceDoc(['127.0.0.1:1']), identity: ids.identityFor('testservice'), logger: quietLogger() });
      meshes.push(serverMesh);
      const server = await startInteropServer({ interceptors: serverMesh.grpc.serverInterceptors() });
      servers.push(server);
      const listener = await serverMesh.grpc.listen(server);
      listeners.push(listener);
      client = await meshClient({ service: 'interop-client', config: meshDoc('strict') + testServiceDoc([listener.address]), identity: ids.identityFor('interop-client'), logger: quietLogger() });
      meshes.push(client);
    });
    meshCases('mtls', () => client as Mesh);
    it('mtls: the server saw the verified caller', async () => {
      const text = await (serverMesh as Mesh).metricsRegistry.metrics();
      assert.ok(sampleSum(text, 'trellis_server_requests_total', { caller: 'interop-client', route: '/grpc.testing.TestService/EmptyCall' }) >= 1, text);
      assert.equal(sampleSum(text, 'trellis_server_requests_total', { caller: 'unknown' }), 0);
    });
  });

  describe('(d) through the mesh, one of two endpoints dead', () => {
    let mesh: Mesh | undefined;
    let dead = '';
    before(async () => {
      dead = await deadAddress();
      // Outlier detection would eject the dead endpoint after a few calls; a high threshold
      // keeps it in the rotation so every case meets it.
      mesh = await meshClient({ service: 'interop-client', config: meshDoc('off') + testServiceDoc([dead, address], 1000), logger: quietLogger() });
      meshes.push(mesh);
    });
    // The baseline: plain grpc-js round-robin over the same pair passes every case.
    for (const name of CASES) {
      it(`plain, dead endpoint: ${name}`, { timeout: CASE_TIMEOUT_MS }, () =>
        runCase(name, (Client) => new Client(`ipv4:${dead},${address}`, grpc.credentials.createInsecure(), { 'grpc.service_config': JSON.stringify({ loadBalancingConfig: [{ round_robin: {} }] }) })),
      );
    }
    meshCases('dead endpoint', () => mesh as Mesh);
    it('dead endpoint: calls met the dead endpoint and were retried', async () => {
      const text = await (mesh as Mesh).metricsRegistry.metrics();
      // Round-robin sends about half the calls' first attempts to the dead endpoint.
      assert.ok(sampleSum(text, 'trellis_client_retries_total', { service: 'testservice', reason: 'connect-failure' }) >= 3, text);
    });
  });

  describe('(e) every endpoint dead', () => {
    it('each new client\'s failure names the connection error, not "null"', { timeout: CASE_TIMEOUT_MS }, async () => {
      const dead = await deadAddress();
      const mesh = await meshClient({ service: 'interop-client', config: meshDoc('off') + testServiceDoc([dead]), logger: quietLogger() });
      meshes.push(mesh);
      const Client = interopClient.test_cases['empty_unary']?.Client as grpc.ServiceClientConstructor;
      const clients: grpc.Client[] = [];
      try {
        for (let i = 0; i < 3; i++) {
          // One channel per client, all kept open: later ones share grpc-js's failing subchannel.
          const client = new Client(mesh.grpc.target('testservice'), mesh.grpc.credentials(), mesh.grpc.clientOptions());
          clients.push(client);
          const err = await new Promise<grpc.ServiceError | null>((resolve) => (client as unknown as { emptyCall(r: object, cb: (e: grpc.ServiceError | null) => void): void }).emptyCall({}, resolve));
          assert.equal(err?.code, grpc.status.UNAVAILABLE, `client ${i}`);
          assert.match(err?.details ?? '', new RegExp(`no connection to ${dead} of testservice: connect ECONNREFUSED`), `client ${i}`);
        }
      } finally {
        for (const c of clients) c.close();
      }
    });
  });
});

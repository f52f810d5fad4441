/**
 * Live certificate rotation (matrix row B1): after `rotated`, new connections get the new
 * certificate, connections opened before roll over after their next response, no request fails,
 * and the TLS 1.3 floor survives `setSecureContext`. Also the maximum connection age, on an
 * injected clock, and a trust-bundle change (a second CA added).
 */
import { describe, it, before } from 'node:test';
import assert from 'node:assert/strict';
import https from 'node:https';
import { ManualClock } from '../../src/core/clock.js';
import { makeCa, materialFor, serialOf, startStack, tlsRequest, TestIdentity } from './helpers.js';
import type { Leaf, TestCa } from './helpers.js';

describe('certificate rotation', () => {
  let ca: TestCa;
  let a: Leaf;

  before(async () => {
    ca = await makeCa();
    a = await ca.leaf('a');
  });

  it('new connections get the new certificate; an open one rolls after its next response', async () => {
    const first = await materialFor(ca, 'b');
    const identity = new TestIdentity(first);
    const stack = await startStack({ mode: 'strict', identity });
    const agent = new https.Agent({ keepAlive: true, maxSockets: 1, ca: ca.cert, cert: a.cert, key: a.key, checkServerIdentity: () => undefined });
    try {
      const r1 = await tlsRequest({ port: stack.port, agent });
      assert.equal(r1.serverSerial, serialOf(first.cert));
      assert.equal(r1.headers?.connection, 'keep-alive');

      const second = await materialFor(ca, 'b');
      identity.rotate(second);

      const fresh = await tlsRequest({ port: stack.port, ca: ca.cert, cert: a.cert, key: a.key });
      assert.equal(fresh.status, 200);
      assert.equal(fresh.serverSerial, serialOf(second.cert), 'a new connection presents the new certificate');

      // The kept-alive connection still has the old certificate: it answers once more, asking to close.
      const r2 = await tlsRequest({ port: stack.port, agent });
      assert.equal(r2.status, 200);
      assert.equal(r2.serverSerial, serialOf(first.cert));
      assert.equal(r2.headers?.connection, 'close');
      const r3 = await tlsRequest({ port: stack.port, agent });
      assert.equal(r3.serverSerial, serialOf(second.cert));
      assert.equal(r3.headers?.connection, 'keep-alive');

      // setSecureContext keeps the mesh floor: TLS 1.2 is still refused.
      const old = await tlsRequest({ port: stack.port, ca: ca.cert, cert: a.cert, key: a.key, maxVersion: 'TLSv1.2' });
      assert.equal(old.status, undefined);
    } finally {
      agent.destroy();
      await stack.close();
    }
  });

  for (const mode of ['strict', 'permissive'] as const) {
    it(`${mode}: no request fails while the certificate rotates under load`, async () => {
      const identity = new TestIdentity(await materialFor(ca, 'b'));
      const stack = await startStack({ mode, identity });
      const agents = Array.from({ length: 4 }, () => new https.Agent({ keepAlive: true, maxSockets: 2, ca: ca.cert, cert: a.cert, key: a.key, checkServerIdentity: () => undefined }));
      const serials = new Set<string>();
      const failures: string[] = [];
      let done = 0;
      let stop = false;
      try {
        // Paced by requests served, not by the clock: on a loaded machine a fixed 400 ms window
        // held too few requests to mean anything. 12 requests between rotations, 12 after.
        const served = async (n: number): Promise<void> => {
          const target = done + n;
          while (done < target && failures.length === 0) await new Promise((r) => setTimeout(r, 10));
        };
        const rotations = (async () => {
          for (let i = 0; i < 5; i++) {
            await served(12);
            identity.rotate(await materialFor(ca, 'b'));
          }
          await served(12);
          stop = true;
        })();
        const workers = agents.flatMap((agent) =>
          [0, 1].map(async () => {
            while (!stop) {
              const r = await tlsRequest({ port: stack.port, agent, method: 'POST', headers: { 'content-length': '0' } });
              if (r.status !== 200) failures.push(String(r.error ?? r.status));
              else {
                done++;
                if (r.serverSerial !== undefined) serials.add(r.serverSerial);
              }
            }
          }),
        );
        await Promise.all([rotations, ...workers]);
        assert.deepEqual(failures, []);
        assert.ok(done > 50, `${done} requests`);
        assert.ok(serials.size >= 4, `saw ${serials.size} server certificates`);
      } finally {
        for (const ag of agents) ag.destroy();
        await stack.close();
      }
    });
  }

  it('a trust bundle with a second CA admits its clients after rotation, not before', async () => {
    const newCa = await makeCa('New Anchor');
    const client = await newCa.leaf('a');
    const m = await materialFor(ca, 'b');
    const identity = new TestIdentity(m);
    const stack = await startStack({ mode: 'strict', identity });
    try {
      const before = await tlsRequest({ port: stack.port, ca: ca.cert, cert: client.cert, key: client.key });
      assert.equal(before.status, undefined);
      identity.rotate({ ...(await materialFor(ca, 'b')), ca: ca.cert + newCa.cert });
      const after = await tlsRequest({ port: stack.port, ca: ca.cert, cert: client.cert, key: client.key });
      assert.equal(after.status, 200, String(after.error));
    } finally {
      await stack.close();
    }
  });

  it('a connection older than maxConnectionAgeMs closes after its next response', async () => {
    const clock = new ManualClock();
    const identity = new TestIdentity(await materialFor(ca, 'b'));
    const stack = await startStack({ mode: 'strict', identity, clock, maxConnectionAgeMs: 60_000 });
    const agent = new https.Agent({ keepAlive: true, maxSockets: 1, ca: ca.cert, cert: a.cert, key: a.key, checkServerIdentity: () => undefined });
    try {
      assert.equal((await tlsRequest({ port: stack.port, agent })).headers?.connection, 'keep-alive');
      clock.advance(59_000);
      assert.equal((await tlsRequest({ port: stack.port, agent })).headers?.connection, 'keep-alive');
      clock.advance(1_000);
      assert.equal((await tlsRequest({ port: stack.port, agent })).headers?.connection, 'close');
      assert.equal((await tlsRequest({ port: stack.port, agent })).headers?.connection, 'keep-alive', 'the new connection is young');
    } finally {
      agent.destroy();
      await stack.close();
    }
  });
});

/**
 * Issue 13 item 1: connections that never finish their handshake cannot pile up. In every mTLS
 * mode, 200 hostile sockets against `mesh.serve` — one byte 0x16 then silence; a partial
 * ClientHello then an abort; nothing at all; a ClientHello record dripped a byte at a time —
 * and 50 ordinary TLS clients that give up mid-handshake — all end within the (short,
 * configured) handshake timeout, counted from the server side
 * (`server.getConnections`), while a legitimate caller is served, and `mesh.close()` resolves,
 * also while such sockets are still held open by the attacker.
 *
 * Waits are liveness bounds (far above the configured timeouts), never timing assertions: the
 * test fails only when sockets are never closed or close() never resolves.
 */
import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import https from 'node:https';
import net from 'node:net';
import tls from 'node:tls';
import type http from 'node:http';
import { setTimeout as sleep } from 'node:timers/promises';
import { meshClient } from 'trellis';
import type { Mesh, MeshServer } from 'trellis';
import { quietLogger } from '../helpers/servers.js';
import { connectionCount, eventually as eventuallyWithin, listenerConfig, makeCa, materialFor, plainRequest, tlsRequest, TestIdentity } from './helpers.js';
import type { Leaf, TestCa } from './helpers.js';

type Mode = 'strict' | 'permissive' | 'off';
const HOSTILE = 200;
/** Liveness bound: how long a condition may take before the test calls it never. */
const NEVER_MS = 15_000;

const config = listenerConfig;
const connections = connectionCount;
const eventually = (cond: () => Promise<boolean> | boolean): Promise<boolean> => eventuallyWithin(cond, NEVER_MS);

/** A TLS record header announcing a 16 KiB ClientHello, and the start of that ClientHello. */
const CLIENT_HELLO_START = Buffer.from([0x16, 0x03, 0x01, 0x40, 0x00, 0x01, 0x00, 0x3f, 0xfc, 0x03, 0x03]);

/** Opens HOSTILE sockets of four kinds; resolves once the server accepted every one. */
async function openHostile(port: number, server: http.Server): Promise<net.Socket[]> {
  let accepted = 0;
  const onConnection = (): void => {
    accepted++;
  };
  server.on('connection', onConnection);
  const sockets: net.Socket[] = [];
  for (let i = 0; i < HOSTILE; i++) {
    const sock = net.connect(port, '127.0.0.1');
    sock.on('error', () => undefined);
    sock.resume();
    switch (i % 4) {
      case 0: // one byte, then silence
        sock.on('connect', () => sock.write(Buffer.from([0x16])));
        break;
      case 1: // a partial ClientHello, then an abort
        sock.on('connect', () => sock.write(CLIENT_HELLO_START, () => setImmediate(() => sock.destroy())));
        break;
      case 2: // nothing at all
        break;
      default: {
        // a ClientHello that never completes, one byte at a time (re-arms idle timers)
        sock.on('connect', () => sock.write(CLIENT_HELLO_START));
        const drip = setInterval(() => sock.write(Buffer.from([0x00])), 50);
        sock.on('close', () => clearInterval(drip));
      }
    }
    sockets.push(sock);
  }
  const all = await eventually(() => accepted >= HOSTILE);
  server.off('connection', onConnection);
  assert.ok(all, `the server accepted ${accepted} of ${HOSTILE} hostile sockets`);
  return sockets;
}

describe('hostile connections against mesh.serve (issue 13 item 1)', () => {
  let ca: TestCa;
  let caller: Leaf;
  const meshes: Mesh[] = [];
  const sockets: net.Socket[] = [];

  after(async () => {
    for (const s of sockets) s.destroy();
    await Promise.all(meshes.map((m) => m.close({ drainTimeoutMs: 0 })));
  });

  async function serveIn(mode: Mode, handshakeTimeoutMs: number): Promise<{ mesh: Mesh; server: MeshServer }> {
    ca ??= await makeCa();
    caller ??= await ca.leaf('a');
    const identity = mode === 'off' ? undefined : new TestIdentity(await materialFor(ca, 'b'));
    const mesh = await meshClient({ service: 'b', config: config(mode), ...(identity !== undefined ? { identity } : {}), logger: quietLogger() });
    meshes.push(mesh);
    // Answers the client's port: which connection a request came on.
    const server = await mesh.serve((req, res) => res.end(String(req.socket.remotePort)), {
      timeouts: { handshakeTimeoutMs, headersTimeoutMs: 500, requestTimeoutMs: 1_000, checkIntervalMs: 100 },
    });
    return { mesh, server };
  }

  function legit(mode: Mode, port: number): ReturnType<typeof tlsRequest> {
    return mode === 'off' ? plainRequest({ port }) : tlsRequest({ port, ca: ca.cert, cert: caller.cert, key: caller.key });
  }

  for (const mode of ['strict', 'permissive', 'off'] as const) {
    it(`${mode}: ${HOSTILE} hostile sockets all end within the handshake timeout; a caller is served; close() resolves`, async () => {
      const { mesh, server } = await serveIn(mode, 500);
      const hostile = await openHostile(server.port, server.server);
      sockets.push(...hostile);
      // Ordinary TLS clients that give up mid-handshake, at various points.
      for (let i = 0; i < 50; i++) {
        const c = tls.connect({ host: '127.0.0.1', port: server.port, ca: ca.cert, cert: caller.cert, key: caller.key, checkServerIdentity: () => undefined });
        c.on('error', () => undefined);
        if (i % 2 === 0) c.once('connect', () => setImmediate(() => c.destroy()));
        else setTimeout(() => c.destroy(), i % 7);
        sockets.push(c);
      }
      const r = await legit(mode, server.port);
      assert.equal(r.status, 200, String(r.error));
      // The attacker keeps every socket it can open; the server must end them all by itself.
      const ended = await eventually(async () => (await connections(server.server)) === 0);
      assert.ok(ended, `${await connections(server.server)} of ${HOSTILE} hostile sockets still open on the server`);
      const again = await legit(mode, server.port);
      assert.equal(again.status, 200, String(again.error));
      const closed = await Promise.race([mesh.close().then(() => true), sleep(NEVER_MS).then(() => false)]);
      assert.ok(closed, 'mesh.close() did not resolve');
      for (const s of hostile) s.destroy();
    });
  }

  for (const mode of ['strict', 'permissive'] as const) {
    it(`${mode}: a connection handed to HTTP is not ended by the handshake deadline`, async () => {
      const { server } = await serveIn(mode, 300);
      const agent = new https.Agent({ keepAlive: true, ca: ca.cert, cert: caller.cert, key: caller.key, checkServerIdentity: () => undefined });
      try {
        const ports: string[] = [];
        for (let i = 0; i < 2; i++) {
          const r = await tlsRequest({ port: server.port, agent });
          assert.equal(r.status, 200, String(r.error));
          ports.push(String(r.body));
          // Well past the 300 ms deadline (however slow the machine, never less).
          if (i === 0) await sleep(1_000);
        }
        assert.equal(ports[0], ports[1], 'the keep-alive connection was cut after its handshake');
      } finally {
        agent.destroy();
      }
    });

    it(`${mode}: close() ends connections still in their handshake and resolves`, async () => {
      // A handshake timeout far beyond the test: only close() can end these sockets.
      const { mesh, server } = await serveIn(mode, 600_000);
      const hostile = await openHostile(server.port, server.server);
      sockets.push(...hostile);
      const closed = await Promise.race([mesh.close({ drainTimeoutMs: 600_000 }).then(() => true), sleep(NEVER_MS).then(() => false)]);
      assert.ok(closed, `mesh.close() did not resolve; ${await connections(server.server)} sockets still open on the server`);
      assert.equal(await connections(server.server), 0);
      for (const s of hostile) s.destroy();
    });
  }
});

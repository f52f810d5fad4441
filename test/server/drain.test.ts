/**
 * Issue 13 item 10d: a draining `mesh.serve` server stops offering keep-alive. Requests in flight
 * when close() begins are answered with `Connection: close`; a response whose headers were
 * already out (it promised keep-alive) has its connection closed as soon as it ends; idle
 * keep-alive connections are closed; so close() resolves once the last request ends, not a
 * keep-alive timeout later.
 *
 * The keep-alive timeout and drain deadline are 10 minutes: close() resolving at all within the
 * liveness bound proves it did not wait for either. Judged by what the client saw (the
 * `connection` header, its sockets closed by the server) and the server's connection count.
 */
import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import type { Socket } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { meshClient } from 'trellis';
import type { Mesh } from 'trellis';
import { quietLogger } from '../helpers/servers.js';
import { listenerConfig } from './helpers.js';

const NEVER_MS = 15_000;
const LONG_MS = 600_000;

const config = listenerConfig('off');

interface Seen {
  status: number | undefined;
  connection: string | undefined;
  body: string;
  socket: Socket;
}

function get(port: number, path: string, agent: http.Agent): Promise<Seen> {
  return new Promise((resolve, reject) => {
    const req = http.get({ host: '127.0.0.1', port, path, agent }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (body += c));
      res.on('end', () => resolve({ status: res.statusCode, connection: res.headers.connection, body, socket: req.socket as Socket }));
    });
    req.on('error', reject);
  });
}

function closedByServer(socket: Socket): Promise<boolean> {
  if (socket.destroyed) return Promise.resolve(true);
  return Promise.race([new Promise<boolean>((resolve) => socket.once('close', () => resolve(true))), sleep(NEVER_MS).then(() => false)]);
}

describe('draining mesh.serve (issue 13 item 10d)', () => {
  const meshes: Mesh[] = [];
  after(async () => {
    await Promise.all(meshes.map((m) => m.close({ drainTimeoutMs: 0 })));
  });

  it('answers in-flight requests with Connection: close, closes idle keep-alive, and close() resolves when the work ends', async () => {
    const mesh = await meshClient({ service: 'b', config, logger: quietLogger() });
    meshes.push(mesh);
    const held: (() => void)[] = [];
    let arrived = 0;
    const server = await mesh.serve(
      (req, res) => {
        if (req.url === '/') {
          res.end('quick');
          return;
        }
        arrived++;
        // '/early' sends its headers (keep-alive) before close() begins; '/late' sends nothing yet.
        if (req.url === '/early') res.writeHead(200, { 'content-type': 'text/plain' }).flushHeaders();
        held.push(() => res.end(req.url));
      },
      { drainTimeoutMs: LONG_MS, timeouts: { keepAliveTimeoutMs: LONG_MS } },
    );
    const idleAgent = new http.Agent({ keepAlive: true });
    const busyAgent = new http.Agent({ keepAlive: true });
    try {
      const idle = await get(server.port, '/', idleAgent);
      assert.equal(idle.connection, 'keep-alive');
      const early = get(server.port, '/early', busyAgent);
      const late = get(server.port, '/late', busyAgent);
      while (arrived < 2) await sleep(10);

      const closing = mesh.close({ drainTimeoutMs: LONG_MS });
      let closed = false;
      void closing.then(() => (closed = true));
      assert.ok(await closedByServer(idle.socket), 'the idle keep-alive connection was not closed');
      assert.equal(closed, false, 'close() resolved with requests in flight');
      for (const end of held) end();

      const [e, l] = await Promise.all([early, late]);
      assert.equal(l.status, 200);
      assert.equal(l.body, '/late');
      assert.equal(l.connection, 'close');
      assert.equal(e.body, '/early');
      assert.equal(e.connection, 'keep-alive', 'headers sent before close() began');
      assert.ok(await closedByServer(e.socket), 'the connection that was promised keep-alive stayed open');
      assert.ok(await closedByServer(l.socket));
      const done = await Promise.race([closing.then(() => true), sleep(NEVER_MS).then(() => false)]);
      assert.ok(done, 'close() did not resolve after the last request ended');
      const left = await new Promise<number>((resolve) => server.server.getConnections((_e, n) => resolve(n)));
      assert.equal(left, 0);
    } finally {
      idleAgent.destroy();
      busyAgent.destroy();
    }
  });
});

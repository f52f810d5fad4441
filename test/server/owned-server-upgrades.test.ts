/**
 * Upgrades on servers the application owns pass the inbound side, as mesh.serve's do: a `ws`
 * WebSocketServer attached to an Express app's HTTPS server (given to `mesh.advertise()`, with
 * no control plane) and to a Fastify app's server (`mesh.fastify()` registered). Real mTLS on
 * 127.0.0.1 with identities from one authority: a caller the rules refuse gets 403 before the
 * ws 'connection' handler runs; an allowed one connects and the handler sees its verified
 * identity on `req.trellis.peer`.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import express from 'express';
import Fastify from 'fastify';
import type { FastifyInstance } from 'fastify';
import { WebSocketServer } from 'ws';
import type WebSocket from 'ws';
import { meshClient, isTrellisError } from 'trellis';
import type { Mesh } from 'trellis';
import { makeIdentities } from '../helpers/identities.js';
import type { Identities } from '../helpers/identities.js';
import { quietLogger } from '../helpers/servers.js';
import { strictChatConfig } from '../helpers/chat-config.js';


function echoes(wss: WebSocketServer, seen: string[]): void {
  wss.on('connection', (ws, req) => {
    const caller = req.trellis?.peer.service ?? '?';
    seen.push(caller);
    ws.on('message', (m: Buffer) => ws.send(`${caller}:${m.toString()}`));
  });
}

function reply(ws: WebSocket, text: string): Promise<string> {
  return new Promise((resolve, reject) => {
    ws.once('message', (m: Buffer) => resolve(m.toString()));
    ws.once('error', reject);
    ws.send(text);
  });
}

describe('upgrades on application-owned servers (Express, Fastify) pass authorization', () => {
  let ids: Identities;
  const meshes: Mesh[] = [];
  const wsServers: WebSocketServer[] = [];
  let expressServer: https.Server;
  let fastify: FastifyInstance;
  const seenExpress: string[] = [];
  const seenFastify: string[] = [];
  let expressPort: number;
  let fastifyPort: number;

  before(async () => {
    ids = await makeIdentities();
    const chatId = ids.identityFor('chat');
    const m = await chatId.ready();
    const tls = { ca: m.ca, cert: m.cert, key: m.key, requestCert: true, rejectUnauthorized: true, minVersion: 'TLSv1.3' as const };

    // Express: the app owns its server; mesh.advertise() guards its upgrades (no control plane here).
    const expressMesh = await meshClient({ service: 'chat', config: strictChatConfig(undefined), identity: chatId, logger: quietLogger() });
    meshes.push(expressMesh);
    const app = express();
    app.use(expressMesh.express());
    app.get('/health', (_req, res) => res.send('ok'));
    expressServer = https.createServer(tls, app);
    await new Promise<void>((resolve) => expressServer.listen(0, '127.0.0.1', resolve));
    expressMesh.advertise(expressServer);
    const wssE = new WebSocketServer({ server: expressServer });
    wsServers.push(wssE);
    echoes(wssE, seenExpress);
    expressPort = (expressServer.address() as AddressInfo).port;

    // Fastify: registering mesh.fastify() guards fastify.server.
    const fastifyMesh = await meshClient({ service: 'chat', config: strictChatConfig(undefined), identity: ids.identityFor('chat'), logger: quietLogger() });
    meshes.push(fastifyMesh);
    fastify = Fastify({ https: tls });
    await fastify.register(fastifyMesh.fastify());
    fastify.get('/health', async () => 'ok');
    const wssF = new WebSocketServer({ server: fastify.server });
    wsServers.push(wssF);
    echoes(wssF, seenFastify);
    await fastify.listen({ port: 0, host: '127.0.0.1' });
    fastifyPort = (fastify.server.address() as AddressInfo).port;
  });

  after(async () => {
    for (const w of wsServers) {
      for (const c of w.clients) c.terminate();
      w.close();
    }
    expressServer.closeAllConnections();
    expressServer.close();
    await fastify.close();
    await Promise.all(meshes.map((m) => m.close({ drainTimeoutMs: 200 })));
    ids.close();
  });

  async function caller(service: string, port: number): Promise<Mesh> {
    const m = await meshClient({ service, config: strictChatConfig(port), identity: ids.identityFor(service), logger: quietLogger() });
    meshes.push(m);
    return m;
  }

  for (const kind of ['Express', 'Fastify'] as const) {
    it(`${kind}: a refused caller gets 403 before the ws server sees it; an allowed one connects with its identity`, async () => {
      const port = kind === 'Express' ? expressPort : fastifyPort;
      const seen = kind === 'Express' ? seenExpress : seenFastify;
      const a = await caller('a', port);
      await assert.rejects(a.websocket('chat', '/rooms/1'), (err: unknown) => {
        assert.ok(isTrellisError(err, 'TRELLIS_FORBIDDEN'), String(err));
        assert.equal((err as { statusCode?: number }).statusCode, 403);
        return true;
      });
      // An allowed caller on a path outside its rule: refused too.
      const c = await caller('c', port);
      await assert.rejects(c.websocket('chat', '/admin'), (err: unknown) => isTrellisError(err, 'TRELLIS_FORBIDDEN'));
      assert.deepEqual(seen, []);
      const ws = await c.websocket('chat', '/rooms/1');
      assert.equal(await reply(ws, 'hi'), 'c:hi');
      assert.deepEqual(seen, ['c']);
      ws.close();
    });
  }
});

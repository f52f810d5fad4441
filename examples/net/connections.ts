/**
 * Every connection-level edge of the mesh in one script: a TCP server (mesh.listen) and a raw
 * connection to it (mesh.connect), WebSockets through mesh.serve (mesh.websocket, and undici's
 * WebSocket with mesh.dispatcher), and axios through mesh.agent. One instance plays both sides
 * to stay self-contained; in a real deployment each side is its own service.
 * Run it: npm run build && node --import tsx examples/net/connections.ts
 */
import axios from 'axios';
import { WebSocket } from 'undici';
import { WebSocketServer } from 'ws';
import { meshClient } from 'trellis';

const mesh = await meshClient({ service: 'shop', config: `
apiVersion: trellis/v1
kind: Mesh
metadata: { name: default }
spec: { mtls: off }
` });

// Raw TCP in: the caller is on socket.trellis.peer (`unknown` without mTLS).
const tcp = await mesh.listen((socket) => {
  socket.on('data', (d) => socket.end(`echo to ${socket.trellis.peer.service}: ${String(d)}`));
});
// HTTP and WebSockets in: a ws server on mesh.serve's server passes authorization first.
const web = await mesh.serve((req, res) => res.end(JSON.stringify({ path: req.url })));
new WebSocketServer({ server: web.server }).on('connection', (ws) => ws.on('message', (m) => ws.send(`ws: ${String(m)}`)));

// The destinations, as a config file would declare them.
await mesh.reload(`
apiVersion: trellis/v1
kind: Mesh
metadata: { name: default }
spec: { mtls: off }
---
apiVersion: trellis/v1
kind: Service
metadata: { name: cache }
spec: { protocol: tcp, endpoints: ["127.0.0.1:${tcp.port}"], connection: { connectTimeout: 500ms } }
---
apiVersion: trellis/v1
kind: Service
metadata: { name: web }
spec: { endpoints: ["127.0.0.1:${web.port}"], timeout: 2s }
`);

// Raw TCP out: a net.Socket (a TLSSocket under mTLS), balanced and retried on connect failure.
const socket = await mesh.connect('cache');
socket.write('PING');
for await (const chunk of socket) console.log(String(chunk));

// A ws WebSocket, balanced and authorized like any request.
const ws = await mesh.websocket('web', '/rooms/1');
ws.send('hello');
console.log(String(await new Promise((resolve) => ws.once('message', resolve))));
ws.close();

// undici's own WebSocket, with the mesh as its dispatcher: the same path through the mesh.
const uws = new WebSocket('ws://web/rooms/2', { dispatcher: mesh.dispatcher });
await new Promise((resolve) => uws.addEventListener('open', resolve, { once: true }));
uws.send('hi');
console.log(String(await new Promise((resolve) => uws.addEventListener('message', (e) => resolve(e.data), { once: true }))));
uws.close();

// node:http clients: axios with mesh.agent.
const res = await axios.get('http://web/list', { httpAgent: mesh.agent });
console.log(res.status, JSON.stringify(res.data));

await mesh.close({ drainTimeoutMs: 1000 });

/**
 * examples/net/connections.ts runs as a user would run it and exits 0 by itself, having gone
 * through mesh.listen + mesh.connect, mesh.serve + mesh.websocket and undici's WebSocket with
 * mesh.dispatcher, and axios with mesh.agent.
 * docs/api.md quotes it verbatim (test/docs checks that).
 */
import { it } from 'node:test';
import assert from 'node:assert/strict';
import { runNode } from '../helpers/processes.js';

it('examples/net/connections.ts: TCP, WebSocket and axios through the mesh, then exits', async () => {
  const r = await runNode(['examples/net/connections.ts'], 30_000);
  assert.equal(r.code, 0, r.err);
  assert.match(r.out, /^echo to unknown: PING$/m);
  assert.match(r.out, /^ws: hello$/m);
  assert.match(r.out, /^ws: hi$/m);
  assert.match(r.out, /^200 \{"path":"\/list"\}$/m);
});

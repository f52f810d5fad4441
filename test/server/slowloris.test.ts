/**
 * Matrix row C4, short form: slowloris into `mesh.serve`. 100 sockets drip a request — half
 * their headers, half (after complete headers) their body — one byte every 100 ms, much
 * slower than the (short, configured) header and request timeouts allow. The server closes
 * every one of them by itself while the attacker keeps writing (its own connection count
 * reaches 0), and a legitimate caller is served meanwhile. In strict mode the drip comes after
 * a completed mTLS handshake.
 *
 * Waits are liveness bounds, never timing assertions: the test fails only if a slow socket is
 * never closed.
 */
import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import tls from 'node:tls';
import { meshClient } from 'trellis';
import type { Mesh } from 'trellis';
import { quietLogger } from '../helpers/servers.js';
import { connectionCount, eventually as eventuallyWithin, listenerConfig, makeCa, materialFor, plainRequest, tlsRequest, TestIdentity } from './helpers.js';
import type { Leaf, TestCa } from './helpers.js';

const SLOW = 100;
const NEVER_MS = 20_000;

const config = listenerConfig;
const connections = connectionCount;
const eventually = (cond: () => Promise<boolean> | boolean): Promise<boolean> => eventuallyWithin(cond, NEVER_MS);

describe('slowloris into mesh.serve (matrix row C4)', () => {
  let ca: TestCa;
  let caller: Leaf;
  const meshes: Mesh[] = [];
  const sockets: net.Socket[] = [];
  after(async () => {
    for (const s of sockets) s.destroy();
    await Promise.all(meshes.map((m) => m.close({ drainTimeoutMs: 0 })));
  });

  for (const mode of ['off', 'permissive', 'strict'] as const) {
    it(`${mode}: ${SLOW} dripping sockets are closed by the header and request timeouts; a caller is served`, async () => {
      ca ??= await makeCa();
      caller ??= await ca.leaf('a');
      const identity = mode === 'off' ? undefined : new TestIdentity(await materialFor(ca, 'b'));
      const mesh = await meshClient({ service: 'b', config: config(mode), ...(identity !== undefined ? { identity } : {}), logger: quietLogger() });
      meshes.push(mesh);
      let handled = 0;
      const server = await mesh.serve(
        (req, res) => {
          handled++;
          req.resume();
          req.on('end', () => res.end('ok'));
        },
        { timeouts: { headersTimeoutMs: 500, requestTimeoutMs: 1_000, checkIntervalMs: 100 } },
      );
      const port = server.port;
      let dripped = 0;
      const open = async (i: number): Promise<void> => {
        const sock: net.Socket =
          mode === 'strict'
            ? tls.connect({ host: '127.0.0.1', port, ca: ca.cert, cert: caller.cert, key: caller.key, checkServerIdentity: () => undefined })
            : net.connect(port, '127.0.0.1');
        sockets.push(sock);
        sock.on('error', () => undefined);
        sock.resume();
        await new Promise<void>((resolve) => {
          sock.once(mode === 'strict' ? 'secureConnect' : 'connect', () => resolve());
          sock.once('close', () => resolve());
        });
        // Half drip their headers; half send complete headers and drip the body.
        const text = i % 2 === 0 ? 'GET /slow HTTP/1.1\r\nHost: b\r\nX-Padding: ' + 'x'.repeat(200) + '\r\n\r\n' : 'x'.repeat(1000);
        if (i % 2 === 1) sock.write('POST /slow HTTP/1.1\r\nHost: b\r\nContent-Length: 1000\r\n\r\n');
        let at = 0;
        const drip = setInterval(() => {
          if (sock.destroyed || at >= text.length) return;
          sock.write(text[at++] as string);
          dripped++;
        }, 100);
        sock.on('close', () => clearInterval(drip));
      };
      await Promise.all(Array.from({ length: SLOW }, (_, i) => open(i)));
      assert.ok(await eventually(async () => (await connections(server.server)) >= SLOW || handled > 0), 'not all slow sockets connected');

      const r = mode === 'strict' ? await tlsRequest({ port, ca: ca.cert, cert: caller.cert, key: caller.key }) : await plainRequest({ port });
      assert.equal(r.status, 200, String(r.error));

      const closed = await eventually(async () => (await connections(server.server)) === 0);
      assert.ok(closed, `${await connections(server.server)} of ${SLOW} slow sockets still open on the server`);
      // The body drippers reached the handler (their headers were complete), none finished its body.
      assert.ok(dripped > 0);
    });
  }
});

/**
 * Child process for test/server/http2-goaway-window.test.ts (run with NODE_DEBUG=http2, which
 * node reads only at start-up): `mesh.serve` over h2c with one idle session from a raw
 * node:http2 client; the client sends eight requests and, in the same turn of the event loop,
 * the server starts draining. The server reads those requests after it decided to close the
 * session but before its GOAWAY is written: the window the graceful close must handle. Prints
 * `{ served, outcomes }` as one JSON line on stdout; the trace is on stderr.
 */
import http2 from 'node:http2';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { meshClient } from 'trellis';
import { quietLogger } from './servers.js';

const mesh = await meshClient({ service: 'b', config: `apiVersion: trellis/v1\nkind: Mesh\nmetadata: { name: default }\nspec: { mtls: off }\n`, logger: quietLogger() });
const served: string[] = [];
let ended = 0;
const server = await mesh.serve((req: IncomingMessage, res: ServerResponse) => {
  served.push(req.url ?? '');
  // Registered after the server's own listener: when it runs, the session counts no stream.
  res.once('close', () => ended++);
  res.end('ok');
});
const client = http2.connect(`http://127.0.0.1:${server.port}`);
client.on('error', () => undefined);
await new Promise<void>((resolve) => client.once('connect', () => resolve()));

function send(path: string): Promise<{ path: string; status: number | undefined; rstCode: number | undefined }> {
  return new Promise((resolve) => {
    const stream = client.request({ ':path': path });
    let status: number | undefined;
    stream.on('response', (h) => {
      status = Number(h[':status']);
    });
    stream.on('error', () => undefined);
    stream.resume();
    stream.on('close', () => resolve({ path, status, rstCode: stream.rstCode }));
    stream.end();
  });
}

await send('/warm');
// The client saw its answer end; the server's side of the stream closes a moment later.
while (ended < 1) await new Promise((resolve) => setTimeout(resolve, 1));
// The client writes the requests at once; the drain begins in the same turn of the event loop,
// so the server reads them (this turn's poll phase) before its GOAWAY is written (check phase).
const outcomes = Promise.all(Array.from({ length: 8 }, (_, i) => send(`/late/${i}`)));
server.server.close();
const result = { served, outcomes: await outcomes };
client.destroy();
await mesh.close({ drainTimeoutMs: 0 });
process.stdout.write(`${JSON.stringify(result)}\n`);

/**
 * The caller's sampling decision crosses a mesh service unchanged, judged by the `traceparent`
 * the downstream server received: a caller that sent flags `00` (not sampled) must not have its
 * trace forwarded as sampled (`01`), which would make every hop behind it record and export
 * spans the caller decided against. Checked with no SDK (propagate only: the context passes
 * through byte for byte) and with an SDK given to meshClient (a new span id, the flag kept).
 * Each unsampled case has a sampled twin, so the test tells the two flags apart.
 */
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { BasicTracerProvider, InMemorySpanExporter, SimpleSpanProcessor } from '@opentelemetry/sdk-trace-base';
import { meshClient } from 'trellis';
import type { Mesh, MeshServer } from 'trellis';
import { quietLogger, startServer } from '../helpers/servers.js';
import type { TestServer } from '../helpers/servers.js';

const TRACE = '4bf92f3577b34da6a3ce929d0e0e4736';
const PARENT = '00f067aa0ba902b7';

function config(stock: string): string {
  return `apiVersion: trellis/v1
kind: Service
metadata: { name: orders }
spec: {}
---
apiVersion: trellis/v1
kind: Service
metadata: { name: stock }
spec:
  endpoints: [ { address: ${stock} } ]
`;
}

describe('the sampled flag reaches the next hop as the caller sent it', () => {
  let stock: TestServer;
  const meshes: Mesh[] = [];
  const servers: MeshServer[] = [];
  const exporter = new InMemorySpanExporter();
  const provider = new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(exporter)] });
  let plainPort = 0;
  let sdkPort = 0;

  /** orders: a mesh service whose handler calls stock through the mesh, forwarding no header itself. */
  async function orders(extra: Parameters<typeof meshClient>[0]): Promise<number> {
    const mesh = await meshClient({ service: 'orders', config: config(stock.address), logger: quietLogger(), ...extra });
    meshes.push(mesh);
    const server = await mesh.serve(async (_req, res) => {
      const r = await mesh.http('stock').request({ path: '/level' });
      await r.body.dump();
      res.end('ok');
    });
    servers.push(server);
    return server.port;
  }

  before(async () => {
    stock = await startServer('stock');
    plainPort = await orders({});
    sdkPort = await orders({ tracerProvider: provider });
  });

  after(async () => {
    for (const m of meshes) await m.close();
    await stock.close();
    await provider.shutdown();
  });

  /** Calls orders with `traceparent` and returns the traceparent stock received. */
  async function downstreamTraceparent(port: number, traceparent: string): Promise<string> {
    const before = stock.hits;
    const res = await fetch(`http://127.0.0.1:${port}/order`, { headers: { traceparent } });
    assert.equal(res.status, 200, await res.text());
    assert.equal(stock.hits, before + 1);
    return stock.lastHeaders.traceparent as string;
  }

  it('no SDK: an unsampled context passes through unchanged, flags 00', async () => {
    assert.equal(await downstreamTraceparent(plainPort, `00-${TRACE}-${PARENT}-00`), `00-${TRACE}-${PARENT}-00`);
    assert.equal(await downstreamTraceparent(plainPort, `00-${TRACE}-${PARENT}-01`), `00-${TRACE}-${PARENT}-01`);
  });

  it('with an SDK: the next hop gets a new parent span id and flags 00; nothing is exported', async () => {
    exporter.reset();
    const unsampled = await downstreamTraceparent(sdkPort, `00-${TRACE}-${PARENT}-00`);
    assert.match(unsampled, new RegExp(`^00-${TRACE}-[0-9a-f]{16}-00$`));
    assert.equal(exporter.getFinishedSpans().length, 0, 'no span recorded for an unsampled trace');

    const sampled = await downstreamTraceparent(sdkPort, `00-${TRACE}-${PARENT}-01`);
    assert.match(sampled, new RegExp(`^00-${TRACE}-[0-9a-f]{16}-01$`));
    assert.notEqual(sampled.slice(36, 52), PARENT, 'the attempt span is the new parent');
    assert.ok(exporter.getFinishedSpans().length >= 1);
  });
});

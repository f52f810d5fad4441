/**
 * One instance of the demo shop, in its own process: a `meshClient` given nothing but the
 * control plane's URL and a bootstrap token (certificate from the control plane's CA, mTLS between
 * instances, configuration and endpoints pushed by the control plane, registered while it serves).
 *
 *   frontend  HTTP   GET /products/:id → products (HTTP, through the mesh)
 *   products  HTTP   GET /products/:id → reviews (gRPC, through the mesh); `failing` answers 503
 *                    for 4 s every 12 s (the frontend retries elsewhere, then ejects it)
 *   reviews   gRPC   shop.Reviews/ForProduct
 *
 * Argument: JSON `{ role, name, version, urls, token, cacheDir, failing? }`. Prints `READY` once
 * it serves; `EVENT <text>` lines for what the demo shows (ejections, outages), and, for the
 * frontend, `RETRIES <total>` every 2 s. Closes (deregisters, drains) and exits 0 on SIGTERM or
 * SIGINT, or when its parent goes (stdin ends), so no instance outlives the demo.
 */
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import { meshClient } from 'trellis';

interface Args {
  role: 'frontend' | 'products' | 'reviews';
  name: string;
  version: string;
  urls: string[];
  token: string;
  cacheDir: string;
  failing?: boolean;
}

const args = JSON.parse(process.argv[2] ?? '{}') as Args;
const say = (line: string): void => void process.stdout.write(`${line}\n`);
const mesh = await meshClient({
  service: args.role,
  controlPlane: args.urls,
  token: args.token,
  cacheDir: args.cacheDir,
  labels: { version: args.version, instance: args.name },
  logger: { warn: (m) => process.stderr.write(`[${args.name}] ${m}\n`) },
});

const proto = protoLoader.loadSync(path.join(path.dirname(fileURLToPath(import.meta.url)), 'shop.proto'));
const { shop } = grpc.loadPackageDefinition(proto) as unknown as { shop: { Reviews: grpc.ServiceClientConstructor } };
interface ReviewsReply {
  count: number;
  stars: number;
  from: string;
}

const closers: (() => Promise<void> | void)[] = [];
const timers: NodeJS.Timeout[] = [];

if (args.role === 'reviews') {
  const server = new grpc.Server({ interceptors: mesh.grpc.serverInterceptors() });
  server.addService(shop.Reviews.service, {
    forProduct: (call: grpc.ServerUnaryCall<{ product: number }, ReviewsReply>, callback: grpc.sendUnaryData<ReviewsReply>) =>
      callback(null, { count: call.request.product % 17, stars: 3 + (call.request.product % 3), from: args.name }),
  });
  const port = await new Promise<number>((resolve, reject) => server.bindAsync('127.0.0.1:0', mesh.grpc.serverCredentials(), (err, p) => (err ? reject(err) : resolve(p))));
  // grpc-js binds its own listener: tell the control plane, so callers find it in the registry.
  mesh.advertise({ port }, { protocol: 'grpc' });
  closers.push(() => new Promise<void>((resolve) => server.tryShutdown(() => resolve())));
} else if (args.role === 'products') {
  const reviews = new shop.Reviews(mesh.grpc.target('reviews'), mesh.grpc.credentials(), mesh.grpc.clientOptions('reviews'));
  closers.push(() => reviews.close());
  let outage = false;
  if (args.failing === true) {
    const start = (): void => {
      outage = true;
      say(`EVENT ${args.name} starts failing: every answer is 503 for 4 s`);
      timers.push(setTimeout(() => {
        outage = false;
        say(`EVENT ${args.name} recovers`);
      }, 4_000));
    };
    timers.push(setTimeout(() => {
      start();
      timers.push(setInterval(start, 12_000));
    }, 5_000));
  }
  await mesh.serve((req, res) => {
    req.resume();
    if (outage) {
      res.writeHead(503, { 'content-type': 'text/plain' }).end('unavailable\n');
      return;
    }
    const product = Number(/\/products\/(\d+)/.exec(req.url ?? '')?.[1] ?? 1);
    (reviews as unknown as { forProduct(r: object, cb: (e: grpc.ServiceError | null, r?: ReviewsReply) => void): void }).forProduct({ product }, (err, reply) => {
      if (err !== null || reply === undefined) {
        res.writeHead(502, { 'content-type': 'text/plain' }).end(`reviews: ${err?.message ?? 'no reply'}\n`);
        return;
      }
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ product, version: args.version, instance: args.name, reviews: reply }));
    });
  });
} else {
  const products = mesh.http('products');
  mesh.on('ejection', ({ service, endpoint, ejected }) => say(`EVENT frontend ${ejected ? 'ejected' : 'returned'} ${service} endpoint ${endpoint}${ejected ? ' (5 failures in a row)' : ''}`));
  mesh.on('breaker', ({ service, state }) => say(`EVENT frontend's breaker for ${service} is ${state}`));
  timers.push(setInterval(() => {
    const s = mesh.inspect().services.find((x) => x.name === 'products');
    if (s !== undefined) say(`RETRIES ${s.counters.retries}`);
  }, 2_000));
  await mesh.serve(async (req, res) => {
    req.resume();
    try {
      const answer = await products.request({ method: 'GET', path: req.url ?? '/' });
      const body = await answer.body.text();
      res.writeHead(answer.statusCode, { 'content-type': answer.headers['content-type'] as string | undefined ?? 'text/plain' }).end(body);
    } catch (err) {
      res.writeHead(503, { 'content-type': 'text/plain' }).end(`${(err as { code?: string }).code ?? 'error'}\n`);
    }
  });
}
say('READY');

let closing = false;
const close = (): void => {
  if (closing) return;
  closing = true;
  for (const t of timers) clearTimeout(t);
  void (async () => {
    await mesh.close({ drainTimeoutMs: 2_000 });
    for (const c of closers) await c();
    process.exit(0);
  })();
};
process.on('SIGTERM', close);
process.on('SIGINT', close);
process.stdin.on('end', close);
process.stdin.resume();

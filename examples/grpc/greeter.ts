// A greeter over gRPC through the mesh: three servers with the mesh's server interceptors, and
// a client whose calls the mesh balances (round-robin), retries and measures. Exits by itself.
// Run: node --import tsx examples/grpc/greeter.ts
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import { meshClient } from 'trellis';

const proto = protoLoader.loadSync(path.join(path.dirname(fileURLToPath(import.meta.url)), 'greeter.proto'));
const { greeter } = grpc.loadPackageDefinition(proto) as unknown as { greeter: { Greeter: grpc.ServiceClientConstructor } };

type HelloReply = { message: string };

// Three greeter instances on free ports, each behind the mesh's inbound side (authorization,
// rate limit, metrics, tracing).
const serverMesh = await meshClient({
  service: 'greeter',
  config: `apiVersion: trellis/v1
kind: Service
metadata: { name: greeter }
spec:
  protocol: grpc
  inbound:
    rateLimit: { requestsPerSecond: 100 }
`,
});
const servers: grpc.Server[] = [];
const ports: number[] = [];
for (let i = 0; i < 3; i++) {
  const server = new grpc.Server({ interceptors: serverMesh.grpc.serverInterceptors() });
  let port = 0;
  server.addService(greeter.Greeter.service, {
    sayHello: (call: grpc.ServerUnaryCall<{ name: string }, HelloReply>, callback: grpc.sendUnaryData<HelloReply>) =>
      callback(null, { message: `hello ${call.request.name} from :${port}` }),
  });
  port = await new Promise<number>((resolve, reject) =>
    server.bindAsync('127.0.0.1:0', serverMesh.grpc.serverCredentials(), (err, p) => (err ? reject(err) : resolve(p))),
  );
  servers.push(server);
  ports.push(port);
}

// The caller: a plain grpc-js client, given the mesh's target, credentials and options.
const mesh = await meshClient({
  service: 'frontend',
  config: `apiVersion: trellis/v1
kind: Service
metadata: { name: greeter }
spec:
  protocol: grpc
  endpoints: [ ${ports.map((p) => `{ address: 127.0.0.1:${p} }`).join(', ')} ]
  loadBalancer: round-robin
  retries: { attempts: 3 }
`,
});
const client = new greeter.Greeter(mesh.grpc.target('greeter'), mesh.grpc.credentials(), mesh.grpc.clientOptions('greeter'));

const sayHello = (name: string): Promise<HelloReply> =>
  new Promise((resolve, reject) =>
    (client as unknown as { sayHello(r: object, cb: (e: grpc.ServiceError | null, r?: HelloReply) => void): void })
      .sayHello({ name }, (err, reply) => (err ? reject(err) : resolve(reply as HelloReply))),
  );

for (const name of ['ada', 'grace', 'edsger', 'barbara', 'ken', 'margaret']) {
  console.log((await sayHello(name)).message);
}

client.close();
await mesh.close();
for (const s of servers) s.forceShutdown();
await serverMesh.close();

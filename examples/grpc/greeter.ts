// A greeter over gRPC through the mesh: three servers with the mesh's server interceptors, and
// a client whose calls the mesh balances (round-robin), retries and measures. Exits by itself.
// Run: node --import tsx examples/grpc/greeter.ts
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import { meshClient } from '../../src/mesh-client.js';

const proto = protoLoader.loadSync(path.join(path.dirname(fileURLToPath(import.meta.url)), 'greeter.proto'));
const { greeter } = grpc.loadPackageDefinition(proto) as unknown as { greeter: { Greeter: grpc.ServiceClientConstructor } };

type HelloReply = { message: string };

// Three greeter instances, each behind the mesh's inbound side (authorization, metrics, tracing).
const serverConfig = `apiVersion: trellis/v1
kind: Service
metadata: { name: greeter }
spec:
  protocol: grpc
  endpoints: [ { address: 127.0.0.1:50061 }, { address: 127.0.0.1:50062 }, { address: 127.0.0.1:50063 } ]
  inbound:
    rateLimit: { requestsPerSecond: 100 }
`;
const serverMesh = await meshClient({ service: 'greeter', config: serverConfig });
const servers: grpc.Server[] = [];
for (const port of [50061, 50062, 50063]) {
  const server = new grpc.Server({ interceptors: serverMesh.grpc.serverInterceptors() });
  server.addService(greeter.Greeter.service, {
    sayHello: (call: grpc.ServerUnaryCall<{ name: string }, HelloReply>, callback: grpc.sendUnaryData<HelloReply>) =>
      callback(null, { message: `hello ${call.request.name} from :${port}` }),
  });
  await new Promise<void>((resolve, reject) =>
    server.bindAsync(`127.0.0.1:${port}`, serverMesh.grpc.serverCredentials(), (err) => (err ? reject(err) : resolve())),
  );
  servers.push(server);
}

// The caller: a plain grpc-js client, given the mesh's target, credentials and options.
const clientConfig = serverConfig.replace(/  inbound:[\s\S]*$/, '  loadBalancer: round-robin\n  retries: { attempts: 3 }\n');
const mesh = await meshClient({ service: 'frontend', config: clientConfig });
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

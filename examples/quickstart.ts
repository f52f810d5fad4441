/**
 * Quickstart: one HTTP service, a mesh client configured with YAML text, one request.
 * Run it: npm run build && node --import tsx examples/quickstart.ts
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { meshClient } from 'trellis';

// A service to call, on any free port.
const server = http.createServer((req, res) => res.end(`hello from ${req.url}\n`));
await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
const { port } = server.address() as AddressInfo;

// The mesh config: usually a file (config: './mesh.yaml'), here YAML text.
const config = `
apiVersion: trellis/v1
kind: Service
metadata: { name: hello }
spec:
  endpoints:
    - { address: 127.0.0.1:${port} }
  timeout: 2s
  retries: { attempts: 3, on: [connect-failure, reset, gateway-error] }
`;

const mesh = await meshClient({ service: 'quickstart', config });
const res = await mesh.http('hello').request({ method: 'GET', path: '/greeting' });
console.log(res.statusCode, await res.body.text());

await mesh.close();
server.close();

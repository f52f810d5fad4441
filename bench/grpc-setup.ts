/**
 * What the gRPC benchmarks share: the greeter Service document over given addresses, the
 * Destinations built from it, and the three greeter servers in a child process (bench/grpc.ts
 * --server), so bench/grpc.ts, grpc-breakdown.ts and grpc-overhead.ts measure the same setup.
 */
import { spawn } from 'node:child_process';
import type { ChildProcessByStdio } from 'node:child_process';
import type { Readable, Writable } from 'node:stream';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { systemClock, systemRandom } from '../src/core/clock.js';
import { loadConfig } from '../src/config/load.js';
import type { MeshConfig } from '../src/config/types.js';
import { Destinations } from '../src/client/destinations.js';

const here = path.dirname(fileURLToPath(import.meta.url));

/** The benchmarks' greeter Service (round-robin, two attempts) over `addresses`, as YAML. */
export function greeterYaml(addresses: readonly string[]): string {
  return `apiVersion: trellis/v1
kind: Service
metadata: { name: greeter }
spec:
  protocol: grpc
  loadBalancer: round-robin
  endpoints: [ ${addresses.map((a) => `{ address: ${a} }`).join(', ')} ]
  retries: { attempts: 2 }
`;
}

/** greeterYaml, loaded. */
export function greeterConfig(addresses: readonly string[]): Promise<MeshConfig> {
  return loadConfig(greeterYaml(addresses));
}

/** Destinations for `config` with every event ignored (a benchmark has no mesh around it). */
export function benchDestinations(config: MeshConfig): Destinations {
  const destinations = new Destinations(systemClock, systemRandom, { onEndpoints: () => undefined, onEjection: () => undefined, onBreaker: () => undefined, onBreakerPresence: () => undefined, onWarn: () => undefined });
  destinations.apply(config);
  return destinations;
}

/** Starts bench/grpc.ts --server (three greeter servers) and resolves with their addresses. */
export async function spawnGreeterServers(): Promise<{ child: ChildProcessByStdio<Writable, Readable, null>; addresses: string[] }> {
  const child = spawn(process.execPath, ['--import', 'tsx', path.join(here, 'grpc.ts'), '--server'], { stdio: ['pipe', 'pipe', 'inherit'] });
  const ports = await new Promise<number[]>((resolve) => child.stdout.once('data', (d: Buffer) => resolve(JSON.parse(d.toString()) as number[])));
  return { child, addresses: ports.map((p) => `127.0.0.1:${p}`) };
}

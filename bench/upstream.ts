/**
 * The benchmark's upstream: N minimal node:http servers on 127.0.0.1 (random ports), run in a
 * child process of the bench so their CPU is not counted against the client being measured.
 * Prints `PORTS <p1> <p2> ...` once every server listens. Exits when its stdin closes (the
 * bench ended or died), on SIGTERM/SIGINT, or on its own after a hard limit.
 *
 * Usage: node --import tsx bench/upstream.ts [COUNT] [MAX_SECONDS]
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { okHandler } from './ok-handler.js';

const count = Number(process.argv[2] ?? 3);
const maxSeconds = Number(process.argv[3] ?? 300);

function start(): Promise<http.Server> {
  const server = http.createServer(okHandler);
  server.keepAliveTimeout = 60_000;
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve(server));
  });
}

const servers = await Promise.all(Array.from({ length: count }, start));
process.stdout.write(`PORTS ${servers.map((s) => (s.address() as AddressInfo).port).join(' ')}\n`);

function stop(): void {
  for (const s of servers) {
    s.closeAllConnections();
    s.close();
  }
  process.exit(0);
}

process.stdin.on('end', stop);
process.stdin.on('error', stop);
process.stdin.resume();
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
setTimeout(stop, maxSeconds * 1000).unref();

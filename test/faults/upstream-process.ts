/**
 * An upstream for the fault matrix in its own process (so it can be SIGKILLed or SIGSTOPped):
 * like test/helpers/server-process.ts, and it also reports every request it receives on stdout
 * as `REQ <method> <x-request-id>` the moment the headers arrive, so the test knows what the
 * server saw even after killing it (stdout to a pipe is synchronous on Linux).
 * Usage: node --import tsx upstream-process.ts NAME [PORT] [DELAY_MS] [BACKLOG]
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';

const name = process.argv[2] ?? 'up';
const port = Number(process.argv[3] ?? 0);
const delayMs = Number(process.argv[4] ?? 0);
// A small accept backlog lets a test fill it while the process is stopped (row C7).
const backlog = Number(process.argv[5] ?? 511);
const server = http.createServer((req, res) => {
  process.stdout.write(`REQ ${req.method ?? '?'} ${String(req.headers['x-request-id'] ?? '-')}\n`);
  req.resume();
  req.on('end', () => {
    const answer = (): void => {
      res.setHeader('x-server', name);
      res.end(JSON.stringify({ server: name, path: req.url }));
    };
    if (delayMs > 0) setTimeout(answer, delayMs);
    else answer();
  });
});
server.keepAliveTimeout = 30_000;
server.listen({ port, host: '127.0.0.1', backlog }, () => {
  process.stdout.write(`PORT ${(server.address() as AddressInfo).port}\n`);
});

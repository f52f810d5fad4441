/**
 * A test HTTP server in its own process, so a test can SIGKILL it like a crashed pod.
 * Prints `PORT <n>` once listening. Usage: node --import tsx server-process.ts NAME [PORT]
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';

const name = process.argv[2] ?? 'proc';
const port = Number(process.argv[3] ?? 0);
const server = http.createServer((req, res) => {
  req.resume();
  req.on('end', () => {
    res.setHeader('x-server', name);
    res.end(JSON.stringify({ server: name, path: req.url }));
  });
});
server.keepAliveTimeout = 30_000;
server.listen(port, '127.0.0.1', () => {
  process.stdout.write(`PORT ${(server.address() as AddressInfo).port}\n`);
});

/**
 * The memory bench's upstream: COUNT node:http servers on 127.0.0.1 (one per endpoint of every
 * destination), in a child process so their memory is not the client's. Prints `PORTS p1 p2 ...`
 * once all listen, and `CONNS <accepted> <open>` (connections over every server) for each line
 * it reads on stdin. Exits when stdin closes, on SIGTERM/SIGINT, or after a hard limit.
 *
 * Usage: node --import tsx bench/memory-upstream.ts COUNT MAX_SECONDS
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';

const count = Number(process.argv[2] ?? 1);
const maxSeconds = Number(process.argv[3] ?? 120);
const body = Buffer.from('{"ok":true}');
let accepted = 0;
let open = 0;

function start(): Promise<http.Server> {
  const server = http.createServer((req, res) => {
    req.resume();
    res.writeHead(200, { 'content-type': 'application/json', 'content-length': body.length });
    res.end(body);
  });
  server.keepAliveTimeout = 120_000;
  server.on('connection', (socket) => {
    accepted++;
    open++;
    socket.once('close', () => open--);
  });
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve(server));
  });
}

const servers: http.Server[] = [];
for (let i = 0; i < count; i += 200) {
  servers.push(...(await Promise.all(Array.from({ length: Math.min(200, count - i) }, start))));
}
process.stdout.write(`PORTS ${servers.map((s) => (s.address() as AddressInfo).port).join(' ')}\n`);

function stop(): void {
  for (const s of servers) {
    s.closeAllConnections();
    s.close();
  }
  process.exit(0);
}

process.stdin.on('data', () => process.stdout.write(`CONNS ${accepted} ${open}\n`));
process.stdin.on('end', stop);
process.stdin.on('error', stop);
process.stdin.resume();
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
setTimeout(stop, maxSeconds * 1000).unref();

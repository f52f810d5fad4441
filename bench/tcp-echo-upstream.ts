/**
 * TCP echo servers for bench/net.ts, in a child process (so their CPU is not the client's):
 * `node --import tsx bench/tcp-echo-upstream.ts COUNT MAX_SECONDS` prints `PORTS p1 p2 ...` and
 * echoes every byte back. It exits when its stdin closes or after MAX_SECONDS.
 */
import net from 'node:net';

const count = Number(process.argv[2] ?? '2');
const maxSeconds = Number(process.argv[3] ?? '120');
const ports: number[] = [];
for (let i = 0; i < count; i++) {
  const server = net.createServer((s) => {
    s.setNoDelay(true);
    s.on('error', () => undefined);
    s.pipe(s);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  ports.push((server.address() as net.AddressInfo).port);
}
process.stdout.write(`PORTS ${ports.join(' ')}\n`);
process.stdin.resume();
process.stdin.on('end', () => process.exit(0));
setTimeout(() => process.exit(0), maxSeconds * 1000).unref();

/**
 * A small TCP fault proxy on 127.0.0.1 for the fault matrix (RELIABILITY §4, kit): it sits in
 * front of a real upstream and, per connection, does what `mode` says at accept time:
 *
 * - `pass`: relays both ways, optionally after `latencyMs` per chunk from the upstream;
 * - `blackhole`: accepts and reads, never connects upstream, never answers;
 * - `rst-after`: relays, and after `bytes` bytes of the upstream's answer resets the client
 *   socket (RST, not FIN) and the upstream one;
 * - `drip`: relays the upstream's answer one byte every `intervalMs` (1 byte/s by default);
 * - `garbage`: answers `bytes` (default: random) without connecting upstream, then closes.
 *
 * The mode can change while running; open connections keep the mode they were accepted with.
 * `connections` counts accepted client connections, `upstreamBytes` what the upstream sent,
 * `firstBytes` the first byte each client sent (0x16 opens a TLS handshake; a letter, plaintext).
 */
import net from 'node:net';
import type { AddressInfo } from 'node:net';
import { randomBytes } from 'node:crypto';

export type FaultMode =
  | { kind: 'pass'; latencyMs?: number }
  | { kind: 'blackhole' }
  | { kind: 'rst-after'; bytes: number }
  | { kind: 'drip'; intervalMs?: number }
  | { kind: 'garbage'; bytes?: Buffer };

export interface FaultProxy {
  readonly port: number;
  readonly address: string;
  mode: FaultMode;
  /** Client connections accepted so far. */
  connections: number;
  /** Bytes received from the upstream so far. */
  upstreamBytes: number;
  /** The first byte each client connection sent, in order. */
  firstBytes: number[];
  close(): Promise<void>;
}

export async function startFaultProxy(upstream: { host?: string; port: number }, mode: FaultMode = { kind: 'pass' }): Promise<FaultProxy> {
  const sockets = new Set<net.Socket>();
  const timers = new Set<NodeJS.Timeout>();
  const track = (s: net.Socket): net.Socket => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
    s.on('error', () => {});
    return s;
  };
  const proxy: FaultProxy = { port: 0, address: '', mode, connections: 0, upstreamBytes: 0, firstBytes: [], close: async () => undefined };

  const server = net.createServer((client) => {
    track(client);
    proxy.connections++;
    client.once('data', (d: Buffer) => proxy.firstBytes.push(d[0] as number));
    const m = proxy.mode;
    if (m.kind === 'blackhole') {
      client.resume();
      return;
    }
    if (m.kind === 'garbage') {
      client.resume();
      client.end(m.bytes ?? randomBytes(512));
      return;
    }
    const up = track(net.connect({ host: upstream.host ?? '127.0.0.1', port: upstream.port }));
    client.pipe(up);
    client.on('close', () => up.destroy());
    up.on('close', () => {
      if (m.kind !== 'drip') client.end();
    });
    let sent = 0;
    const queue: Buffer[] = [];
    let dripping: NodeJS.Timeout | undefined;
    up.on('data', (chunk: Buffer) => {
      proxy.upstreamBytes += chunk.length;
      switch (m.kind) {
        case 'pass':
          if (m.latencyMs === undefined || m.latencyMs <= 0) client.write(chunk);
          else {
            const t = setTimeout(() => {
              timers.delete(t);
              if (!client.destroyed) client.write(chunk);
            }, m.latencyMs);
            timers.add(t);
          }
          break;
        case 'rst-after': {
          const room = m.bytes - sent;
          if (room > 0) client.write(chunk.subarray(0, room));
          sent += Math.min(room, chunk.length);
          if (sent >= m.bytes) {
            // Let the allowed bytes leave, then reset.
            setImmediate(() => {
              client.resetAndDestroy();
              up.destroy();
            });
          }
          break;
        }
        case 'drip':
          for (const b of chunk) queue.push(Buffer.from([b]));
          if (dripping === undefined) {
            dripping = setInterval(() => {
              const next = queue.shift();
              if (next === undefined || client.destroyed) return;
              client.write(next);
            }, m.intervalMs ?? 1000);
            timers.add(dripping);
            client.on('close', () => {
              if (dripping !== undefined) {
                clearInterval(dripping);
                timers.delete(dripping);
              }
            });
          }
          break;
      }
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  return Object.assign(proxy, {
    port,
    address: `127.0.0.1:${port}`,
    close: () =>
      new Promise<void>((resolve) => {
        for (const t of timers) clearTimeout(t);
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  });
}

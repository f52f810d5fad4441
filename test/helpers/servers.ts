/**
 * Real HTTP servers on 127.0.0.1 for tests: each counts its hits and can be switched between
 * behaviours (answer, answer slowly, fail with a status, hang, close the socket) while running.
 */
import http from 'node:http';
import net from 'node:net';
import type { AddressInfo } from 'node:net';

export type Behaviour =
  | { kind: 'ok'; delayMs?: number; body?: string }
  | { kind: 'status'; status: number; delayMs?: number }
  | { kind: 'hang' }
  /** Answers like `ok` once `until` resolves: the test decides when, so ordering is provable. */
  | { kind: 'held'; until: Promise<void> }
  | { kind: 'destroy' };

export interface TestServer {
  readonly name: string;
  readonly port: number;
  readonly address: string;
  hits: number;
  /** Last request headers seen. */
  lastHeaders: http.IncomingHttpHeaders;
  behaviour: Behaviour;
  server: http.Server;
  close(): Promise<void>;
}

export async function startServer(name: string, behaviour: Behaviour = { kind: 'ok' }, handler?: http.RequestListener): Promise<TestServer> {
  const hanging = new Set<http.ServerResponse>();
  const s: TestServer = {
    name,
    port: 0,
    address: '',
    hits: 0,
    lastHeaders: {},
    behaviour,
    server: undefined as unknown as http.Server,
    close: async () => undefined,
  };
  const server = http.createServer((req, res) => {
    s.hits++;
    s.lastHeaders = req.headers;
    if (handler !== undefined) return handler(req, res);
    const b = s.behaviour;
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const reqBody = Buffer.concat(chunks).toString();
      switch (b.kind) {
        case 'ok': {
          const send = (): void => {
            res.setHeader('x-server', name);
            res.end(b.body ?? JSON.stringify({ server: name, path: req.url, method: req.method, body: reqBody }));
          };
          if (b.delayMs) setTimeout(send, b.delayMs);
          else send();
          break;
        }
        case 'status': {
          const send = (): void => {
            res.statusCode = b.status;
            res.setHeader('x-server', name);
            res.end(`status ${b.status} from ${name}`);
          };
          if (b.delayMs) setTimeout(send, b.delayMs);
          else send();
          break;
        }
        case 'held':
          hanging.add(res);
          res.on('close', () => hanging.delete(res));
          void b.until.then(() => {
            if (res.destroyed) return;
            res.setHeader('x-server', name);
            res.end(JSON.stringify({ server: name, path: req.url, method: req.method, body: reqBody }));
          });
          break;
        case 'hang':
          hanging.add(res);
          res.on('close', () => hanging.delete(res));
          break;
        case 'destroy':
          req.socket.destroy();
          break;
      }
    });
  });
  server.keepAliveTimeout = 30_000;
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  Object.assign(s, {
    port,
    address: `127.0.0.1:${port}`,
    server,
    close: () =>
      new Promise<void>((resolve) => {
        for (const r of hanging) r.destroy();
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  });
  return s;
}

export async function startServers(n: number, prefix = 's', behaviour?: Behaviour): Promise<TestServer[]> {
  return Promise.all(Array.from({ length: n }, (_, i) => startServer(`${prefix}${i}`, behaviour)));
}

/** A Service document in YAML with static endpoints. `extra` is appended, indented under spec. */
export function serviceYaml(name: string, endpoints: { address: string; labels?: Record<string, string> }[], extra = ''): string {
  const eps = endpoints
    .map((e) => `    - address: ${e.address}${e.labels ? `\n      labels: ${JSON.stringify(e.labels)}` : ''}`)
    .join('\n');
  const more = extra
    .split('\n')
    .filter((l) => l.trim() !== '')
    .map((l) => `  ${l}`)
    .join('\n');
  return `apiVersion: trellis/v1\nkind: Service\nmetadata: { name: ${name} }\nspec:\n  endpoints:\n${eps}\n${more}\n`;
}

/** Runs `fn` with at most `concurrency` in flight until `total` calls are done. */
export async function runLoad<T>(total: number, concurrency: number, fn: (i: number) => Promise<T>): Promise<{ ok: number; errors: unknown[]; results: T[] }> {
  let next = 0;
  const errors: unknown[] = [];
  const results: T[] = [];
  let ok = 0;
  const worker = async (): Promise<void> => {
    while (next < total) {
      const i = next++;
      try {
        results.push(await fn(i));
        ok++;
      } catch (err) {
        errors.push(err);
      }
    }
  };
  await Promise.all(Array.from({ length: concurrency }, worker));
  return { ok, errors, results };
}

/** A logger that keeps warnings for assertions instead of printing them. */
export function quietLogger(): { warn(m: string): void; messages: string[] } {
  const messages: string[] = [];
  return { warn: (m: string) => messages.push(m), messages };
}

/** An address on 127.0.0.1 nothing listens on (a port bound, then released): connections to it are refused. */
export async function deadAddress(): Promise<string> {
  const s = net.createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const port = (s.address() as AddressInfo).port;
  await new Promise<void>((r) => s.close(() => r()));
  return `127.0.0.1:${port}`;
}

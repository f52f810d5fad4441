/**
 * The demo's example services: plain node:http servers on fixed loopback ports (the ports
 * examples/demo/mesh.yaml lists), each with a behaviour that makes one mesh feature visible.
 *
 *   products-1  :7081  v1  fast and healthy
 *   products-2  :7082  v1  slow sometimes: 30% of responses take 150 ms        → ewma steers away
 *   products-3  :7083  v2  flaky: 20% answer 503, and every 15 s it goes down   → retries, ejection
 *                          for 5 s (closes its connections, refuses new ones)
 *   reviews-1   :7091  v1  healthy, but shares the reviews incident below
 *   reviews-2   :7092  v1  resets 5% of connections mid-request                 → reset retries
 *   reviews incident: every 30 s both reviews servers answer 503 for 4 s        → breaker opens
 *
 * Each server counts what it answered, so the demo can show the endpoint's own view next to
 * the caller's. Runs in the demo's process (`startServices`), or alone:
 *   node --import tsx examples/demo/services.ts
 */
import http from 'node:http';
import { fileURLToPath } from 'node:url';

export interface ServedCounts {
  /** Answered 2xx. */
  ok: number;
  /** Answered 503. */
  errors: number;
  /** Connections cut before an answer (a reset, or going down with the request in flight). */
  dropped: number;
}

export interface DemoService {
  readonly name: string;
  readonly service: string;
  readonly port: number;
  readonly version: string;
  /** A few words on its behaviour, for the tables. */
  readonly behaviour: string;
  readonly served: ServedCounts;
  readonly up: boolean;
}

export interface DemoServices {
  readonly list: readonly DemoService[];
  close(): Promise<void>;
}

/** Thrown when a fixed port is taken; names the port and the service that needs it. */
export class PortInUseError extends Error {
  readonly port: number;
  constructor(port: number, name: string) {
    super(`port ${port} is already in use (the demo's ${name} listens there, as examples/demo/mesh.yaml says); stop whatever holds it (\`lsof -i :${port}\`) and run the demo again`);
    this.name = 'PortInUseError';
    this.port = port;
  }
}

interface Timing {
  /** Answer with 503; checked first. */
  fail: () => boolean;
  /** Cut the connection without answering. */
  reset: () => boolean;
  /** Milliseconds before answering. */
  delayMs: () => number;
}

interface Spec {
  name: string;
  service: string;
  port: number;
  version: string;
  behaviour: string;
  timing: (incident: () => boolean) => Timing;
}

const PRODUCTS_OUTAGE = { firstAtMs: 3_000, everyMs: 15_000, forMs: 5_000 };
const REVIEWS_INCIDENT = { firstAtMs: 4_000, everyMs: 30_000, forMs: 4_000 };

const base = (): number => 1 + Math.random() * 2;
const never = (): boolean => false;

const SPECS: Spec[] = [
  { name: 'products-1', service: 'products', port: 7081, version: 'v1', behaviour: 'fast',
    timing: () => ({ fail: never, reset: never, delayMs: base }) },
  { name: 'products-2', service: 'products', port: 7082, version: 'v1', behaviour: '30% slow (150ms)',
    timing: () => ({ fail: never, reset: never, delayMs: () => (Math.random() < 0.3 ? 150 : base()) }) },
  { name: 'products-3', service: 'products', port: 7083, version: 'v2', behaviour: '20% 503, outages',
    timing: () => ({ fail: () => Math.random() < 0.2, reset: never, delayMs: base }) },
  { name: 'reviews-1', service: 'reviews', port: 7091, version: 'v1', behaviour: 'healthy',
    timing: (incident) => ({ fail: incident, reset: never, delayMs: base }) },
  { name: 'reviews-2', service: 'reviews', port: 7092, version: 'v1', behaviour: '5% resets',
    timing: (incident) => ({ fail: incident, reset: () => Math.random() < 0.05, delayMs: base }) },
];

class Server implements DemoService {
  readonly name: string;
  readonly service: string;
  readonly port: number;
  readonly version: string;
  readonly behaviour: string;
  readonly served: ServedCounts = { ok: 0, errors: 0, dropped: 0 };
  up = false;
  readonly #server: http.Server;
  readonly #pending = new Set<ReturnType<typeof setTimeout>>();

  constructor(spec: Spec, incident: () => boolean, portOffset: number) {
    this.name = spec.name;
    this.service = spec.service;
    this.port = spec.port + portOffset;
    this.version = spec.version;
    this.behaviour = spec.behaviour;
    const t = spec.timing(incident);
    const body = JSON.stringify({ from: spec.name, version: spec.version });
    this.#server = http.createServer((req, res) => {
      req.resume();
      if (t.reset()) {
        this.served.dropped++;
        req.socket.destroy();
        return;
      }
      const timer = setTimeout(() => {
        this.#pending.delete(timer);
        if (res.destroyed || res.writableEnded) {
          this.served.dropped++;
          return;
        }
        if (t.fail()) {
          this.served.errors++;
          res.writeHead(503, { 'content-type': 'text/plain' }).end('unavailable\n');
        } else {
          this.served.ok++;
          res.writeHead(200, { 'content-type': 'application/json', 'x-served-by': spec.name }).end(body);
        }
      }, t.delayMs());
      this.#pending.add(timer);
    });
  }

  listen(): Promise<void> {
    return new Promise((resolve, reject) => {
      const onError = (err: NodeJS.ErrnoException): void => {
        reject(err.code === 'EADDRINUSE' ? new PortInUseError(this.port, this.name) : err);
      };
      this.#server.once('error', onError);
      this.#server.listen(this.port, '127.0.0.1', () => {
        this.#server.off('error', onError);
        this.up = true;
        resolve();
      });
    });
  }

  /** Stops answering at once: refuses new connections and cuts the open ones (a crash, seen from outside). */
  down(): Promise<void> {
    this.up = false;
    return new Promise((resolve) => {
      this.#server.close(() => resolve());
      this.#server.closeAllConnections();
    });
  }

  async close(): Promise<void> {
    for (const timer of this.#pending) clearTimeout(timer);
    this.#pending.clear();
    if (this.#server.listening) await this.down();
  }
}

/** Starts every demo service; `onEvent` hears about outages and incidents as they begin and end. */
/** `portOffset` moves every port (7081 + offset, ...), so two demos can run side by side. */
export async function startServices(onEvent: (message: string) => void = () => {}, portOffset = 0): Promise<DemoServices> {
  let incident = false;
  const servers = SPECS.map((s) => new Server(s, () => incident, portOffset));
  const timers = new Set<ReturnType<typeof setTimeout>>();
  let closed = false;
  const after = (ms: number, fn: () => void): void => {
    const timer = setTimeout(() => {
      timers.delete(timer);
      if (!closed) fn();
    }, ms);
    timers.add(timer);
  };

  try {
    for (const s of servers) await s.listen();
  } catch (err) {
    await Promise.all(servers.map((s) => s.close()));
    throw err;
  }

  // products-3: down for 5 s every 15 s.
  const flaky = servers.find((s) => s.name === 'products-3');
  const outage = (): void => {
    if (flaky === undefined) return;
    onEvent(`server    products-3 (:${flaky.port}) goes down for ${PRODUCTS_OUTAGE.forMs / 1000} s`);
    void flaky.down();
    after(PRODUCTS_OUTAGE.forMs, () => {
      flaky.listen().then(
        () => onEvent(`server    products-3 (:${flaky.port}) is back up`),
        (err: unknown) => onEvent(`server    products-3 could not listen again: ${err instanceof Error ? err.message : String(err)}`),
      );
    });
    after(PRODUCTS_OUTAGE.everyMs, outage);
  };
  after(PRODUCTS_OUTAGE.firstAtMs, outage);

  // reviews: both servers answer 503 for 4 s every 30 s.
  const reviewsIncident = (): void => {
    incident = true;
    onEvent(`server    reviews incident: every reviews server answers 503 for ${REVIEWS_INCIDENT.forMs / 1000} s`);
    after(REVIEWS_INCIDENT.forMs, () => {
      incident = false;
      onEvent('server    reviews incident over');
    });
    after(REVIEWS_INCIDENT.everyMs, reviewsIncident);
  };
  after(REVIEWS_INCIDENT.firstAtMs, reviewsIncident);

  return {
    list: servers,
    close: async () => {
      closed = true;
      for (const timer of timers) clearTimeout(timer);
      timers.clear();
      await Promise.all(servers.map((s) => s.close()));
    },
  };
}

// Run alone: start the services and keep them up until Ctrl-C.
if (process.argv[1] !== undefined && fileURLToPath(import.meta.url) === process.argv[1]) {
  try {
    const services = await startServices((m) => console.log(m));
    for (const s of services.list) console.log(`${s.name.padEnd(11)} http://127.0.0.1:${s.port}  ${s.version}  ${s.behaviour}`);
    console.log('Ctrl-C stops them.');
    const stop = (): void => {
      void services.close().then(() => process.exit(0));
    };
    process.once('SIGINT', stop);
    process.once('SIGTERM', stop);
  } catch (err) {
    console.error(err instanceof Error ? err.message : String(err));
    process.exit(1);
  }
}

/**
 * Shared pieces of the fault-matrix tests: upstream child processes that report what they saw,
 * a bounded load loop that records latencies, percentiles, the code of a Trellis error (or of
 * its cause), and a raw TCP server that answers fixed bytes (malformed responses).
 */
import net from 'node:net';
import type { AddressInfo } from 'node:net';
import { fileURLToPath } from 'node:url';
import { startProcessServer } from '../helpers/processes.js';
import type { ProcessServer } from '../helpers/processes.js';

const upstreamScript = fileURLToPath(new URL('./upstream-process.ts', import.meta.url));

export interface CountingUpstream extends ProcessServer {
  /** Request ids (x-request-id) seen by this process, in arrival order, by method. */
  readonly seen: { method: string; id: string }[];
}

/** An upstream child process (see upstream-process.ts) whose received requests are recorded. */
export async function startCountingUpstream(name: string, opts: { port?: number; delayMs?: number; backlog?: number } = {}): Promise<CountingUpstream> {
  const p = await startProcessServer(name, { script: upstreamScript, args: [String(opts.port ?? 0), String(opts.delayMs ?? 0), String(opts.backlog ?? 511)] });
  const seen: { method: string; id: string }[] = [];
  let buf = '';
  p.child.stdout?.on('data', (d: Buffer) => {
    buf += d.toString();
    let nl: number;
    while ((nl = buf.indexOf('\n')) >= 0) {
      const line = buf.slice(0, nl);
      buf = buf.slice(nl + 1);
      const m = /^REQ (\S+) (\S+)$/.exec(line);
      if (m?.[1] !== undefined && m[2] !== undefined) seen.push({ method: m[1], id: m[2] });
    }
  });
  p.child.on('exit', () => undefined);
  return Object.assign(p, { seen });
}

/** Waits for a child process to be gone (after a kill). */
export function exited(p: ProcessServer): Promise<void> {
  if (p.child.exitCode !== null || p.child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => p.child.once('exit', () => resolve()));
}

export interface LoadResult {
  ok: number;
  errors: unknown[];
  /** Latency of each successful call, ms. */
  latencies: number[];
  started: number;
}

/**
 * Runs `fn` with `concurrency` workers until `total` calls are made, `maxMs` has passed or
 * `stop()` says so, whichever comes first: bounded in count and in time, it stops by itself.
 */
export async function boundedLoad(total: number, concurrency: number, maxMs: number, fn: (i: number) => Promise<void>, stop: () => boolean = () => false): Promise<LoadResult> {
  const end = performance.now() + maxMs;
  const r: LoadResult = { ok: 0, errors: [], latencies: [], started: 0 };
  const worker = async (): Promise<void> => {
    while (r.started < total && performance.now() < end && !stop()) {
      const i = r.started++;
      const t0 = performance.now();
      try {
        await fn(i);
        r.latencies.push(performance.now() - t0);
        r.ok++;
      } catch (err) {
        r.errors.push(err);
      }
    }
  };
  await Promise.all(Array.from({ length: concurrency }, worker));
  return r;
}

export function percentile(xs: readonly number[], p: number): number {
  if (xs.length === 0) return Number.NaN;
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.ceil((p / 100) * s.length) - 1)] as number;
}

export const ms = (x: number): string => `${Number.isFinite(x) ? x.toFixed(1) : '-'} ms`;

/** The code of a Trellis error, else of its cause, else its name. */
export function codeOf(err: unknown): string {
  const e = err as { code?: unknown; cause?: { code?: unknown }; name?: string };
  if (typeof e?.code === 'string') return e.code;
  if (typeof e?.cause?.code === 'string') return e.cause.code;
  return e?.name ?? String(err);
}

/** Every code in an error's cause chain (the error first). */
export function codesOf(err: unknown): string[] {
  const out: string[] = [];
  let e = err as { code?: unknown; cause?: unknown } | undefined;
  for (let i = 0; e !== undefined && e !== null && i < 8; i++) {
    if (typeof e.code === 'string') out.push(e.code);
    e = e.cause as typeof e;
  }
  return out;
}

/** Counts items by key, for diagnostics ("TRELLIS_TIMEOUT×3"). */
export function tally(items: readonly string[]): string {
  const m = new Map<string, number>();
  for (const i of items) m.set(i, (m.get(i) ?? 0) + 1);
  return [...m].map(([k, v]) => `${k}×${v}`).join(', ') || 'none';
}

export interface RawServer {
  readonly port: number;
  readonly address: string;
  /** Connections accepted. */
  connections: number;
  close(): Promise<void>;
}

/** A TCP server that reads a request and answers `bytes` as they are, then closes. */
export async function rawServer(bytes: Buffer | string): Promise<RawServer> {
  const sockets = new Set<net.Socket>();
  const s = { connections: 0 } as RawServer & { connections: number };
  const server = net.createServer((socket) => {
    s.connections++;
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    socket.on('error', () => {});
    socket.once('data', () => socket.end(bytes));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  return Object.assign(s, {
    port,
    address: `127.0.0.1:${port}`,
    close: () =>
      new Promise<void>((resolve) => {
        for (const k of sockets) k.destroy();
        server.close(() => resolve());
      }),
  });
}

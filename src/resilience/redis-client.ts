/**
 * The Redis connection global rate limits use (ioredis 5), set up so that Redis trouble can
 * never stall or crash a request:
 * - `lazyConnect`: no connection until a limiter first needs one (a stack built for a
 *   destination that is never called opens nothing);
 * - `enableOfflineQueue: false` and `maxRetriesPerRequest: 0`: a command sent while
 *   disconnected fails at once instead of queueing behind the reconnect;
 * - short `connectTimeout` and `commandTimeout`, so a black-holed Redis is noticed in half a
 *   second and the limiter falls back to its local limit;
 * - reconnects forever, but with bounded exponential backoff and jitter (50 ms doubling to
 *   2 s), so a Redis that is down costs one connection attempt per two seconds at most and
 *   recovery is noticed within about two seconds of Redis coming back;
 * - no listener limit: several limiters may share one client (one per mesh and Redis URL).
 *
 * The client never keeps a process alive after `disconnect()`.
 */
import { Redis } from 'ioredis';
import type { Random } from '../core/clock.js';

export interface RedisClientParams {
  /** `redis://[user:password@]host:port[/db]` or `rediss://…` (TLS). */
  url: string;
  /** Socket connect timeout (default 500 ms). */
  connectTimeoutMs?: number;
  /** A command without a reply after this long fails (default 500 ms). */
  commandTimeoutMs?: number;
}

export const RECONNECT_BASE_MS = 50;
export const RECONNECT_MAX_MS = 2000;

/** Delay before reconnect attempt `times` (1-based): full-range jitter over a capped doubling. */
export function reconnectDelayMs(times: number, random: Random): number {
  const ceiling = Math.min(RECONNECT_MAX_MS, RECONNECT_BASE_MS * 2 ** Math.min(Math.max(times - 1, 0), 16));
  return Math.max(RECONNECT_BASE_MS, Math.round(ceiling * (0.5 + random() / 2)));
}

/** A Redis client with the options above; connect it with `connect()` (or let a limiter). */
export function createRedisClient(params: RedisClientParams, random: Random = Math.random): Redis {
  const client = new Redis(params.url, {
    lazyConnect: true,
    enableOfflineQueue: false,
    maxRetriesPerRequest: 0,
    connectTimeout: params.connectTimeoutMs ?? 500,
    commandTimeout: params.commandTimeoutMs ?? 500,
    enableAutoPipelining: false,
    // No CLIENT SETINFO round trips before the ready check: a black-holed Redis is then noticed
    // after one command timeout (the INFO ready check), not two.
    disableClientInfo: true,
    retryStrategy: (times) => reconnectDelayMs(times, random),
    // A reply error (say, a script error) is not a reason to drop the connection.
    reconnectOnError: () => false,
  });
  client.setMaxListeners(0);
  return client;
}

/** The URL without its password, for logs and descriptions. */
export function redactRedisUrl(url: string): string {
  try {
    const u = new URL(url);
    if (u.password !== '') u.password = '***';
    return u.toString().replace(/\/$/, '');
  } catch {
    return '<invalid redis url>';
  }
}

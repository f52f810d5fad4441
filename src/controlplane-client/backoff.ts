/**
 * Reconnect delays as gRPC's connection backoff (grpc/grpc doc/connection-backoff.md): 1 s
 * first, ×1.6 each failed attempt, capped at 120 s, each spread ±20 % at random so a thousand
 * instances that lost the control plane together do not come back together.
 */
import type { Random } from '../core/clock.js';

export const BACKOFF = Object.freeze({ initialMs: 1000, multiplier: 1.6, maxMs: 120_000, jitter: 0.2 });

/** The delay before reconnect attempt `attempt` (0 for the first retry). */
export function reconnectDelayMs(attempt: number, random: Random): number {
  const base = Math.min(BACKOFF.maxMs, BACKOFF.initialMs * BACKOFF.multiplier ** Math.min(attempt, 64));
  return Math.round(base * (1 + BACKOFF.jitter * (2 * random() - 1)));
}

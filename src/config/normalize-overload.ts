/**
 * Defaults of the overload blocks (`inbound.overload`, `adaptiveConcurrency`). Part of
 * normalization; pure. The defaults follow what the sources measured: under-pressure's
 * utilization threshold, Envoy's and concurrency-limits' limit bounds.
 */

import type { RawAdaptiveConcurrency, RawOverload } from './schema-overload.js';
import type { AdaptiveConcurrencySpec, ConcurrencyLimitSpec, OverloadSpec } from './types.js';

/** Saturated above 95 % utilization or 100 ms of event-loop delay (p99 of a 100 ms window). */
const EVENT_LOOP = { maxUtilization: 0.95, maxDelayMs: 100 };
/** concurrency-limits' Gradient2 defaults: start at 20, never below 4 in flight, at most 1000. */
const INBOUND_LIMIT: ConcurrencyLimitSpec = { initial: 20, min: 4, max: 1000 };
const OUTBOUND_LIMIT: ConcurrencyLimitSpec = { initial: 20, min: 1, max: 1000 };

function limit(raw: { initial?: number | undefined; min?: number | undefined; max?: number | undefined }, d: ConcurrencyLimitSpec): ConcurrencyLimitSpec {
  const min = raw.min ?? Math.min(d.min, raw.max ?? d.min);
  const max = raw.max ?? Math.max(d.max, min);
  return { initial: raw.initial ?? Math.min(max, Math.max(min, d.initial)), min, max };
}

export function normalizeOverload(raw: RawOverload | undefined): OverloadSpec | undefined {
  if (raw === undefined) return undefined;
  const el = raw.eventLoop;
  const cc = raw.concurrency;
  return {
    eventLoop:
      el === false
        ? undefined
        : el === undefined || el === true
          ? { ...EVENT_LOOP }
          : { maxUtilization: el.maxUtilization ?? EVENT_LOOP.maxUtilization, maxDelayMs: el.maxDelay ?? EVENT_LOOP.maxDelayMs },
    concurrency: cc === false ? undefined : limit(cc === undefined || cc === true ? {} : cc, INBOUND_LIMIT),
    deadline: raw.deadline ?? true,
    critical: raw.critical ?? [],
  };
}

export function normalizeAdaptiveConcurrency(raw: RawAdaptiveConcurrency | undefined): AdaptiveConcurrencySpec | undefined {
  if (raw === undefined) return undefined;
  return { ...limit(raw, OUTBOUND_LIMIT), maxWaitMs: raw.maxWait ?? 0 };
}

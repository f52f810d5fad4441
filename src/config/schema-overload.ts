/**
 * Schema of the overload blocks of a Service document: `inbound.overload` (event-loop-aware
 * shedding, an adaptive in-flight limit, deadline-aware admission, critical paths shed last)
 * and `adaptiveConcurrency` (the outbound, per-destination adaptive limit). `overload: {}` and
 * `adaptiveConcurrency: {}` switch every part on with its defaults; `false` on a part turns that
 * part off. Absent blocks mean the feature is off (docs/overload.md).
 */

import { z } from 'zod';
import { describeValue } from './issues.js';
import { checkedString, durationMs, intSchema } from './schema-common.js';

const limitFields = {
  /** The limit before the first adjustment. */
  initial: intSchema(1, 100_000).optional(),
  min: intSchema(1, 100_000).optional(),
  max: intSchema(1, 100_000).optional(),
};

function checkBounds(o: { initial?: number | undefined; min?: number | undefined; max?: number | undefined }, ctx: z.RefinementCtx): void {
  if (o.min !== undefined && o.max !== undefined && o.min > o.max) {
    ctx.addIssue({ code: 'custom', path: ['min'], input: o.min, message: `min (${o.min}) is above max (${o.max})` });
  }
  for (const bound of ['min', 'max'] as const) {
    const b = o[bound];
    if (o.initial === undefined || b === undefined) continue;
    if ((bound === 'min' && o.initial < b) || (bound === 'max' && o.initial > b)) {
      ctx.addIssue({ code: 'custom', path: ['initial'], input: o.initial, message: `initial (${o.initial}) is outside min..max` });
    }
  }
}

const concurrencySchema = z.strictObject(limitFields).superRefine(checkBounds);

const eventLoopSchema = z.strictObject({
  /** Event-loop utilization (0..1) over a sampling window above which the loop is saturated. */
  maxUtilization: z.number().gt(0).max(1).optional(),
  /** Event-loop delay (p99 over a sampling window) above which the loop is saturated. */
  maxDelay: durationMs({ min: 1, max: 60_000 }).optional(),
});

const criticalPathSchema = checkedString(
  (s) => s === '*' || /^\/[^\s?#*]*\*?$/.test(s),
  (s) => `invalid path ${describeValue(s)} (an exact path like /healthz, a prefix like /pay*, or *)`,
  1024,
);

export const overloadSchema = z.strictObject({
  eventLoop: z.union([z.boolean(), eventLoopSchema]).optional(),
  concurrency: z.union([z.boolean(), concurrencySchema]).optional(),
  /** Refuse a request whose propagated deadline has passed or is shorter than the recent service time. */
  deadline: z.boolean().optional(),
  /** Requests to these paths are shed last. */
  critical: z.array(criticalPathSchema).max(256).optional(),
});
export type RawOverload = z.output<typeof overloadSchema>;

export const adaptiveConcurrencySchema = z
  .strictObject({
    ...limitFields,
    /** How long an excess call may wait for a slot (within its deadline) before failing; 0 = fail fast. */
    maxWait: durationMs({ max: 60_000 }).optional(),
  })
  .superRefine(checkBounds);
export type RawAdaptiveConcurrency = z.output<typeof adaptiveConcurrencySchema>;

/**
 * Schemas of the resilience and traffic policy blocks that Services and routes share: retries,
 * circuit breaker, outlier detection, rate limit, connection pool and fault injection.
 *
 * Fields stay optional here; `normalize.ts` fills the defaults (and documents where they come
 * from), because a route's `retries` overrides only the fields it writes.
 */

import { z } from 'zod';
import { durationMs, grpcStatusSchema, intSchema, percentSchema, retryConditionSchema } from './schema-common.js';

const MIB = 1024 * 1024;

const backoffSchema = z
  .strictObject({
    base: durationMs().optional(),
    max: durationMs().optional(),
  })
  .superRefine((b, ctx) => {
    if (b.base !== undefined && b.max !== undefined && b.max < b.base) {
      ctx.addIssue({ code: 'custom', path: ['max'], input: b.max, message: `backoff max (${b.max}ms) is below base (${b.base}ms)` });
    }
  });

const budgetSchema = z.strictObject({
  /** Retries as a fraction of requests. Finagle allows up to 10x (1000%). */
  ratio: z.number().min(0).max(10).optional(),
  minPerSecond: intSchema(0, 100_000).optional(),
  /** Finagle's RetryBudget requires a TTL between 1 and 60 seconds. */
  ttl: durationMs({ min: 1000, max: 60_000 }).optional(),
});

export const retriesSchema = z.strictObject({
  attempts: intSchema(1, 10).optional(),
  perTryTimeout: durationMs({ positive: true }).optional(),
  on: z.array(retryConditionSchema).min(1).max(64).optional(),
  backoff: backoffSchema.optional(),
  budget: budgetSchema.optional(),
  maxReplayBytes: intSchema(0, 64 * MIB).optional(),
});
export type RawRetries = z.output<typeof retriesSchema>;

export const circuitBreakerSchema = z.strictObject({
  errorThresholdPercent: z.number().gt(0).max(100).optional(),
  volumeThreshold: intSchema(1, 1_000_000).optional(),
  resetTimeout: durationMs({ positive: true }).optional(),
  window: durationMs({ min: 100 }).optional(),
});
export type RawCircuitBreaker = z.output<typeof circuitBreakerSchema>;

const outlierObjectSchema = z
  .strictObject({
    consecutiveFailures: intSchema(1, 1_000_000).optional(),
    ejectionTime: durationMs({ positive: true }).optional(),
    maxEjectionTime: durationMs({ positive: true }).optional(),
    maxEjectedPercent: percentSchema.optional(),
  })
  .superRefine((o, ctx) => {
    if (o.ejectionTime !== undefined && o.maxEjectionTime !== undefined && o.maxEjectionTime < o.ejectionTime) {
      ctx.addIssue({
        code: 'custom',
        path: ['maxEjectionTime'],
        input: o.maxEjectionTime,
        message: `maxEjectionTime (${o.maxEjectionTime}ms) is below ejectionTime (${o.ejectionTime}ms)`,
      });
    }
  });

/** Outlier detection: a block, `true` (the defaults) or `false` (off). */
export const outlierDetectionSchema = z.union([z.boolean(), outlierObjectSchema]);
export type RawOutlierDetection = z.output<typeof outlierDetectionSchema>;

export const rateLimitSchema = z.strictObject({
  requestsPerSecond: z.number().gt(0).max(10_000_000),
  burst: intSchema(1, 100_000_000).optional(),
  scope: z.enum(['instance', 'global']).optional(),
});
export type RawRateLimit = z.output<typeof rateLimitSchema>;

export const connectionSchema = z.strictObject({
  maxConnections: intSchema(1, 100_000).optional(),
  connectTimeout: durationMs({ positive: true }).optional(),
  keepAliveTimeout: durationMs({ positive: true }).optional(),
});
export type RawConnection = z.output<typeof connectionSchema>;

const delaySchema = z.strictObject({
  duration: durationMs(),
  percent: percentSchema.optional(),
});

const abortSchema = z
  .strictObject({
    status: intSchema(200, 599).optional(),
    percent: percentSchema.optional(),
    grpcStatus: grpcStatusSchema.optional(),
  })
  .refine((a) => a.status !== undefined || a.grpcStatus !== undefined, {
    error: 'abort needs a status (HTTP) or a grpcStatus',
  });

export const faultSchema = z
  .strictObject({
    delay: delaySchema.optional(),
    abort: abortSchema.optional(),
  })
  .refine((f) => f.delay !== undefined || f.abort !== undefined, { error: 'fault needs a delay or an abort' });
export type RawFault = z.output<typeof faultSchema>;

/**
 * Schema of the Mesh document's `spec`: identity (trust domain, mTLS mode, certificate TTL),
 * tracing, DNS resolution settings and the Redis used by global rate limits. At most one Mesh
 * document per configuration (`assemble.ts` checks); without one, `normalize.ts` uses defaults.
 */

import { z } from 'zod';
import { dnsServerProblem } from './address.js';
import { describeValue } from './issues.js';
import { checkedString, durationMs, mtlsSchema } from './schema-common.js';

const TRUST_DOMAIN = /^[a-z0-9](?:[a-z0-9._-]*[a-z0-9])?$/;

const dnsServerSchema = z.string().superRefine((s, ctx) => {
  const problem = dnsServerProblem(s);
  if (problem !== undefined) ctx.addIssue({ code: 'custom', input: s, message: `DNS server ${describeValue(s)} ${problem}` });
});

const redisUrlSchema = checkedString(
  (s) => {
    if (!/^rediss?:\/\//.test(s)) return false;
    try {
      return new URL(s).hostname !== '';
    } catch {
      return false;
    }
  },
  (s) => `invalid Redis URL ${describeValue(s)} (redis://host:port or rediss://host:port)`,
  2048,
);

export const meshSpecSchema = z.strictObject({
  trustDomain: checkedString(
    (s) => TRUST_DOMAIN.test(s),
    (s) => `invalid trust domain ${describeValue(s)} (lowercase letters, digits, ".", "-", "_", as SPIFFE requires)`,
    255,
  ).optional(),
  mtls: mtlsSchema.optional(),
  /** Certificates renew at two thirds of their life; below a minute that is a renewal storm. */
  certificateTTL: durationMs({ min: 60_000, max: 366 * 86_400_000 }).optional(),
  tracing: z
    .strictObject({
      sampling: z.number().min(0).max(1).optional(),
      propagation: z.array(z.enum(['tracecontext', 'b3'])).min(1).max(2).optional(),
      otlp: z
        .strictObject({
          endpoint: checkedString(
            (s) => {
              try {
                const u = new URL(s);
                return (u.protocol === 'http:' || u.protocol === 'https:') && u.hostname !== '';
              } catch {
                return false;
              }
            },
            (s) => `invalid OTLP endpoint ${describeValue(s)} (http(s)://host:port/v1/traces)`,
            2048,
          ),
          headers: z.record(z.string(), z.string()).optional(),
        })
        .optional(),
    })
    .optional(),
  dns: z
    .strictObject({
      servers: z.array(dnsServerSchema).min(1).max(16).optional(),
      refreshInterval: durationMs({ min: 100 }).optional(),
      minTtl: durationMs().optional(),
    })
    .optional(),
  redis: z.strictObject({ url: redisUrlSchema }).optional(),
});
export type RawMeshSpec = z.output<typeof meshSpecSchema>;

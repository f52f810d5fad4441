/**
 * Schema of one route in a Service's `routes` list: match, rewrite, weighted backends, mirror,
 * fault, timeout, retries, rate limit and hash key. Checks that span routes (duplicate names,
 * shadowing) live in `service-checks.ts`; defaults in `normalize-route.ts`.
 *
 * Bounds (docs/security.md, "DoS through config"): at most 64 values per match list, 32 header and
 * 32 query matchers, 64 backends; regexes compile with RE2 (`config-regex.ts`).
 */

import { z } from 'zod';
import { isAuthority } from './address.js';
import { describeValue } from './issues.js';
import {
  checkedString,
  durationMs,
  headerNameSchema,
  isHeaderName,
  labelsSchema,
  methodSchema,
  nameSchema,
  percentSchema,
  regexSchema,
  stringOrList,
  urlPathSchema,
  intSchema,
} from './schema-common.js';
import { faultSchema, rateLimitSchema, retriesSchema } from './schema-policy.js';

const MAX_LIST = 64;
const MAX_MATCHERS = 32;

/** A header or query matcher: a string (exact) or one of `{ exact }`, `{ regex }`, `{ present }`. */
const valueMatchSchema = z.union([
  z.string(),
  z
    .strictObject({
      exact: z.string().optional(),
      regex: regexSchema.optional(),
      present: z.boolean().optional(),
    })
    .superRefine((m, ctx) => {
      const set = [m.exact, m.regex, m.present].filter((x) => x !== undefined).length;
      if (set !== 1) {
        ctx.addIssue({ code: 'custom', input: m, message: 'a matcher takes exactly one of exact, regex or present' });
      }
    }),
]);
export type RawValueMatch = z.output<typeof valueMatchSchema>;

function matcherMap(kind: 'header' | 'query') {
  return z.record(z.string(), valueMatchSchema).superRefine((map, ctx) => {
    const keys = Object.keys(map);
    if (keys.length > MAX_MATCHERS) {
      ctx.addIssue({ code: 'custom', input: map, message: `has ${keys.length} ${kind} matchers (at most ${MAX_MATCHERS})` });
    }
    const seen = new Set<string>();
    for (const key of keys) {
      const valid = kind === 'header' ? isHeaderName(key) : key.length > 0 && key.length <= 256;
      if (!valid) ctx.addIssue({ code: 'custom', path: [key], input: key, message: `invalid ${kind} name ${describeValue(key)}` });
      // Header names are case-insensitive: `X-Beta` and `x-beta` are the same header.
      const folded = kind === 'header' ? key.toLowerCase() : key;
      if (seen.has(folded)) ctx.addIssue({ code: 'custom', path: [key], input: key, message: `${kind} ${describeValue(key)} is matched twice` });
      seen.add(folded);
    }
  });
}

export const matchSchema = z.strictObject({
  path: stringOrList(urlPathSchema, MAX_LIST).optional(),
  pathPrefix: stringOrList(urlPathSchema, MAX_LIST).optional(),
  pathRegex: stringOrList(regexSchema, MAX_LIST).optional(),
  methods: stringOrList(methodSchema, MAX_LIST).optional(),
  headers: matcherMap('header').optional(),
  query: matcherMap('query').optional(),
});
export type RawMatch = z.output<typeof matchSchema>;

const backendSchema = z.strictObject({
  subset: labelsSchema.optional(),
  weight: z.number().min(0).max(1_000_000).optional(),
});

const rewriteSchema = z
  .strictObject({
    path: urlPathSchema.optional(),
    authority: checkedString(isAuthority, (s) => `invalid authority ${describeValue(s)} (host or host:port)`).optional(),
  })
  .refine((r) => r.path !== undefined || r.authority !== undefined, { error: 'rewrite needs a path or an authority' });

const mirrorSchema = z.strictObject({
  subset: labelsSchema.optional(),
  percent: percentSchema.optional(),
  maxBodyBytes: intSchema(0, 64 * 1024 * 1024).optional(),
});

export const routeSchema = z.strictObject({
  name: nameSchema,
  match: matchSchema.optional(),
  rewrite: rewriteSchema.optional(),
  backends: z.array(backendSchema).min(1).max(MAX_LIST).optional(),
  mirror: mirrorSchema.optional(),
  fault: faultSchema.optional(),
  timeout: durationMs().optional(),
  retries: retriesSchema.optional(),
  rateLimit: rateLimitSchema.optional(),
  hashOn: z.strictObject({ header: headerNameSchema }).optional(),
});
export type RawRoute = z.output<typeof routeSchema>;

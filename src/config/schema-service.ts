/**
 * Schema of a Service document's `spec`: protocol, where endpoints come from (static list, DNS,
 * or neither = the registry), balancing, resilience policy, routes and the inbound side.
 *
 * Static endpoint addresses are parsed and policed here (`address.ts`): a refused address is an
 * error on its field. `dns` is written as a string (`products.shop.svc:8080` for A/AAAA,
 * `_http._tcp.products.shop.svc` for SRV) or as `{ name, port, type, labels }`; both forms come
 * out as the object.
 */

import { z } from 'zod';
import { isDnsName, parseEndpointAddress, parsePort } from './address.js';
import { describeValue } from './issues.js';
import { LIMITS } from './limits.js';
import { checkedString, durationMs, intSchema, labelsSchema, methodSchema, mtlsSchema, stringOrList } from './schema-common.js';
import {
  circuitBreakerSchema,
  connectionSchema,
  faultSchema,
  outlierDetectionSchema,
  rateLimitSchema,
  retriesSchema,
} from './schema-policy.js';
import { routeSchema } from './schema-route.js';
import { adaptiveConcurrencySchema, overloadSchema } from './schema-overload.js';

export const PROTOCOLS = ['http', 'http2', 'grpc', 'tcp'] as const;
export const LOAD_BALANCERS = ['round-robin', 'random', 'least-request', 'ewma', 'ring-hash'] as const;

const addressSchema = z.string().transform((text, ctx) => {
  const parsed = parseEndpointAddress(text);
  if (typeof parsed === 'string') {
    ctx.addIssue({ code: 'custom', input: text, message: `refused endpoint address ${describeValue(text)}: ${parsed}` });
    return z.NEVER;
  }
  return parsed;
});

const endpointSchema = z.union([
  addressSchema.transform((hp) => ({ ...hp, labels: {} as Record<string, string> })),
  z.strictObject({ address: addressSchema, labels: labelsSchema.optional() }).transform((e) => ({
    host: e.address.host,
    port: e.address.port,
    labels: e.labels ?? {},
  })),
]);

const dnsNameSchema = checkedString(isDnsName, (s) => `invalid DNS name ${describeValue(s)}`);

export interface RawDns {
  name: string;
  port: number | undefined;
  type: 'a' | 'srv';
  labels: Record<string, string>;
}

const dnsStringSchema = z.string().transform((text, ctx): RawDns => {
  const fail = (message: string): never => {
    ctx.addIssue({ code: 'custom', input: text, message });
    return z.NEVER;
  };
  const colon = text.lastIndexOf(':');
  const name = colon < 0 ? text : text.slice(0, colon);
  if (!isDnsName(name)) return fail(`invalid DNS name ${describeValue(name)}`);
  if (name.startsWith('_')) {
    if (colon >= 0) return fail(`SRV name ${describeValue(text)} takes no port (SRV records carry their own)`);
    return { name, port: undefined, type: 'srv', labels: {} };
  }
  if (colon < 0) {
    return fail(`dns ${describeValue(text)} needs a port (products.shop.svc:8080), unless it is an SRV name (_http._tcp.products.shop.svc)`);
  }
  const port = parsePort(text.slice(colon + 1));
  if (port === undefined) return fail(`port ${describeValue(text.slice(colon + 1))} is not 1..65535`);
  return { name, port, type: 'a', labels: {} };
});

const dnsObjectSchema = z
  .strictObject({
    name: dnsNameSchema,
    port: intSchema(1, 65535).optional(),
    type: z.enum(['a', 'srv']).optional(),
    labels: labelsSchema.optional(),
  })
  .transform((d, ctx): RawDns => {
    const type = d.type ?? (d.name.startsWith('_') ? 'srv' : 'a');
    if (type === 'a' && d.port === undefined) {
      ctx.addIssue({ code: 'custom', path: ['port'], input: d, message: 'A/AAAA lookups need a port' });
    }
    if (type === 'srv' && d.port !== undefined) {
      ctx.addIssue({ code: 'custom', path: ['port'], input: d.port, message: 'SRV records carry their own ports: remove port' });
    }
    return { name: d.name, port: d.port, type, labels: d.labels ?? {} };
  });

const callerSchema = checkedString(
  (s) => s === '*' || /^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$/.test(s),
  (s) => `invalid caller ${describeValue(s)} (a service name, or * for any authenticated caller)`,
  63,
);

const authPathSchema = checkedString(
  (s) => s === '*' || /^\/[^\s?#*]*\*?$/.test(s),
  (s) => `invalid path ${describeValue(s)} (an exact path like /list, a prefix like /list*, or *)`,
  LIMITS.maxStringLength,
);

const authRuleSchema = z.strictObject({
  from: stringOrList(callerSchema, 1000).optional(),
  methods: stringOrList(methodSchema, 64).optional(),
  paths: stringOrList(authPathSchema, 1000).optional(),
});
export type RawAuthRule = z.output<typeof authRuleSchema>;

const authorizationSchema = z
  .strictObject({
    allow: z.array(authRuleSchema).min(1).max(1000).optional(),
    deny: z.array(authRuleSchema).min(1).max(1000).optional(),
  })
  .refine((a) => a.allow !== undefined || a.deny !== undefined, { error: 'authorization needs allow or deny rules' });

const inboundSchema = z.strictObject({
  authorization: authorizationSchema.optional(),
  rateLimit: rateLimitSchema.optional(),
  fault: faultSchema.optional(),
  overload: overloadSchema.optional(),
});

export const serviceSpecSchema = z.strictObject({
  protocol: z.enum(PROTOCOLS).optional(),
  endpoints: z.array(endpointSchema).min(1).max(LIMITS.maxListLength).optional(),
  dns: z.union([dnsStringSchema, dnsObjectSchema]).optional(),
  mtls: mtlsSchema.optional(),
  loadBalancer: z
    .enum(LOAD_BALANCERS, {
      error: (iss) => `unknown load balancer ${describeValue(iss.input)} (expected ${LOAD_BALANCERS.join(' | ')})`,
    })
    .optional(),
  timeout: durationMs().optional(),
  retries: retriesSchema.optional(),
  circuitBreaker: circuitBreakerSchema.optional(),
  outlierDetection: outlierDetectionSchema.optional(),
  rateLimit: rateLimitSchema.optional(),
  connection: connectionSchema.optional(),
  routes: z.array(routeSchema).max(LIMITS.maxRoutesPerService).optional(),
  inbound: inboundSchema.optional(),
  adaptiveConcurrency: adaptiveConcurrencySchema.optional(),
});
export type RawServiceSpec = z.output<typeof serviceSpecSchema>;
export type RawInbound = z.output<typeof inboundSchema>;

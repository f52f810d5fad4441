/**
 * Checks a report that arrived on an instance stream (`unknown` JSON) and returns it typed, or
 * undefined with the reason. Reports are telemetry from a possibly newer (or older) agent: a
 * field this control plane does not know is dropped, not refused, so a mixed-version fleet keeps
 * reporting; a field it knows with the wrong type or out of bounds refuses the whole report.
 * The bounds are the reporter's (MAX_EDGES...), so one report costs a bounded amount to ingest.
 */
import { z } from 'zod';
import { MAX_DESTINATIONS, MAX_EDGES, MAX_ENDPOINTS } from '../../controlplane-client/fleet-report.js';
import type { FleetReport } from '../../controlplane-client/fleet-report.js';

/** Service names are DNS labels (`unknown` is one); nothing a report names may hold control characters (it ends up in terminals and pages). */
const service = z.string().regex(/^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/, 'not a service name');
const text = (max: number) => z.string().min(1).max(max).regex(/^[^\u0000-\u001f\u007f-\u009f]*$/, 'control characters');
const count = z.number().finite().nonnegative();
const counts = z.record(z.string().regex(/^[a-z0-9_-]{1,64}$/, 'not an outcome or status class'), count).refine((r) => Object.keys(r).length <= 64, 'at most 64 keys');

const edge = z.object({
  dir: z.enum(['out', 'in']),
  from: service,
  to: service,
  route: text(253),
  protocol: z.enum(['http', 'grpc']),
  requests: count,
  outcomes: counts,
  status: counts,
  latency: z.object({ counts: z.array(count).max(64), sum: count }),
});

const destination = z.object({
  service,
  breaker: z.enum(['closed', 'open', 'half-open']).optional(),
  endpoints: z.object({ healthy: count, ejected: count }),
  endpointList: z
    .array(z.object({ id: text(253), ejected: z.boolean(), outstanding: count, ewmaMs: count, labels: z.record(text(63), z.string().max(253).regex(/^[^\u0000-\u001f\u007f-\u009f]*$/, 'control characters')) }))
    .max(MAX_ENDPOINTS)
    .optional(),
  ejections: count,
  retries: count,
  rateLimited: count,
});

const report = z.object({
  v: z.literal(1),
  interval: z.object({ from: count, to: count }),
  bounds: z.array(z.number().positive()).min(1).max(63),
  edges: z.array(edge).max(MAX_EDGES),
  destinations: z.array(destination).max(MAX_DESTINATIONS),
  certificateNotAfter: count.optional(),
  droppedEdges: count.optional(),
});

export type ParsedReport = { ok: true; report: FleetReport } | { ok: false; reason: string };

/** The report, or why it was refused (first issue, with its path). */
export function parseFleetReport(value: unknown): ParsedReport {
  const r = report.safeParse(value);
  if (r.success) return { ok: true, report: r.data as FleetReport };
  const i = r.error.issues[0];
  return { ok: false, reason: i === undefined ? 'invalid report' : `${i.path.join('.') || '(report)'}: ${i.message}` };
}

/**
 * The mesh's inbound side for grpc-js servers, as a server interceptor (grpc-js >= 1.10), in
 * the documented order (docs/architecture.md): TLS identity → authorization → rate limit → fault → trace extract →
 * metrics → handler.
 *
 * - Identity: the caller's service from its verified client certificate (the SPIFFE URI SAN in
 *   this mesh's trust domain), else `unknown` (plaintext, or no usable identity).
 * - Authorization: this service's `inbound.authorization` by caller, method (POST) and path
 *   (`/pkg.Service/Method`); refused calls end with PERMISSION_DENIED before the handler runs.
 * - Rate limit: the inbound limiter; refused calls end with RESOURCE_EXHAUSTED and a
 *   `retry-after-ms` trailer.
 * - Fault: `inbound.fault` delays or aborts (with `grpcStatus`, else its HTTP status mapped).
 * - Trace and deadline: a SERVER span, child of the caller's `traceparent`/B3 metadata, and the
 *   call's deadline (from `grpc-timeout`) become the ambient context the handler runs in, so its
 *   outbound calls (HTTP or gRPC) continue the trace and inherit the deadline.
 * - Metrics: `trellis_server_requests_total` and `..._duration_seconds`, with `route` = the
 *   method path (bounded by the server's registered methods), `method` POST, `status_code` the
 *   numeric gRPC code, and outcome `forbidden`, `rate_limited`, `fault`, `cancelled`, else
 *   `failure` for a server-side error code and `success` otherwise.
 */
import { Metadata, ServerInterceptingCall, status as Status } from '@grpc/grpc-js';
import type { Deadline, ServerInterceptingCallInterface, ServerInterceptor, StatusObject } from '@grpc/grpc-js';
import { runWithAmbient } from '../core/ambient.js';
import type { AmbientContext } from '../core/ambient.js';
import type { Clock, Random } from '../core/clock.js';
import type { InboundPolicy } from '../server/inbound-stack.js';
import type { MeshMetrics } from '../observability/metrics.js';
import type { MeshTracer } from '../observability/tracer.js';
import { UNKNOWN_CALLER } from './authorization.js';
import type { Authorizer } from './authorization.js';
import { serviceOfCertificate } from './identity.js';
import { ERROR_KEY, FAULT_KEY, grpcCodeForHttpStatus, grpcCodeLabel, grpcCodeOf, SERVER_FAILURE_CODES } from './status.js';
import { startGrpcServerSpan } from './tracing.js';
import type { GrpcServerSpan } from './tracing.js';
import { GRPC_METHOD } from './grpc-stack.js';
import { SHED_HEADER } from '../core/shed.js';
import type { Admission } from '../server/overload-guard.js';

/** What the server interceptor needs of the mesh, read per call so config changes apply at once. */
export interface GrpcServerSide {
  readonly service: string | undefined;
  readonly clock: Clock;
  readonly random: Random;
  /** The inbound policy in force (rate limiter, fault). */
  policy(): InboundPolicy | undefined;
  /** The authorization of the config in force. */
  authorizer(): Authorizer;
  /** The trust domain callers' certificates must be from. */
  trustDomain(): string;
  readonly metrics: MeshMetrics | undefined;
  readonly tracer: MeshTracer | undefined;
}

function monotonic(deadline: Deadline, clock: Clock): number | undefined {
  const wall = deadline instanceof Date ? deadline.getTime() : deadline;
  return Number.isFinite(wall) ? clock.now() + (wall - clock.wall()) : undefined;
}

function hit(percent: number, random: Random): boolean {
  return percent >= 100 || (percent > 0 && random() * 100 < percent);
}

function refusal(code: number, details: string, errorCode: string, extra?: Record<string, string>): StatusObject {
  const metadata = new Metadata();
  metadata.set(ERROR_KEY, errorCode);
  if (extra !== undefined) for (const k in extra) metadata.set(k, extra[k] as string);
  return { code, details, metadata };
}

/**
 * Builds the server interceptor.
 *
 * @example
 * const server = new grpc.Server({ interceptors: [meshServerInterceptor(side)] });
 */
export function meshServerInterceptor(side: GrpcServerSide): ServerInterceptor {
  const { clock, random, metrics, tracer } = side;
  const service = side.service;
  const serviceLabel = service ?? 'unknown';
  return (descriptor, call: ServerInterceptingCallInterface) => {
    const start = clock.now();
    const path = descriptor.path;
    let caller = UNKNOWN_CALLER;
    let outcome: string | undefined;
    let span: GrpcServerSpan | undefined;
    let ambient: AmbientContext | undefined;
    let refused = false;
    let recorded = false;
    let admission: Admission | undefined;
    const record = (code: number, details: string): void => {
      if (recorded) return;
      recorded = true;
      admission?.done(clock.now(), code !== Status.CANCELLED);
      const o = outcome ?? (code === Status.CANCELLED ? 'cancelled' : SERVER_FAILURE_CODES.has(code) ? 'failure' : 'success');
      metrics?.recordServerRequest(serviceLabel, caller, path, GRPC_METHOD, grpcCodeLabel(code), o, (clock.now() - start) / 1000);
      span?.end(code, details);
    };
    const inContext = <T>(fn: () => T): T => {
      const a = ambient;
      if (a === undefined) return fn();
      const s = span;
      return runWithAmbient(a, s === undefined ? fn : () => s.run(fn));
    };
    const intercepting: ServerInterceptingCall = new ServerInterceptingCall(call, {
      start: (next) => {
        next({
          onReceiveMetadata: (metadata, proceed) => {
            caller = serviceOfCertificate(call.getAuthContext().sslPeerCertificate, side.trustDomain()) ?? UNKNOWN_CALLER;
            const decision = side.authorizer()(caller, GRPC_METHOD, path);
            if (!decision.allowed) {
              refused = true;
              outcome = 'forbidden';
              intercepting.sendStatus(refusal(Status.PERMISSION_DENIED, `TRELLIS_FORBIDDEN: ${decision.reason} [service ${serviceLabel}]`, 'TRELLIS_FORBIDDEN'));
              return;
            }
            const policy = side.policy();
            const limiter = policy?.limiter;
            if (limiter !== undefined && !limiter.tryAcquire()) {
              refused = true;
              outcome = 'rate_limited';
              metrics?.rateLimited(serviceLabel, 'unknown', 'inbound');
              const retryAfterMs = Math.max(0, Math.ceil(limiter.retryAfterMs()));
              intercepting.sendStatus(refusal(Status.RESOURCE_EXHAUSTED, `TRELLIS_RATE_LIMITED: inbound rate limit of ${serviceLabel} exceeded (${limiter.description}); retry after ${retryAfterMs} ms`, 'TRELLIS_RATE_LIMITED', { 'retry-after-ms': String(retryAfterMs) }));
              return;
            }
            const guard = policy?.overload;
            if (guard !== undefined) {
              const verdict = guard.admit(path, monotonic(call.getDeadline(), clock), clock.now());
              if (typeof verdict === 'string') {
                refused = true;
                outcome = 'overloaded';
                metrics?.shed(serviceLabel, verdict);
                // UNAVAILABLE with the shed marker: nothing ran, a Trellis caller retries elsewhere.
                intercepting.sendStatus(refusal(Status.UNAVAILABLE, `TRELLIS_OVERLOADED: ${serviceLabel} shed the call (${verdict})`, 'TRELLIS_OVERLOADED', { [SHED_HEADER]: verdict }));
                return;
              }
              admission = verdict;
            }
            const go = (): void => {
              if (refused) return;
              if (tracer !== undefined) span = startGrpcServerSpan(tracer, metadata, path, service, call.getPeer());
              ambient = { deadline: monotonic(call.getDeadline(), clock), service, trace: span?.ambientTrace };
              inContext(() => proceed(metadata));
            };
            const fault = policy?.fault;
            if (fault !== undefined) {
              const abort = fault.abort;
              if (abort !== undefined && hit(abort.percent, random)) {
                refused = true;
                outcome = 'fault';
                const code = (abort.grpcStatus !== undefined ? grpcCodeOf(abort.grpcStatus) : undefined) ?? grpcCodeForHttpStatus(abort.status);
                const md = new Metadata();
                md.set(FAULT_KEY, 'abort');
                intercepting.sendStatus({ code, details: 'fault filter abort', metadata: md });
                return;
              }
              const delay = fault.delay;
              if (delay !== undefined && delay.durationMs > 0 && hit(delay.percent, random)) {
                setTimeout(go, delay.durationMs);
                return;
              }
            }
            go();
          },
          onReceiveMessage: (message, proceed) => {
            if (!refused) inContext(() => proceed(message));
          },
          onReceiveHalfClose: (proceed) => {
            if (!refused) inContext(() => proceed());
          },
          onCancel: () => {
            if (outcome === undefined) outcome = 'cancelled';
            record(Status.CANCELLED, 'cancelled by the client');
          },
        });
      },
      sendStatus: (status, next) => {
        record(status.code, status.details);
        next(status);
      },
    });
    return intercepting;
  };
}

/**
 * Metrics (and, when configured, tracing) bound to the mesh's stacks: implements the outbound
 * hook (`OutboundObservability`) and the inbound one (`InboundObservability`), so neither stack
 * imports prom-client or OpenTelemetry.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Clock } from '../core/clock.js';
import type { Classifier } from '../core/classify.js';
import type { StackModule } from '../core/stack.js';
import type { ServiceSpec } from '../config/types.js';
import type { HttpRequest } from '../client/http-request.js';
import type { HttpResponse } from '../client/http-transport.js';
import type { OutboundObservability } from '../client/outbound-observability.js';
import type { CoreObservability } from '../client/outbound-core.js';
import type { CoreAccessLog } from '../client/call-access-log.js';
import type { MeshTracer } from './tracer.js';
import type { InboundObservability, InboundLabels, InboundSpan } from '../server/inbound-stack.js';
import type { MeshMetrics } from './metrics.js';
import { httpMetricsModules } from './metrics-modules.js';
import type { HttpMetricsModules } from './metrics-modules.js';
import { serverMetrics } from './metrics-server.js';
import type { ServerMetricsHook } from './metrics-server.js';

type Module = StackModule<HttpRequest, HttpResponse>;

/** Tracing and access-log pieces, bound to the mesh's tracer by meshClient. */
export interface TracingHooks {
  /** The tracer the attempt module injects from (the hot path injects from it directly). */
  readonly tracer: MeshTracer;
  attemptModule(): Module;
  startServerTrace(req: IncomingMessage, res: ServerResponse, service: string | undefined): InboundSpan | undefined;
  /** The access log, when it is on: its described module, the hot path's writer and the inbound hook. */
  readonly accessLog?: {
    /** Access log module for logical requests (the described stack). */
    module(classify: Classifier<HttpResponse>): Module;
    /** The outbound access log of the hot path. */
    readonly core: CoreAccessLog;
    /** Inbound access log hook. */
    inbound(req: IncomingMessage, res: ServerResponse, service: string | undefined): void;
  };
}

export class MeshObservability implements OutboundObservability, InboundObservability {
  readonly metrics: MeshMetrics;
  readonly #modules: HttpMetricsModules;
  readonly #clock: Clock;
  readonly #servers = new Map<string, ServerMetricsHook>();
  #tracing: TracingHooks | undefined;

  constructor(metrics: MeshMetrics, clock: Clock, tracing?: TracingHooks) {
    this.metrics = metrics;
    this.#clock = clock;
    this.#modules = httpMetricsModules(metrics, clock);
    this.#tracing = tracing;
  }

  requestModules(_spec: ServiceSpec, classify: Classifier<HttpResponse>): Module[] {
    const log = this.#tracing?.accessLog?.module(classify);
    return log === undefined ? [this.#modules.request(classify)] : [this.#modules.request(classify), log];
  }

  core(): CoreObservability {
    const t = this.#tracing;
    return {
      metrics: this.metrics,
      tracer: t?.tracer,
      accessLog: t?.accessLog?.core,
    };
  }

  tryModules(_spec: ServiceSpec, classify: Classifier<HttpResponse>): Module[] {
    return [this.#modules.attempt(classify)];
  }

  attemptModules(): Module[] {
    return this.#tracing === undefined ? [] : [this.#tracing.attemptModule()];
  }

  retry(service: string, route: string, reason: string): void {
    this.metrics.retry(service, route, reason);
  }

  budgetExhausted(service: string): void {
    this.metrics.retryBudgetExhausted(service);
  }

  rateLimited(service: string, route: string): void {
    this.metrics.rateLimited(service, route, 'outbound');
  }

  invalidArgument(service: string, method: string): void {
    // No status (nothing was answered) and no duration worth timing: it never left the process.
    this.metrics.recordClientRequest(service, 'unknown', method, '', 'invalid_argument', 0);
  }

  // Inbound side.
  startTrace(req: IncomingMessage, res: ServerResponse, service: string | undefined): InboundSpan | undefined {
    return this.#tracing?.startServerTrace(req, res, service);
  }

  observe(req: IncomingMessage, res: ServerResponse, service: string | undefined): InboundLabels {
    const key = service ?? '';
    let hook = this.#servers.get(key);
    if (hook === undefined) {
      hook = serverMetrics(this.metrics, { clock: this.#clock, service });
      this.#servers.set(key, hook);
    }
    const labels: InboundLabels = {};
    hook(req, res, labels);
    this.#tracing?.accessLog?.inbound(req, res, service);
    return labels;
  }

  inboundRateLimited(service: string | undefined): void {
    this.metrics.rateLimited(service ?? 'unknown', 'unknown', 'inbound');
  }

  inboundShed(service: string | undefined, reason: string): void {
    this.metrics.shed(service ?? 'unknown', reason);
  }
}

/**
 * The hook through which metrics and tracing join the outbound stack without the stack knowing
 * them: modules for the logical request (above route dispatch: what the caller saw), for each
 * try (directly below retry), and for each attempt on an endpoint (backend level); plus the
 * events the resilience layers report.
 */
import type { StackModule } from '../core/stack.js';
import type { Classifier } from '../core/classify.js';
import type { ServiceSpec } from '../config/types.js';
import type { HttpRequest } from './http-request.js';
import type { HttpResponse } from './http-transport.js';
import type { CoreObservability } from './outbound-core.js';

type Module = StackModule<HttpRequest, HttpResponse>;

export interface OutboundObservability {
  /** Wrap the whole destination (route dispatch included), outermost first. */
  requestModules(spec: ServiceSpec, classify: Classifier<HttpResponse>): Module[];
  /** Directly below the retry module: once per try. */
  tryModules(spec: ServiceSpec, classify: Classifier<HttpResponse>): Module[];
  /** Backend level, between balancer and endpoint: once per attempt on a chosen endpoint. */
  attemptModules(spec: ServiceSpec, classify: Classifier<HttpResponse>): Module[];
  /** The same observability for the handler-based hot path (outbound-core.ts). */
  core(): CoreObservability;
  retry(service: string, route: string, reason: string): void;
  budgetExhausted(service: string): void;
  rateLimited(service: string, route: string): void;
  /**
   * A logical request refused at the entry for the caller's own mistake (before the stack, so no
   * module above saw it): counted once, outcome `invalid_argument`, route `unknown`.
   */
  invalidArgument(service: string, method: string): void;
}

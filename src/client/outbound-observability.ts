/**
 * The hook through which metrics and tracing join the outbound stack without the stack knowing
 * them: modules for the top of each route (logical request: what the caller saw) and for the
 * endpoint level (each attempt).
 */
import type { StackModule } from '../core/stack.js';
import type { Classifier } from '../core/classify.js';
import type { ServiceSpec } from '../config/types.js';
import type { HttpRequest } from './http-request.js';
import type { HttpResponse } from './http-transport.js';

export interface OutboundObservability {
  requestModules(spec: ServiceSpec, classify: Classifier<HttpResponse>): StackModule<HttpRequest, HttpResponse>[];
  attemptModules(spec: ServiceSpec, classify: Classifier<HttpResponse>): StackModule<HttpRequest, HttpResponse>[];
}

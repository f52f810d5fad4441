/**
 * Inbound context: turns what a caller sent (today the remaining deadline in
 * `x-trellis-timeout-ms`) into the ambient context the handler's outbound calls inherit.
 * A budget is honoured only as a shortening: a caller can never extend our own limits.
 */
import type { IncomingHttpHeaders } from 'node:http';
import type { Clock } from '../core/clock.js';
import { DEADLINE_HEADER, parseDeadlineHeader } from '../core/ambient.js';
import type { AmbientContext } from '../core/ambient.js';

export function inboundAmbient(headers: IncomingHttpHeaders, clock: Clock, service: string | undefined): AmbientContext {
  const budget = parseDeadlineHeader(headers[DEADLINE_HEADER]);
  return { deadline: budget === undefined ? undefined : clock.now() + budget, service };
}

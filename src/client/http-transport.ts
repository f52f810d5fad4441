/**
 * The HTTP transport: the terminal Service of the outbound HTTP stack. Sends one attempt to
 * the endpoint the balancer chose, through that endpoint's undici Pool, with the attempt's
 * AbortSignal and the remaining deadline in `x-trellis-timeout-ms`. Transport failures become
 * typed errors naming service and endpoint — on the response body too (response-body.ts) —;
 * our own aborts surface as the error that caused them (a TimeoutError, an AbortedError). When a
 * reset of this attempt would be retried, a small body of known length is read whole before the
 * attempt resolves, so a reset mid-body fails the attempt rather than the caller's read.
 */
import type { Dispatcher } from 'undici';
import type { Clock } from '../core/clock.js';
import { DEADLINE_HEADER } from '../core/ambient.js';
import type { Service } from '../core/service.js';
import { TimeoutError, UpstreamError } from '../core/errors.js';
import type { HttpRequest } from './http-request.js';
import { tagResponse } from './http-classify.js';
import type { PoolSet } from './pool-set.js';
import { mapTransportError } from './undici-errors.js';
import { bufferable, bufferBody, guardBody } from './response-body.js';

export type HttpResponse = Dispatcher.ResponseData;

export function httpTransport(pools: PoolSet, clock: Clock): Service<HttpRequest, HttpResponse> {
  return async (req, ctx) => {
    const endpoint = ctx.endpoint;
    if (endpoint === undefined) throw new UpstreamError('no endpoint chosen (balancer missing from the stack)', { service: ctx.service });
    // The headers object is the mesh's own (normalizeHeaders built it; layers that change headers
    // build new ones), and undici serializes headers when the request is created, so the mesh's
    // headers are set on it in place: no copy per attempt. Each attempt rewrites the deadline.
    const headers = req.headers;
    if (ctx.deadline !== undefined) {
      const remaining = Math.floor(ctx.deadline - clock.now());
      if (remaining <= 0) throw new TimeoutError('deadline expired before the attempt was sent', { service: ctx.service, route: ctx.route, endpoint: endpoint.id });
      headers[DEADLINE_HEADER] = String(remaining);
    }
    if (headers.host === undefined) headers.host = ctx.service;
    const pool = pools.get(endpoint);
    try {
      const res = await pool.request({
        ...req.rest,
        method: req.method as Dispatcher.HttpMethod,
        path: req.path,
        headers,
        body: req.body,
        signal: ctx.signal,
      });
      const subject = { service: ctx.service, route: ctx.route, endpoint: endpoint.id };
      guardBody(res, subject);
      if (req.classify !== undefined) tagResponse(res, req.classify(res));
      // A reset could still be retried and the caller has read nothing: finish a small body first.
      if (ctx.retriesReset && bufferable(res)) return await bufferBody(res, ctx.signal);
      return res;
    } catch (err) {
      if (ctx.signal?.aborted === true) throw ctx.signal.reason;
      throw mapTransportError(err, { service: ctx.service, route: ctx.route, endpoint: endpoint.id });
    }
  };
}

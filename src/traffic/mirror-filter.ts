/**
 * Traffic mirroring (Istio `HTTPRoute.mirror` / Envoy request shadowing): for `percent`% of
 * requests, a copy is sent fire-and-forget to the mirror subset, and its response thrown away.
 * Placement: on the route, above retry, so a logical request is mirrored at most once.
 *
 * The primary is never delayed or changed: `next` is called first and its promise returned
 * unchanged; the copy is started after it, and nothing of the copy (a slow send, an error, a
 * synchronous throw) reaches the caller — errors go to `onError`, and the copy's response body
 * is always dumped so its connection is freed.
 *
 * The copy:
 * - a new HttpRequest (the primary is not touched) with `x-trellis-mirror: 1`;
 * - hop-by-hop headers removed (docs/security.md "Smuggling"): `connection` and the headers it
 *   names, `keep-alive`, `transfer-encoding`, `te`, `trailer`, `upgrade`, `proxy-*`, and
 *   `content-length`, which undici recomputes from the in-memory body (no CL/TE conflict);
 * - `host` kept as it is. Istio appends `-shadow` to the authority; we mark copies with the
 *   header instead, so the mirror's handler sees the same request the primary's does and host-based
 *   logic in the application behaves the same (the header is what tells them apart);
 * - only when the body is replayable (absent or in memory) and at most `maxBodyBytes`; otherwise
 *   the copy is dropped (`onDrop('body')`) — a streamed body can only be read once, by the primary;
 * - its own CallContext (forked: same service and route, subset = the mirror subset, no endpoint
 *   history) with its own signal and deadline, `timeoutMs` (default 5 s) from now — not the
 *   caller's signal, so the primary finishing or being cancelled does not cut the copy short.
 *
 * Overload: at most `maxInFlight` (default 64) copies at once per filter; beyond, copies are
 * dropped (`onDrop('overload')`), never queued — a slow mirror costs a bounded amount of memory.
 */
import type { Dispatcher } from 'undici';
import type { HttpHeaders, HttpRequest } from '../client/http-request.js';
import { CallController } from '../core/call-signal.js';
import type { Clock, Random } from '../core/clock.js';
import type { CallContext } from '../core/context.js';
import { TimeoutError } from '../core/errors.js';
import type { Filter } from '../core/service.js';
import { timerDelay } from '../core/timer-limit.js';

export const MIRROR_HEADER = 'x-trellis-mirror';

export type MirrorDropReason = 'overload' | 'body';

export interface MirrorParams {
  percent: number;
  /** Endpoint labels of the mirror backend; `{}` = every endpoint. */
  subset: Record<string, string>;
  maxBodyBytes: number;
  /** Most copies in flight at once (default 64). */
  maxInFlight?: number;
  /** Deadline of one copy, in ms (default 5000). */
  timeoutMs?: number;
}

export interface MirrorDeps {
  random: Random;
  /** Sends the copy below the route level (balancer → endpoint → transport). */
  send: (req: HttpRequest, ctx: CallContext) => Promise<Dispatcher.ResponseData>;
  /** Sets the copy's `ctx.deadline` when given (the transport propagates it). */
  clock?: Clock;
  onDrop?: (reason: MirrorDropReason) => void;
  onError?: (err: unknown) => void;
}

const HOP_BY_HOP = new Set(['connection', 'keep-alive', 'transfer-encoding', 'te', 'trailer', 'upgrade', 'content-length']);

function bodyBytes(body: HttpRequest['body']): number | undefined {
  if (body === undefined || body === null) return 0;
  if (typeof body === 'string') return Buffer.byteLength(body);
  if (body instanceof Uint8Array) return body.byteLength;
  return undefined;
}

/** The copy's headers: hop-by-hop ones (and those `connection` names) removed, the mirror mark set. */
export function mirrorHeaders(headers: HttpHeaders): HttpHeaders {
  const named = new Set<string>();
  const connection = headers.connection;
  for (const v of typeof connection === 'string' ? [connection] : connection ?? []) {
    for (const token of v.split(',')) named.add(token.trim().toLowerCase());
  }
  const out: HttpHeaders = {};
  for (const [name, value] of Object.entries(headers)) {
    if (HOP_BY_HOP.has(name) || name.startsWith('proxy-') || named.has(name)) continue;
    out[name] = value;
  }
  out[MIRROR_HEADER] = '1';
  return out;
}

/** Sends copies: whether this request is sampled, and the copy itself (never throws, never waits). */
export interface MirrorSender {
  sampled(): boolean;
  /** Starts the copy of `req` (already sampled); `ctx` is the primary's, forked for the copy. */
  copy(req: HttpRequest, ctx: CallContext): void;
}

/** The mirror's sampling and copies, shared by the promise stack's filter and the hot path. */
export function mirrorSender(params: MirrorParams, deps: MirrorDeps): MirrorSender {
  const { percent, maxBodyBytes } = params;
  const maxInFlight = params.maxInFlight ?? 64;
  const timeoutMs = params.timeoutMs ?? 5000;
  const subset = Object.keys(params.subset).length > 0 ? { ...params.subset } : undefined;
  const { random, send, clock, onDrop, onError } = deps;
  const sampled = !(percent > 0) ? () => false : percent >= 100 ? () => true : () => random() * 100 < percent;
  let inFlight = 0;

  const report = (err: unknown): void => {
    try {
      onError?.(err);
    } catch {
      // A failing callback must not surface either.
    }
  };

  const startCopy = (req: HttpRequest, ctx: CallContext): void => {
    const size = req.replayable ? bodyBytes(req.body) : undefined;
    if (size === undefined || size > maxBodyBytes) {
      onDrop?.('body');
      return;
    }
    if (inFlight >= maxInFlight) {
      onDrop?.('overload');
      return;
    }
    const copy: HttpRequest = { ...req, headers: mirrorHeaders(req.headers), rest: { ...req.rest } };
    const mctx = ctx.fork();
    mctx.attempt = 1;
    mctx.avoid = undefined;
    mctx.subset = subset;
    mctx.deadline = clock === undefined ? undefined : clock.now() + timeoutMs;
    const controller = new CallController();
    mctx.signal = controller.signal;
    const timer = setTimeout(() => {
      controller.abort(new TimeoutError(`mirrored copy timed out after ${timeoutMs} ms`, { service: ctx.service, route: ctx.route }));
    }, timerDelay(timeoutMs));
    timer.unref();
    inFlight++;
    const done = (): void => {
      inFlight--;
      clearTimeout(timer);
    };
    let pending: Promise<Dispatcher.ResponseData>;
    try {
      pending = send(copy, mctx);
    } catch (err) {
      done();
      report(err);
      return;
    }
    pending.then(
      (res) => {
        res.body.dump().then(done, (err: unknown) => {
          done();
          report(err);
        });
      },
      (err: unknown) => {
        done();
        report(err);
      },
    );
  };

  return {
    sampled,
    copy: (req, ctx) => {
      try {
        startCopy(req, ctx);
      } catch (err) {
        report(err);
      }
    },
  };
}

export function mirrorFilter(params: MirrorParams, deps: MirrorDeps): Filter<HttpRequest, Dispatcher.ResponseData> {
  return mirrorFilterOf(mirrorSender(params, deps));
}

/** The promise stack's filter over a sender: the primary first, then (when sampled) the copy. */
export function mirrorFilterOf(sender: MirrorSender): Filter<HttpRequest, Dispatcher.ResponseData> {
  return (req, ctx, next) => {
    const primary = next(req, ctx);
    if (sender.sampled()) sender.copy(req, ctx);
    return primary;
  };
}

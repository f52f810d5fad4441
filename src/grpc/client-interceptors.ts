/**
 * The mesh's grpc-js client interceptor: runs each call through its destination's compiled gRPC
 * path (`unary-core.ts`, described by `grpc-stack.ts`), so a gRPC call gets what an HTTP call
 * gets — deadline propagation, routing and fault injection on `/pkg.Service/Method`, retries on
 * gRPC codes within the destination's shared retry budget, outbound rate limit, the shared
 * circuit breaker, balancing with outlier ejection, metrics and a span per attempt with
 * `traceparent`/B3 metadata.
 *
 * A unary call is a `UnaryCall` (unary-call.ts), a streaming call a `StreamCall`
 * (stream-call.ts): one object per call that applies the destination's policies in the
 * described order with no promise per layer, each attempt's call opened below through
 * `nextCall` with the attempt itself as its listener. A server-streaming call (whose client
 * sends one message) starts at `halfClose`; a call with a request stream starts at once and its
 * messages flow through a `StreamRelay` (retried only transparently).
 *
 * Deadline: the call's own (`deadline` option, or a parent server call's), the ambient inbound
 * deadline (a Trellis-served request the call is made while handling) and, for a unary call,
 * the route timeout — the soonest wins, and each attempt is sent with it as `grpc-timeout`.
 *
 * Which destination: `clientOptions('products')` binds it. Without a service the interceptor
 * reads the channel's target from a call it opens below (`getPeer()` of a call not yet started
 * is the channel target, in grpc-js 1.14): a unary call's first attempt then uses that call, a
 * stream cancels it; a channel whose target is not a `trellis:` target goes on through it
 * untouched. A bound interceptor reads the target the same way (a unary call from a call it
 * opens first, a stream from its first attempt's call), to know whether the Trellis picker will
 * write the deadline as `grpc-timeout` (on a plain channel the call writes it itself). The
 * picker learns each attempt's endpoint from its PickTicket (the metadata's options object), so
 * no mesh entry is ever written into the metadata.
 */
import { InterceptingCall, status as Status } from '@grpc/grpc-js';
import type { Interceptor } from '@grpc/grpc-js';
import { parseTrellisTarget } from './resolver.js';
import { StreamCall } from './stream-call.js';
import { UnaryCall } from './unary-call.js';
import type { UnaryCoreSource } from './grpc-call-base.js';

/** What the interceptor needs of the mesh: a destination's compiled path, for the config in force. */
export type GrpcClientSide = UnaryCoreSource;

/** Finds the client side serving a mesh id (the interceptor of one mesh used on another mesh's channel). */
export type ClientSideLookup = (meshId: string) => GrpcClientSide | undefined;

/**
 * The client interceptor of a mesh. With `service`, every call goes to that destination;
 * without, the destination comes from the channel's `trellis:` target (looked up with
 * `lookup` when it names another mesh), and other channels pass through.
 *
 * @example
 * const client = new Greeter(mesh.grpc.target('greeter'), mesh.grpc.credentials(),
 *   { interceptors: [meshClientInterceptor(side, 'greeter')] });
 */
export function meshClientInterceptor(side: GrpcClientSide, service: string | undefined, ownId: string, lookup: ClientSideLookup): Interceptor {
  if (service !== undefined) return boundInterceptor(side, service);
  // The last channel target seen and what it names (an application has few channels).
  let lastPeer = '';
  let lastTarget: ReturnType<typeof parseTrellisTarget>;
  return (options, nextCall) => {
    // A call not yet started answers getPeer() with the channel's target (grpc-js 1.14).
    const probe = nextCall(options);
    const peer = probe.getPeer();
    if (peer !== lastPeer) {
      lastPeer = peer;
      lastTarget = parseTrellisTarget(peer);
    }
    const target = lastTarget;
    if (target === undefined) return new InterceptingCall(probe);
    const owner = target.mesh === ownId || target.mesh === '' ? side : lookup(target.mesh);
    if (owner === undefined) return new InterceptingCall(probe);
    const m = options.method_definition;
    // A unary call's first attempt takes the probe as its call.
    if (!m.requestStream && !m.responseStream) return unwrapped(new UnaryCall(owner, target.service, options, nextCall, probe));
    probe.cancelWithStatus(Status.CANCELLED, 'trellis: target probe');
    return unwrapped(new StreamCall(owner, target.service, options, nextCall, true));
  };
}

/**
 * A call goes back to grpc-js as it is, not inside an `InterceptingCall`: grpc-js's client
 * (and an application interceptor above the mesh's, through its `nextCall`) calls only the
 * `InterceptingCallInterface` methods of what an interceptor returns, all of which `UnaryCall`
 * and `StreamCall` implement (listener callbacks optional, as grpc-js's own wrapper treats them). The wrapper
 * would add a forwarding layer and its listener objects to every call: ~460 bytes and ~2-4k
 * instructions a call, measured (bench/grpc-breakdown.ts).
 */
function unwrapped(call: UnaryCall | StreamCall): InterceptingCall {
  return call as unknown as InterceptingCall;
}

/**
 * The interceptor bound to `service`, which an application may put on any channel. What the
 * Trellis picker needs rides on each attempt's PickTicket (pick-ticket.ts), never in the
 * metadata, so nothing of the mesh's reaches the server of a plain `host:port` channel either.
 * What differs is the deadline: a `trellis:` channel's picker writes it as `grpc-timeout` at
 * the pick, on another channel the call writes it itself. So a unary call reads the channel's
 * target from a call opened below (`getPeer()` of a call not yet started is the target), opened
 * without the application's deadline so that its first attempt takes it as its call (grpc-js
 * arms no timer for it); a stream reads it from its first attempt's call, opened the same way.
 */
function boundInterceptor(side: GrpcClientSide, service: string): Interceptor {
  // The last channel target seen and whether it is a `trellis:` one (an application has few channels).
  let lastTarget = '';
  let lastPicker = false;
  return (options, nextCall) => {
    const m = options.method_definition;
    if (m.requestStream || m.responseStream) return unwrapped(new StreamCall(side, service, options, nextCall, undefined));
    const probe = nextCall(options.deadline === undefined ? options : { ...options, deadline: undefined });
    const target = probe.getPeer();
    if (target !== lastTarget) {
      lastTarget = target;
      lastPicker = parseTrellisTarget(target) !== undefined;
    }
    return unwrapped(new UnaryCall(side, service, options, nextCall, probe, lastPicker, false));
  };
}

/**
 * The mesh's grpc-js client interceptor: runs each call through its destination's gRPC stack
 * (`grpc-stack.ts`), so a gRPC call gets what an HTTP call gets — deadline propagation, routing
 * and fault injection on `/pkg.Service/Method`, retries on gRPC codes within the destination's
 * shared retry budget, outbound rate limit, the shared circuit breaker, balancing with outlier
 * ejection, metrics and a span per attempt with `traceparent`/B3 metadata.
 *
 * A unary call is a `UnaryCall` (unary-call.ts): one object per call that runs the destination's
 * compiled unary path (unary-core.ts) with no promise per layer, each attempt's call opened below
 * through `nextCall` with the attempt itself as its listener. A streaming call maps to a
 * `Service<GrpcCall, GrpcResult>`, the stream stack: the interceptor returns a grpc-js
 * `InterceptingCall` over a `MeshCall`, which plays the call below it. A server-streaming call
 * (whose client sends one message) is buffered until `halfClose`, then run through the stack;
 * each attempt opens its own call below through `nextCall`. A call with a request stream starts
 * at once and its messages flow through a `StreamRelay` (retried only transparently).
 *
 * Deadline: the call's own (`deadline` option, or a parent server call's), the ambient inbound
 * deadline (a Trellis-served request the call is made while handling) and the route timeout —
 * the soonest wins, and each attempt is sent with it as `grpc-timeout`.
 *
 * Which destination: `clientOptions('products')` binds it. Without a service the interceptor
 * reads the channel's target from a call it opens below (`getPeer()` of a call not yet started
 * is the channel target, in grpc-js 1.14): a unary call's first attempt then uses that call, a
 * stream cancels it; a channel whose target is not a `trellis:` target goes on through it
 * untouched. A bound interceptor reads the target the same way for a unary call only, to know
 * whether the Trellis picker will write its deadline as `grpc-timeout` (on a plain channel the
 * call writes it itself). The picker learns each attempt's endpoint from its PickTicket (the
 * metadata's options object), so no mesh entry is ever written into the metadata.
 */
import { InterceptingCall, Metadata, status as Status } from '@grpc/grpc-js';
import type { Deadline, Interceptor, InterceptorOptions, NextCall, StatusObject } from '@grpc/grpc-js';
import { CallController } from '../core/call-signal.js';
import type { Clock } from '../core/clock.js';
import { CallContext } from '../core/context.js';
import { AbortedError, UnknownServiceError } from '../core/errors.js';
import type { GrpcStacks } from './grpc-stack.js';
import { StreamRelay } from './grpc-call.js';
import type { GrpcCall, GrpcResult, InterceptingCallInterface } from './grpc-call.js';
import { parseTrellisTarget } from './resolver.js';
import { ROUTE_KEY, statusForError } from './status.js';
import { callDeadline, followParentCancel, UnaryCall } from './unary-call.js';
import type { UnaryCoreSource } from './unary-call.js';

type Listener = Parameters<InterceptingCallInterface['start']>[1];
type FullListener = Required<NonNullable<Listener>>;
type MessageContext = Parameters<InterceptingCallInterface['sendMessageWithContext']>[0];

/** What the interceptor needs of the mesh: the stacks of a destination, for the config in force. */
export interface GrpcClientSide extends UnaryCoreSource {
  readonly clock: Clock;
  /** The destination's stacks, or undefined when the service is not configured. */
  stacks(service: string): GrpcStacks | undefined;
}

/** Finds the client side serving a mesh id (the interceptor of one mesh used on another mesh's channel). */
export type ClientSideLookup = (meshId: string) => GrpcClientSide | undefined;

function fullListener(l: Listener): FullListener {
  return {
    onReceiveMetadata: l?.onReceiveMetadata?.bind(l) ?? (() => undefined),
    onReceiveMessage: l?.onReceiveMessage?.bind(l) ?? (() => undefined),
    onReceiveStatus: l?.onReceiveStatus?.bind(l) ?? (() => undefined),
  };
}

/** Plays a streaming call below the application's: runs the stream stack, one real call per attempt. */
class MeshCall implements InterceptingCallInterface {
  readonly #side: GrpcClientSide;
  readonly #service: string;
  readonly #options: InterceptorOptions;
  readonly #nextCall: NextCall;
  readonly #requestStream: boolean;
  readonly #responseStream: boolean;
  readonly #controller = new CallController();
  #listener: FullListener | undefined;
  #metadata: Metadata | undefined;
  #message: unknown;
  #relay: StreamRelay | undefined;
  #current: InterceptingCallInterface | undefined;
  #cancelled: { code: number; details: string } | undefined;
  #running = false;
  #finished = false;

  constructor(side: GrpcClientSide, service: string, options: InterceptorOptions, nextCall: NextCall) {
    this.#side = side;
    this.#service = service;
    this.#options = options;
    this.#nextCall = nextCall;
    this.#requestStream = options.method_definition.requestStream;
    this.#responseStream = options.method_definition.responseStream;
  }

  start(metadata: Metadata, listener?: Listener): void {
    const full = fullListener(listener);
    this.#listener = full;
    this.#metadata = metadata;
    if (this.#requestStream || this.#responseStream) this.#relay = new StreamRelay(full);
    followParentCancel(this.#options, () => this.cancelWithStatus(Status.CANCELLED, 'Cancelled by parent call'));
    if (this.#requestStream) this.#run();
  }

  sendMessageWithContext(context: MessageContext, message: unknown): void {
    if (this.#requestStream) {
      this.#relay?.send(context, message);
      return;
    }
    this.#message = message;
    context.callback?.();
  }

  sendMessage(message: unknown): void {
    this.sendMessageWithContext({}, message);
  }

  halfClose(): void {
    if (this.#requestStream) this.#relay?.halfClose();
    else this.#run();
  }

  startRead(): void {
    // A unary response is read by the call below by itself.
    if (this.#responseStream) this.#relay?.startRead();
  }

  cancelWithStatus(code: Status, details: string): void {
    if (this.#finished || this.#cancelled !== undefined) return;
    this.#cancelled = { code, details };
    if (!this.#running) {
      this.#deliver({ code, details, metadata: new Metadata() });
      return;
    }
    this.#controller.abort(new AbortedError(`the caller cancelled the call: ${details}`, { service: this.#service }));
  }

  getPeer(): string {
    return this.#current?.getPeer() ?? this.#service;
  }

  getAuthContext(): ReturnType<InterceptingCallInterface['getAuthContext']> {
    return this.#current?.getAuthContext() ?? null;
  }

  #open = (deadline: Deadline | undefined): InterceptingCallInterface => {
    const call = this.#nextCall(deadline === undefined ? this.#options : { ...this.#options, deadline });
    this.#current = call;
    return call;
  };

  #run(): void {
    if (this.#running || this.#finished) return;
    this.#running = true;
    const stacks = this.#side.stacks(this.#service);
    if (stacks === undefined) {
      this.#fail(new UnknownServiceError(`${this.#service} has no Service document in the configuration`, { service: this.#service }));
      return;
    }
    let metadata = this.#metadata ?? new Metadata();
    const ctx = new CallContext(this.#service, true);
    const key = metadata.get(ROUTE_KEY)[0];
    if (key !== undefined) {
      metadata = metadata.clone();
      metadata.remove(ROUTE_KEY);
      if (typeof key === 'string') ctx.routeKey = key;
    }
    ctx.deadline = callDeadline(this.#options, this.#side.clock);
    ctx.signal = this.#controller.signal;
    const req: GrpcCall = {
      path: this.#options.method_definition.path,
      metadata,
      message: this.#message,
      requestStream: this.#requestStream,
      responseStream: this.#responseStream,
      open: this.#open,
      relay: this.#relay,
    };
    const stack = stacks.stream;
    let pending: Promise<GrpcResult>;
    try {
      pending = stack(req, ctx);
    } catch (err) {
      pending = Promise.reject(err);
    }
    pending.then(
      (res) => this.#finish(res),
      (err: unknown) => this.#fail(err),
    );
  }

  #finish(res: GrpcResult): void {
    if (this.#finished) return;
    const listener = this.#listener;
    if (!this.#responseStream && listener !== undefined) {
      if (res.metadata !== undefined) listener.onReceiveMetadata(res.metadata);
      if (res.hasMessage) listener.onReceiveMessage(res.message);
    }
    this.#deliver(res.status);
  }

  #fail(err: unknown): void {
    const c = this.#cancelled;
    this.#deliver(c !== undefined ? { code: c.code, details: c.details, metadata: new Metadata() } : statusForError(err));
  }

  #deliver(status: StatusObject): void {
    if (this.#finished) return;
    this.#finished = true;
    this.#relay?.detach();
    this.#listener?.onReceiveStatus(status);
  }
}

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
  return (options, nextCall) => {
    // A call not yet started answers getPeer() with the channel's target (grpc-js 1.14).
    const probe = nextCall(options);
    const target = parseTrellisTarget(probe.getPeer());
    if (target === undefined) return new InterceptingCall(probe);
    const owner = target.mesh === ownId || target.mesh === '' ? side : lookup(target.mesh);
    if (owner === undefined) return new InterceptingCall(probe);
    const m = options.method_definition;
    // A unary call's first attempt takes the probe as its call.
    if (!m.requestStream && !m.responseStream) return unwrapped(new UnaryCall(owner, target.service, options, nextCall, probe));
    probe.cancelWithStatus(Status.CANCELLED, 'trellis: target probe');
    return new InterceptingCall(new MeshCall(owner, target.service, options, nextCall));
  };
}

/**
 * A unary call goes back to grpc-js as it is, not inside an `InterceptingCall`: grpc-js's client
 * (and an application interceptor above the mesh's, through its `nextCall`) calls only the
 * `InterceptingCallInterface` methods of what an interceptor returns, all of which `UnaryCall`
 * implements (listener callbacks optional, as grpc-js's own wrapper treats them). The wrapper
 * would add a forwarding layer and its listener objects to every call: ~460 bytes and ~2-4k
 * instructions a call, measured (bench/grpc-breakdown.ts).
 */
function unwrapped(call: UnaryCall): InterceptingCall {
  return call as unknown as InterceptingCall;
}

/**
 * The interceptor bound to `service`, which an application may put on any channel. What the
 * Trellis picker needs rides on each attempt's PickTicket (pick-ticket.ts), never in the
 * metadata, so nothing of the mesh's reaches the server of a plain `host:port` channel either.
 * What differs is a unary call's deadline: a `trellis:` channel's picker writes it as
 * `grpc-timeout` at the pick, on another channel the call writes it itself. So a unary call
 * reads the channel's target from a call opened below (`getPeer()` of a call not yet started is
 * the target), opened without the application's deadline so that its first attempt takes it as
 * its call (grpc-js arms no timer for it). A stream gives grpc-js its deadline itself, and opens
 * no such call.
 */
function boundInterceptor(side: GrpcClientSide, service: string): Interceptor {
  // The last channel target seen and whether it is a `trellis:` one (an application has few channels).
  let lastTarget = '';
  let lastPicker = false;
  return (options, nextCall) => {
    const m = options.method_definition;
    if (m.requestStream || m.responseStream) return new InterceptingCall(new MeshCall(side, service, options, nextCall));
    const probe = nextCall(options.deadline === undefined ? options : { ...options, deadline: undefined });
    const target = probe.getPeer();
    if (target !== lastTarget) {
      lastTarget = target;
      lastPicker = parseTrellisTarget(target) !== undefined;
    }
    return unwrapped(new UnaryCall(side, service, options, nextCall, probe, lastPicker, false));
  };
}

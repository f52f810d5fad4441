/**
 * A gRPC call as the protocol-neutral layers see it: `GrpcCall` is the request a destination's
 * stack (`Service<GrpcCall, GrpcResult>`) is called with, `GrpcResult` what one attempt (or the
 * whole logical call) ended with — its status, response headers and, for a unary response, the
 * message. A failed status is a result, not an error (as an HTTP 503 is): errors are what the
 * mesh's own layers throw (circuit open, rate limited, timeout), turned into statuses only at
 * the edge.
 *
 * Streams pass their messages live through a `StreamRelay` instead of buffering them: the relay
 * holds what the application sent or asked to read before the stack opened the real call (the
 * balancer may wait for discovery, a fault may delay), then forwards everything to that call.
 */
import type { Metadata, StatusObject, Deadline, NextCall } from '@grpc/grpc-js';

/** A call below an interceptor (grpc-js does not export the interface by name). */
export type InterceptingCallInterface = ReturnType<NextCall>;

/** What the stack calls grpc-js with for one attempt: the next interceptor's (or the channel's) call. */
export type OpenCall = (deadline: Deadline | undefined) => InterceptingCallInterface;

export interface GrpcCall {
  /** `/pkg.Service/Method`: what routes and authorization match on. */
  readonly path: string;
  /** Request metadata (the application's; the stack never mutates it, it clones). */
  readonly metadata: Metadata;
  /** The request message of a call whose client sends exactly one (unary, server-streaming). */
  readonly message: unknown;
  readonly requestStream: boolean;
  readonly responseStream: boolean;
  /** Opens the call of one attempt below this interceptor. */
  readonly open: OpenCall;
  /** Streams only: carries messages both ways while the call runs. */
  readonly relay: StreamRelay | undefined;
  /** True when `metadata` is a copy made for this attempt alone (the transport may then add to it). */
  readonly ownsMetadata?: boolean;
}

export interface GrpcResult {
  readonly status: StatusObject;
  /** Response headers, when the server sent them. */
  readonly metadata: Metadata | undefined;
  /** The response message of a unary-response call (undefined for streams). */
  readonly message: unknown;
  readonly hasMessage: boolean;
  /** A status the fault filter answered with (never retried, never counted against the upstream). */
  readonly injected: boolean;
}

/** The application's side of a stream: where response headers and messages go as they arrive. */
export interface StreamSink {
  onReceiveMetadata(metadata: Metadata): void;
  onReceiveMessage(message: unknown): void;
}

interface Outgoing {
  readonly context: object;
  readonly message: unknown;
}

/**
 * Joins the application's stream to the attempt's call. Before `attach`, sends, the half-close
 * and read requests queue (bounded by the application's own flow control: grpc-js writes one
 * message at a time); after it they go straight through.
 */
export class StreamRelay {
  readonly sink: StreamSink;
  #call: InterceptingCallInterface | undefined;
  #queue: Outgoing[] = [];
  #halfClosed = false;
  #reads = 0;
  #detached = false;

  constructor(sink: StreamSink) {
    this.sink = sink;
  }

  get call(): InterceptingCallInterface | undefined {
    return this.#call;
  }

  send(context: object, message: unknown): void {
    if (this.#detached) return;
    if (this.#call !== undefined) this.#call.sendMessageWithContext(context, message);
    else this.#queue.push({ context, message });
  }

  halfClose(): void {
    if (this.#detached) return;
    if (this.#call !== undefined) this.#call.halfClose();
    else this.#halfClosed = true;
  }

  startRead(): void {
    if (this.#detached) return;
    if (this.#call !== undefined) this.#call.startRead();
    else this.#reads++;
  }

  /** Binds the attempt's call and flushes what queued. `sendsRequest`: the stream carries the requests. */
  attach(call: InterceptingCallInterface, sendsRequest: boolean): void {
    this.#call = call;
    if (sendsRequest) {
      const queue = this.#queue;
      this.#queue = [];
      for (const m of queue) call.sendMessageWithContext(m.context, m.message);
      if (this.#halfClosed) call.halfClose();
    }
    for (; this.#reads > 0; this.#reads--) call.startRead();
  }

  /** The call ended: later sends are dropped (grpc-js's own calls ignore writes after the status). */
  detach(): void {
    this.#detached = true;
    this.#queue = [];
  }
}

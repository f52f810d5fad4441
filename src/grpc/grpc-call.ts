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
 * balancer may wait for discovery, a fault may delay), then forwards everything to that call,
 * keeping what it forwarded for a transparent retry only while the stream is uncommitted and
 * within gRPC's per-call retry buffer size (`grpc.per_rpc_retry_buffer_size`) and the channel's
 * total (`grpc.retry_buffer_size`, replay-budget.ts).
 */
import type { Metadata, StatusObject, NextCall } from '@grpc/grpc-js';
import type { PickRefusalKind } from './pick-ticket.js';
import type { ReplayBudget } from './replay-budget.js';

/** A call below an interceptor (grpc-js does not export the interface by name). */
export type InterceptingCallInterface = ReturnType<NextCall>;

export interface GrpcCall {
  /** `/pkg.Service/Method`: what routes and authorization match on. */
  readonly path: string;
  /** Request metadata (the application's; the stack never mutates it, it clones). */
  readonly metadata: Metadata;
  /** The request message of a call whose client sends exactly one (unary, server-streaming). */
  readonly message: unknown;
  readonly requestStream: boolean;
  readonly responseStream: boolean;
  /** Streams only: carries messages both ways while the call runs. */
  readonly relay: StreamRelay | undefined;
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
  /** The Trellis picker refused the attempt before anything was sent, and why (its pick ticket says so, never the status). */
  readonly refusal: PickRefusalKind | undefined;
}

/** The application's side of a stream: where response headers and messages go as they arrive. */
export interface StreamSink {
  onReceiveMetadata(metadata: Metadata): void;
  onReceiveMessage(message: unknown): void;
}

interface Outgoing {
  readonly context: { callback?: (() => void) | undefined };
  readonly message: unknown;
  /** The application's write callback ran (once, whichever attempt's call wrote the message). */
  done: boolean;
}

/**
 * Messages kept for a replay until the stream commits. gRPC's transparent retry needs them only
 * while no attempt has reached a server; a client stream that sends more than this before the
 * server answers commits early (it can no longer be moved to another endpoint). Besides the
 * bytes (below), it bounds the objects held per stream when the messages are tiny.
 */
export const REPLAY_MESSAGES = 64;

/**
 * Bytes of messages kept for a replay, unless the channel sets `grpc.per_rpc_retry_buffer_size`:
 * grpc-js's default for that option (1 MiB; gRPC C-core's is 256 KiB). The mesh's streams replay
 * what plain grpc-js would replay over the same addresses (the gRPC interop suite's 271,828-byte
 * `custom_metadata` stream among them). As in gRPC, a stream whose buffered messages pass it
 * commits: it is no longer replayed, and what was kept is let go.
 */
export const REPLAY_BYTES = 1024 * 1024;

/**
 * Where the relay learns the channel's `grpc.per_rpc_retry_buffer_size` and its replay total
 * (`grpc.retry_buffer_size`): an attempt's pick ticket (pick-ticket.ts), which the `trellis:`
 * resolver's config selector stamps when grpc-js asks it for the attempt's call config — before
 * grpc-js takes any message of the call.
 */
export interface ReplayLimit {
  readonly retryBufferSize: number | undefined;
  readonly replayBudget: ReplayBudget | undefined;
}

/** A method's request serializer (grpc-js's `method_definition.requestSerialize`). */
export type RequestSerialize = (message: unknown) => Buffer;

/**
 * Joins the application's stream to the attempt's call. Before `attach`, sends, the half-close
 * and read requests queue; after it they go through, one message at a time: a grpc-js call
 * holds a single message while its interceptors work (a second one sent meanwhile replaces the
 * first), so the next goes only when the previous one's write callback ran — as grpc-js's own
 * streams do. The application's flow control keeps the queue short (it writes the next message
 * after the callback).
 *
 * Transparent retry (gRPC's, for a stream that never reached a server): until the stream
 * commits — the server sent headers or a message, more than `REPLAY_MESSAGES` went out, their
 * bytes passed the retry buffer size, or would pass the channel's total of kept bytes (its
 * `ReplayBudget`, taken from as messages are kept and given back when the stream commits, is
 * rewound or ends) — the relay keeps what it forwarded, so an attempt
 * refused before anything left the process (the picker found no connection) can be `rewind`ed
 * and played again on the next attempt's call. Each write callback of the application runs
 * once, when some attempt's call wrote it.
 *
 * A message's bytes: a Buffer's (or Uint8Array's) length — what the relay holds — else the
 * length of the method's serializer's output. That is a second serialization of the message
 * (grpc-js serializes it again below the interceptors, with the serializer it closed over, so
 * the relay cannot hand it the bytes), paid only while the stream is uncommitted: at most the
 * buffer size plus one message's worth per stream. The limit is checked when a message goes to
 * the call and again when the call took it (by then grpc-js has asked the resolver for the
 * call's config, so the channel's size is on the ticket).
 */
export class StreamRelay {
  readonly sink: StreamSink;
  readonly #serialize: RequestSerialize;
  #call: InterceptingCallInterface | undefined;
  /** The current attempt's ticket, when its channel is a `trellis:` one. */
  #limit: ReplayLimit | undefined;
  #sendsRequest = false;
  #queue: Outgoing[] = [];
  /** What went to the current call while uncommitted; undefined once committed. */
  #sent: Outgoing[] | undefined = [];
  /** The bytes of `#sent`'s messages. */
  #sentBytes = 0;
  /** Of those, the bytes taken from the channel's replay budget (`#budget`), given back when they are let go. */
  #taken = 0;
  #budget: ReplayBudget | undefined;
  #halfClosed = false;
  #halfCloseSent = false;
  /** A message is with the call and its write callback has not run yet. */
  #writing = false;
  /** Counts attaches: a callback from an earlier attempt's call must not drive this one. */
  #generation = 0;
  #reads = 0;
  #forwardedReads = 0;
  #detached = false;

  /** `serialize`: the method's request serializer, to size a message that is not bytes already. */
  constructor(sink: StreamSink, serialize: RequestSerialize) {
    this.sink = sink;
    this.#serialize = serialize;
  }

  get call(): InterceptingCallInterface | undefined {
    return this.#call;
  }

  /** Whether another attempt could still replay the stream (nothing reached a server yet). */
  get replayable(): boolean {
    return this.#sent !== undefined;
  }

  send(context: object, message: unknown): void {
    if (this.#detached) return;
    this.#queue.push({ context: context as Outgoing['context'], message, done: false });
    this.#pump();
  }

  halfClose(): void {
    if (this.#detached) return;
    this.#halfClosed = true;
    this.#pump();
  }

  startRead(): void {
    if (this.#detached) return;
    if (this.#call !== undefined) {
      this.#forwardedReads++;
      this.#call.startRead();
    } else this.#reads++;
  }

  /**
   * Binds the attempt's call and flushes what queued. `sendsRequest`: the stream carries the
   * requests; `limit`: the attempt's ticket, on a `trellis:` channel.
   */
  attach(call: InterceptingCallInterface, sendsRequest: boolean, limit: ReplayLimit | undefined): void {
    this.#call = call;
    this.#limit = limit;
    this.#sendsRequest = sendsRequest;
    this.#generation++;
    this.#writing = false;
    this.#halfCloseSent = false;
    this.#pump();
    for (; this.#reads > 0; this.#reads--) {
      this.#forwardedReads++;
      call.startRead();
    }
  }

  /**
   * The stream is bound to this attempt for good (the server answered with headers or a message,
   * or what it kept passed a bound): what was kept is let go, its bytes given back to the channel.
   */
  commit(): void {
    this.#sent = undefined;
    this.#giveBack();
  }

  /**
   * The attempt's call ended before reaching a server: unbinds it and queues again what it was
   * given, for the next attempt. False (nothing done) once committed.
   */
  rewind(): boolean {
    const sent = this.#sent;
    if (sent === undefined || this.#detached) return false;
    this.#call = undefined;
    this.#writing = false;
    this.#queue = [...sent, ...this.#queue];
    this.#sent = [];
    this.#sentBytes = 0;
    // Taken again as the next attempt's call takes them (from its own channel's budget).
    this.#giveBack();
    this.#reads += this.#forwardedReads;
    this.#forwardedReads = 0;
    return true;
  }

  /** The call ended: later sends are dropped (grpc-js's own calls ignore writes after the status). */
  detach(): void {
    this.#detached = true;
    this.#queue = [];
    this.#sent = undefined;
    this.#giveBack();
  }

  /** Sends the next queued message when the call is free, then the half-close after the last. */
  #pump(): void {
    const call = this.#call;
    if (call === undefined || !this.#sendsRequest || this.#writing) return;
    const out = this.#queue.shift();
    if (out === undefined) {
      if (this.#halfClosed && !this.#halfCloseSent) {
        this.#halfCloseSent = true;
        call.halfClose();
      }
      return;
    }
    const sent = this.#sent;
    if (sent !== undefined) {
      if (sent.length >= REPLAY_MESSAGES) this.commit();
      else {
        sent.push(out);
        this.#sentBytes += this.#sizeOf(out.message);
        this.#checkBytes();
      }
    }
    this.#writing = true;
    const generation = this.#generation;
    call.sendMessageWithContext(
      {
        ...out.context,
        callback: () => {
          if (!out.done) {
            out.done = true;
            out.context.callback?.();
          }
          if (generation !== this.#generation || this.#call !== call) return;
          this.#checkBytes();
          this.#writing = false;
          this.#pump();
        },
      },
      out.message,
    );
  }

  /**
   * Commits when the kept messages' bytes pass the call's retry buffer size, or when taking the
   * ones not yet taken from the channel's replay budget would pass its total.
   */
  #checkBytes(): void {
    if (this.#sent === undefined) return;
    const limit = this.#limit;
    if (this.#sentBytes > (limit?.retryBufferSize ?? REPLAY_BYTES)) {
      this.commit();
      return;
    }
    const budget = limit?.replayBudget;
    if (budget === undefined) return;
    // One budget at a time: a new attempt (whose ticket names the budget) follows a rewind, which gave everything back.
    const need = this.#sentBytes - this.#taken;
    if (need <= 0) return;
    if (!budget.take(need)) {
      this.commit();
      return;
    }
    this.#budget = budget;
    this.#taken = this.#sentBytes;
  }

  /** Gives back to the channel's replay budget what the kept messages took. */
  #giveBack(): void {
    const taken = this.#taken;
    if (taken === 0) return;
    this.#taken = 0;
    this.#budget?.give(taken);
    this.#budget = undefined;
  }

  #sizeOf(message: unknown): number {
    if (message instanceof Uint8Array) return message.byteLength;
    try {
      return this.#serialize(message).length;
    } catch {
      // grpc-js's own serialization below will refuse it: nothing to replay.
      return Infinity;
    }
  }
}

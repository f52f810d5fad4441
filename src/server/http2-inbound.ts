/**
 * The HTTP/2 side of a mesh listener (src/server/tls-listener.ts): one port speaks HTTP/1.1 and
 * HTTP/2. A TLS connection that negotiated ALPN `h2`, or a plaintext one that opens with the
 * HTTP/2 connection preface (prior knowledge, h2c), is handed here; everything else stays with
 * the HTTP/1.1 server. Requests arrive through node:http2's compatibility API, so the same
 * node:http-shaped handler (the inbound stack, then the application) serves both protocols.
 *
 * The server here never listens: the listener accepts, sniffs and verifies, then injects the
 * socket (`accept`). It keeps what the HTTP/1.1 side gets from node:http:
 * - Sessions are tracked: `close()` sends each session a graceful GOAWAY once it has no stream
 *   in flight (see below why not earlier) and `destroyAll()` cuts what remains at the drain
 *   deadline.
 * - Rotation and maximum connection age: a session opened before the last certificate rotation,
 *   or older than the maximum age, is closed gracefully once it has no stream in flight. Not
 *   while streams are open: undici answers any GOAWAY by failing every request still in flight
 *   on the connection (measured: a graceful GOAWAY under load lost requests the server had
 *   already answered), so a busy old session waits for its first quiet moment, or for twice the
 *   maximum age, whichever comes first.
 * - A session with no stream in flight and no frames for the keep-alive timeout is closed, as an
 *   idle HTTP/1.1 connection is; one waiting on a slow handler is not.
 * - The request timeout (`requestTimeoutMs`, node:http's `requestTimeout`: the whole request,
 *   body included, must arrive in time) applies per stream: a stream whose request has not
 *   fully arrived by then (the client has not ended its side) gets the headers of a `408` and a
 *   reset (RST_STREAM CANCEL), or only the reset when a response already started, as HTTP/1.1
 *   answers 408 and drops the connection; the handler's request is aborted ('aborted', never a
 *   truncated body taken for whole). The session and its other streams go on. A request that arrived whole is not limited, however slow its
 *   handler. One deadline queue serves every stream (no timer per stream). HTTP/2 has no
 *   headers timeout of its own here: a stream exists only once its headers are complete, and a
 *   session stalled inside a header block is silent, so the idle timeout closes it.
 */
import http2 from 'node:http2';
import type { Http2ServerRequest, Http2ServerResponse, Http2Session, ServerHttp2Stream } from 'node:http2';
import type { Socket } from 'node:net';
import type { Clock } from '../core/clock.js';
import { DeadlineQueue } from '../core/deadline-queue.js';
import type { Deadline } from '../core/deadline-queue.js';
import { closeHttp2Session, refusedByGoaway } from './http2-graceful-close.js';

/** The HTTP/2 connection preface a client with prior knowledge sends first (RFC 9113 §3.4). */
export const HTTP2_PREFACE = Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n', 'latin1');

/** Whether the first bytes of a plaintext connection start the HTTP/2 preface. */
export function startsHttp2Preface(chunk: Buffer): boolean {
  const n = Math.min(chunk.length, HTTP2_PREFACE.length);
  return n >= 3 && chunk.subarray(0, n).equals(HTTP2_PREFACE.subarray(0, n));
}

export type Http2Handler = (req: Http2ServerRequest, res: Http2ServerResponse) => void;

export interface Http2InboundParams {
  clock: Clock;
  /** Idle time before a session without frames is closed. */
  idleTimeoutMs: number;
  /** Sessions older than this close at their first quiet moment (0 = never). */
  maxConnectionAgeMs: number;
  /** Time for a stream's whole request to arrive (0 = none). */
  requestTimeoutMs: number;
}

/** A stream's request deadline, linked into the inbound's deadline queue until it ends. */
class StreamDeadline implements Deadline {
  deadlineAt = 0;
  deadlinePrev: Deadline | undefined = undefined;
  deadlineNext: Deadline | undefined = undefined;
  deadlineQueue: DeadlineQueue | undefined = undefined;
  readonly #stream: ServerHttp2Stream;

  constructor(stream: ServerHttp2Stream) {
    this.#stream = stream;
  }

  onDeadline(): void {
    const stream = this.#stream;
    if (stream.destroyed || stream.closed) return;
    // The client ended its side: the whole request arrived, and only the handler is slow.
    if (stream.state.remoteClose === 1) return;
    if (stream.headersSent) {
      stream.close(http2.constants.NGHTTP2_CANCEL);
      return;
    }
    // Straight on the stream, not through the compatibility response the handler still holds,
    // and not ended: a stream whose response ended before its reset does not tell the handler its
    // request was aborted (node:http2 then ends the request as if its body were complete), and
    // body readers (raw-body, Express's parsers) rely on 'aborted' to refuse a truncated body.
    stream.respond({ ':status': 408, 'content-length': '0' });
    stream.close(http2.constants.NGHTTP2_CANCEL);
  }
}

interface SessionState {
  readonly at: number;
  readonly generation: number;
  open: number;
  rolling: boolean;
}

export class Http2Inbound {
  readonly #server: http2.Http2Server;
  readonly #params: Http2InboundParams;
  readonly #sessions = new Map<Http2Session, SessionState>();
  readonly #requestDeadlines: DeadlineQueue | undefined;
  #generation = 0;
  #draining = false;

  constructor(handler: Http2Handler, params: Http2InboundParams) {
    this.#params = params;
    this.#requestDeadlines = params.requestTimeoutMs > 0 ? new DeadlineQueue(params.requestTimeoutMs, params.clock) : undefined;
    this.#server = http2.createServer();
    this.#server.setTimeout(params.idleTimeoutMs);
    // node:http2 destroys a session silent for the timeout, streams in flight or not: a handler
    // slower than the keep-alive timeout would lose its response. Only an idle one is closed.
    this.#server.on('timeout', (session: Http2Session) => {
      if ((this.#sessions.get(session)?.open ?? 0) === 0) closeHttp2Session(session);
    });
    this.#server.on('session', (session: Http2Session) => this.#track(session));
    this.#server.on('request', (req: Http2ServerRequest, res: Http2ServerResponse) => {
      // Arrived after a graceful GOAWAY was sent for: nghttp2 refuses it (the client retries it
      // elsewhere), so serving it would run its handler twice.
      if (refusedByGoaway(req.stream)) return;
      const state = this.#sessions.get(req.stream.session as Http2Session);
      if (state !== undefined) this.#streamStarted(req.stream.session as Http2Session, state, res);
      handler(req, res);
    });
  }

  /** Hands a connection (a verified TLS socket that negotiated `h2`, or an h2c one) to HTTP/2. */
  accept(socket: Socket): void {
    if (this.#draining) {
      socket.destroy();
      return;
    }
    let session: Http2Session | undefined;
    const created = (s: Http2Session): void => {
      session = s;
    };
    this.#server.once('session', created);
    this.#server.emit('connection', socket);
    this.#server.off('session', created);
    // A peer that ends its side of the connection (a client that gave up right after the
    // handshake) is seen by the socket, not by node:http2's session, which would otherwise wait
    // for frames until the idle timeout: close the session once its streams are done.
    const endSession = (): void => {
      if (session !== undefined) closeHttp2Session(session);
    };
    if (socket.readableEnded) endSession();
    else socket.once('end', endSession);
    socket.once('close', () => {
      if (session !== undefined && !session.destroyed) session.destroy();
    });
  }

  /** Sessions opened before this call roll over (a certificate rotation). */
  rotate(): void {
    this.#generation++;
    for (const [session, state] of this.#sessions) this.#maybeRoll(session, state);
  }

  /**
   * Starts draining: new connections are refused, idle sessions get a graceful GOAWAY at once
   * and busy ones at their first quiet moment (streams that still arrive meanwhile are served);
   * `destroyAll()` at the drain deadline cuts the rest.
   */
  close(): void {
    this.#draining = true;
    this.closeIdle();
  }

  /** Closes sessions with no stream in flight (HTTP/1.1's `closeIdleConnections`). */
  closeIdle(): void {
    for (const [session, state] of this.#sessions) if (state.open === 0) closeHttp2Session(session);
  }

  /** Cuts every session (the drain deadline passed). */
  destroyAll(): void {
    for (const session of this.#sessions.keys()) session.destroy();
  }

  get sessions(): number {
    return this.#sessions.size;
  }

  #track(session: Http2Session): void {
    const state: SessionState = { at: this.#params.clock.now(), generation: this.#generation, open: 0, rolling: false };
    this.#sessions.set(session, state);
    session.once('close', () => this.#sessions.delete(session));
    // A session error (a protocol violation, a reset socket) ends the session; node:http2 has
    // already answered it (GOAWAY) where it could.
    session.on('error', () => session.destroy());
    if (this.#draining) closeHttp2Session(session);
  }

  #streamStarted(session: Http2Session, state: SessionState, res: Http2ServerResponse): void {
    state.open++;
    const queue = this.#requestDeadlines;
    let deadline: StreamDeadline | undefined;
    if (queue !== undefined && !res.stream.endAfterHeaders) {
      deadline = new StreamDeadline(res.stream);
      queue.add(deadline, this.#params.clock.now());
    }
    res.once('close', () => {
      if (deadline !== undefined) queue?.cancel(deadline);
      state.open--;
      if (this.#draining && state.open === 0) closeHttp2Session(session);
      else this.#maybeRoll(session, state);
    });
  }

  #maybeRoll(session: Http2Session, state: SessionState): void {
    if (state.rolling || session.closed) return;
    const maxAge = this.#params.maxConnectionAgeMs;
    const age = this.#params.clock.now() - state.at;
    const old = state.generation !== this.#generation || (maxAge > 0 && age >= maxAge);
    if (!old) return;
    if (state.open === 0 || (maxAge > 0 && age >= 2 * maxAge)) {
      state.rolling = true;
      closeHttp2Session(session);
    }
  }
}

/**
 * Closing an inbound HTTP/2 session gracefully without tripping a node:http2 memory-safety bug.
 *
 * `session.close()` marks the session closed at once but its GOAWAY only reaches the wire on the
 * session's next write (a later turn of the event loop). A request (HEADERS) that the peer sent
 * before seeing the GOAWAY and that is read in between meets node's "closed session" branch,
 * which resets the stream from inside nghttp2's read callback: a re-entrant send that can free
 * the stream while it is still in use. The heap is then corrupt; CI saw it as a glibc abort
 * ("malloc(): mismatching next->prev_size") in a test that sends GOAWAYs under load. Closing the
 * session from a timer does not help, any read can land in the window.
 *
 * So the close is done in two steps:
 * 1. `goaway()` alone, naming the last stream the session has taken (at least stream 1, so the
 *    number is never 0, which node would replace with a later one). The session is not marked
 *    closed, so a request read before the GOAWAY is written takes the ordinary path; nghttp2
 *    refuses it (REFUSED_STREAM, which a client retries safely) when the GOAWAY goes out. Such a
 *    request must not be served meanwhile: its handler's effects would be lost and then repeated
 *    by the retry. `refusedByGoaway(stream)` tells the server's handler to leave it alone.
 * 2. Once nghttp2's queue of frames is empty (the GOAWAY was written), nghttp2 itself ignores
 *    every new request, and `session.close()` is safe: it waits for the streams in flight and
 *    destroys the session. A session whose queue does not empty (a peer that stopped reading)
 *    is closed after `FLUSH_WAIT_MS` anyway, as before.
 */
import type { Http2Session } from 'node:http2';
import http2 from 'node:http2';
import { performance } from 'node:perf_hooks';

/** How long step 2 waits for the GOAWAY to be written before closing regardless. */
const FLUSH_WAIT_MS = 1_000;
const FLUSH_POLL_MS = 10;
/** Event-loop turns polled before falling back to the timer. */
const FLUSH_TURNS = 8;

/** Sessions between step 1 and the end, with the last stream their GOAWAY keeps. */
const lastKept = new WeakMap<Http2Session, number>();

/** True when `stream` arrived after its session's graceful GOAWAY was sent for: nghttp2 will refuse it, do not serve it. */
export function refusedByGoaway(stream: http2.Http2Stream): boolean {
  const session = stream.session;
  if (session === undefined) return false;
  const last = lastKept.get(session);
  return last !== undefined && (stream.id ?? 0) > last;
}

/** Closes an inbound (server) session gracefully: streams in flight finish, new ones are refused. */
export function closeHttp2Session(session: Http2Session): void {
  if (session.closed || session.destroyed || lastKept.has(session)) return;
  const last = Math.max(1, session.state.lastProcStreamID ?? 0);
  lastKept.set(session, last);
  try {
    session.goaway(http2.constants.NGHTTP2_NO_ERROR, last);
  } catch {
    // destroyed meanwhile (goaway throws only then)
    return;
  }
  const started = performance.now();
  let turns = 0;
  const poll = (): void => {
    if (session.closed || session.destroyed) return;
    const queued = session.state.outboundQueueSize ?? 0;
    if (queued === 0 || performance.now() - started >= FLUSH_WAIT_MS) {
      session.close();
      return;
    }
    if (++turns < FLUSH_TURNS) setImmediate(poll);
    else setTimeout(poll, FLUSH_POLL_MS).unref();
  };
  setImmediate(poll);
}

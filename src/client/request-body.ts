/**
 * The caller's request body as an attempt sends it, and its failures as the caller's own mistake:
 * a body that disagrees with the caller's `content-length` header, or a body stream that fails
 * while it is sent, is a TRELLIS_INVALID_ARGUMENT (classified as charged to no one: no retry, no
 * breaker, outlier or budget charge, never an endpoint error in metrics), not a transport failure.
 *
 * A body of known length (string, Buffer, Blob) that disagrees with the header is refused before
 * the stack (request-validation.ts). A streamed body's length is only known as it is sent, so
 * `checkedBody` counts it on its way to undici, passively: the count decides, when the attempt
 * fails, whether the failure was the body's. Nothing here fails the request itself, so the
 * transport's own rules still end it:
 * - over HTTP/1.1 undici fails the attempt (UND_ERR_REQ_CONTENT_LENGTH_MISMATCH) and destroys the
 *   connection, so the upstream sees an aborted request, never a short one;
 * - over HTTP/2 undici sends the stream unchecked and the upstream resets it (PROTOCOL_ERROR): a
 *   reset, which the count shows to be the caller's. (Failing it from here would not do: undici
 *   7.30's HTTP/2 client then closes the stream with NO_ERROR, which a server may read as a
 *   complete request, and after a failed Readable body it never sends the connection's next
 *   request.)
 * An (async) iterable — fetch()'s body through `mesh.dispatcher`, a generator — is always passed
 * through a generator that notes what it throws (the caller's failure, as a Readable's `errored`
 * says for a stream), and is driven by hand so that undici's failure does not wait on the
 * source's `return()`: for fetch()'s body that never
 * settled, and the request hung until the overall timeout, charged to the endpoint as one. A
 * Readable is piped (`pipeline`) through a counting Transform, so undici destroying what it was
 * given still destroys the caller's stream, and the caller's stream failing fails it with the
 * same error.
 */
import { pipeline, Transform } from 'node:stream';
import type { Readable, TransformCallback } from 'node:stream';
import { InvalidArgumentError } from '../core/errors.js';
import type { ErrorSubject } from '../core/errors.js';

/** undici's code for a request body whose length disagrees with its content-length header. */
export const REQ_LENGTH_MISMATCH = 'UND_ERR_REQ_CONTENT_LENGTH_MISMATCH';

/** What was counted of a streamed body with a content-length header. */
interface BodyCount {
  readonly declared: number;
  sent: number;
  ended: boolean;
}

/** The counts of the caller's bodies being sent, by the caller's body object. */
const counts = new WeakMap<object, BodyCount>();

/**
 * The error each caller's (async) iterable body threw while it was sent, by the body object. A
 * Readable keeps its own (`errored`); an iterable's error reaches undici only as the exception
 * of its `for await`, which fails the request with it: without this, a generator that throws
 * looked like the endpoint failing (charged to its outlier stats and the breaker).
 */
const sourceErrors = new WeakMap<object, unknown>();

/** Whether a count shows the body disagreeing with its header: past it, or ended short of it. */
function mismatched(c: BodyCount): boolean {
  return c.sent > c.declared || (c.ended && c.sent !== c.declared);
}

/** Whether `err` is undici's error for a request body that disagreed with its content-length header. */
export function isBodyLengthMismatch(err: unknown): boolean {
  return typeof err === 'object' && err !== null && (err as { code?: unknown }).code === REQ_LENGTH_MISMATCH;
}

/** The content-length in an attempt's flat header list (name, value, ...), or -1. */
export function declaredLength(pairs: readonly string[]): number {
  for (let i = 0; i + 1 < pairs.length; i += 2) {
    const name = pairs[i] as string;
    if (name.length === 14 && name.toLowerCase() === 'content-length') {
      const n = Number(pairs[i + 1]);
      return Number.isSafeInteger(n) && n >= 0 ? n : -1;
    }
  }
  return -1;
}

type Chunk = string | NodeJS.ArrayBufferView | ArrayBuffer;

/** How undici sends a body object: as a stream, an iterable (an Array, a generator, a web ReadableStream), or otherwise (from memory, FormData). */
function streamKind(body: object): 'stream' | 'iterable' | undefined {
  if (ArrayBuffer.isView(body) || body instanceof ArrayBuffer) return undefined;
  const b = body as Record<string | symbol, unknown>;
  if (typeof b.pipe === 'function' && typeof b.on === 'function') return 'stream';
  if (b[Symbol.toStringTag] === 'FormData') return undefined;
  return typeof b[Symbol.asyncIterator] === 'function' || typeof b[Symbol.iterator] === 'function' ? 'iterable' : undefined;
}

/**
 * The body an attempt hands to undici: a streamed body with a content-length header (`pairs`)
 * counted on its way (`countedStream`, `countedChunks`); any other body as is. One `typeof` for
 * the common bodies (none, a string). A streamed body is sent by one attempt only (it is never
 * replayed).
 */
export function checkedBody(body: unknown, pairs: readonly string[]): unknown {
  if (typeof body !== 'object' || body === null) return body;
  const kind = streamKind(body);
  if (kind === undefined) return body;
  const declared = declaredLength(pairs);
  // No header, or 0 (undici sends no length for a GET's empty declaration, and checks a POST's
  // itself): a stream as it is, an iterable through the generator that notes its failure.
  if (declared <= 0) return kind === 'stream' ? body : countedChunks(body as AsyncIterable<Chunk> | Iterable<Chunk>, undefined);
  const count: BodyCount = { declared, sent: 0, ended: false };
  counts.set(body, count);
  return kind === 'stream' ? countedStream(body as Readable, count) : countedChunks(body as AsyncIterable<Chunk> | Iterable<Chunk>, count);
}

/** Passes a byte stream through as it is, counting it. */
class LengthCount extends Transform {
  readonly #count: BodyCount;

  constructor(count: BodyCount) {
    super();
    this.#count = count;
  }

  override _transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback): void {
    this.#count.sent += chunk.length;
    callback(null, chunk);
  }

  override _flush(callback: TransformCallback): void {
    this.#count.ended = true;
    callback();
  }
}

/** `source` through a LengthCount; either failing destroys the other (`pipeline`). */
function countedStream(source: Readable, count: BodyCount): Readable {
  const counter = new LengthCount(count);
  pipeline(source, counter, () => undefined);
  return counter;
}

/**
 * Yields `source`'s chunks as they are, counting them (`count`, when there is a header to check)
 * and noting what the source throws (`sourceErrors`). The source's iterator is driven by hand:
 * when undici stops early (its own length check throws inside its `for await`) it waits on this
 * generator's `return()`, which settles at once; the source's `return()` is called but not
 * awaited (fetch()'s never settles).
 */
async function* countedChunks(source: AsyncIterable<Chunk> | Iterable<Chunk>, count: BodyCount | undefined): AsyncGenerator<Chunk, void, undefined> {
  let done = false;
  let it: AsyncIterator<Chunk> | Iterator<Chunk> | undefined;
  try {
    it = Symbol.asyncIterator in source ? source[Symbol.asyncIterator]() : (source as Iterable<Chunk>)[Symbol.iterator]();
    for (;;) {
      let chunk: Chunk;
      try {
        const r = await it.next();
        if (r.done === true) {
          done = true;
          break;
        }
        // As undici's for-await over a sync iterable, a promised chunk is awaited.
        chunk = await r.value;
      } catch (e) {
        // The source failed (its iterator is finished): the caller's body, not the transport.
        done = true;
        sourceErrors.set(source, e);
        throw e;
      }
      if (count !== undefined) count.sent += typeof chunk === 'string' ? Buffer.byteLength(chunk) : chunk.byteLength;
      yield chunk;
    }
    if (count !== undefined) count.ended = true;
  } catch (e) {
    if (it === undefined) sourceErrors.set(source, e);
    throw e;
  } finally {
    if (!done && it !== undefined && typeof it.return === 'function') {
      try {
        void Promise.resolve(it.return()).catch(() => undefined);
      } catch {
        // A throwing return() is the source's business; the attempt has already failed.
      }
    }
  }
}

/** The typed error for a body that disagreed with its header (`count`, when it was counted; `declared` -1 when unknown). */
function lengthMismatchError(err: Error, declared: number, count: BodyCount | undefined, body: unknown, subject: ErrorSubject): InstanceType<typeof InvalidArgumentError> {
  const says = declared >= 0 ? `header content-length says ${declared} bytes` : 'header content-length disagrees with the request body';
  let what = '';
  if (count !== undefined && count.sent > count.declared) what = `but the request body streamed at least ${count.sent} bytes`;
  else if (count !== undefined && count.ended) what = `but the request body ended after ${count.sent} bytes`;
  else if (declared >= 0 && typeof body === 'object' && body !== null && typeof (body as { readableEnded?: unknown }).readableEnded === 'boolean') {
    // undici fails a Readable that passes the length as a chunk arrives (destroying it with the
    // error), one that falls short at its end, and one already ended in memory before sending.
    const r = body as { errored: unknown; readableEnded: boolean; readableLength: number; readableObjectMode: boolean };
    if (r.errored === err) what = 'but the request body stream held more';
    else if (r.readableEnded) what = 'but the request body stream ended before that';
    else if (!r.readableObjectMode) what = `but the request body stream holds ${r.readableLength} bytes`;
  }
  return new InvalidArgumentError(what === '' ? says : `${says} ${what}`, { ...subject, cause: err });
}

/**
 * `err` (an attempt's error) as the caller's own mistake, or undefined: a body that disagreed
 * with its content-length header (`pairs`: the attempt's headers) — undici's error, or any
 * failure of an attempt whose body's count shows the disagreement (an HTTP/2 upstream's reset) —
 * or the error the caller's own body stream failed with.
 */
export function callerBodyError(err: Error, body: unknown, pairs: readonly string[], subject: ErrorSubject): Error | undefined {
  if (body === null || typeof body !== 'object') return isBodyLengthMismatch(err) ? lengthMismatchError(err, declaredLength(pairs), undefined, body, subject) : undefined;
  const count = counts.get(body);
  if (isBodyLengthMismatch(err) || (count !== undefined && mismatched(count))) return lengthMismatchError(err, count?.declared ?? declaredLength(pairs), count, body, subject);
  if (sourceErrors.get(body) === err) return new InvalidArgumentError(`the request body failed while it was sent: ${err.message}`, { ...subject, cause: err });
  const s = body as { errored?: unknown; destroyed?: unknown; readableEnded?: unknown };
  if (s.errored === err) return new InvalidArgumentError(`the request body failed while it was sent: ${err.message}`, { ...subject, cause: err });
  // Destroyed by its owner without an error before its end (a cancelled upload): undici fails the
  // request with its own RequestAbortedError, or, for a counted stream, the pipeline's premature
  // close. The transport never destroys the caller's stream without an error while sending it.
  if (s.destroyed === true && s.readableEnded === false && s.errored === null) {
    return new InvalidArgumentError('the request body stream was destroyed before it ended', { ...subject, cause: err });
  }
  return undefined;
}

/** `err` as the caller's mistake when it is a length mismatch, for a layer that does not know the request (undici-errors.ts). */
export function bodyLengthMismatchError(err: Error, subject: ErrorSubject): InstanceType<typeof InvalidArgumentError> {
  return lengthMismatchError(err, -1, undefined, undefined, subject);
}

/**
 * The caller's request body as an attempt sends it, and its failures as the caller's own mistake:
 * a body that disagrees with the caller's `content-length` header, or a body stream that fails
 * while it is sent, is a TRELLIS_INVALID_ARGUMENT (classified as charged to no one: no retry, no
 * breaker, outlier or budget charge, never an endpoint error in metrics), not a transport failure.
 *
 * A body of known length (string, Buffer, Blob) that disagrees with the header is refused before
 * the stack (request-validation.ts). A streamed body's length is only known as it is sent, so
 * `checkedBody` counts it on its way to undici and fails the attempt, with the exact lengths,
 * before a chunk that passes the header's length or at an end that falls short of it:
 * - an (async) iterable — fetch()'s body through `mesh.dispatcher`, a generator. Unchecked,
 *   undici throws inside its `for await` and then waits on the iterator's `return()`, which for
 *   fetch()'s body never settles: the request hung until the overall timeout and was charged to
 *   the endpoint as one;
 * - a Readable, piped through a counting Transform (`pipeline`, so undici destroying what it was
 *   given still destroys the caller's stream, and the caller's stream failing fails it with the
 *   same error). Over HTTP/2 undici does not compare a stream with its header at all: the server
 *   reset the stream (PROTOCOL_ERROR), a TRELLIS_RESET charged to the endpoint. There the check
 *   is handed to undici as an async iterable (`forHttp2`): undici 7.30's HTTP/2 client, when a
 *   Readable body fails, leaves the connection unable to send the next request (it hangs), which
 *   an iterable's failure does not.
 * undici's own RequestContentLengthMismatchError is still turned into the typed error.
 */
import { pipeline, Transform } from 'node:stream';
import type { Readable, TransformCallback } from 'node:stream';
import { InvalidArgumentError } from '../core/errors.js';
import type { ErrorSubject } from '../core/errors.js';

/** undici's code for a request body whose length disagrees with its content-length header. */
export const REQ_LENGTH_MISMATCH = 'UND_ERR_REQ_CONTENT_LENGTH_MISMATCH';

/** What `checkedBody` fails the attempt with: undici's code, plus both lengths. */
export class RequestBodyLengthError extends Error {
  readonly code = REQ_LENGTH_MISMATCH;
  /** The content-length header's value. */
  readonly declared: number;
  /** Bytes the body yielded: all of them when `ended`, else as far as past `declared`. */
  readonly sent: number;
  readonly ended: boolean;

  constructor(declared: number, sent: number, ended: boolean) {
    super(ended ? `the request body ended after ${sent} bytes` : `the request body streamed at least ${sent} bytes`);
    this.name = 'RequestBodyLengthError';
    this.declared = declared;
    this.sent = sent;
    this.ended = ended;
  }
}

/** Whether `err` is a request body that disagreed with its content-length header (undici's or ours). */
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
 * is counted on its way (`checkedChunks`, `countedStream`); any other body is returned as is.
 * One `typeof` for the common bodies (none, a string). A streamed body is sent by one attempt
 * only (it is never replayed).
 */
export function checkedBody(body: unknown, pairs: readonly string[]): unknown {
  if (typeof body !== 'object' || body === null) return body;
  const kind = streamKind(body);
  if (kind === undefined) return body;
  const declared = declaredLength(pairs);
  // No header, or 0 (undici sends no length for a GET's empty declaration, and checks a POST's itself).
  if (declared <= 0) return body;
  return kind === 'stream' ? countedStream(body as Readable, declared) : checkedChunks(body as AsyncIterable<Chunk> | Iterable<Chunk>, declared);
}

/** Passes a byte stream through, failing before a chunk that would pass `declared` bytes, or at an end short of them. */
class LengthCheck extends Transform {
  readonly #declared: number;
  #sent = 0;

  constructor(declared: number) {
    super();
    this.#declared = declared;
  }

  override _transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback): void {
    this.#sent += chunk.length;
    if (this.#sent > this.#declared) callback(new RequestBodyLengthError(this.#declared, this.#sent, false));
    else callback(null, chunk);
  }

  override _flush(callback: TransformCallback): void {
    callback(this.#sent === this.#declared ? null : new RequestBodyLengthError(this.#declared, this.#sent, true));
  }
}

/**
 * The body an HTTP/2 Pool hands to undici: a LengthCheck as an async iterable (its iterator
 * rejects with the check's error; `return()` destroys it, and with it the caller's stream), any
 * other body as is.
 */
export function forHttp2(body: unknown): unknown {
  if (!(body instanceof LengthCheck)) return body;
  return { [Symbol.asyncIterator]: (): AsyncIterator<Buffer> => body[Symbol.asyncIterator]() };
}

/** `source` through a LengthCheck; either failing destroys the other (`pipeline`). */
function countedStream(source: Readable, declared: number): Readable {
  const check = new LengthCheck(declared);
  pipeline(source, check, () => undefined);
  return check;
}

/**
 * Yields `source`'s chunks, failing with RequestBodyLengthError before a chunk that would pass
 * `declared` bytes, or at the end when fewer came. The source's iterator is driven by hand: on a
 * failure its `return()` is called but not awaited (fetch()'s never settles).
 */
async function* checkedChunks(source: AsyncIterable<Chunk> | Iterable<Chunk>, declared: number): AsyncGenerator<Chunk, void, undefined> {
  const it: AsyncIterator<Chunk> | Iterator<Chunk> = Symbol.asyncIterator in source ? source[Symbol.asyncIterator]() : (source as Iterable<Chunk>)[Symbol.iterator]();
  let sent = 0;
  let done = false;
  try {
    for (;;) {
      const r = await it.next();
      if (r.done === true) {
        done = true;
        break;
      }
      // As undici's for-await over a sync iterable, a promised chunk is awaited.
      const chunk = await r.value;
      sent += typeof chunk === 'string' ? Buffer.byteLength(chunk) : chunk.byteLength;
      if (sent > declared) throw new RequestBodyLengthError(declared, sent, false);
      yield chunk;
    }
  } finally {
    if (!done && typeof it.return === 'function') {
      try {
        void Promise.resolve(it.return()).catch(() => undefined);
      } catch {
        // A throwing return() is the source's business; the attempt has already failed.
      }
    }
  }
  if (sent !== declared) throw new RequestBodyLengthError(declared, sent, true);
}

/** The typed error for a body that disagreed with its header; `declared` is -1 when unknown. */
function lengthMismatchError(err: Error, declared: number, body: unknown, subject: ErrorSubject): InstanceType<typeof InvalidArgumentError> {
  const says = declared >= 0 ? `header content-length says ${declared} bytes` : 'header content-length disagrees with the request body';
  let what = '';
  if (err instanceof RequestBodyLengthError) {
    what = err.ended ? `but the request body ended after ${err.sent} bytes` : `but the request body streamed at least ${err.sent} bytes`;
  } else if (declared >= 0 && typeof body === 'object' && body !== null && typeof (body as { readableEnded?: unknown }).readableEnded === 'boolean') {
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
 * with its content-length header (`pairs`: the attempt's headers), or the error the caller's own
 * body stream failed with.
 */
export function callerBodyError(err: Error, body: unknown, pairs: readonly string[], subject: ErrorSubject): Error | undefined {
  if (isBodyLengthMismatch(err)) return lengthMismatchError(err, declaredLength(pairs), body, subject);
  if (body === null || typeof body !== 'object' || (body as { errored?: unknown }).errored !== err) return undefined;
  return new InvalidArgumentError(`the request body failed while it was sent: ${err.message}`, { ...subject, cause: err });
}

/** `err` as the caller's mistake when it is a length mismatch, for a layer that does not know the request (undici-errors.ts). */
export function bodyLengthMismatchError(err: Error, subject: ErrorSubject): InstanceType<typeof InvalidArgumentError> {
  return lengthMismatchError(err, err instanceof RequestBodyLengthError ? err.declared : -1, undefined, subject);
}

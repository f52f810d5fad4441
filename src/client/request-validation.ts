/**
 * Validation of a request's arguments at the entry (`mesh.http().request()`, `mesh.dispatcher`),
 * before the outbound stack: whatever undici would refuse locally (lib/core/request.js,
 * lib/api/api-request.js, lib/core/util.js in undici 7) is refused here first, as a typed
 * `InvalidArgumentError` naming the option. Inside the stack the same mistake surfaced as a
 * transport failure of the chosen endpoint, so it was retried, charged to the endpoint's outlier
 * stats, the breaker and the retry budget: with a low volume threshold one bad call opened the
 * breaker for every correct caller (issue 13, item 6).
 *
 * This is the hot path: `typeof` tests, one single-character-class scan per path and header
 * value, a table lookup per character of short tokens, and no allocation unless the request is
 * refused. Header values
 * are never quoted in messages (an `authorization` header with a stray CR/LF is still a secret).
 *
 * Invariant: a request this function accepts is one undici's request() accepts (for the options
 * Trellis passes on); the mesh adds its own rule that the path is origin-form (starts with '/'),
 * as routes match and rewrite on it.
 */
import { stringify } from 'node:querystring';
import type { ParsedUrlQueryInput } from 'node:querystring';
import { InvalidArgumentError } from '../core/errors.js';

/** The error this module returns. */
export type InvalidArgument = InstanceType<typeof InvalidArgumentError>;

/** RFC 9110 §5.6.2 tchar, by char code (undici's `validTokenChars`). */
const TOKEN = new Uint8Array(128);
for (const c of "!#$%&'*+-.^_`|~") TOKEN[c.charCodeAt(0)] = 1;
for (let c = 0x30; c <= 0x39; c++) TOKEN[c] = 1;
for (let c = 0x41; c <= 0x5a; c++) TOKEN[c] = 1;
for (let c = 0x61; c <= 0x7a; c++) TOKEN[c] = 1;

// One character class each, unanchored: V8 scans with it in native code, linearly, with no
// backtracking, faster than a charCodeAt loop past a dozen characters (measured: bench/
// request-validation.ts). undici uses the same classes.
/** A character a header value may not hold: anything but HTAB, SP..~ and obs-text (0x80-0xff). */
const BAD_VALUE_CHAR = /[^\t\x20-\x7e\x80-\xff]/;
/** A character a request-target may not hold: controls, SP, DEL, anything above 0xff. */
const BAD_PATH_CHAR = /[^\x21-\x7e\x80-\xff]/;
/** A character that is not a tchar, for tokens too long for the table loop to win. */
const BAD_TOKEN_CHAR = /[^!#$%&'*+\-.^_`|~0-9A-Za-z]/;

/** Index of the first character that is not a token character, or -1 (an empty string is not a token: 0). */
function badTokenChar(s: string): number {
  if (s.length === 0) return 0;
  if (s.length >= 12) return BAD_TOKEN_CHAR.test(s) ? s.search(BAD_TOKEN_CHAR) : -1;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c >= 128 || TOKEN[c] !== 1) return i;
  }
  return -1;
}

/** Index of the first character a header value may not hold, or -1. */
function badValueChar(s: string): number {
  return BAD_VALUE_CHAR.test(s) ? s.search(BAD_VALUE_CHAR) : -1;
}

/** Index of the first character a request-target may not hold, or -1 (a short one by a loop: no regular expression call). */
function badPathChar(s: string): number {
  if (s.length < 12) {
    for (let i = 0; i < s.length; i++) {
      const c = s.charCodeAt(i);
      if (c <= 0x20 || c === 0x7f || c > 0xff) return i;
    }
    return -1;
  }
  return BAD_PATH_CHAR.test(s) ? s.search(BAD_PATH_CHAR) : -1;
}

/** A value for a message: JSON-quoted (so CR/LF show as \r\n) and cut short. */
function show(value: unknown): string {
  if (typeof value === 'string') {
    return JSON.stringify(value.length > 80 ? `${value.slice(0, 80)}…` : value);
  }
  if (value === null) return 'null';
  if (typeof value === 'object') {
    const name: unknown = (value as { constructor?: { name?: unknown } }).constructor?.name;
    return typeof name === 'string' && name !== 'Object' ? `a ${name}` : 'an object';
  }
  if (typeof value === 'function') return 'a function';
  return `${typeof value} ${String(value)}`;
}

function charName(s: string, i: number): string {
  const c = s.charCodeAt(i);
  if (c === 0x0d) return 'CR';
  if (c === 0x0a) return 'LF';
  if (c === 0x20) return 'a space';
  if (c < 0x20 || c === 0x7f) return `control character 0x${c.toString(16).padStart(2, '0')}`;
  return `character ${JSON.stringify(s[i])}`;
}

function refuse(service: string, message: string): InvalidArgument {
  return new InvalidArgumentError(message, { service });
}

function isOptionalBoolean(v: unknown): boolean {
  return v === undefined || v === null || typeof v === 'boolean';
}
function notBoolean(service: string, name: string, v: unknown): InvalidArgument {
  return refuse(service, `${name} must be a boolean, got ${show(v)}`);
}
/** undici's rule for timeouts and highWaterMark: a finite number >= 0 when given. */
function isOptionalNonNegative(v: unknown): boolean {
  return v === undefined || v === null || (typeof v === 'number' && Number.isFinite(v) && v >= 0);
}
function notNonNegative(service: string, name: string, v: unknown): InvalidArgument {
  return refuse(service, `${name} must be a finite number >= 0, got ${show(v)}`);
}

/**
 * Header names undici refuses outright: framing and connection management are its job. With host,
 * content-length and connection, the special names are 4, 6, 7, 10, 14 or 17 characters long
 * (and, to an HTTP/2 destination, te's 2 and proxy-connection's 16; http2-settings is 14).
 */
const FORBIDDEN_HEADERS: ReadonlySet<string> = new Set(['transfer-encoding', 'keep-alive', 'upgrade', 'expect']);

/** The fields of request options this module reads. */
export interface RequestArguments {
  path?: unknown;
  method?: unknown;
  headers?: unknown;
  body?: unknown;
  idempotent?: unknown;
  reset?: unknown;
  expectContinue?: unknown;
  headersTimeout?: unknown;
  bodyTimeout?: unknown;
  highWaterMark?: unknown;
  query?: unknown;
  signal?: unknown;
  routeKey?: unknown;
  upgrade?: unknown;
  throwOnError?: unknown;
  maxRedirections?: unknown;
  typeOfService?: unknown;
  onInfo?: unknown;
  [option: string]: unknown;
}

/** Takes each header once it is checked, in the caller's order (call-headers.ts's CallerHeaders). */
export interface HeaderSink {
  add(name: string, value: unknown): void;
}

/**
 * The error for the first invalid argument of a request, or undefined when every argument is
 * acceptable. `service` names the destination in the error. With `sink`, every header is handed
 * to it as it passes (one walk over the caller's headers, not one to check and one to copy; an
 * iterator the caller gave is read once); after a refusal its contents mean nothing.
 */
export function invalidRequestArgument(opts: unknown, service: string, sink?: HeaderSink, http2 = false): InvalidArgument | undefined {
  if (opts === null || typeof opts !== 'object') return refuse(service, `request options must be an object, got ${show(opts)}`);
  const o = opts as RequestArguments;

  const path = o.path;
  if (typeof path !== 'string') return refuse(service, `path must be a string starting with '/', got ${path === undefined ? 'none' : show(path)}`);
  if (path.charCodeAt(0) !== 0x2f) return refuse(service, `path must start with '/', got ${show(path)}`);
  const p = badPathChar(path);
  if (p >= 0) return refuse(service, `path ${show(path)} holds ${charName(path, p)} at index ${p}`);
  if (o.query !== undefined && o.query !== null) {
    if (typeof o.query !== 'object') return refuse(service, `query must be an object, got ${show(o.query)}`);
    if (path.includes('?') || path.includes('#')) return refuse(service, `query cannot be given when path ${show(path)} already has a query or fragment`);
  }

  const method = o.method;
  if (method !== undefined) {
    if (typeof method !== 'string') return refuse(service, `method must be a string, got ${show(method)}`);
    if (badTokenChar(method) >= 0) return refuse(service, `method ${show(method)} is not an HTTP token`);
    // undici's request() cannot carry CONNECT (a tunnel, not a request): mesh.connect() is for that.
    if (method.length === 7 && method.toUpperCase() === 'CONNECT') return refuse(service, 'method CONNECT is not a request (use mesh.connect() for a tunnel)');
  }

  let seen: SeenHeaders | undefined;
  if (o.headers !== undefined && o.headers !== null) {
    seen = { host: false, contentLength: -1, http2, te: false, blockBytes: 0 };
    const h = invalidHeaders(o.headers, seen, service, sink);
    if (h !== undefined) return h;
  }
  if (http2) {
    // nghttp2's bound on the HEADERS frame it will send: 12 bytes, then per field 12 + name + value
    // (the :path with the query undici appends, serialized as undici does).
    let query = 0;
    if (o.query !== undefined && o.query !== null) {
      try {
        query = stringify(o.query as ParsedUrlQueryInput).length + 1;
      } catch (e) {
        return refuse(service, `query could not be serialized: ${e instanceof Error ? e.message : String(e)}`);
      }
    }
    const bytes = 12 + (seen?.blockBytes ?? 0) + FIELD_OVERHEAD + 5 + path.length + query;
    if (bytes > HTTP2_CALLER_BLOCK_LIMIT) {
      return refuse(service, `the path and headers come to ${bytes} bytes, more than HTTP/2 can send in one header block (${HTTP2_CALLER_BLOCK_LIMIT}, leaving room for what the mesh adds; ${service} is protocol http2)`);
    }
  }

  const body = o.body;
  if (body !== undefined && body !== null && typeof body !== 'string' && !isBodyObject(body)) {
    return refuse(service, `body must be a string, a Buffer or typed array, an ArrayBuffer, a Readable stream, an (async) iterable, a Blob or FormData, got ${show(body)}`);
  }
  if (seen !== undefined && seen.contentLength >= 0) {
    const m = contentLengthMismatch(seen.contentLength, method, body, service);
    if (m !== undefined) return m;
  }
  if (http2 && body !== undefined && body !== null) {
    const b = http2BodyRefusal(method, body, service);
    if (b !== undefined) return b;
  }

  const signal = o.signal;
  // Only an AbortSignal is wired to cancellation; an EventEmitter signal would be silently ignored.
  if (signal !== undefined && signal !== null && !(signal instanceof AbortSignal)) return refuse(service, `signal must be an AbortSignal, got ${show(signal)}`);
  if (o.routeKey !== undefined && typeof o.routeKey !== 'string') return refuse(service, `routeKey must be a string, got ${show(o.routeKey)}`);

  // Direct property reads (no loop over option names): each is a monomorphic load on the hot path.
  if (!isOptionalBoolean(o.idempotent)) return notBoolean(service, 'idempotent', o.idempotent);
  if (!isOptionalBoolean(o.reset)) return notBoolean(service, 'reset', o.reset);
  if (!isOptionalBoolean(o.expectContinue)) return notBoolean(service, 'expectContinue', o.expectContinue);
  if (!isOptionalNonNegative(o.headersTimeout)) return notNonNegative(service, 'headersTimeout', o.headersTimeout);
  if (!isOptionalNonNegative(o.bodyTimeout)) return notNonNegative(service, 'bodyTimeout', o.bodyTimeout);
  if (!isOptionalNonNegative(o.highWaterMark)) return notNonNegative(service, 'highWaterMark', o.highWaterMark);
  if (isUpgrade(o)) {
    // undici's rule (a string that is a valid header value), and no body: an upgrade's opening is
    // retried on connect failure, and nothing the caller sends belongs before the 101.
    if (typeof o.upgrade !== 'string' || badValueChar(o.upgrade) >= 0) return refuse(service, `upgrade must be the protocol to switch to (the Upgrade header, e.g. 'websocket'), got ${show(o.upgrade)}`);
    if (body !== undefined && body !== null && body !== '') return refuse(service, 'an upgrade request carries no body (send it over the socket once upgraded)');
  }
  if (o.throwOnError !== undefined && o.throwOnError !== null) return refuse(service, 'throwOnError is not supported by undici 7 (check statusCode instead)');
  if (o.maxRedirections !== undefined && o.maxRedirections !== null && o.maxRedirections !== 0) return refuse(service, `maxRedirections ${show(o.maxRedirections)} is not supported (the mesh follows no redirects)`);
  const tos = o.typeOfService;
  if (tos !== undefined && tos !== null && (typeof tos !== 'number' || !Number.isInteger(tos) || tos < 0 || tos > 255)) return refuse(service, `typeOfService must be an integer between 0 and 255, got ${show(tos)}`);
  if (o.onInfo !== undefined && o.onInfo !== null && typeof o.onInfo !== 'function') return refuse(service, `onInfo must be a function, got ${show(o.onInfo)}`);
  return undefined;
}

/** Whether request options ask for an upgrade (undici treats any truthy `upgrade` so). */
export function isUpgrade(opts: { upgrade?: unknown }): boolean {
  const u = opts.upgrade;
  return u !== undefined && u !== null && u !== false && u !== '';
}

/** undici's body kinds other than a string (lib/core/request.js). */
function isBodyObject(body: unknown): boolean {
  if (typeof body !== 'object' && typeof body !== 'function') return false;
  if (body instanceof Uint8Array || ArrayBuffer.isView(body) || body instanceof ArrayBuffer) return true;
  const b = body as Record<string | symbol, unknown>;
  if (typeof b.pipe === 'function' && typeof b.on === 'function') return true; // a stream
  if (typeof b[Symbol.iterator] === 'function' || typeof b[Symbol.asyncIterator] === 'function') return true;
  if (body instanceof Blob) return true;
  const tag = b[Symbol.toStringTag];
  return tag === 'FormData' || tag === 'Blob' || tag === 'File';
}

/**
 * What the header checks saw of the single-valued headers: `contentLength` is -1 when none was
 * given. `http2`: the destination speaks HTTP/2 (`te` is then single-valued too).
 */
interface SeenHeaders {
  host: boolean;
  contentLength: number;
  readonly http2: boolean;
  te: boolean;
  /** With `http2`: the headers' share of nghttp2's header block bound (FIELD_OVERHEAD + name + value each). */
  blockBytes: number;
}

/** nghttp2's per-field overhead in its bound on a header block (nghttp2_hd_deflate_bound). */
const FIELD_OVERHEAD = 12;

/**
 * The most of the header block bound a caller's path and headers may use to an HTTP/2
 * destination: nghttp2 refuses to send a block whose bound passes 64 KiB (Node's default
 * maxSendHeaderBlockLength), failing the stream with a frame error after which undici's client
 * sent nothing more on that endpoint (every later request waited for its timeout). 1 KiB is
 * left for the pseudo-headers, authority, content-length, deadline and trace headers the request
 * gains on its way.
 */
const HTTP2_CALLER_BLOCK_LIMIT = 65_536 - 1_024;

/** A header's share of the HTTP/2 header block bound (a list counted as one field per item, an overestimate). */
function blockShare(name: string, value: unknown): number {
  if (Array.isArray(value)) {
    let n = 0;
    for (const v of value) n += FIELD_OVERHEAD + name.length + String(v).length;
    return n;
  }
  return FIELD_OVERHEAD + name.length + (typeof value === 'string' ? value : String(value)).length;
}

/**
 * Connection-specific headers node:http2 refuses on a request (RFC 9113 §8.2.2) that undici
 * neither refuses nor manages itself (it refuses transfer-encoding, keep-alive and upgrade, and
 * consumes connection): inside undici's HTTP/2 writer they throw, which failed the attempt as the
 * endpoint's error and left the request stuck in the endpoint's client. `te` is allowed only
 * as the single value `trailers`.
 */
function http2Refusal(lower: string, value: unknown, seen: SeenHeaders, service: string): InvalidArgument | undefined {
  // A null value is no header: the mesh sends none (CallerHeaders).
  if (value === null) return undefined;
  if (lower === 'proxy-connection' || lower === 'http2-settings') {
    return refuse(service, `header ${lower} is connection-specific, which HTTP/2 forbids (${service} is protocol http2)`);
  }
  if (lower !== 'te') return undefined;
  const one = Array.isArray(value) && value.length === 1 ? value[0] : value;
  if (seen.te || one !== 'trailers') return refuse(service, `header te may only be the single value 'trailers' over HTTP/2 (${service} is protocol http2)`);
  seen.te = true;
  return undefined;
}

/**
 * Methods undici sends no content-length for, and so never checks against the body's length
 * (lib/dispatcher/client-h1.js `shouldSendContentLength`; CONNECT is refused above).
 */
const NO_LENGTH_METHODS: ReadonlySet<string> = new Set(['GET', 'HEAD', 'OPTIONS', 'TRACE']);

/** The byte length of a body undici sends from memory (string, Buffer, typed array, ArrayBuffer, Blob), or -1. */
function knownBodyLength(body: unknown): number {
  if (body === undefined || body === null) return 0;
  if (typeof body === 'string') return Buffer.byteLength(body);
  if (ArrayBuffer.isView(body) || body instanceof ArrayBuffer) return body.byteLength;
  if (body instanceof Blob) return body.size;
  return -1;
}

/**
 * A `content-length` header that disagrees with a body of known length: undici fails such a
 * request in the endpoint's Pool (UND_ERR_REQ_CONTENT_LENGTH_MISMATCH), where it looked like a
 * failure of the endpoint. Refused here on undici's own rule (a method that sends a length, a
 * non-empty body: an empty one is sent with `content-length: 0`), so what this accepts undici
 * does too. A streamed body's length is only known once it ends (request-body.ts counts it as it is sent).
 */
function contentLengthMismatch(declared: number, method: unknown, body: unknown, service: string): InvalidArgument | undefined {
  const actual = knownBodyLength(body);
  if (actual <= 0 || actual === declared) return undefined;
  if (typeof method !== 'string' || NO_LENGTH_METHODS.has(method.toUpperCase())) return undefined;
  return refuse(service, `header content-length says ${declared} bytes but the body holds ${actual} bytes`);
}

/**
 * A body undici 7's HTTP/2 client cannot send (lib/dispatcher/client-h2.js writeH2): it ends a
 * GET's or HEAD's stream with the headers ("write after end"), and its FormData path throws.
 * Each failed as the endpoint's error; refused here as the caller's. (A string or Buffer body
 * with a method other than POST, PUT or PATCH, which undici's assertion refused, is sent as a
 * Blob by the HTTP/2 pool, http2-pool.ts.)
 */
function http2BodyRefusal(method: unknown, body: unknown, service: string): InvalidArgument | undefined {
  const m = typeof method === 'string' ? method.toUpperCase() : 'GET';
  const known = knownBodyLength(body);
  if (m === 'GET' || m === 'HEAD') {
    if (known !== 0) return refuse(service, `a ${m} request to an HTTP/2 destination carries no body (${service} is protocol http2; undici ends the stream with the headers)`);
    return undefined;
  }
  if ((body as { [Symbol.toStringTag]?: unknown })[Symbol.toStringTag] === 'FormData') {
    return refuse(service, `a FormData body cannot be sent to an HTTP/2 destination by undici 7 (${service} is protocol http2): serialize it (new Response(formData) gives its bytes and content-type)`);
  }
  return undefined;
}

/** Checks every header of any shape undici accepts (object, flat array, array of pairs, Headers, Map). */
function invalidHeaders(headers: unknown, seen: SeenHeaders, service: string, sink: HeaderSink | undefined): InvalidArgument | undefined {
  if (typeof headers !== 'object' || headers === null) return refuse(service, `headers must be an object or an array, got ${show(headers)}`);
  if (Array.isArray(headers)) {
    if (headers.length > 0 && Array.isArray(headers[0])) {
      for (const pair of headers as unknown[]) {
        if (!Array.isArray(pair) || pair.length !== 2) return refuse(service, 'headers given as an array of pairs must hold [name, value] pairs only');
        const e = invalidHeader(pair[0], pair[1], seen, service);
        if (e !== undefined) return e;
        if (sink !== undefined && pair[1] !== undefined) sink.add(pair[0] as string, pair[1]);
      }
      return undefined;
    }
    if (headers.length % 2 !== 0) return refuse(service, `headers given as a flat array must have an even length, got ${headers.length}`);
    for (let i = 0; i < headers.length; i += 2) {
      const e = invalidHeader(headers[i], headers[i + 1], seen, service);
      if (e !== undefined) return e;
      if (sink !== undefined && headers[i + 1] !== undefined) sink.add(headers[i] as string, headers[i + 1]);
    }
    return undefined;
  }
  // An iterable of its own (Headers, Map), never one injected on Object.prototype (undici's hasSafeIterator).
  const proto: unknown = Object.getPrototypeOf(headers);
  if (proto !== Object.prototype && proto !== null && typeof (headers as Iterable<unknown>)[Symbol.iterator] === 'function') {
    for (const pair of headers as Iterable<unknown>) {
      if (!Array.isArray(pair) || pair.length !== 2) return refuse(service, 'headers given as an iterable must yield [name, value] pairs');
      const e = invalidHeader(pair[0], pair[1], seen, service);
      if (e !== undefined) return e;
      if (sink !== undefined && pair[1] !== undefined) sink.add(pair[0] as string, pair[1]);
    }
    return undefined;
  }
  const record = headers as Record<string, unknown>;
  const names = Object.keys(record);
  for (let i = 0; i < names.length; i++) {
    const name = names[i] as string;
    const value = record[name];
    const e = invalidHeader(name, value, seen, service);
    if (e !== undefined) return e;
    if (sink !== undefined && value !== undefined) sink.add(name, value);
  }
  return undefined;
}

function invalidHeader(name: unknown, value: unknown, seen: SeenHeaders, service: string): InvalidArgument | undefined {
  // An undefined value means "no such header", whatever its name (as undici skips it).
  if (value === undefined) return undefined;
  if (typeof name !== 'string') return refuse(service, `header names must be strings, got ${show(name)}`);
  const n = badTokenChar(name);
  if (n >= 0) return refuse(service, `header name ${show(name)} is not an HTTP token${name.length > 0 ? ` (${charName(name, n)} at index ${n})` : ''}`);
  if (seen.http2 && value !== null) seen.blockBytes += blockShare(name, value);
  // Only names as long as a special one need lower-casing and the rules below.
  const len = name.length;
  if (len !== 4 && len !== 6 && len !== 7 && len !== 10 && len !== 14 && len !== 17 && !(seen.http2 && (len === 2 || len === 16))) return invalidHeaderValue(name, value, service);
  const lower = name.toLowerCase();
  if (FORBIDDEN_HEADERS.has(lower)) return refuse(service, `header ${lower} cannot be set on a request (undici manages it)`);
  if (seen.http2) {
    const h2 = http2Refusal(lower, value, seen, service);
    if (h2 !== undefined) return h2;
  }
  if (Array.isArray(value)) {
    // Duplicates are joined as several values; host and content-length must be single.
    if (lower === 'host' || lower === 'content-length') return refuse(service, `header ${lower} must have a single value`);
    for (const item of value) {
      const e = invalidHeaderValue(lower, item, service);
      if (e !== undefined) return e;
    }
    return undefined;
  }
  const e = invalidHeaderValue(lower, value, service);
  if (e !== undefined) return e;
  if (lower === 'host') {
    if (seen.host) return refuse(service, 'header host given twice');
    seen.host = true;
    if (seen.http2 && badAuthority(value)) return refuse(service, `header host is not a valid authority (host[:port]; ${service} is protocol http2, whose servers reset a stream with such an :authority)`);
  } else if (lower === 'content-length') {
    if (seen.contentLength >= 0) return refuse(service, 'header content-length given twice');
    if (!isDigits(value)) return refuse(service, `header content-length must be a decimal number, got ${show(value)}`);
    seen.contentLength = typeof value === 'number' ? value : Number(value);
  } else if (lower === 'connection') {
    if (typeof value !== 'string') return refuse(service, 'header connection must be a string of tokens');
    for (const token of value.split(',')) {
      if (badTokenChar(token.trim()) >= 0) return refuse(service, `header connection must be a comma-separated list of tokens, got ${show(value)}`);
    }
  }
  return undefined;
}

function invalidHeaderValue(name: string, value: unknown, service: string): InvalidArgument | undefined {
  if (value === null || value === undefined) return undefined;
  let s: string;
  if (typeof value === 'string') s = value;
  else if (typeof value === 'object' || typeof value === 'function' || typeof value === 'symbol') return refuse(service, `header ${name} must be a string, a number or an array of them, got ${show(value)}`);
  else s = String(value);
  const i = badValueChar(s);
  // The value itself stays out of the message: headers carry credentials.
  if (i >= 0) return refuse(service, `header ${name} holds ${charName(s, i)} at index ${i} (CR, LF, NUL and other controls are refused)`);
  return undefined;
}

/** RFC 3986 authority characters (unreserved, pct-encoded, sub-delims, ':', '@', '[', ']'): nghttp2's check of :authority. */
const AUTHORITY = new Uint8Array(128);
for (const c of "-._~%!$&'()*+,;=:@[]") AUTHORITY[c.charCodeAt(0)] = 1;
for (let c = 0x30; c <= 0x39; c++) AUTHORITY[c] = 1;
for (let c = 0x41; c <= 0x5a; c++) AUTHORITY[c] = 1;
for (let c = 0x61; c <= 0x7a; c++) AUTHORITY[c] = 1;

/** Whether a host header value holds a character no authority may (an empty one is the service's own). */
function badAuthority(value: unknown): boolean {
  const s = typeof value === 'string' ? value : String(value);
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c >= 128 || AUTHORITY[c] !== 1) return true;
  }
  return false;
}

function isDigits(value: unknown): boolean {
  const s = typeof value === 'number' ? String(value) : value;
  if (typeof s !== 'string' || s.length === 0) return false;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c < 0x30 || c > 0x39) return false;
  }
  return true;
}

/**
 * Releases a request body the caller handed over with a request that was refused: a stream is
 * destroyed with the error (as undici's request() does), so its source is not left open.
 */
export function discardRefusedBody(opts: unknown, err: Error): void {
  const body = opts !== null && typeof opts === 'object' ? (opts as { body?: unknown }).body : undefined;
  if (body === null || typeof body !== 'object') return;
  const stream = body as { pipe?: unknown; on?: unknown; destroy?: unknown };
  if (typeof stream.pipe === 'function' && typeof stream.on === 'function' && typeof stream.destroy === 'function') {
    (stream.on as (event: string, listener: () => void) => void).call(body, 'error', () => {});
    (stream.destroy as (e: Error) => void).call(body, err);
  }
}

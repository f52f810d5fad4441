/**
 * The caller's request headers as the hot path sends them (outbound-call.ts), read once per call
 * from any shape undici accepts (a plain object, a flat or paired array, an iterable such as
 * Headers): name/value pairs passed on as given, minus the ones the mesh writes itself — `host`
 * (kept aside: the service name, or a route's authority, when the caller set none) and, with
 * tracing, the trace headers (kept aside as the parent when no other is active). With routes, a
 * lower-cased object for header matching is built alongside; without, nothing else is allocated.
 */
import { isTraceHeader } from '../observability/propagation.js';

export class CallerHeaders {
  /** Name/value pairs to send, in the caller's order and spelling. */
  readonly pairs: string[] = [];
  /** The caller's `host` header, if any. */
  host: string | undefined = undefined;
  /** Trace headers the caller put there (lower-case names), when tracing strips them. */
  trace: Record<string, string> | undefined = undefined;
  /** Lower-cased headers for route matching, when asked for. */
  readonly match: Record<string, string | string[]> | undefined;
  readonly #tracing: boolean;
  /**
   * Names are sent lower-cased (HTTP/2 destinations): undici's HTTP/2 writer keys headers by the
   * name as given, so `Content-Type` and `content-type` reached node:http2 as two single-value
   * headers, which it refuses by throwing; under one name undici joins their values.
   */
  readonly #lowerNames: boolean;

  /**
   * Reads `input` (any shape undici accepts); with `undefined`, the headers are given one by one
   * with `add` (request-validation.ts does, as it checks each, so they are walked once).
   */
  constructor(input: unknown, tracing: boolean, forMatching: boolean, lowerNames = false) {
    this.#tracing = tracing;
    this.#lowerNames = lowerNames;
    this.match = forMatching ? {} : undefined;
    if (input === undefined || input === null) return;
    if (Array.isArray(input)) {
      if (input.length > 0 && Array.isArray(input[0])) for (const pair of input as unknown[][]) this.add(String(pair[0]), pair[1]);
      else for (let i = 0; i + 1 < input.length; i += 2) this.add(String(input[i]), input[i + 1]);
    } else if (typeof (input as { [Symbol.iterator]?: unknown })[Symbol.iterator] === 'function') {
      for (const [k, v] of input as Iterable<[string, unknown]>) this.add(k, v);
    } else {
      const o = input as Record<string, unknown>;
      for (const k in o) this.add(k, o[k]);
    }
  }

  /** Adds one header as the caller gave it (an undefined or null value is no header). */
  add(k: string, v: unknown): void {
    if (v === undefined || v === null) return;
    const lk = k.toLowerCase();
    const mh = this.match;
    if (mh !== undefined) {
      const sv = Array.isArray(v) ? v.map(String) : String(v);
      const prev = mh[lk];
      mh[lk] = prev === undefined ? sv : ([] as string[]).concat(prev, sv);
    }
    if (lk === 'host') {
      this.host = Array.isArray(v) ? String(v[0]) : String(v);
      return;
    }
    if (this.#tracing && isTraceHeader(lk)) {
      (this.trace ??= {})[lk] = Array.isArray(v) ? String(v[0]) : String(v);
      return;
    }
    const out = this.pairs;
    const name = this.#lowerNames ? lk : k;
    if (Array.isArray(v)) for (const item of v) out.push(name, String(item));
    else out.push(name, typeof v === 'string' ? v : String(v));
  }
}

/** Whether a request body can be sent again: absent, or held in memory within `cap` bytes. */
export function replayableBody(body: unknown, cap: number): boolean {
  if (body === undefined || body === null) return true;
  if (typeof body === 'string') return body.length <= cap && Buffer.byteLength(body) <= cap;
  if (body instanceof Uint8Array) return body.byteLength <= cap;
  return false;
}

const CONTENT_LENGTH = 'content-length';

/** Whether `name` (raw header bytes) is `content-length` in any case, read byte by byte (no string made). */
function isContentLength(name: Buffer): boolean {
  if (name.length !== 14) return false;
  for (let i = 0; i < 14; i++) {
    let c = name[i]!;
    if (c >= 0x41 && c <= 0x5a) c |= 0x20;
    if (c !== CONTENT_LENGTH.charCodeAt(i)) return false;
  }
  return true;
}

/** The value of `content-length` in a response's raw headers, or -1 (read from the bytes: no string made). */
export function contentLength(raw: readonly Buffer[]): number {
  for (let i = 0; i + 1 < raw.length; i += 2) {
    if (!isContentLength(raw[i]!)) continue;
    const v = raw[i + 1]!;
    // Digits only, as undici itself requires of a response's content-length; at most 15 (exact in a double).
    if (v.length === 0 || v.length > 15) return -1;
    let n = 0;
    for (let j = 0; j < v.length; j++) {
      const d = v[j]! - 0x30;
      if (d < 0 || d > 9) return -1;
      n = n * 10 + d;
    }
    return n;
  }
  return -1;
}

/**
 * Identity headers are stripped from every inbound request before anything reads it, as Envoy
 * sanitizes `x-forwarded-client-cert` (XFCC) unless told to trust it (docs/security.md,
 * "Identity headers"; matrix row B10). The caller's identity comes only from the verified TLS
 * certificate (src/server/peer.ts) and reaches the application as `req.trellis.peer`, never as
 * a header, so an application that reads one of these headers sees it absent instead of forged.
 *
 * Stripped (exactly these, any case, every occurrence):
 * - `x-forwarded-client-cert`: Envoy/Istio's XFCC. Applications written for Istio read the
 *   caller's SPIFFE id from it; behind Trellis no proxy sets it, so any value is the caller's own.
 * - `x-trellis-caller`, `x-trellis-peer`, `x-trellis-identity`, `x-trellis-spiffe`: reserved for
 *   the verified caller. Trellis never sends or reads them; reserving them means no future
 *   version or application can be tricked into trusting a client-supplied value.
 *
 * Kept: `x-trellis-timeout-ms` (the caller's remaining deadline: it can only shorten our own,
 * src/server/inbound-context.ts), `x-trellis-mirror` (marks a mirrored copy; forging it only
 * labels the caller's own request), and other `x-trellis-*` headers, which carry no identity
 * (`x-trellis-fault` and `x-trellis-rate-limited` are response headers).
 *
 * Every view of the headers is cleaned: `req.headers`, `req.headersDistinct` and `req.rawHeaders`
 * (in place). Requests without these headers cost one scan of the names and allocate nothing.
 *
 * Trailers (a chunked request can send header lines after its body, and an application that
 * merges them into its view of the headers would otherwise read a forged identity there): every
 * `x-forwarded-client-cert` and every `x-trellis-*` line is removed from `req.trailers`,
 * `req.trailersDistinct` and `req.rawTrailers` — no Trellis header means anything as a trailer.
 * Node parses trailers when the body ends, after the handler started, so `guardIdentityTrailers`
 * watches the request: when Node stores its trailers, they are cleaned before any other callback
 * runs (on the next tick, which comes before the request's 'end'). Only requests that can carry
 * trailers (a `transfer-encoding` header) are watched.
 */
import type { IncomingMessage } from 'node:http';

export const IDENTITY_HEADERS: readonly string[] = Object.freeze([
  'x-forwarded-client-cert',
  'x-trellis-caller',
  'x-trellis-peer',
  'x-trellis-identity',
  'x-trellis-spiffe',
]);

const NAMES: ReadonlySet<string> = new Set(IDENTITY_HEADERS);
const MIN = Math.min(...IDENTITY_HEADERS.map((h) => h.length));
const MAX = Math.max(...IDENTITY_HEADERS.map((h) => h.length));

function isIdentityHeader(name: string): boolean {
  if (name.length < MIN || name.length > MAX) return false;
  const c = name.charCodeAt(0);
  if (c !== 0x78 /* x */ && c !== 0x58 /* X */) return false;
  return NAMES.has(name.toLowerCase());
}

/**
 * Removes the lines `strip` picks from a raw header (or trailer) list and from the two objects
 * Node builds from it. Node builds those objects lazily from the raw list *and a count it keeps
 * of them*, so both are built from the full list first and cleaned after. Returns how many
 * lines were removed.
 */
function stripLines(raw: string[], objects: () => [Record<string, unknown>, Record<string, unknown>], strip: (name: string) => boolean): number {
  let found = false;
  for (let i = 0; i < raw.length; i += 2) {
    if (strip(raw[i] as string)) {
      found = true;
      break;
    }
  }
  if (!found) return 0;
  const [plain, distinct] = objects();
  let w = 0;
  let removed = 0;
  for (let i = 0; i + 1 < raw.length; i += 2) {
    const name = raw[i] as string;
    if (strip(name)) {
      removed++;
      const lower = name.toLowerCase();
      delete plain[lower];
      delete distinct[lower];
      continue;
    }
    raw[w++] = name;
    raw[w++] = raw[i + 1] as string;
  }
  raw.length = w;
  return removed;
}

/**
 * Removes the identity headers from `req` (see the file comment). Returns how many header lines
 * were removed.
 */
export function stripIdentityHeaders(req: IncomingMessage): number {
  return stripLines(req.rawHeaders, () => [req.headers, req.headersDistinct], isIdentityHeader);
}

function isTrailerToStrip(name: string): boolean {
  if (name.length < 8) return false;
  const c = name.charCodeAt(0);
  if (c !== 0x78 /* x */ && c !== 0x58 /* X */) return false;
  const lower = name.toLowerCase();
  return lower.startsWith('x-trellis-') || lower === 'x-forwarded-client-cert';
}

/**
 * Removes `x-forwarded-client-cert` and every `x-trellis-*` line from the trailers Node already
 * stored on `req` (see the file comment). Returns how many trailer lines were removed.
 */
export function stripIdentityTrailers(req: IncomingMessage): number {
  return stripLines(req.rawTrailers, () => [req.trailers, req.trailersDistinct], isTrailerToStrip);
}

/**
 * Makes sure identity trailers never reach the application: cleans them now if the request is
 * already complete, else as soon as Node stores them (see the file comment).
 */
export function guardIdentityTrailers(req: IncomingMessage): void {
  if (req.complete) {
    stripIdentityTrailers(req);
    return;
  }
  if (req.headers['transfer-encoding'] === undefined) return;
  // Node assigns `rawTrailers` once, when the body ends, and sets the count its lazy `trailers`
  // getter needs right after; cleaning on the next tick runs after both and before 'end'.
  let raw = req.rawTrailers;
  Object.defineProperty(req, 'rawTrailers', {
    configurable: true,
    enumerable: true,
    get: () => raw,
    set: (value: string[]) => {
      raw = value;
      if (value.length > 0) process.nextTick(stripIdentityTrailers, req);
    },
  });
}

/**
 * Request path normalization, done once before route matching: what a route matches is what is
 * sent upstream, and so what the handler sees (docs/security.md, "Any cert from our CA is not
 * permission": path bypasses came from normalization mismatches — Istio CVE-2021-31920 escaped
 * slashes, istio/istio#27409). The routing layer forwards the normalized path, never the raw one.
 *
 * Rules, applied to the path only (the query string is kept byte for byte):
 * - `%XX` of an unreserved character (RFC 3986 §2.3: ALPHA DIGIT - . _ ~) is decoded, so `%2e%2e`
 *   is a dot segment; other escapes are kept, hex upper-cased (§6.2.2.1). One level of decoding
 *   only: `%252F` stays `%252F`.
 * - `%2F`, `%5C` and `\` become `/` (Envoy's `UNESCAPE_AND_FORWARD`; WHATWG URL parsers treat
 *   `\` as `/` for http URLs, so Node frameworks built on `new URL` would see a slash anyway).
 *   This changes APIs that put an encoded slash inside one segment, deliberately.
 * - Slashes are merged (`//list` → `/list`), `.` and `..` segments resolved (RFC 3986 §5.2.4;
 *   `..` never climbs above the root). A trailing slash is kept.
 * - `;` (matrix parameters) is kept literally: Node frameworks do not strip it, so neither do we.
 * - A path that does not start with `/` (after `\` → `/`) is returned unchanged; no path-based
 *   route can match it.
 *
 * Invariants: idempotent (`normalizePath(normalizePath(p)) === normalizePath(p)`); an already
 * normal path is returned as is, without allocating.
 */

function isHex(c: number): boolean {
  return (c >= 0x30 && c <= 0x39) || (c >= 0x41 && c <= 0x46) || (c >= 0x61 && c <= 0x66);
}

function isUnreserved(c: number): boolean {
  return (
    (c >= 0x41 && c <= 0x5a) || (c >= 0x61 && c <= 0x7a) || (c >= 0x30 && c <= 0x39) ||
    c === 0x2d || c === 0x2e || c === 0x5f || c === 0x7e
  );
}

/** True when the path part needs the slow path: an escape, a backslash, `//` or `/.`. */
function needsWork(path: string): boolean {
  const n = path.length;
  for (let i = 0; i < n; i++) {
    const c = path.charCodeAt(i);
    if (c === 0x25 /* % */ || c === 0x5c /* \ */) return true;
    if (c === 0x2f /* / */ && i + 1 < n) {
      const d = path.charCodeAt(i + 1);
      if (d === 0x2f || d === 0x2e) return true;
    }
  }
  return false;
}

function decodeSafe(path: string): string {
  let out = '';
  const n = path.length;
  for (let i = 0; i < n; i++) {
    const c = path.charCodeAt(i);
    if (c === 0x25 && i + 2 < n && isHex(path.charCodeAt(i + 1)) && isHex(path.charCodeAt(i + 2))) {
      const v = parseInt(path.slice(i + 1, i + 3), 16);
      if (v === 0x2f || v === 0x5c) out += '/';
      else if (isUnreserved(v)) out += String.fromCharCode(v);
      else out += path.slice(i, i + 3).toUpperCase();
      i += 2;
    } else if (c === 0x5c) {
      out += '/';
    } else {
      out += path[i];
    }
  }
  return out;
}

function removeDotSegments(path: string): string {
  const segments = path.split('/');
  const kept: string[] = [];
  let trailing = false;
  // segments[0] is the empty string before the leading slash.
  for (let i = 1; i < segments.length; i++) {
    const s = segments[i] as string;
    const last = i === segments.length - 1;
    if (s === '' || s === '.') {
      trailing = last;
    } else if (s === '..') {
      kept.pop();
      trailing = last;
    } else {
      kept.push(s);
      trailing = false;
    }
  }
  if (kept.length === 0) return '/';
  return `/${kept.join('/')}${trailing ? '/' : ''}`;
}

/** Normalizes a path without a query string (see the file comment for the rules). */
export function normalizePathOnly(path: string): string {
  if (!needsWork(path)) return path;
  const decoded = decodeSafe(path);
  if (decoded.charCodeAt(0) !== 0x2f) return path;
  return removeDotSegments(decoded);
}

/** Index of the `?` that starts the query string, or -1. */
export function queryStart(path: string): number {
  return path.indexOf('?');
}

/** Normalizes the path part of `pathAndQuery`, keeping the query string (from `?`) unchanged. */
export function normalizePath(pathAndQuery: string): string {
  const q = queryStart(pathAndQuery);
  if (q < 0) return normalizePathOnly(pathAndQuery);
  const path = pathAndQuery.slice(0, q);
  const normal = normalizePathOnly(path);
  return normal === path ? pathAndQuery : normal + pathAndQuery.slice(q);
}

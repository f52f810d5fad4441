/**
 * What `mesh.dispatcher` does with a request's origin, decided once per origin shape:
 *
 * - `http://<service>` or `http://<service>:80`, where `<service>` has a Service document:
 *   through the mesh (endpoint, port and mTLS come from discovery and the mtls mode).
 * - `https://<service>` or `http://<service>:<other port>`: refused with
 *   TRELLIS_INVALID_ARGUMENT. The mesh owns transport security and endpoint ports; sending such a
 *   request around the mesh would skip every policy and fail later with ENOTFOUND, and sending it
 *   through the mesh would silently ignore what the caller wrote.
 * - Any other single-label host (`http://inventry`, `http://cache:6379`; not `localhost`, not an
 *   IP literal): with `unknownHosts: 'refuse'` (the default), TRELLIS_UNKNOWN_SERVICE naming the
 *   known services — such a host is almost always a mesh service misspelt or not configured; with
 *   `'pass'`, to DNS like any host (Docker Compose or Kubernetes search domains resolve them).
 * - Everything else (dotted hostnames, IP literals, localhost): passed through untouched.
 */
import { isIP } from 'node:net';
import { InvalidArgumentError, UnknownServiceError } from '../core/errors.js';
import type { TrellisError } from '../core/errors.js';
import { didYouMean } from '../core/did-you-mean.js';

/** What the dispatcher does with single-label hosts that name no configured service. */
export type UnknownHostPolicy = 'refuse' | 'pass';

export interface MeshDispatcherOptions {
  /**
   * Single-label hosts (`http://inventory`) with no Service document: `'refuse'` (default) fails
   * the request with TRELLIS_UNKNOWN_SERVICE; `'pass'` sends it to DNS through undici's Agent.
   */
  unknownHosts?: UnknownHostPolicy;
}

export const UNKNOWN_HOST_POLICIES: readonly UnknownHostPolicy[] = ['refuse', 'pass'];

/** The parts of an origin the decision needs (parsed once per origin string). */
export interface OriginShape {
  readonly protocol: string;
  readonly host: string;
  /** '' for the scheme's default port (URL normalises `:80` on http to ''). */
  readonly port: string;
  /** A bare name: no dot, not an IP literal, not localhost. */
  readonly singleLabel: boolean;
  /** The decision when `host` is a service, made once so the hot path allocates nothing. */
  readonly toMesh: OriginDecision;
}

export type OriginDecision =
  | { readonly kind: 'mesh'; readonly service: string }
  | { readonly kind: 'pass' }
  | { readonly kind: 'refuse'; readonly error: TrellisError };

const PASS: OriginDecision = { kind: 'pass' };

/** Parses an origin, or null when it is not a URL (undici will report that itself). */
export function originShape(origin: string | URL): OriginShape | null {
  let url: URL;
  try {
    url = typeof origin === 'string' ? new URL(origin) : origin;
  } catch {
    return null;
  }
  const host = url.hostname;
  const singleLabel = host !== '' && !host.includes('.') && host !== 'localhost' && isIP(host.replace(/^\[|\]$/g, '')) === 0;
  return { protocol: url.protocol, host, port: url.port, singleLabel, toMesh: { kind: 'mesh', service: host } };
}

function originText(shape: OriginShape): string {
  return `${shape.protocol}//${shape.host}${shape.port === '' ? '' : `:${shape.port}`}`;
}

/** The decision for one request: `isService` answers from the configuration in force. */
export function decideOrigin(shape: OriginShape, isService: (name: string) => boolean, knownServices: () => string[], unknownHosts: UnknownHostPolicy): OriginDecision {
  if (isService(shape.host)) {
    if (shape.protocol === 'http:' && shape.port === '') return shape.toMesh;
    const origin = originText(shape);
    if (shape.protocol === 'https:') {
      return { kind: 'refuse', error: new InvalidArgumentError(`${origin} names mesh service ${shape.host} over https: the mesh encrypts and authenticates calls itself (mTLS with workload identities, per the mtls mode). Use http://${shape.host} (no port: discovery picks it) and the dispatcher will send it over mTLS`, { service: shape.host }) };
    }
    if (shape.protocol === 'http:') {
      return { kind: 'refuse', error: new InvalidArgumentError(`${origin} names mesh service ${shape.host} with port ${shape.port}: the mesh picks each endpoint and its port from discovery, so a port in the URL would be ignored. Use http://${shape.host}`, { service: shape.host }) };
    }
    return PASS;
  }
  if (shape.singleLabel && unknownHosts === 'refuse' && (shape.protocol === 'http:' || shape.protocol === 'https:')) {
    const origin = originText(shape);
    const known = knownServices();
    const list = known.length === 0 ? 'none are configured' : `known: ${known.slice(0, 10).join(', ')}${known.length > 10 ? ', ...' : ''}`;
    return {
      kind: 'refuse',
      error: new UnknownServiceError(`${origin} is a single-label host with no Service document${didYouMean(shape.host, known)} (${list}). Add a Service document named ${shape.host}, fix the name, or let such hosts go to DNS with meshClient({ dispatcher: { unknownHosts: 'pass' } })`, { service: shape.host }),
    };
  }
  return PASS;
}

/**
 * What a destination's stack and state are built from, as strings: two config versions that
 * give a service the same key build the same destination, so `Destinations.apply` keeps the one
 * it has. The inputs, read off what destinations.ts, service-state.ts, outbound-stack.ts,
 * outbound-core.ts and the endpoint sources read:
 *
 * - the whole normalized Service spec (endpoints, dns, protocol, policies, routes, connection);
 * - of the Mesh spec, only what this service inherits: the DNS settings when it discovers through
 *   `dns:`, the Redis URL when one of its outbound rate limits has `scope: global`;
 * - the transport (mTLS or plaintext, from the Service's and the Mesh's `mtls`) is compared by
 *   the connect function the transport policy returns, which is one object per service and
 *   connect timeout (mtls-connector.ts), so it is not part of the string.
 *
 * Tracing settings are applied to the tracer in place and the inbound block is the inbound
 * side's (server/inbound-policy.ts): neither is an input here.
 *
 * The spec's serialization is computed once per spec object (a WeakMap), so a config whose
 * unchanged services are the same objects as the last one's (the mesh's load cache does that)
 * costs a lookup per service. Normalized specs hold only JSON data (strings, finite numbers,
 * booleans, lists, plain objects; `undefined` and an absent field mean the same to every reader).
 */
import type { MeshSpec, ServiceSpec } from '../config/types.js';

const specKeys = new WeakMap<ServiceSpec, string>();

function specKey(spec: ServiceSpec): string {
  let k = specKeys.get(spec);
  if (k === undefined) {
    k = JSON.stringify(spec);
    specKeys.set(spec, k);
  }
  return k;
}

function usesGlobalRateLimit(spec: ServiceSpec): boolean {
  if (spec.rateLimit?.scope === 'global') return true;
  for (const r of spec.routes) if (r.rateLimit?.scope === 'global') return true;
  return false;
}

/** The inputs of one destination's build (see the file comment), in two parts. */
export interface DestinationKey {
  /** The Service spec's serialization: the same string object for the same spec object. */
  readonly spec: string;
  /** What it inherits from the Mesh spec. */
  readonly mesh: string;
}

export function destinationKey(spec: ServiceSpec, mesh: MeshSpec): DestinationKey {
  const dns = spec.dns === undefined ? '' : JSON.stringify(mesh.dns);
  const redis = usesGlobalRateLimit(spec) ? (mesh.redis?.url ?? '') : '';
  return { spec: specKey(spec), mesh: dns === '' && redis === '' ? '' : `${dns}\u0000${redis}` };
}

/** Same inputs. Kept as two strings, not one: the spec's is compared by reference when it is the same object's. */
export function sameDestinationKey(a: DestinationKey, b: DestinationKey): boolean {
  return a.mesh === b.mesh && a.spec === b.spec;
}

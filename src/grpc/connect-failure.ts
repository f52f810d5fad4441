/**
 * Why a connection to a gRPC endpoint failed, in words a caller can act on. grpc-js reports a
 * subchannel's failure as one string ("No connection established. Last error: Error: unable to
 * get local issuer certificate. Resolution note: ..."); the Trellis picker refuses calls to that
 * endpoint with this description instead of a bare "no connection to <addr>":
 *
 * - the server's certificate is not the destination's SPIFFE identity (our own check,
 *   TRELLIS_PEER_IDENTITY, names the identity seen and the one expected);
 * - its chain does not verify against the mesh's trust bundle (OpenSSL's verify errors: another
 *   CA, an expired or not yet valid certificate);
 * - the server refused our certificate (its TLS alert: unknown CA, bad or missing certificate).
 *
 * The first two are identity failures: the endpoint is not the peer we must talk to, so the
 * refusal carries `x-trellis-error: TRELLIS_PEER_IDENTITY` and is not retried (as for HTTP,
 * src/client/tls-failures.ts); anything else (refused, reset, timed out) stays a connect failure.
 *
 * grpc-js shares a failing subchannel between channels, and a channel created while it is failing
 * reports "Last error: null": `ConnectErrors` remembers each endpoint's last real reason (per
 * destination), process wide as grpc-js's subchannel pool is, so every channel's refusal says why.
 */

/** OpenSSL's verify errors as Node words them (lower case; both spellings of self-signed). */
const CHAIN = [
  'unable to get local issuer certificate',
  'unable to get issuer certificate',
  'unable to verify the first certificate',
  'self signed certificate',
  'self-signed certificate',
  'certificate has expired',
  'certificate is not yet valid',
  'certificate signature failure',
  'certificate chain too long',
  'invalid ca certificate',
  'certificate revoked',
  'unsuitable certificate purpose',
];

/** TLS alerts a server sends when it refuses the client's certificate. */
const REFUSED_US = ['alert unknown ca', 'alert bad certificate', 'alert certificate required', 'alert certificate unknown', 'alert certificate expired', 'alert decrypt error'];

export interface ConnectFailure {
  /** The status details a refused call carries. */
  readonly details: string;
  /** The endpoint is not the peer we must talk to (identity or chain): not retried. */
  readonly identity: boolean;
}

/** grpc-js's subchannel error without its wrapping ("No connection established. Last error: ", "Resolution note: ..."). */
function lastError(message: string): string {
  let m = message;
  const at = m.indexOf('Last error: ');
  if (at >= 0) m = m.slice(at + 'Last error: '.length);
  const note = m.indexOf('. Resolution note:');
  if (note >= 0) m = m.slice(0, note);
  return m.replace(/^(?:[A-Za-z]*Error: )+/, '').trim();
}

/** True when grpc-js's message names a reason (not "Last error: null"). */
export function namesReason(message: string): boolean {
  const why = lastError(message);
  return why !== '' && why !== 'null';
}

/**
 * The last connection error with a reason per key (destination and endpoint), until the endpoint connects; at most
 * `max` endpoints (the oldest forgotten first).
 */
export class ConnectErrors {
  readonly #errors = new Map<string, string>();
  readonly #max: number;

  constructor(max = 1024) {
    this.#max = max;
  }

  /** Records `message` for `key` and returns the message to keep: it, or the last one with a reason. */
  failed(key: string, message: string): string {
    if (!namesReason(message)) return this.#errors.get(key) ?? message;
    this.#errors.delete(key);
    this.#errors.set(key, message);
    if (this.#errors.size > this.#max) this.#errors.delete(this.#errors.keys().next().value as string);
    return message;
  }

  connected(key: string): void {
    this.#errors.delete(key);
  }
}

/** One per process, as grpc-js's subchannel pool is. */
export const connectErrors = new ConnectErrors();

/**
 * Describes the failed connection to endpoint `id` of `service` from grpc-js's `errorMessage`
 * (undefined when grpc-js gave none).
 *
 * @example
 * describeConnectFailure('payments', '10.0.0.7:50051', 'No connection established. Last error: Error: unable to get local issuer certificate.');
 * // { details: 'TRELLIS_PEER_IDENTITY: payments at 10.0.0.7:50051: untrusted certificate chain (not signed by the mesh CA): unable to get local issuer certificate', identity: true }
 */
export function describeConnectFailure(service: string, id: string, errorMessage: string | undefined): ConnectFailure {
  if (errorMessage === undefined || !namesReason(errorMessage)) return { details: `trellis: no connection to ${id} of ${service}`, identity: false };
  const why = lastError(errorMessage);
  const lower = why.toLowerCase();
  if (why.startsWith('TRELLIS_PEER_IDENTITY')) {
    return { details: `TRELLIS_PEER_IDENTITY: ${service} at ${id}: ${why.replace(/^TRELLIS_PEER_IDENTITY: /, '')}`, identity: true };
  }
  if (CHAIN.some((c) => lower.includes(c))) {
    return { details: `TRELLIS_PEER_IDENTITY: ${service} at ${id}: untrusted certificate chain (not signed by the mesh CA, or expired): ${why}`, identity: true };
  }
  if (REFUSED_US.some((c) => lower.includes(c))) {
    return { details: `trellis: no connection to ${id} of ${service}: the server refused this workload's certificate (${why}); is it from another CA or expired?`, identity: false };
  }
  return { details: `trellis: no connection to ${id} of ${service}: ${why}`, identity: false };
}

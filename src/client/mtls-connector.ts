/**
 * Outbound mTLS: the `connect` function the undici Pools of mesh endpoints use. Each new
 * connection takes the workload certificate in force at that moment (so a renewed certificate
 * is used by new connections while existing ones, and the pools, carry on), presents it, trusts
 * only the mesh's bundle, speaks TLS 1.3 only, and checks that the server's certificate carries
 * exactly the destination service's SPIFFE identity — not merely that the CA signed it (Node's
 * default identity check ignores URI SANs). Without a valid certificate it fails closed with
 * TRELLIS_NO_IDENTITY: never plaintext when mTLS was asked for. A refused server certificate
 * (untrusted chain or wrong SPIFFE identity) fails the connection with TRELLIS_PEER_IDENTITY.
 * A Pool made with `allowH2` (a `protocol: http2` service, see http2-pool.ts) passes `allowH2`
 * in the connect options: its connections then offer ALPN `h2` as well as `http/1.1`.
 */
import { createSecureContext } from 'node:tls';
import type { SecureContext } from 'node:tls';
import { buildConnector } from 'undici';
import { NoIdentityError } from '../core/errors.js';
import type { IdentityProvider, TlsMaterial } from '../tls/identity.js';
import { checkServerIdentityFor } from '../tls/spiffe.js';
import { tlsHandshakeFailure } from './tls-failures.js';

export type Connect = buildConnector.connector;

export class MtlsConnectors {
  readonly #identity: IdentityProvider;
  #material: TlsMaterial | undefined;
  readonly #byService = new Map<string, Connect>();
  readonly #connects = new Map<string, Connect>();
  #context: SecureContext | undefined;
  readonly #onRotated = (m: TlsMaterial): void => {
    this.#material = m;
    this.#context = undefined;
    this.#byService.clear();
  };

  constructor(identity: IdentityProvider) {
    this.#identity = identity;
    identity.on('rotated', this.#onRotated);
  }

  /**
   * The connect function for endpoints of `service`; it reads the current certificate per
   * connection. (undici ignores its own connectTimeout when `connect` is a function, so the
   * service's connect timeout is applied here.)
   */
  forService(service: string, connectTimeoutMs: number): Connect {
    // One function per service and timeout: a destination whose transport is unchanged keeps
    // its pools across config versions (PoolSet.setTransport compares the function).
    const memo = `${service}\u0000${connectTimeoutMs}`;
    let f = this.#connects.get(memo);
    if (f === undefined) {
      f = this.#connectFor(service, connectTimeoutMs);
      this.#connects.set(memo, f);
    }
    return f;
  }

  #connectFor(service: string, connectTimeoutMs: number): Connect {
    return (opts, callback) => {
      const h2 = (opts as { allowH2?: unknown }).allowH2 === true;
      const key = `${service}\u0000${connectTimeoutMs}\u0000${h2 ? 'h2' : 'h1'}`;
      const m = this.#identity.current();
      if (m === undefined) {
        callback(new NoIdentityError(`no valid workload certificate to call ${service} over mTLS`, { service }), null);
        return;
      }
      if (m !== this.#material) {
        this.#material = m;
        this.#context = undefined;
        this.#byService.clear();
      }
      let connect = this.#byService.get(key);
      if (connect === undefined) {
        this.#context ??= createSecureContext({ ca: m.ca, cert: m.cert, key: m.key, minVersion: 'TLSv1.3' });
        connect = buildConnector({
          // One secure context per certificate set: building it per connection costs ~1.3 ms.
          secureContext: this.#context,
          minVersion: 'TLSv1.3',
          // No session resumption: Node skips checkServerIdentity on resumed sessions.
          maxCachedSessions: 0,
          rejectUnauthorized: true,
          checkServerIdentity: checkServerIdentityFor(m.trustDomain, service),
          timeout: connectTimeoutMs,
          allowH2: h2,
        });
        this.#byService.set(key, connect);
      }
      // Name the endpoint and the failed check: an identity failure must not read as a reset.
      const endpoint = `${opts.hostname}:${opts.port}`;
      connect(opts, (...args) => {
        if (args[0] === null) callback(...args);
        else callback(tlsHandshakeFailure(args[0], service, endpoint), null);
      });
    };
  }

  close(): void {
    this.#identity.off('rotated', this.#onRotated);
  }
}

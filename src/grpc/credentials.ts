/**
 * Channel and server credentials for the mesh's gRPC traffic. Without a workload identity (or
 * with `mtls: off`) they are insecure, as the HTTP side is today. With one, both sides use mTLS
 * through grpc-js's CertificateProvider credentials, so channels and servers built once follow
 * certificate rotation without being rebuilt (connections already open keep the certificate
 * they were made with until they close). A client checks that the server presents the SPIFFE
 * identity of the service its channel targets: the channel's authority, which the `trellis:`
 * resolver sets to the service name. A server requires and verifies client certificates; the
 * caller's identity is then read by the server interceptor.
 */
import { ChannelCredentials, credentials as grpcCredentials, experimental, ServerCredentials } from '@grpc/grpc-js';

import { NoIdentityError } from '../core/errors.js';
import { certificateProvider } from './identity.js';
import type { IdentitySource, ServerIdentityCheckFor } from './identity.js';

export interface CredentialsParams {
  identity: IdentitySource | undefined;
  /** src/tls/spiffe.ts's check (required with an identity). */
  checkServerIdentityFor: ServerIdentityCheckFor | undefined;
  /** True when the mesh's `mtls` is `off` (or this service is outside the mesh). */
  plaintext: boolean;
}

/** Channel credentials: insecure, or mTLS with the workload certificate and a SPIFFE server check. */
export function channelCredentials(p: CredentialsParams): ChannelCredentials {
  const { identity, checkServerIdentityFor } = p;
  if (identity === undefined || p.plaintext) return grpcCredentials.createInsecure();
  if (checkServerIdentityFor === undefined) throw new TypeError('mTLS channel credentials need checkServerIdentityFor (src/tls/spiffe.ts)');
  const provider = certificateProvider(identity);
  return experimental.createCertificateProviderChannelCredentials(provider, provider, {
    // `hostname` is the channel's authority: the destination service (see resolver.ts).
    checkServerIdentity: (hostname, cert) => {
      const m = identity.current();
      if (m === undefined) return new NoIdentityError('this instance has no workload certificate', { service: hostname });
      return checkServerIdentityFor(m.trustDomain, hostname)(hostname, cert);
    },
  });
}

/** Server credentials: insecure, or mTLS requiring a client certificate from the trust bundle. */
export function serverCredentials(p: Omit<CredentialsParams, 'checkServerIdentityFor'>): ServerCredentials {
  if (p.identity === undefined || p.plaintext) return ServerCredentials.createInsecure();
  const provider = certificateProvider(p.identity);
  return experimental.createCertificateProviderServerCredentials(provider, provider, true);
}

/** The Service a `trellis:` channel target names (`trellis://m1/products` → `products`), else undefined. */
function serviceOfTarget(target: { scheme?: string | undefined; path: string }): string | undefined {
  if (target.scheme !== 'trellis') return undefined;
  const name = target.path.replace(/^\/+/, '');
  return name === '' ? undefined : name;
}

/**
 * Channel credentials that choose per channel: each connection grpc-js makes asks for a secure
 * connector with the channel's target, and a `trellis:` target names its Service, whose own
 * `mtls` (or else the Mesh's mode) decides between `secure` and `insecure`. So one credentials
 * object serves every destination, as one `mesh.dispatcher` does for HTTP.
 */
class PerServiceChannelCredentials extends ChannelCredentials {
  readonly #pick: (service: string | undefined) => ChannelCredentials;

  constructor(pick: (service: string | undefined) => ChannelCredentials) {
    super();
    this.#pick = pick;
  }

  _isSecure(): boolean {
    // Call credentials may be composed with it (they apply where the connection is secure).
    return true;
  }

  _equals(other: ChannelCredentials): boolean {
    return other === this;
  }

  _createSecureConnector(channelTarget: Parameters<ChannelCredentials['_createSecureConnector']>[0], options: Parameters<ChannelCredentials['_createSecureConnector']>[1], callCredentials?: Parameters<ChannelCredentials['_createSecureConnector']>[2]): ReturnType<ChannelCredentials['_createSecureConnector']> {
    return this.#pick(serviceOfTarget(channelTarget))._createSecureConnector(channelTarget, options, callCredentials);
  }
}

/**
 * Credentials deciding per destination: `plaintext(service)` says whether a channel to `service`
 * (undefined: not a `trellis:` target) goes without TLS.
 *
 * @example
 * const creds = perServiceCredentials((svc) => modeOf(svc) === 'off', secure, insecure);
 */
export function perServiceCredentials(plaintext: (service: string | undefined) => boolean, secure: () => ChannelCredentials, insecure: ChannelCredentials): ChannelCredentials {
  return new PerServiceChannelCredentials((service) => (plaintext(service) ? insecure : secure()));
}

/** Server credentials for `permissive`: mTLS with the client certificate optional (callers without one are `unknown`). */
export function permissiveServerCredentials(identity: IdentitySource): ServerCredentials {
  const provider = certificateProvider(identity);
  return experimental.createCertificateProviderServerCredentials(provider, provider, false);
}

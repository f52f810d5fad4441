/**
 * Opens one connection to one endpoint, for the connection-level edges (mesh.connect, the
 * WebSocket client, mesh.agent): a plain TCP socket, or — when the destination's transport policy
 * gave an mTLS connect function (src/client/mtls-connector.ts, the same one the HTTP pools use) —
 * a TLS socket whose handshake finished and whose server presented exactly the destination's
 * SPIFFE identity.
 *
 * The promise settles when the connection can carry bytes: plaintext at `connect`, TLS at
 * `secureConnect`. Failures are typed so the protocol-neutral layers classify them alike:
 * nothing reached the upstream → TRELLIS_CONNECT_FAILED (condition `connect-failure`: refused,
 * unreachable, the connect timeout, a handshake that broke off); the server is not who it must be
 * → TRELLIS_PEER_IDENTITY (never retried); no certificate of our own → TRELLIS_NO_IDENTITY
 * (nothing left the process). A call cancelled meanwhile (`signal`) rejects with the signal's
 * reason, and a socket that connects after that is destroyed.
 */
import net from 'node:net';
import type { Socket } from 'node:net';
import type { CallSignal } from '../core/call-signal.js';
import { ConnectFailedError, TrellisError } from '../core/errors.js';
import { timerDelay } from '../core/timer-limit.js';
import type { Endpoint } from '../discovery/endpoint.js';
import type { Connect } from './mtls-connector.js';
import { mapTransportError } from './undici-errors.js';

export interface DialParams {
  service: string;
  endpoint: Endpoint;
  /** The destination's mTLS connect function, or undefined for plaintext. */
  connect: Connect | undefined;
  /** Bound on TCP connect (and, with mTLS, the handshake). */
  connectTimeoutMs: number;
  signal: CallSignal | undefined;
}

/** What a failed dial means for the layers: typed, naming the service and endpoint. */
function dialError(err: unknown, service: string, endpoint: string): TrellisError {
  if (err instanceof TrellisError) return err;
  const mapped = mapTransportError(err, { service, endpoint });
  // Before the connection could carry a byte, a broken-off handshake is a failed connect.
  if (mapped.code === 'TRELLIS_RESET' || mapped.code === 'TRELLIS_UPSTREAM_ERROR') {
    return new ConnectFailedError(`connection failed before it was established: ${err instanceof Error ? err.message : String(err)}`, { service, endpoint, cause: err });
  }
  return mapped;
}

/** Opens a connection to `endpoint` (see the file comment). */
export function dialEndpoint(p: DialParams): Promise<Socket> {
  const { service, endpoint, signal } = p;
  if (signal?.aborted === true) return Promise.reject(signal.reason);
  return new Promise<Socket>((resolve, reject) => {
    let settled = false;
    let socket: Socket | undefined;
    const finish = (): boolean => {
      if (settled) return false;
      settled = true;
      signal?.removeEventListener('abort', onAbort);
      return true;
    };
    const onAbort = (): void => {
      if (!finish()) return;
      clearTimeout(timer);
      socket?.destroy();
      reject(signal?.reason);
    };
    signal?.addEventListener('abort', onAbort);
    let timer: ReturnType<typeof setTimeout> | undefined;

    if (p.connect !== undefined) {
      // The mTLS connector applies the connect timeout itself, handshake included.
      p.connect({ hostname: endpoint.host, host: endpoint.host, protocol: 'https:', port: String(endpoint.port) }, (err, s) => {
        if (err !== null || s === null) {
          if (finish()) reject(dialError(err, service, endpoint.id));
          return;
        }
        if (!finish()) {
          s.destroy();
          return;
        }
        resolve(s);
      });
      return;
    }

    const s = net.connect({ host: endpoint.host, port: endpoint.port });
    socket = s;
    const onError = (err: Error): void => {
      if (!finish()) return;
      clearTimeout(timer);
      s.destroy();
      reject(dialError(err, service, endpoint.id));
    };
    s.once('error', onError);
    s.once('connect', () => {
      s.removeListener('error', onError);
      if (!finish()) {
        s.destroy();
        return;
      }
      clearTimeout(timer);
      s.setNoDelay(true);
      resolve(s);
    });
    timer = setTimeout(() => {
      if (!finish()) return;
      s.destroy();
      reject(new ConnectFailedError(`connect timeout of ${p.connectTimeoutMs} ms expired`, { service, endpoint: endpoint.id }));
    }, timerDelay(p.connectTimeoutMs));
  });
}

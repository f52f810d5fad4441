/**
 * Registers a server this instance owns (Express's `app.listen`, a Fastify app, a gRPC server
 * bound to a port) in the control plane's registry while it serves: at once when it already
 * listens, else on 'listening'; out of the registry on 'close' or when the returned function is
 * called (before a drain, as Fastify's `preClose` does). `mesh.serve` registers by itself.
 *
 * An address no caller can dial (a server bound to 0.0.0.0 or ::) is not registered without
 * `host`: the warning says so, rather than publishing an endpoint every caller refuses.
 */
import type { AddressInfo, Server } from 'node:net';
import type { EndpointProtocol } from '../controlplane/sync/protocol.js';
import type { RegisteredAddress } from './control-plane-stream.js';

/** A listening server, or a port already bound (a gRPC server after `bindAsync`). */
export type AdvertiseTarget = Server | { readonly port: number; readonly host?: string | undefined };

export interface AdvertiseOptions {
  /** What callers speak to it (default `http`; `grpc` for a gRPC server). */
  readonly protocol?: EndpointProtocol | undefined;
  /** The host callers dial, when the bound address is not it (a server bound to 0.0.0.0). */
  readonly host?: string | undefined;
}

export interface Registrar {
  served(endpoint: RegisteredAddress): void;
  unserved(address: string): void;
}

function isServer(t: AdvertiseTarget): t is Server {
  return typeof (t as Server).address === 'function' && typeof (t as Server).once === 'function';
}

function format(host: string, port: number): string {
  return host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`;
}

/** Registers `target`; returns the function that takes it out of the registry. */
export function advertise(registrar: Registrar, target: AdvertiseTarget, options: AdvertiseOptions, onWarn: (m: string) => void): () => void {
  const protocol = options.protocol ?? 'http';
  let address: string | undefined;
  const register = (host: string | undefined, port: number): void => {
    const h = options.host ?? host ?? '127.0.0.1';
    if (h === '0.0.0.0' || h === '::' || h === '') {
      onWarn(`not registering port ${port}: it is bound to every interface (${h === '' ? 'no host' : h}), which no caller can dial; pass { host } to mesh.advertise() with the address callers should use`);
      return;
    }
    address = format(h, port);
    registrar.served({ address, protocol });
  };
  const withdraw = (): void => {
    if (address !== undefined) registrar.unserved(address);
    address = undefined;
  };
  if (!isServer(target)) {
    register(target.host, target.port);
    return withdraw;
  }
  const onListening = (): void => {
    const a = target.address();
    if (a !== null && typeof a === 'object') register((a as AddressInfo).address, (a as AddressInfo).port);
  };
  if (target.listening) onListening();
  else target.once('listening', onListening);
  target.once('close', withdraw);
  return () => {
    target.off('listening', onListening);
    withdraw();
  };
}

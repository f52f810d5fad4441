/**
 * `mesh.grpc.listen(server, { port })`: a port for a grpc-js server in the Service's mTLS mode,
 * the gRPC counterpart of `mesh.serve`'s listener. grpc-js binds one kind of credentials per port
 * (`bindAsync`), so `permissive` — mTLS and plaintext on one port, as a mesh migrates — needs the
 * listener to be ours: it accepts, peeks at the first byte, and hands the connection to the
 * server through grpc-js's connection injectors (`Server.createConnectionInjector`), one per kind:
 * 0x16 (a TLS handshake) to the mTLS one, anything else to the plaintext one. `strict` injects
 * only TLS and `off` only plaintext; any other connection is closed. A connection that sends
 * nothing within the first-byte timeout is closed.
 *
 * The server's interceptors see the caller as always: verified from its certificate, `unknown`
 * over plaintext.
 */
import net from 'node:net';
import type { AddressInfo, Socket } from 'node:net';
import type { Server, ServerCredentials } from '@grpc/grpc-js';

export interface GrpcListenOptions {
  port?: number;
  host?: string;
  /** Time a new connection has to send its first byte (default 10 s). */
  firstByteTimeoutMs?: number;
}

export interface GrpcListener {
  /** The bound address (`127.0.0.1:50051`). */
  readonly address: string;
  readonly port: number;
  /** Stops accepting and closes the listener (shut the grpc-js server down for its calls). */
  close(): Promise<void>;
}

export interface ListenCredentials {
  /** For TLS connections (strict, permissive). */
  secure: ServerCredentials | undefined;
  /** For plaintext connections (permissive, off). */
  plaintext: ServerCredentials | undefined;
}

type Injector = ReturnType<Server['createConnectionInjector']>;

/** Listens for `server` with the credentials given (see the file header). */
export async function listenGrpc(server: Server, creds: ListenCredentials, options: GrpcListenOptions = {}): Promise<GrpcListener> {
  const secure: Injector | undefined = creds.secure === undefined ? undefined : server.createConnectionInjector(creds.secure);
  const plaintext: Injector | undefined = creds.plaintext === undefined ? undefined : server.createConnectionInjector(creds.plaintext);
  const timeoutMs = options.firstByteTimeoutMs ?? 10_000;
  const listener = net.createServer((socket: Socket) => {
    const fail = (): void => {
      socket.destroy();
    };
    socket.setTimeout(timeoutMs, fail);
    socket.on('error', fail);
    socket.once('data', (chunk: Buffer) => {
      socket.pause();
      socket.setTimeout(0);
      socket.removeListener('timeout', fail);
      socket.removeListener('error', fail);
      socket.unshift(chunk);
      const injector = chunk[0] === 0x16 ? secure : plaintext;
      if (injector === undefined) socket.destroy();
      else injector.injectConnection(socket);
    });
  });
  await new Promise<void>((resolve, reject) => {
    listener.once('error', reject);
    listener.listen(options.port ?? 0, options.host ?? '127.0.0.1', () => {
      listener.off('error', reject);
      resolve();
    });
  });
  const addr = listener.address() as AddressInfo;
  const host = addr.family === 'IPv6' ? `[${addr.address}]` : addr.address;
  return {
    address: `${host}:${addr.port}`,
    port: addr.port,
    close: () =>
      new Promise<void>((resolve) => {
        secure?.destroy();
        plaintext?.destroy();
        listener.close(() => resolve());
      }),
  };
}

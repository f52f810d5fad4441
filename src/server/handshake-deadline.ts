/**
 * The hard deadline of a new inbound connection: from accept to the moment it is handed to HTTP
 * (permissive: first byte sniffed and, for TLS, handshake done and identity verified; strict:
 * handshake done and verified; off: at once). A connection that is not handed over in time is
 * destroyed, whatever it sent meanwhile.
 *
 * Why not Node's own timeouts: TLS `handshakeTimeout` is an idle timer (every byte re-arms it,
 * so a ClientHello dripped one byte at a time is held for hours), it starts only when the TLS
 * socket is made (in permissive mode after the sniff, so a late first byte buys a second full
 * timeout), and a plain `tls.Server` does not destroy the socket when it fires. One timer per
 * connection, armed at accept, bounds all of it.
 *
 * Invariants: every armed connection either is released (handed to HTTP) or is destroyed within
 * `timeoutMs` of its accept; `destroyAll()` ends every connection not yet handed over (a server
 * that stops serving has no reason to finish their handshakes); `size` is how many are pending.
 *
 * A connection is keyed by its remote address and port: the TLS socket that Node makes over the
 * accepted socket reports the same pair, and a pair cannot be reused while its connection is
 * open, so the key never names two live connections.
 */
import type { Socket } from 'node:net';

interface Pending {
  readonly socket: Socket;
  readonly timer: NodeJS.Timeout;
}

export class HandshakeDeadlines {
  readonly #timeoutMs: number;
  readonly #pending = new Map<string, Pending>();

  constructor(timeoutMs: number) {
    this.#timeoutMs = timeoutMs;
  }

  /** Connections accepted and not yet handed to HTTP. */
  get size(): number {
    return this.#pending.size;
  }

  /** Starts the deadline of a just-accepted connection. */
  arm(socket: Socket): void {
    const key = keyOf(socket);
    if (key === undefined) {
      // Already closed by its peer before we saw it: nothing to hold.
      socket.destroy();
      return;
    }
    const timer = setTimeout(() => {
      this.#pending.delete(key);
      socket.destroy();
    }, this.#timeoutMs);
    timer.unref();
    this.#pending.set(key, { socket, timer });
    socket.once('close', () => {
      const p = this.#pending.get(key);
      if (p !== undefined && p.socket === socket) {
        clearTimeout(p.timer);
        this.#pending.delete(key);
      }
    });
  }

  /** The connection (the accepted socket, or the TLS socket over it) was handed to HTTP. */
  release(socket: Socket): void {
    const key = keyOf(socket);
    if (key === undefined) return;
    const p = this.#pending.get(key);
    if (p === undefined) return;
    clearTimeout(p.timer);
    this.#pending.delete(key);
  }

  /** Ends every connection not yet handed to HTTP. */
  destroyAll(): void {
    for (const p of this.#pending.values()) {
      clearTimeout(p.timer);
      p.socket.destroy();
    }
    this.#pending.clear();
  }
}

function keyOf(socket: Socket): string | undefined {
  const address = socket.remoteAddress;
  const port = socket.remotePort;
  if (address === undefined || port === undefined) return undefined;
  return `${address}|${port}`;
}

/**
 * A strict-mTLS listener's answer to a plaintext HTTP request: without it the caller (curl, a
 * browser, a client missing its mTLS setup) sees only "connection reset" and has to guess. It
 * gets a short plaintext `HTTP/1.1 400` (as nginx answers "plain HTTP request sent to HTTPS
 * port") saying the service requires mTLS, and the connection closes.
 *
 * Strict mode is not weakened: the answer is written on the raw socket before TLS, the bytes of
 * the request are read and dropped, and nothing reaches the HTTP server or the handler. Only a
 * connection whose first bytes look like an HTTP request line gets the answer; a TLS handshake
 * (and anything else) goes to the TLS server exactly as before.
 */
import type { Socket } from 'node:net';
import type tls from 'node:tls';

const BODY =
  'This service requires mTLS: connect with TLS 1.3 and a client certificate holding a workload identity of this mesh ' +
  '(a Trellis client with an identity, or curl with a certificate from `trellis cert issue`). Plaintext HTTP is not served.\n';

const RESPONSE = Buffer.from(
  `HTTP/1.1 400 Bad Request\r\ncontent-type: text/plain; charset=utf-8\r\ncontent-length: ${Buffer.byteLength(BODY)}\r\nconnection: close\r\n\r\n${BODY}`,
  'latin1',
);

/** How long a refused connection may keep sending (a request body) before it is destroyed. */
const LINGER_MS = 1_000;

/** An HTTP/1.x request line starts with a method token in capitals and a space ("GET ", "OPTIONS "). */
function looksLikeHttp(chunk: Buffer): boolean {
  const head = chunk.subarray(0, 8).toString('latin1');
  return /^[A-Z]{3,7}( |$)/.test(head);
}

/** Answers plaintext HTTP and closes, half-closing first so the client reads the answer rather than a reset. */
function answer(socket: Socket): void {
  socket.on('error', () => socket.destroy());
  // Drop what the client still sends: closing with unread bytes would make the kernel send RST.
  socket.on('data', () => undefined);
  socket.end(RESPONSE);
  const t = setTimeout(() => socket.destroy(), LINGER_MS);
  t.unref();
  socket.once('close', () => clearTimeout(t));
  socket.resume();
}

/**
 * Puts a first-bytes check in front of `server`'s TLS: plaintext HTTP is answered (see the file
 * header), everything else is handed to the TLS server's own connection handling unchanged. A
 * connection that sends nothing within `timeoutMs` is destroyed, as the TLS handshake timeout
 * would.
 */
export function answerPlaintextHttp(server: tls.Server, timeoutMs: number): void {
  const tlsListeners = server.listeners('connection') as ((socket: Socket) => void)[];
  for (const l of tlsListeners) server.removeListener('connection', l);
  server.on('connection', (socket: Socket) => {
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
      if (looksLikeHttp(chunk)) {
        answer(socket);
        return;
      }
      socket.unshift(chunk);
      for (const l of tlsListeners) l.call(server, socket);
    });
  });
}

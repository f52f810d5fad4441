/**
 * The gRPC transport: the terminal Service of a destination's gRPC stack. One invocation is one
 * attempt: it opens a call below the interceptor (grpc-js's `nextCall`, so the channel, its
 * resolver and the Trellis LB policy do the I/O), sends the request, and resolves with the
 * status when the call ends. The endpoint the balancer chose travels on the attempt's
 * `PickTicket` (the metadata's options object, pick-ticket.ts, never sent); the LB policy's
 * picker sends the call on that endpoint's connection.
 *
 * The attempt's deadline is the call's (`ctx.deadline`), so the server receives it as
 * `grpc-timeout` and its own outbound calls inherit it. When `ctx.signal` aborts (a timeout, a
 * per-try timeout, the caller's cancel) the call is cancelled and the attempt rejects with the
 * signal's reason, as the HTTP transport does, so the layers above see the mesh's typed error.
 *
 * Streams: the first response headers or message of a response stream commit the stream's
 * relay to this attempt (the application has seen them); an attempt the picker refused before
 * anything left the process (the `x-trellis-connect-failure` status: no connection to the chosen
 * endpoint) rewinds the relay instead of detaching it, so the stack's transparent retry can play
 * the stream again on another endpoint (grpc-call.ts). A unary response's headers and message
 * are held until the status anyway (grpc-js hands a unary response's message over with it).
 */
import type { Deadline } from '@grpc/grpc-js';
import type { Clock } from '../core/clock.js';
import type { Service } from '../core/service.js';
import type { GrpcCall, GrpcResult } from './grpc-call.js';
import { attachTicket } from './pick-ticket.js';
import { CONNECT_FAILURE_KEY, Status } from './status.js';

/** A monotonic deadline (ms, the clock's `now`) as the wall-clock Deadline grpc-js takes. */
export function wallDeadline(deadline: number | undefined, clock: Clock): Deadline | undefined {
  return deadline === undefined ? undefined : clock.wall() + (deadline - clock.now());
}

function reasonText(reason: unknown): string {
  return reason instanceof Error ? reason.message : String(reason);
}

export function grpcTransport(clock: Clock): Service<GrpcCall, GrpcResult> {
  return (req, ctx) => {
    const signal = ctx.signal;
    if (signal?.aborted === true) return Promise.reject(signal.reason);
    return new Promise<GrpcResult>((resolve, reject) => {
      const call = req.open(wallDeadline(ctx.deadline, clock));
      const relay = req.relay;
      const metadata = req.ownsMetadata === true ? req.metadata : req.metadata.clone();
      // Read by the Trellis picker only; never sent, so harmless on another channel.
      if (ctx.endpoint !== undefined) attachTicket(metadata, ctx.endpoint.id, undefined);
      let headers: GrpcResult['metadata'];
      let message: unknown;
      let hasMessage = false;
      let done = false;
      const onAbort = (): void => {
        if (done) return;
        done = true;
        relay?.detach();
        reject(signal?.reason);
        call.cancelWithStatus(Status.CANCELLED, `cancelled by the mesh: ${reasonText(signal?.reason)}`);
      };
      signal?.addEventListener('abort', onAbort);
      const streamed = req.responseStream && relay !== undefined;
      call.start(metadata, {
        onReceiveMetadata: (m) => {
          if (done) return;
          if (streamed) {
            relay.commit();
            relay.sink.onReceiveMetadata(m);
          } else headers = m;
        },
        onReceiveMessage: (m: unknown) => {
          if (done) return;
          if (streamed) {
            relay.commit();
            relay.sink.onReceiveMessage(m);
          } else {
            message = m;
            hasMessage = true;
          }
        },
        onReceiveStatus: (status) => {
          if (done) return;
          done = true;
          signal?.removeEventListener('abort', onAbort);
          // Nothing reached a server: keep the stream for another attempt (the stack decides).
          if (relay !== undefined && !(status.metadata.get(CONNECT_FAILURE_KEY).length > 0 && relay.rewind())) relay.detach();
          resolve({ status, metadata: headers, message, hasMessage, injected: false });
        },
      });
      if (!req.requestStream) {
        call.sendMessage(req.message);
        call.halfClose();
      }
      relay?.attach(call, req.requestStream);
    });
  };
}

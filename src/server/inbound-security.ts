/**
 * What Trellis tells the application about a request it handled (`req.trellis`), and the names
 * the Express/Fastify adapters and tests use for the inbound stack, which lives, order and all,
 * in src/server/inbound-stack.ts.
 */
import type { IncomingMessage } from 'node:http';
import type { InboundDeps, InboundPolicy } from './inbound-stack.js';
import type { PeerInfo } from './peer.js';

export { inboundHandler as meshInboundHandler } from './inbound-stack.js';
/** The inbound policy of one config version, with its compiled authorization. */
export type MeshInboundPolicy = InboundPolicy;
export type MeshInboundDeps = InboundDeps;

/** What Trellis tells the application about a request, as `req.trellis`. */
export interface TrellisRequestInfo {
  /** The verified caller, or `unknown` (plaintext, or not a mesh identity). */
  readonly peer: PeerInfo;
}

declare module 'http' {
  interface IncomingMessage {
    /** Set by Trellis's inbound stack (mesh.serve, mesh.express(), mesh.fastify() on `request.raw`). */
    trellis?: TrellisRequestInfo | undefined;
  }
}

/** The Trellis information of a request the inbound stack handled. */
export function trellisInfo(req: IncomingMessage): TrellisRequestInfo | undefined {
  return req.trellis;
}


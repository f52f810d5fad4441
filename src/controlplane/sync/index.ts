/**
 * The instance stream and registry (`POST /v1/stream`).
 *
 * PLACEHOLDER (cp-api branch): the shapes the server is wired against; the real implementation
 * comes from the sync branch at merge. This one answers 501 and ends the stream.
 */
import type { ServerHttp2Stream, IncomingHttpHeaders } from 'node:http2';
import type { Registry } from 'prom-client';
import type { Store } from '../store/store.js';

export interface StreamPeer { service: string; spiffeId: string; certificateNotAfter: number }
export interface SyncDeps { store: Store; replicaId: string; registry: Registry; onWarn(message: string): void; onReport?(instance: { id: string; service: string }, report: unknown): void; leaseTtlMs?: number }
export interface Sync { handleStream(stream: ServerHttp2Stream, headers: IncomingHttpHeaders, peer: StreamPeer): void; connected(): number; close(): Promise<void> }

export function createSync(deps: SyncDeps): Sync {
  void deps;
  return {
    handleStream(stream) {
      stream.respond({ ':status': 501, 'content-type': 'application/json' });
      stream.end(JSON.stringify({ error: { code: 'TRELLIS_INVALID_ARGUMENT', message: 'the instance stream is not built in this replica' } }));
    },
    connected: () => 0,
    close: async () => {},
  };
}

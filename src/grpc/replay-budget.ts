/**
 * A channel's total of bytes kept for replays: gRPC's `grpc.retry_buffer_size` channel option
 * (grpc-js's default 16 MiB), the bound over all the channel's uncommitted streams together, as
 * `grpc.per_rpc_retry_buffer_size` is the bound of one (grpc-call.ts, `StreamRelay`). A stream
 * takes bytes from it as it keeps messages and gives them back when it commits, is rewound for
 * a replay, or ends; a message that would take the total past the limit commits its stream (it
 * is no longer replayed, and what it kept is let go), as grpc-js's `MessageBufferTracker` does.
 *
 * One per `trellis:` channel: its resolver (resolver.ts) makes it and its config selector puts
 * it on every call's pick ticket, where the stream's relay finds it.
 */

/** grpc-js's default for `grpc.retry_buffer_size` (gRPC C-core's is 256 KiB). */
export const CHANNEL_REPLAY_BYTES = 16 * 1024 * 1024;

export class ReplayBudget {
  /** The channel's total, in bytes. */
  readonly limit: number;
  #taken = 0;

  constructor(limit: number) {
    this.limit = limit;
  }

  /** Bytes the channel's streams keep now. */
  get taken(): number {
    return this.#taken;
  }

  /** Takes `bytes` for a stream's kept messages; false (nothing taken) when the total would pass the limit. */
  take(bytes: number): boolean {
    if (this.limit - this.#taken < bytes) return false;
    this.#taken += bytes;
    return true;
  }

  /** Gives back `bytes` a stream took (it committed, was rewound or ended). */
  give(bytes: number): void {
    this.#taken = Math.max(0, this.#taken - bytes);
  }
}

/**
 * A channel option in bytes as gRPC C-core reads it (`grpc.retry_buffer_size`,
 * `grpc.per_rpc_retry_buffer_size`): a number, clamped at 0; undefined when the channel does
 * not set it (or sets a non-number).
 */
export function byteOption(value: unknown): number | undefined {
  if (typeof value !== 'number' || Number.isNaN(value)) return undefined;
  return Math.max(0, Math.floor(value));
}

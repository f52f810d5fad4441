/**
 * Expired bootstrap-token records leave the store. `POST /v1/tokens` records every token it
 * issues (`KEYS.token(jti)`, for revocation); a token past its `exp` is refused by verification
 * whatever its record says, so the record is dead weight. Without a sweep, a fleet that makes a
 * token per instance start grows the store without bound.
 *
 * A sweep runs when a replica starts and then every hour. Each record is deleted on the
 * condition that it is unchanged since it was read (ifModRevision), in batches, so a sweep never
 * races a revocation into a lost write, and several replicas sweeping at once only repeat
 * deletes that fail their condition harmlessly.
 */
import type { Clock } from '../core/clock.js';
import type { TokenRecord } from './identity-api.js';
import { KEYS, StoreConflictError, type Store, type StoreOp } from './store/store.js';

export const TOKEN_SWEEP_INTERVAL_MS = 3_600_000;
const BATCH = 64;

/**
 * Deletes the records of tokens expired before `clock.wall()`; resolves to how many went.
 * `stopped` is asked before each batch: a sweep of a large backlog ends early on close.
 */
export async function sweepExpiredTokens(store: Store, clock: Clock, stopped: () => boolean = () => false): Promise<number> {
  const { entries } = await store.list<TokenRecord>(KEYS.tokens);
  const now = clock.wall();
  const expired = entries.filter((e) => typeof e.value?.exp !== 'number' || e.value.exp <= now);
  let removed = 0;
  for (let i = 0; i < expired.length && !stopped(); i += BATCH) {
    const ops: StoreOp[] = expired.slice(i, i + BATCH).map((e) => ({ type: 'delete', key: e.key, ifModRevision: e.modRevision }));
    try {
      await store.commit(ops);
      removed += ops.length;
    } catch (err) {
      // Only a failed condition (another replica swept, or a record changed) is worth one at a
      // time; an unavailable store would fail each of them too, and the sweep is reported failed.
      if (!(err instanceof StoreConflictError)) throw err;
      for (const op of ops) {
        try {
          await store.commit([op]);
          removed++;
        } catch (one) {
          // Gone or changed meanwhile: the next sweep looks again.
          if (!(one instanceof StoreConflictError)) throw one;
        }
      }
    }
  }
  return removed;
}

export interface TokenSweeper {
  /** Stops the timer, and a sweep in progress after its current batch (waited for). */
  close(): Promise<void>;
}

/** Sweeps now and every `intervalMs`; failures are warnings (the next sweep retries). */
export function startTokenSweeper(store: Store, clock: Clock, onWarn: (message: string) => void, intervalMs = TOKEN_SWEEP_INTERVAL_MS): TokenSweeper {
  let running: Promise<void> | undefined;
  let closed = false;
  const run = (): void => {
    running ??= sweepExpiredTokens(store, clock, () => closed)
      .then(
        () => undefined,
        (err: unknown) => onWarn(`sweeping expired token records failed: ${err instanceof Error ? err.message : String(err)}`),
      )
      .finally(() => {
        running = undefined;
      });
  };
  run();
  const timer = setInterval(run, intervalMs);
  timer.unref();
  return {
    close: async () => {
      closed = true;
      clearInterval(timer);
      await running;
    },
  };
}

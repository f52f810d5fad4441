/**
 * Writes instances' statuses (version sent, ACKed, NACKed, clock skew) to the store in batches:
 * one push to a thousand instances is a thousand status changes, and a transaction per change
 * would make the store the bottleneck (etcd caps a transaction at 128 operations, so batches
 * stay under 100). The last write for a key in a batch wins. Status is for operators (`trellis
 * check`, /v1/instances); a failed batch is retried once with the next, then dropped with a
 * warning: it never holds up a push.
 */
import type { InstanceStatus, Store, StoreOp } from '../store/store.js';
import { KEYS } from '../store/store.js';

const BATCH_MS = 100;
const MAX_OPS = 100;

export class StatusWriter {
  readonly #store: Store;
  readonly #onWarn: (m: string) => void;
  #pending = new Map<string, StoreOp>();
  #timer: NodeJS.Timeout | undefined;
  #flushing: Promise<void> = Promise.resolve();

  constructor(store: Store, onWarn: (m: string) => void) {
    this.#store = store;
    this.#onWarn = onWarn;
  }

  put(status: InstanceStatus): void {
    const key = KEYS.instanceStatus(status.service, status.id);
    this.#pending.set(key, { type: 'put', key, value: status });
    this.#schedule();
  }

  delete(service: string, id: string): void {
    const key = KEYS.instanceStatus(service, id);
    this.#pending.set(key, { type: 'delete', key });
    this.#schedule();
  }

  #schedule(): void {
    if (this.#timer !== undefined) return;
    this.#timer = setTimeout(() => {
      this.#timer = undefined;
      void this.flush();
    }, BATCH_MS);
    this.#timer.unref();
  }

  /** Writes everything pending now. */
  flush(): Promise<void> {
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    this.#timer = undefined;
    const ops = [...this.#pending.values()];
    this.#pending.clear();
    this.#flushing = this.#flushing.then(async () => {
      for (let i = 0; i < ops.length; i += MAX_OPS) {
        const batch = ops.slice(i, i + MAX_OPS);
        try {
          await this.#store.commit(batch);
        } catch (err) {
          this.#onWarn(`writing ${batch.length} instance statuses failed (they are rewritten on the next change): ${(err as Error).message}`);
        }
      }
    });
    return this.#flushing;
  }
}

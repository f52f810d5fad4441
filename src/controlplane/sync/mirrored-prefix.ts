/**
 * An in-memory copy of every key under one store prefix, kept current by a watch: list, then
 * watch from the list's revision; when the store says the watch cannot continue (etcd compacted
 * the revision, the embedded store restarted) list again and replace the copy whole. A failed
 * list is retried every second, and the copy in hand stays meanwhile (the replica keeps
 * serving what it last knew rather than nothing).
 *
 * Invariant: `onChange` is called after the copy changed, with the store revision it now
 * reflects; revisions only grow.
 */
import type { Store, StoreEvent, StoreWatch } from '../store/store.js';

const RELIST_RETRY_MS = 1000;

export interface MirrorHandlers<T> {
  /** The copy changed (events applied, or replaced by a re-list). `events` is undefined after a re-list. */
  onChange(revision: number, events: readonly StoreEvent[] | undefined, previous: ReadonlyMap<string, T> | undefined): void;
  onWarn(message: string): void;
}

export class MirroredPrefix<T> {
  readonly prefix: string;
  readonly entries = new Map<string, T>();
  revision = 0;
  readonly #store: Store;
  readonly #handlers: MirrorHandlers<T>;
  #watch: StoreWatch | undefined;
  #retry: NodeJS.Timeout | undefined;
  #closed = false;
  #generation = 0;

  constructor(store: Store, prefix: string, handlers: MirrorHandlers<T>) {
    this.#store = store;
    this.prefix = prefix;
    this.#handlers = handlers;
  }

  /** Lists and starts watching; resolves once the first list is in (or rejects when it failed; retries continue). */
  start(): Promise<void> {
    return this.#relist();
  }

  async #relist(): Promise<void> {
    if (this.#closed) return;
    const generation = ++this.#generation;
    this.#watch?.close();
    this.#watch = undefined;
    let listed: Awaited<ReturnType<Store['list']>>;
    try {
      listed = await this.#store.list<T>(this.prefix);
    } catch (err) {
      if (!this.#closed) {
        this.#handlers.onWarn(`listing ${this.prefix} failed, keeping the copy in hand and retrying: ${(err as Error).message}`);
        this.#retry = setTimeout(() => void this.#relist().catch(() => {}), RELIST_RETRY_MS);
        this.#retry.unref();
      }
      throw err;
    }
    if (this.#closed || generation !== this.#generation) return;
    const previous = new Map(this.entries);
    this.entries.clear();
    for (const e of listed.entries) this.entries.set(e.key, e.value as T);
    this.revision = Math.max(this.revision, listed.revision);
    this.#watch = this.#store.watch(this.prefix, listed.revision, {
      onEvents: (events, revision) => {
        if (generation !== this.#generation) return;
        for (const ev of events) {
          if (ev.type === 'put') this.entries.set(ev.entry.key, ev.entry.value as T);
          else this.entries.delete(ev.key);
        }
        this.revision = Math.max(this.revision, revision);
        this.#handlers.onChange(this.revision, events, undefined);
      },
      onReset: () => {
        if (generation !== this.#generation) return;
        void this.#relist().catch(() => {});
      },
    });
    this.#handlers.onChange(this.revision, undefined, previous);
  }

  close(): void {
    this.#closed = true;
    this.#watch?.close();
    if (this.#retry !== undefined) clearTimeout(this.#retry);
  }
}

/**
 * Watches of the local stores (memory and embedded): the recent event history and the watchers.
 *
 * `publish` is called once per changing transaction, in revision order, only after it is durable,
 * so history holds nothing a crash could take back. A watch from revision R replays the kept
 * events after R, then follows live ones; if the events just after R are no longer kept (older
 * than the history limit, or from before a restart), it gets `onReset` and must re-list — etcd's
 * "compacted" answer. Handlers are called from a microtask, never inside `commit`, one revision at
 * a time and in order for each watcher.
 */
import type { StoreEvent, StoreWatch, StoreWatchHandlers } from './store.js';

interface Group {
  readonly revision: number;
  readonly events: readonly StoreEvent[];
}

interface Watcher {
  readonly prefix: string;
  readonly handlers: StoreWatchHandlers;
  readonly queue: Group[];
  scheduled: boolean;
  closed: boolean;
}

export interface WatchHubOptions {
  /** Revisions of history kept for watches from the past (default 1000). */
  readonly historyLimit?: number | undefined;
  /** Revisions up to this one are not in history (the revision a restarted store opened at). */
  readonly compactedRevision?: number | undefined;
  /** Why a watch from before `compactedRevision` cannot replay, for onReset. */
  readonly compactedReason?: string | undefined;
}

const keyOf = (e: StoreEvent): string => (e.type === 'put' ? e.entry.key : e.key);

export class WatchHub {
  private readonly history: Group[] = [];
  private readonly limit: number;
  private compacted: number;
  private compactedReason: string;
  private readonly watchers = new Set<Watcher>();

  constructor(options: WatchHubOptions = {}) {
    this.limit = Math.max(1, options.historyLimit ?? 1000);
    this.compacted = options.compactedRevision ?? 0;
    this.compactedReason = options.compactedReason ?? `history up to revision ${this.compacted} is not kept`;
  }

  publish(events: readonly StoreEvent[], revision: number): void {
    if (events.length === 0) return;
    this.history.push({ revision, events });
    while (this.history.length > this.limit) {
      const dropped = this.history.shift() as Group;
      this.compacted = dropped.revision;
      this.compactedReason = `history up to revision ${this.compacted} is no longer kept (the last ${this.limit} revisions are)`;
    }
    for (const w of this.watchers) this.enqueue(w, { revision, events });
  }

  watch(prefix: string, afterRevision: number, handlers: StoreWatchHandlers): StoreWatch {
    const w: Watcher = { prefix, handlers, queue: [], scheduled: false, closed: false };
    if (afterRevision < this.compacted) {
      const reason = `cannot watch from revision ${afterRevision}: ${this.compactedReason}`;
      queueMicrotask(() => {
        if (!w.closed) handlers.onReset(reason);
      });
      return { close: () => void (w.closed = true) };
    }
    for (const g of this.history) if (g.revision > afterRevision) this.enqueue(w, g);
    this.watchers.add(w);
    return {
      close: () => {
        w.closed = true;
        this.watchers.delete(w);
      },
    };
  }

  /** Drops every watcher without a word (the store closed). */
  clear(): void {
    for (const w of this.watchers) w.closed = true;
    this.watchers.clear();
  }

  /** Every watcher is told to re-list (the store closed or failed) and dropped. */
  resetAll(reason: string): void {
    for (const w of this.watchers) {
      this.watchers.delete(w);
      w.queue.length = 0;
      queueMicrotask(() => {
        if (!w.closed) w.handlers.onReset(reason);
        w.closed = true;
      });
    }
  }

  private enqueue(w: Watcher, g: Group): void {
    const mine = g.events.filter((e) => keyOf(e).startsWith(w.prefix));
    if (mine.length === 0) return;
    w.queue.push({ revision: g.revision, events: mine });
    if (w.scheduled) return;
    w.scheduled = true;
    queueMicrotask(() => this.drain(w));
  }

  private drain(w: Watcher): void {
    w.scheduled = false;
    while (!w.closed && w.queue.length > 0) {
      const g = w.queue.shift() as Group;
      w.handlers.onEvents(g.events, g.revision);
    }
  }
}

/**
 * One store watch over an etcd watch stream, resumed across member failures.
 *
 * The stream asks for events from `last + 1`, where `last` is the newest revision delivered (or
 * reported by a progress notification, which etcd sends only once a watcher has caught up). When
 * the stream breaks (a member died, a network error), it is reopened after a backoff on whichever
 * member the client picks next, from `last + 1` again, so no event is lost or repeated. When etcd
 * answers that `last + 1` is compacted, or cancels the watch, the watcher gets onReset and the
 * watch ends: the caller re-lists and watches from the list's revision.
 *
 * A member can also hang: alive, its sockets open, answering nothing (a stopped process, a stuck
 * disk). HTTP/2 keepalive catches that only after its ping timeout, and the etcd3 client may
 * pick the same member again. So the watch checks liveness itself: every `livenessMs` it sends
 * a progress request, and a stream that has answered nothing for two such periods is dropped.
 * Each reconnect goes to the next member in turn (not a random one), so a hung member is left
 * for the next one on the first try.
 *
 * The etcd3 package's own Watcher is not used: it advances its resume revision to the revision in
 * the "created" answer, before older events have arrived, and reports compaction as a bare error.
 */
import type { Etcd3, IDuplexStream, IEvent, IWatchRequest, IWatchResponse } from 'etcd3';
import type { StoreEvent, StoreWatch, StoreWatchHandlers } from './store.js';

export interface EtcdWatchParams {
  /** One client per member; the watch starts on `first` and moves to the next one on each break. */
  readonly members: readonly Etcd3[];
  readonly first?: number | undefined;
  /** Liveness probe period (ms, default 5000): silent for two periods means the member hangs. */
  readonly livenessMs?: number | undefined;
  /** The etcd key range watched (the store prefix under the client prefix). */
  readonly key: Buffer;
  readonly rangeEnd: Buffer;
  readonly afterRevision: number;
  readonly handlers: StoreWatchHandlers;
  readonly toEvent: (ev: IEvent) => StoreEvent;
  /** Reconnect backoff: first delay and cap (ms), x1.6 per failure, +-20 % jitter. */
  readonly backoffMs?: { readonly initial: number; readonly max: number } | undefined;
  readonly random?: (() => number) | undefined;
}

type Stream = IDuplexStream<IWatchRequest, IWatchResponse>;

export class EtcdWatch implements StoreWatch {
  private last: number;
  private stream: Stream | undefined;
  private closed = false;
  private failures = 0;
  private timer: NodeJS.Timeout | undefined;
  private liveness: NodeJS.Timeout | undefined;
  /** Whether the stream answered anything since the last liveness tick, and ticks without. */
  private heard = false;
  private silentTicks = 0;
  private member: number;
  private readonly p: EtcdWatchParams;

  constructor(params: EtcdWatchParams) {
    if (params.members.length === 0) throw new TypeError('EtcdWatch: no etcd members to watch through');
    this.p = params;
    this.last = params.afterRevision;
    this.member = (params.first ?? 0) % params.members.length;
    void this.connect();
  }

  close(): void {
    this.closed = true;
    clearTimeout(this.timer);
    clearInterval(this.liveness);
    const s = this.stream;
    this.stream = undefined;
    s?.cancel();
  }

  private async connect(): Promise<void> {
    if (this.closed) return;
    let stream: Stream;
    try {
      stream = await (this.p.members[this.member] as Etcd3).watchClient.watch();
    } catch {
      this.retry();
      return;
    }
    if (this.closed) {
      stream.on('error', () => {});
      stream.cancel();
      return;
    }
    this.stream = stream;
    stream.on('data', (res) => this.onResponse(stream, res));
    stream.on('error', () => this.onBroken(stream));
    stream.on('end', () => this.onBroken(stream));
    stream.write({ create_request: { key: this.p.key, range_end: this.p.rangeEnd, start_revision: this.last + 1, progress_notify: true } });
    this.heard = false;
    this.silentTicks = 0;
    clearInterval(this.liveness);
    this.liveness = setInterval(() => this.tick(stream), this.p.livenessMs ?? 5000);
    this.liveness.unref();
  }

  /** One liveness period: probe a stream that answered, drop one silent for two periods. */
  private tick(stream: Stream): void {
    if (stream !== this.stream || this.closed) return;
    if (this.heard) {
      this.heard = false;
      this.silentTicks = 0;
    } else if (++this.silentTicks >= 2) {
      return this.onBroken(stream);
    }
    stream.write({ progress_request: {} });
  }

  private onResponse(stream: Stream, res: IWatchResponse): void {
    if (stream !== this.stream || this.closed) return;
    this.heard = true;
    const compacted = Number(res.compact_revision);
    if (compacted > 0) return this.reset(`etcd compacted its history up to revision ${compacted}; cannot watch from revision ${this.last}`);
    if (res.canceled) return this.reset(`etcd cancelled the watch: ${res.cancel_reason !== '' ? res.cancel_reason : 'no reason given'}`);
    if (res.created) {
      this.failures = 0;
      return;
    }
    if (res.events.length === 0) {
      // The answer to our progress request (watch id -1) only proves the member alive: etcd
      // before 3.4.25/3.5.8 sends it even while this watcher still catches up. A notification
      // for this watch (progress_notify) is sent once it has caught up: every event up to
      // header.revision has been sent.
      if (String(res.watch_id) !== '-1') this.last = Math.max(this.last, Number(res.header.revision));
      return;
    }
    let group: StoreEvent[] = [];
    let groupRev = 0;
    const flush = (): void => {
      if (this.closed || group.length === 0 || groupRev <= this.last) return;
      this.last = groupRev;
      this.p.handlers.onEvents(group, groupRev);
    };
    for (const ev of res.events) {
      const rev = Number(ev.kv.mod_revision);
      if (rev !== groupRev) {
        flush();
        group = [];
        groupRev = rev;
      }
      group.push(this.p.toEvent(ev));
    }
    flush();
  }

  private onBroken(stream: Stream): void {
    if (stream !== this.stream || this.closed) return;
    this.stream = undefined;
    clearInterval(this.liveness);
    stream.cancel();
    this.retry();
  }

  private retry(): void {
    if (this.closed) return;
    this.member = (this.member + 1) % this.p.members.length;
    const { initial, max } = this.p.backoffMs ?? { initial: 100, max: 5000 };
    const base = Math.min(max, initial * 1.6 ** this.failures);
    const jitter = 0.8 + 0.4 * (this.p.random ?? Math.random)();
    this.failures++;
    this.timer = setTimeout(() => void this.connect(), base * jitter);
  }

  private reset(reason: string): void {
    this.close();
    this.p.handlers.onReset(reason);
  }
}

/**
 * Deadlines behind a single timer. Mostly of one fixed duration (a route's overall timeout, its
 * per-try timeout): every such entry is added `duration` ms after the previous one or later, so
 * the list is in deadline order by construction: `add` is a push at the tail, cancel an O(1)
 * unlink, and the timer only ever waits for the head. Replaces a setTimeout/clearTimeout pair per
 * call (a timer object and two heap operations in Node's timer lists) with a few field writes.
 * `addAt` takes a deadline of any time (a gRPC call's own or propagated deadline): it walks back
 * from the tail to its place, which for deadlines of similar length is a step or two.
 *
 * Invariants: a cancelled entry is unlinked at once, so the queue never keeps a finished request
 * reachable until its deadline; an entry fires at most once, never before its deadline by more
 * than the timer's 1 ms granularity; the timer is referenced while any entry waits (a script
 * awaiting a hung call gets its timeout instead of exiting) and unref'd when the queue empties.
 */
import type { Clock } from './clock.js';
import { timerDelay } from './timer-limit.js';

/** An entry: the object whose deadline it is (a call, an attempt) links itself in. */
export interface Deadline {
  /** When it fires, on the queue's clock; set by `add`. */
  deadlineAt: number;
  deadlinePrev: Deadline | undefined;
  deadlineNext: Deadline | undefined;
  /** The queue it waits in, or undefined when it is not waiting. */
  deadlineQueue: DeadlineQueue | undefined;
  /** Called once, when the deadline passes while the entry still waits. */
  onDeadline(): void;
}

/** Set only while `DeadlineQueue.anyDeadlines` constructs its queue. */
let anyAllowed = false;

export class DeadlineQueue {
  readonly durationMs: number;
  readonly #clock: Clock;
  #head: Deadline | undefined;
  #tail: Deadline | undefined;
  #timer: ReturnType<typeof setTimeout> | undefined;
  /** When the armed timer fires. */
  #timerAt = 0;

  /** `durationMs` is what `add` waits; Infinity only for `anyDeadlines` (then use `addAt`). */
  constructor(durationMs: number, clock: Clock) {
    if (!((Number.isFinite(durationMs) || (durationMs === Infinity && anyAllowed)) && durationMs > 0)) throw new RangeError(`deadline duration must be > 0 ms, got ${durationMs}`);
    this.durationMs = durationMs;
    this.#clock = clock;
  }

  /** A queue for deadlines of any time (no fixed duration): entries go in with `addAt` or `scheduler()`. */
  static anyDeadlines(clock: Clock): DeadlineQueue {
    anyAllowed = true;
    try {
      return new DeadlineQueue(Infinity, clock);
    } finally {
      anyAllowed = false;
    }
  }

  /** Starts `entry`'s deadline, `durationMs` from `now`. */
  add(entry: Deadline, now: number): void {
    if (entry.deadlineQueue !== undefined) entry.deadlineQueue.cancel(entry);
    const at = now + this.durationMs;
    const tail = this.#tail;
    // A later deadline at the tail (an `addAt` entry): take the ordered insert.
    if (tail !== undefined && tail.deadlineAt > at) {
      this.addAt(entry, at, now);
      return;
    }
    entry.deadlineAt = at;
    entry.deadlineQueue = this;
    entry.deadlineNext = undefined;
    entry.deadlinePrev = tail;
    if (tail === undefined) {
      this.#head = entry;
      this.#tail = entry;
      this.#timer?.ref();
      this.#arm(entry.deadlineAt, now);
    } else {
      tail.deadlineNext = entry;
      this.#tail = entry;
    }
  }

  /**
   * Starts `entry`'s deadline at `at` (the clock's time), whatever the deadlines already waiting:
   * the entry is linked in deadline order, walking back from the tail.
   */
  addAt(entry: Deadline, at: number, now: number): void {
    if (entry.deadlineQueue !== undefined) entry.deadlineQueue.cancel(entry);
    entry.deadlineAt = at;
    entry.deadlineQueue = this;
    let after = this.#tail;
    while (after !== undefined && after.deadlineAt > at) after = after.deadlinePrev;
    if (after === undefined) {
      const head = this.#head;
      entry.deadlinePrev = undefined;
      entry.deadlineNext = head;
      if (head === undefined) this.#tail = entry;
      else head.deadlinePrev = entry;
      this.#head = entry;
      this.#timer?.ref();
      this.#arm(at, now);
      return;
    }
    const next = after.deadlineNext;
    entry.deadlinePrev = after;
    entry.deadlineNext = next;
    after.deadlineNext = entry;
    if (next === undefined) this.#tail = entry;
    else next.deadlinePrev = entry;
  }

  /**
   * A `DeadlineScheduler` over this queue (resilience/timeout-filter.ts's shared deadlines): `fire`
   * is called at `at` unless the returned entry is cancelled first.
   */
  scheduler(): { add(at: number, fire: () => void): Deadline; cancel(entry: object): void } {
    return {
      add: (at, fire) => {
        const e: Deadline = { deadlineAt: 0, deadlinePrev: undefined, deadlineNext: undefined, deadlineQueue: undefined, onDeadline: fire };
        this.addAt(e, at, this.#clock.now());
        return e;
      },
      cancel: (e) => this.cancel(e as Deadline),
    };
  }

  /** Stops `entry`'s deadline (a no-op when it is not waiting here). */
  cancel(entry: Deadline): void {
    if (entry.deadlineQueue !== this) return;
    const { deadlinePrev: prev, deadlineNext: next } = entry;
    if (prev === undefined) this.#head = next;
    else prev.deadlineNext = next;
    if (next === undefined) this.#tail = prev;
    else next.deadlinePrev = prev;
    entry.deadlinePrev = entry.deadlineNext = entry.deadlineQueue = undefined;
    // Empty: the armed timer stays (the next add likely reuses it) but no longer holds the process
    // open. A later head leaves the timer armed early: it re-arms when it fires. Either way a
    // cancel costs no timer work.
    if (this.#head === undefined) this.#timer?.unref();
  }

  /** Entries waiting (for tests and inspection). */
  get size(): number {
    let n = 0;
    for (let e = this.#head; e !== undefined; e = e.deadlineNext) n++;
    return n;
  }

  #arm(at: number, now: number): void {
    if (this.#timer !== undefined && this.#timerAt <= at) return;
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    this.#timerAt = at;
    this.#timer = setTimeout(this.#fire, timerDelay(Math.ceil(at - now)));
  }

  readonly #fire = (): void => {
    this.#timer = undefined;
    const now = this.#clock.now();
    // Node fires a timer no earlier than asked, in whole ms: allow that rounding, not more.
    for (let e = this.#head; e !== undefined && e.deadlineAt <= now + 1; e = this.#head) {
      this.cancel(e);
      try {
        e.onDeadline();
      } catch {
        // One entry's failure must not stop the others' deadlines.
      }
    }
    const head = this.#head;
    if (head !== undefined) this.#arm(head.deadlineAt, now);
  };
}

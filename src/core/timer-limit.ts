/**
 * The longest delay a Node timer honours. `setTimeout` takes a signed 32-bit millisecond
 * count: anything above 2^31 − 1 (about 24.8 days), and NaN, is silently replaced by 1 ms with a
 * TimeoutOverflowWarning — a "deadline" of a month would fire at once. Every timer on the
 * request path takes its delay through `timerDelay`, and inbound deadline headers are capped at
 * `MAX_TIMER_MS` before they become a deadline, so hostile or absurd budgets can only mean
 * "no sooner than 24.8 days", never "now".
 */

/** 2^31 − 1 ms: the largest delay `setTimeout` accepts as given. */
export const MAX_TIMER_MS = 2 ** 31 - 1;

/** A delay `setTimeout` honours as meant: NaN and negatives become 0, overlong ones MAX_TIMER_MS. */
export function timerDelay(ms: number): number {
  if (!(ms > 0)) return 0;
  return ms > MAX_TIMER_MS ? MAX_TIMER_MS : ms;
}

/**
 * Weighted backend choice for one route (Istio `HTTPRouteDestination.weight`): canary and
 * blue-green splits, and sticky A/B assignment by key. Built once per route and config version;
 * the picker itself is pure apart from the injected random source, as grpc-js pickers are.
 *
 * - Weights are relative: 90/10 and 9/1 are the same split. Zero-weight backends are never
 *   chosen; a single (positive) backend is returned without drawing a number.
 * - Without a key, a uniform draw in [0, total) lands in the cumulative weight ranges.
 * - With a key, the draw is replaced by the key's position `murmur3(key) / 2^32` in [0, 1),
 *   scaled to the total: the same key keeps its backend while the weights stay, and when they
 *   change only keys whose position falls between an old and a new range boundary move
 *   (90/10 → 80/20 moves exactly the keys at positions [0.8, 0.9)), as with consistent hashing
 *   over a line (Karger et al.'s idea, one dimension).
 *
 * Invariants: `backends` must hold at least one positive weight (config refuses all-zero
 * weights; this throws otherwise); the returned backend is one of the given objects.
 */
import type { BackendSpec } from '../config/types.js';
import type { Random } from '../core/clock.js';
import { murmur3 } from '../lb/murmur3.js';

export type BackendPicker = (key: string | undefined) => BackendSpec;

const TWO_POW_32 = 4294967296;

export function backendPicker(backends: readonly BackendSpec[], random: Random): BackendPicker {
  const live = backends.filter((b) => Number.isFinite(b.weight) && b.weight > 0);
  const first = live[0];
  if (first === undefined) throw new RangeError('backendPicker needs at least one backend with a positive weight');
  if (live.length === 1) return () => first;

  // cumulative[i] = sum of weights 0..i; backend i owns [cumulative[i-1], cumulative[i]).
  const cumulative: number[] = [];
  let total = 0;
  for (const b of live) {
    total += b.weight;
    cumulative.push(total);
  }
  const last = live[live.length - 1] as BackendSpec;

  const at = (point: number): BackendSpec => {
    for (let i = 0; i < cumulative.length; i++) if (point < (cumulative[i] as number)) return live[i] as BackendSpec;
    return last; // rounding at the very top of the range
  };

  return (key) => {
    const unit = key === undefined ? random() : murmur3(key) / TWO_POW_32;
    return at(unit * total);
  };
}

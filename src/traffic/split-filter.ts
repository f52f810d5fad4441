/**
 * Split filter: chooses the backend (subset) of a route for one attempt and records it in
 * `ctx.subset`, which the balancer filter below reads to pick an endpoint among that subset's
 * members. An empty subset (`{}`) means every endpoint: `ctx.subset` is then undefined.
 *
 * Placement: below retry, so each attempt picks again — a retry after a failing canary can land
 * on the stable subset, as in Envoy where each retry re-runs weighted cluster selection. With a
 * sticky key (`keyOf` returns one) the choice is a function of the key, so every attempt of a
 * keyed request, and every request with that key, stays on the same subset.
 *
 * Invariants: sets `ctx.subset` before calling `next`, on every call; allocates nothing.
 */
import type { BackendSpec } from '../config/types.js';
import type { CallContext } from '../core/context.js';
import type { Filter } from '../core/service.js';
import type { BackendPicker } from './weighted-split.js';

function hasKeys(labels: Readonly<Record<string, string>>): boolean {
  for (const _ in labels) return true;
  return false;
}

/** The `ctx.subset` selector for a backend: undefined for an empty subset (all endpoints). */
export function subsetSelector(backend: BackendSpec): Readonly<Record<string, string>> | undefined {
  return hasKeys(backend.subset) ? backend.subset : undefined;
}

/** A `keyOf` for sticky splits keyed by the call's `routeKey` (request option or `hashOn`). */
export function routeKeyOf<Req>(_req: Req, ctx: CallContext): string | undefined {
  return ctx.routeKey;
}

export function splitFilter<Req, Res>(
  pick: BackendPicker,
  keyOf: (req: Req, ctx: CallContext) => string | undefined,
): Filter<Req, Res> {
  return (req, ctx, next) => {
    ctx.subset = subsetSelector(pick(keyOf(req, ctx)));
    return next(req, ctx);
  };
}

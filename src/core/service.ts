/**
 * The composable abstraction (after Finagle's Service and Filter): a Service turns a request
 * into a promised response; a Filter wraps a Service and knows only the `next` one it was
 * given. A destination's whole outbound stack is itself a Service.
 */
import type { CallContext } from './context.js';

export type Service<Req, Res> = (req: Req, ctx: CallContext) => Promise<Res>;

export type Filter<Req, Res> = (req: Req, ctx: CallContext, next: Service<Req, Res>) => Promise<Res>;

/** Wraps `next` with `filter`. */
export function applyFilter<Req, Res>(filter: Filter<Req, Res>, next: Service<Req, Res>): Service<Req, Res> {
  return (req, ctx) => filter(req, ctx, next);
}

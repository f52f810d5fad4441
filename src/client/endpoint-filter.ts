/**
 * Endpoint level: load accounting and outlier reporting around one attempt on the chosen
 * endpoint. Counts the attempt as outstanding until its response is complete (for HTTP, until
 * the body finishes), feeds the observed latency to the peak-EWMA estimate, and reports the
 * classified outcome to outlier detection. It must sit directly above the transport so that
 * what it measures is the endpoint, not retries or queueing above it.
 */
import type { Classifier } from '../core/classify.js';
import type { Clock } from '../core/clock.js';
import type { Filter } from '../core/service.js';
import type { EndpointSet } from './endpoint-set.js';

export interface EndpointFilterDeps<Res> {
  set: EndpointSet;
  clock: Clock;
  classify: Classifier<Res>;
  /** Calls `done` when the result is fully consumed (HTTP: body finished). */
  whenDone: ((res: Res, done: () => void) => void) | undefined;
}

export function endpointFilter<Req, Res>(deps: EndpointFilterDeps<Res>): Filter<Req, Res> {
  const { set, clock, classify, whenDone } = deps;
  return (req, ctx, next) => {
    const load = ctx.load;
    if (load === undefined) return next(req, ctx);
    const start = clock.now();
    load.outstanding++;
    let released = false;
    const release = (): void => {
      if (!released) {
        released = true;
        load.outstanding--;
      }
    };
    return next(req, ctx).then(
      (res) => {
        const now = clock.now();
        const c = classify(res, undefined);
        // A shed answer is instant and says nothing about the endpoint's latency.
        if (c.kind !== 'ignore' || c.shed !== true) load.observe(now - start, now);
        if (c.kind !== 'ignore') set.report(load.id, c.kind === 'success');
        if (whenDone !== undefined) whenDone(res, release);
        else release();
        return res;
      },
      (err: unknown) => {
        release();
        const c = classify(undefined, err);
        if (c.kind === 'failure') {
          const now = clock.now();
          load.observe(now - start, now);
          set.report(load.id, false);
        }
        throw err;
      },
    );
  };
}

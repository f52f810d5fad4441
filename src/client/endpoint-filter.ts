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
  /**
   * Calls `done` when the result is fully consumed (HTTP: body finished), with `failed` true when
   * it ended in a failure of the endpoint (a reset mid-body). The outcome is reported to outlier
   * detection then, not at the headers: a response cut short is a failure of the endpoint.
   */
  whenDone: ((res: Res, done: (failed: boolean) => void) => void) | undefined;
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
        if (whenDone === undefined) {
          if (c.kind !== 'ignore') set.report(load.id, c.kind === 'success');
          release();
        } else {
          whenDone(res, (failed) => {
            release();
            if (failed) set.report(load.id, false);
            else if (c.kind !== 'ignore') set.report(load.id, c.kind === 'success');
          });
        }
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

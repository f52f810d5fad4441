/**
 * The query of `GET /v1/stat`: `window` (10s, 1m, 10m; default 1m), `service` (a service name),
 * `series` (true: per-service steps over ten minutes). Anything else is refused, as every
 * control-plane endpoint refuses unknown fields.
 */
import { InvalidArgumentError } from '../../core/errors.js';
import { isServiceName } from '../../tls/spiffe.js';
import { WINDOWS } from './stat-body.js';

export interface StatQuery {
  readonly window: string;
  readonly windowSeconds: number;
  readonly service: string | undefined;
  readonly series: boolean;
}

const KNOWN = new Set(['window', 'service', 'series']);

/** The query, or an InvalidArgumentError (TRELLIS_INVALID_ARGUMENT, 400) naming the parameter. */
export function parseStatQuery(q: URLSearchParams): StatQuery {
  for (const k of q.keys()) {
    if (!KNOWN.has(k)) throw new InvalidArgumentError(`stat: unknown query parameter "${k.slice(0, 64)}" (known: window, service, series)`);
  }
  const window = q.get('window') ?? '1m';
  const windowSeconds = WINDOWS[window];
  if (windowSeconds === undefined) throw new InvalidArgumentError(`stat: window "${window.slice(0, 64)}" is not one of ${Object.keys(WINDOWS).join(', ')}`);
  const service = q.get('service') ?? undefined;
  if (service !== undefined && !isServiceName(service)) throw new InvalidArgumentError(`stat: service "${service.slice(0, 64)}" is not a valid service name`);
  const s = q.get('series');
  if (s !== null && s !== 'true' && s !== 'false') throw new InvalidArgumentError('stat: series must be true or false');
  return { window, windowSeconds, service, series: s === 'true' };
}

/**
 * Server-side request metrics: `trellis_server_requests_total` and
 * `trellis_server_request_duration_seconds`, labelled with this service, the verified caller
 * (`unknown` until identity says otherwise), the route name, method, status code and outcome.
 *
 * `serverMetrics(metrics, deps)` returns a hook the inbound side calls once per request, first
 * thing: it starts the clock and records when the response finishes (`finish`), or when the
 * connection closes before that (`close`: outcome `cancelled`). The labels object it is given is
 * read at that moment, so layers that learn the caller, the route or a mesh-made outcome
 * (`forbidden`, `rate_limited`) after the hook ran can still set them.
 *
 * Outcomes follow OpenTelemetry's server rule: 5xx is a failure, anything else a success (a 4xx
 * is the client's error, not the server's), unless `labels.outcome` says what the mesh did.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Clock } from '../core/clock.js';
import type { MeshMetrics } from './metrics.js';
import { OUTCOME_FAILURE, OUTCOME_SUCCESS, statusLabel, UNKNOWN } from './metrics-labels.js';

/** What the inbound layers learn about a request; read when the response ends. */
export interface ServerRequestLabels {
  /** The verified caller's service name (from its mTLS identity); default `unknown`. */
  caller?: string | undefined;
  /** The route name (never a raw path); default `unknown`. */
  route?: string | undefined;
  /** An outcome the mesh decided (`forbidden`, `rate_limited`, `fault`); default from the status. */
  outcome?: string | undefined;
}

export interface ServerRequestRecord {
  service: string;
  caller: string;
  route: string;
  method: string;
  statusCode: string;
  /** Default: `failure` for a 5xx (or no status), else `success`. */
  outcome?: string;
  durationSec: number;
}

/** Records one served request. */
export function recordServerRequest(metrics: MeshMetrics, r: ServerRequestRecord): void {
  metrics.recordServerRequest(r.service, r.caller, r.route, r.method, r.statusCode, r.outcome ?? serverOutcome(r.statusCode), r.durationSec);
}

function serverOutcome(statusCode: string): string {
  return statusCode === '' || statusCode.startsWith('5') ? OUTCOME_FAILURE : OUTCOME_SUCCESS;
}

export interface ServerMetricsDeps {
  clock: Clock;
  /** This service's name; `unknown` when the mesh client was given none. */
  service: string | undefined;
}

export type ServerMetricsHook = (req: IncomingMessage, res: ServerResponse, labels?: ServerRequestLabels) => void;

/**
 * Builds the per-request hook.
 *
 * @example
 * const track = serverMetrics(metrics, { clock, service: 'products' });
 * http.createServer((req, res) => { const labels = {}; track(req, res, labels); handler(req, res); });
 */
export function serverMetrics(metrics: MeshMetrics, deps: ServerMetricsDeps): ServerMetricsHook {
  const { clock } = deps;
  const service = deps.service ?? UNKNOWN;
  return (req, res, labels) => {
    const start = clock.now();
    let done = false;
    const record = (finished: boolean): void => {
      if (done) return;
      done = true;
      res.off('finish', onFinish);
      res.off('close', onClose);
      // Closed before finishing: the caller went away (or the socket broke) mid-response.
      const status = finished || res.headersSent ? statusLabel(res.statusCode) : '';
      const outcome = labels?.outcome ?? (finished ? serverOutcome(status) : 'cancelled');
      metrics.recordServerRequest(service, labels?.caller ?? UNKNOWN, labels?.route ?? UNKNOWN, req.method ?? '', status, outcome, (clock.now() - start) / 1000);
    };
    const onFinish = (): void => record(true);
    const onClose = (): void => record(res.writableFinished);
    res.once('finish', onFinish);
    res.once('close', onClose);
  };
}

/**
 * `dnsSource`: an `EndpointSource` for a `dns:` service (A/AAAA or SRV), re-resolved on the
 * records' TTL. It sits between `node:dns` (its own `Resolver`, never the process-wide one)
 * and whatever consumes endpoint snapshots (the balancer); `dns-resolve.ts` does one round of
 * queries, this file decides when to query and what to publish.
 *
 * Invariants:
 * - Timing: after a good answer, the next query is at min(record TTL, refreshIntervalMs), never
 *   sooner than minTtlMs. After a failure (timeout, SERVFAIL, refused), the last good set stays
 *   published, `onError` is called, and queries back off from minTtlMs, doubling up to
 *   refreshIntervalMs. One query round is in flight at most.
 * - "All endpoints gone" (NXDOMAIN or NODATA) after a good answer is held for a grace period
 *   (default one refresh interval) with a loud `onWarn`, and published as an empty set only when
 *   an answer after the grace still says gone (docs/reliability.md rows A9: an accidental record deletion
 *   must not blackhole a service instantly). If the very first answer is gone, the empty set is
 *   published at once (there is nothing to hold) with a warning.
 * - Publishes only when the set changed (ids, weights and labels compared after sorting by id);
 *   published arrays are frozen and sorted by id.
 * - Addresses the endpoint address policy refuses (dns-resolve.ts) are warned about once per
 *   address for the life of the source, naming the service, never once per refresh.
 * - Timers are `unref()`'d; `close()` clears the timer and cancels in-flight queries, after
 *   which no callback is called.
 */
import { Resolver } from 'node:dns/promises';
import type { DnsSpec } from '../config/types.js';
import { systemClock, type Clock } from '../core/clock.js';
import { DnsResolution, type DnsOutcome } from './dns-resolve.js';
import type { Endpoint, EndpointSource } from './endpoint.js';

export interface DnsSourceOptions {
  /** DNS servers (`10.0.0.2`, `127.0.0.1:5353`, `[::1]:53`); the system's when absent. */
  servers?: string[] | undefined;
  /** Longest time between queries, whatever the TTL; also the cap of the failure backoff. */
  refreshIntervalMs: number;
  /** Shortest time between queries, whatever the TTL (TTL 0 included); the backoff's start. */
  minTtlMs: number;
  /** How long an "all endpoints gone" answer is held before publishing it. Default: refreshIntervalMs. */
  gracePeriodMs?: number | undefined;
  /** Per-try query timeout. Default 2000 ms. */
  queryTimeoutMs?: number | undefined;
  /** Tries per query (per server). Default 2. */
  queryTries?: number | undefined;
  clock?: Clock | undefined;
  /** The Service these endpoints are for, named in warnings. */
  service?: string | undefined;
  /** Loud, human-readable warnings (held removals, refused addresses). Default: `process.emitWarning`. */
  onWarn?: ((msg: string) => void) | undefined;
}

/** What a DNS source knows about its own freshness (for staleness gauges and describe()). */
export interface DnsSourceStatus {
  /** `clock.now()` of the last answer that was not an error; undefined before the first. */
  readonly lastAnswerAt: number | undefined;
  /** Failed (or partly failed) query rounds in a row; 0 after a complete answer. */
  readonly consecutiveFailures: number;
  /** `clock.now()` since when an "all gone" answer is being held; undefined when not holding. */
  readonly holdingSince: number | undefined;
}

export interface DnsEndpointSource extends EndpointSource {
  status(): DnsSourceStatus;
}

/** Guards against a hot loop when minTtlMs is 0. */
const MIN_DELAY_MS = 10;

function endpointKey(e: Endpoint): string {
  const labels = Object.keys(e.labels)
    .sort()
    .map((k) => `${k}=${e.labels[k] ?? ''}`)
    .join(',');
  return `${e.id}|${e.weight}|${labels}`;
}

/**
 * Builds a DNS endpoint source. Invalid options (bad server strings, non-positive intervals,
 * an A/AAAA spec without a port) throw here, at load, never later.
 *
 * @example
 * const source = dnsSource({ name: 'products.svc', port: 8080, type: 'a', labels: {} },
 *   { refreshIntervalMs: 30_000, minTtlMs: 1_000 });
 * source.start((eps) => balancer.update(eps), (err) => log.warn(err));
 */
export function dnsSource(spec: DnsSpec, options: DnsSourceOptions): DnsEndpointSource {
  const { refreshIntervalMs, minTtlMs } = options;
  if (!(refreshIntervalMs > 0)) throw new RangeError(`dns refreshIntervalMs must be > 0 (got ${refreshIntervalMs})`);
  if (!(minTtlMs >= 0) || minTtlMs > refreshIntervalMs) {
    throw new RangeError(`dns minTtlMs must be in [0, refreshIntervalMs] (got ${minTtlMs})`);
  }
  if (spec.type === 'a' && spec.port === undefined) throw new RangeError(`dns name ${spec.name} (A/AAAA) needs a port`);
  const graceMs = options.gracePeriodMs ?? refreshIntervalMs;
  const clock = options.clock ?? systemClock;
  const warn = options.onWarn ?? ((msg: string) => process.emitWarning(msg, { code: 'TRELLIS_DNS' }));
  const resolver = new Resolver({ timeout: options.queryTimeoutMs ?? 2000, tries: options.queryTries ?? 2 });
  if (options.servers !== undefined && options.servers.length > 0) resolver.setServers(options.servers);
  const description = spec.type === 'srv' ? `dns srv ${spec.name}` : `dns ${spec.name}:${spec.port ?? ''}`;
  // A refused address is reported once per source, not on every refresh (bounded, in case an
  // answer rotates through many addresses).
  let closed = false;
  const warnedRefused = new Set<string>();
  const onRefused = (address: string, hostname: string, reason: string): void => {
    if (closed || warnedRefused.has(address)) return;
    if (warnedRefused.size >= 256) warnedRefused.clear();
    warnedRefused.add(address);
    warn(`${description}: service ${options.service ?? spec.name}: DNS answered ${address} for ${hostname}, which ${reason}; dropped, not an endpoint (address policy)`);
  };
  const resolution = new DnsResolution(resolver, spec, onRefused);

  let started = false;
  let timer: NodeJS.Timeout | undefined;
  let published: readonly Endpoint[] | undefined;
  let publishedKey: string | undefined;
  let failures = 0;
  let backoffStep = 0;
  let lastAnswerAt: number | undefined;
  let holdingSince: number | undefined;
  let onUpdate: (endpoints: readonly Endpoint[]) => void = () => {};
  let onError: (err: Error) => void = () => {};

  const backoffMs = (): number => Math.min(Math.max(minTtlMs, MIN_DELAY_MS) * 2 ** Math.max(0, backoffStep - 1), refreshIntervalMs);
  const ttlDelayMs = (ttlMs: number | undefined): number => Math.max(minTtlMs, Math.min(ttlMs ?? refreshIntervalMs, refreshIntervalMs));

  const schedule = (delayMs: number): void => {
    timer = setTimeout(() => void tick(), Math.max(MIN_DELAY_MS, delayMs));
    timer.unref();
  };

  const publish = (endpoints: readonly Endpoint[]): void => {
    const sorted = [...endpoints].sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
    const key = sorted.map(endpointKey).join(';');
    if (key === publishedKey) return;
    publishedKey = key;
    published = Object.freeze(sorted);
    try {
      onUpdate(published);
    } catch (err) {
      onError(new Error(`${description}: endpoint update listener threw`, { cause: err }));
    }
  };

  const handle = (outcome: DnsOutcome): void => {
    const now = clock.now();
    switch (outcome.kind) {
      case 'ok': {
        lastAnswerAt = now;
        failures = outcome.partial !== undefined ? failures + 1 : 0;
        backoffStep = outcome.partial !== undefined ? backoffStep + 1 : 0;
        if (holdingSince !== undefined) {
          warn(`${description}: records are back after ${Math.round(now - holdingSince)} ms; removal cancelled`);
          holdingSince = undefined;
        }
        schedule(outcome.partial !== undefined ? backoffMs() : ttlDelayMs(outcome.ttlMs));
        if (outcome.partial !== undefined) onError(outcome.partial);
        publish(outcome.endpoints);
        return;
      }
      case 'error': {
        failures += 1;
        backoffStep += 1;
        schedule(backoffMs());
        onError(outcome.error);
        return;
      }
      case 'gone': {
        lastAnswerAt = now;
        failures = 0;
        backoffStep += 1; // poll a gone name from minTtl upward, to see it come back quickly
        if (published === undefined || published.length === 0) {
          schedule(backoffMs());
          if (published === undefined) warn(`${description}: ${outcome.detail}; no endpoints`);
          publish([]);
          return;
        }
        if (holdingSince === undefined) {
          holdingSince = now;
          warn(
            `${description}: DNS says ${outcome.detail}. HOLDING the last ${published.length} endpoint(s) ` +
              `for ${graceMs} ms before removing them all; if this deletion is a mistake, restore the records now.`,
          );
        }
        const remaining = holdingSince + graceMs - now;
        if (remaining > 0) {
          schedule(Math.max(minTtlMs, Math.min(backoffMs(), remaining)));
          return;
        }
        warn(`${description}: still ${outcome.reason} after the ${graceMs} ms grace period; removing all ${published.length} endpoint(s).`);
        holdingSince = undefined;
        schedule(backoffMs());
        publish([]);
        return;
      }
    }
  };

  const tick = async (): Promise<void> => {
    timer = undefined;
    let outcome: DnsOutcome;
    try {
      outcome = await resolution.resolve();
    } catch (err) {
      outcome = { kind: 'error', error: err instanceof Error ? err : new Error(String(err)) };
    }
    if (closed) return;
    handle(outcome);
  };

  return {
    description,
    start(update, error) {
      if (started) throw new Error(`${description}: already started`);
      started = true;
      if (closed) return;
      onUpdate = update;
      onError = error;
      void tick();
    },
    close() {
      if (closed) return;
      closed = true;
      if (timer !== undefined) clearTimeout(timer);
      timer = undefined;
      resolver.cancel();
    },
    status() {
      return { lastAnswerAt, consecutiveFailures: failures, holdingSince };
    },
  };
}

/**
 * One round of DNS resolution for a `dns:` service: turns A/AAAA or SRV answers into endpoints
 * and classifies the round as `ok`, `gone` (the name authoritatively has no records: NXDOMAIN
 * or NODATA) or `error` (we could not find out: timeout, SERVFAIL, refused...). It sits under
 * `dns-source.ts`, which owns timing, grace periods and publishing; this file has no timers.
 *
 * Invariants:
 * - `gone` only on authoritative answers; any doubt is `error`, so the caller keeps its set.
 * - When one address family (or one SRV target) fails and the rest answers, the failed part is
 *   taken from its last good answer (kept per host name in this object) and the round is `ok`
 *   with `partial` set: a transient AAAA timeout must not drop every IPv6 endpoint.
 * - SRV: only the lowest-priority group is used (RFC 2782 priority as a preference order, not a
 *   balancing input); the next group is tried only when every target of the lower one is
 *   authoritatively gone. Weights are the SRV weights, at least 1. Node's `resolveSrv` does not
 *   report the SRV record's own TTL, so a round's TTL is the lowest A/AAAA TTL of its targets.
 * - Every address, from A, AAAA or an SRV target written as a literal IP, passes the address
 *   policy static endpoints obey (`refusedAddressReason`, docs/security.md "SSRF through routing
 *   data"): a link-local (cloud metadata), unspecified, multicast or broadcast answer is dropped
 *   and reported through `onRefused`, never an endpoint. A host whose answer holds only refused
 *   addresses is an `error` (the last good set stays), not an empty set: a poisoned or
 *   mistaken record must neither reach the metadata service nor blackhole the service.
 */
import { NODATA, NOTFOUND } from 'node:dns';
import type { RecordWithTtl, SrvRecord } from 'node:dns';
import { isIP } from 'node:net';
import type { DnsSpec } from '../config/types.js';
import { refusedAddressReason } from '../config/address.js';
import { makeEndpoint, type Endpoint } from './endpoint.js';

/** The queries this file needs; `node:dns/promises` `Resolver` satisfies it. */
export interface DnsQuerier {
  resolve4(hostname: string, options: { ttl: true }): Promise<RecordWithTtl[]>;
  resolve6(hostname: string, options: { ttl: true }): Promise<RecordWithTtl[]>;
  resolveSrv(hostname: string): Promise<SrvRecord[]>;
}

export type RecordType = 'A' | 'AAAA' | 'SRV';

/** A failed DNS query: `code` is the resolver's (`ETIMEOUT`, `ESERVFAIL`, `ECONNREFUSED`...). */
export class DnsQueryError extends Error {
  readonly code: string;
  readonly hostname: string;
  readonly rrtype: RecordType;
  constructor(hostname: string, rrtype: RecordType, code: string, cause?: unknown) {
    super(`DNS ${rrtype} query for ${hostname} failed: ${code}`, cause !== undefined ? { cause } : undefined);
    this.name = 'DnsQueryError';
    this.code = code;
    this.hostname = hostname;
    this.rrtype = rrtype;
  }
}

export type DnsOutcome =
  | { readonly kind: 'ok'; readonly endpoints: Endpoint[]; readonly ttlMs: number | undefined; readonly partial: Error | undefined }
  | { readonly kind: 'gone'; readonly reason: 'NXDOMAIN' | 'NODATA'; readonly detail: string }
  | { readonly kind: 'error'; readonly error: Error };

type FamilyAnswer =
  | { kind: 'data'; records: RecordWithTtl[] }
  | { kind: 'nodata' }
  | { kind: 'nxdomain' }
  | { kind: 'failed'; error: DnsQueryError };

type HostResult =
  | { kind: 'ok'; addresses: string[]; ttlMs: number | undefined; partial: DnsQueryError | undefined }
  | { kind: 'gone'; reason: 'NXDOMAIN' | 'NODATA' }
  | { kind: 'error'; error: Error };

/** Called for each address the policy refused: the address, the name that answered it, and why. */
export type RefusedAddressListener = (address: string, hostname: string, reason: string) => void;

interface CachedHost {
  v4: string[];
  v6: string[];
}

function errorCode(err: unknown): string {
  if (typeof err === 'object' && err !== null && 'code' in err && typeof err.code === 'string') return err.code;
  return 'EUNKNOWN';
}

async function family(query: Promise<RecordWithTtl[]>, hostname: string, rrtype: RecordType): Promise<FamilyAnswer> {
  try {
    const records = await query;
    return records.length > 0 ? { kind: 'data', records } : { kind: 'nodata' };
  } catch (err) {
    const code = errorCode(err);
    if (code === NODATA) return { kind: 'nodata' };
    if (code === NOTFOUND) return { kind: 'nxdomain' };
    return { kind: 'failed', error: new DnsQueryError(hostname, rrtype, code, err) };
  }
}

function minTtlMs(records: readonly RecordWithTtl[], current: number | undefined): number | undefined {
  let ttl = current;
  for (const r of records) ttl = ttl === undefined ? r.ttl * 1000 : Math.min(ttl, r.ttl * 1000);
  return ttl;
}

function combineErrors(errors: readonly Error[], what: string): Error | undefined {
  if (errors.length <= 1) return errors[0];
  return new AggregateError(errors, `${errors.length} DNS queries failed for ${what}`);
}

/** Adds an endpoint, summing weights when two SRV records lead to the same address and port. */
function addEndpoint(into: Map<string, Endpoint>, ep: Endpoint): void {
  const prev = into.get(ep.id);
  into.set(ep.id, prev === undefined ? ep : makeEndpoint(ep.host, ep.port, { ...ep.labels }, prev.weight + ep.weight));
}

/** Resolves one `DnsSpec`, remembering per host name the last good addresses of each family. */
export class DnsResolution {
  readonly #q: DnsQuerier;
  readonly #spec: DnsSpec;
  readonly #onRefused: RefusedAddressListener;
  #cache = new Map<string, CachedHost>();

  constructor(querier: DnsQuerier, spec: DnsSpec, onRefused: RefusedAddressListener = () => {}) {
    this.#q = querier;
    this.#spec = spec;
    this.#onRefused = onRefused;
  }

  /** The addresses the policy allows; reports the others. */
  #allowed(addresses: readonly string[], hostname: string, refused: string[]): string[] {
    const out: string[] = [];
    for (const a of addresses) {
      const reason = refusedAddressReason(a);
      if (reason === undefined) out.push(a);
      else {
        refused.push(a);
        this.#onRefused(a, hostname, reason);
      }
    }
    return out;
  }

  async resolve(): Promise<DnsOutcome> {
    const seen = new Set<string>();
    const outcome = this.#spec.type === 'srv' ? await this.#resolveSrv(seen) : await this.#resolveA(seen);
    // Forget hosts that are no longer referenced, so the cache stays bounded by the current set.
    for (const name of this.#cache.keys()) if (!seen.has(name)) this.#cache.delete(name);
    return outcome;
  }

  async #resolveA(seen: Set<string>): Promise<DnsOutcome> {
    const { name, port, labels } = this.#spec;
    if (port === undefined) return { kind: 'error', error: new Error(`DNS A/AAAA name ${name} has no port`) };
    const host = await this.#lookupHost(name, seen);
    if (host.kind !== 'ok') {
      return host.kind === 'gone'
        ? { kind: 'gone', reason: host.reason, detail: `${name} has no A or AAAA records (${host.reason})` }
        : { kind: 'error', error: host.error };
    }
    const endpoints = host.addresses.map((a) => makeEndpoint(a, port, labels));
    return { kind: 'ok', endpoints, ttlMs: host.ttlMs, partial: host.partial };
  }

  async #resolveSrv(seen: Set<string>): Promise<DnsOutcome> {
    const { name, labels } = this.#spec;
    let records: SrvRecord[];
    try {
      records = await this.#q.resolveSrv(name);
    } catch (err) {
      const code = errorCode(err);
      if (code === NOTFOUND) return { kind: 'gone', reason: 'NXDOMAIN', detail: `${name} does not exist (NXDOMAIN)` };
      if (code === NODATA) return { kind: 'gone', reason: 'NODATA', detail: `${name} has no SRV records (NODATA)` };
      return { kind: 'error', error: new DnsQueryError(name, 'SRV', code, err) };
    }
    // RFC 2782: a target of "." means the service is decidedly not available there.
    const usable = records.filter((r) => r.name !== '' && r.name !== '.');
    const priorities = [...new Set(usable.map((r) => r.priority))].sort((a, b) => a - b);
    for (const priority of priorities) {
      const group = usable.filter((r) => r.priority === priority);
      const results = await Promise.all(group.map((r) => this.#lookupHost(r.name, seen)));
      const found = new Map<string, Endpoint>();
      const errors: Error[] = [];
      let ttlMs: number | undefined;
      group.forEach((record, i) => {
        const result = results[i];
        if (result === undefined || result.kind === 'gone') return;
        let addresses: string[];
        if (result.kind === 'ok') {
          addresses = result.addresses;
          if (result.ttlMs !== undefined) ttlMs = ttlMs === undefined ? result.ttlMs : Math.min(ttlMs, result.ttlMs);
          if (result.partial !== undefined) errors.push(result.partial);
        } else {
          // This target failed outright: keep what it last resolved to.
          const cached = this.#cache.get(record.name);
          addresses = cached === undefined ? [] : [...cached.v4, ...cached.v6];
          errors.push(result.error);
        }
        const weight = Math.max(1, record.weight);
        for (const a of addresses) addEndpoint(found, makeEndpoint(a, record.port, labels, weight));
      });
      if (found.size > 0) return { kind: 'ok', endpoints: [...found.values()], ttlMs, partial: combineErrors(errors, name) };
      // Nothing usable and we are not sure why: never fall through to a worse group on doubt.
      const error = combineErrors(errors, name);
      if (error !== undefined) return { kind: 'error', error };
    }
    return { kind: 'gone', reason: 'NODATA', detail: `${name} has no SRV target with an address` };
  }

  /** A and AAAA of one host (a literal IP resolves to itself). */
  async #lookupHost(hostname: string, seen: Set<string>): Promise<HostResult> {
    const refused: string[] = [];
    if (isIP(hostname) !== 0) {
      const allowed = this.#allowed([hostname], hostname, refused);
      return allowed.length > 0 ? { kind: 'ok', addresses: allowed, ttlMs: undefined, partial: undefined } : { kind: 'error', error: refusedOnly(hostname, refused) };
    }
    seen.add(hostname);
    const [v4, v6] = await Promise.all([
      family(this.#q.resolve4(hostname, { ttl: true }), hostname, 'A'),
      family(this.#q.resolve6(hostname, { ttl: true }), hostname, 'AAAA'),
    ]);
    const cached = this.#cache.get(hostname) ?? { v4: [], v6: [] };
    if (v4.kind === 'failed' && v6.kind === 'failed') return { kind: 'error', error: v4.error };
    const failed = v4.kind === 'failed' ? v4 : v6.kind === 'failed' ? v6 : undefined;
    const other = failed === v4 ? v6 : v4;
    // One family failed: usable only if the other has data; otherwise we cannot tell gone from down.
    if (failed !== undefined && other.kind !== 'data') return { kind: 'error', error: failed.error };
    if (v4.kind !== 'data' && v6.kind !== 'data') {
      this.#cache.set(hostname, { v4: [], v6: [] });
      return { kind: 'gone', reason: v4.kind === 'nxdomain' && v6.kind === 'nxdomain' ? 'NXDOMAIN' : 'NODATA' };
    }
    // The cache holds allowed addresses only, so a fallback to it never brings a refused one back.
    const next: CachedHost = {
      v4: v4.kind === 'data' ? this.#allowed(v4.records.map((r) => r.address), hostname, refused) : v4.kind === 'failed' ? cached.v4 : [],
      v6: v6.kind === 'data' ? this.#allowed(v6.records.map((r) => r.address), hostname, refused) : v6.kind === 'failed' ? cached.v6 : [],
    };
    if (next.v4.length === 0 && next.v6.length === 0 && refused.length > 0) return { kind: 'error', error: refusedOnly(hostname, refused) };
    this.#cache.set(hostname, next);
    let ttlMs: number | undefined;
    if (v4.kind === 'data') ttlMs = minTtlMs(v4.records, ttlMs);
    if (v6.kind === 'data') ttlMs = minTtlMs(v6.records, ttlMs);
    return { kind: 'ok', addresses: [...next.v4, ...next.v6], ttlMs, partial: failed?.error };
  }
}

/** The error of a host whose every address the policy refused. */
function refusedOnly(hostname: string, refused: readonly string[]): Error {
  return new Error(`DNS answered ${hostname} with only addresses the endpoint address policy refuses (${refused.join(', ')}): kept the last good endpoints`);
}

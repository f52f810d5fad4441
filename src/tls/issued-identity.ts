/**
 * Identity issued by a CA: the key pair is generated in-process (P-256) and never leaves it;
 * only a CSR goes out, through `sign()` (the control-plane client, or `localAuthoritySigner`).
 *
 * Renewal (docs/reliability.md rows B2, B5): a new key and certificate are requested once two thirds of the
 * certificate's life have passed, measured from when it was received (so the CA's 60 s
 * NotBefore backdating does not shorten short-lived certificates). The due time is re-checked
 * against the wall clock on an unref'd interval rather than one long `setTimeout`, so a
 * suspended VM or a stepped clock renews on its next tick. Failures retry with exponential
 * backoff and full jitter, warn, and keep the current certificate until it expires; then
 * `current()` is undefined (fail closed) and a warning names the identity and its NotAfter.
 */
import type { Clock, Random } from '../core/clock.js';
import { buildCsr } from './csr.js';
import { IdentityHolder } from './identity-holder.js';
import type { IdentityProvider } from './identity.js';
import { generateP256KeyPair, privateKeyPem } from './keys.js';
import { materialFromPem, type TlsMaterial } from './material.js';
import { spiffeIdFor } from './spiffe.js';

/** Sends a CSR to the CA and returns what it signed. */
export type SignFunction = (csrPem: string) => Promise<{ certificateChainPem: string; caBundlePem: string }>;

export interface IssuedIdentityParams {
  readonly service: string;
  readonly trustDomain: string;
  /**
   * Renew as if the certificate lived at most this long (default: its real life). Lets an
   * instance renew more often than the CA's certificate TTL.
   */
  readonly ttlMs?: number;
  readonly sign: SignFunction;
  /**
   * Material to start from (a certificate kept on disk): in force at once when not expired, and
   * renewed at two thirds of its life like any other.
   */
  readonly initial?: TlsMaterial | undefined;
}

export interface IssuedIdentityDeps {
  readonly clock: Clock;
  readonly onWarn: (message: string) => void;
  /** How often the renewal time is re-checked against the wall clock; default 5000 ms. */
  readonly renewCheckMs?: number;
  /** Random source for backoff jitter; default Math.random. */
  readonly random?: Random;
  /** Backoff after failed attempts: first delay and cap; default 1 s and 60 s. */
  readonly retry?: { readonly baseMs?: number; readonly maxMs?: number };
  /** An attempt whose `sign()` has not answered by then counts as failed; default 30 s. */
  readonly signTimeoutMs?: number;
}

const DEFAULT_RENEW_CHECK_MS = 5000;

function iso(ms: number): string {
  return new Date(ms).toISOString();
}

/**
 * Obtains and renews this workload's certificate through `params.sign`.
 *
 * @example
 * const id = issuedIdentity({ service: 'checkout', trustDomain: 'example.org',
 *   sign: localAuthoritySigner(ca, tokenKey, token) }, { clock: systemClock, onWarn: log.warn });
 * const material = await id.ready();
 * @throws ConfigInvalidError at once for an invalid service name or trust domain.
 */
export function issuedIdentity(params: IssuedIdentityParams, deps: IssuedIdentityDeps): IdentityProvider {
  const { clock, onWarn } = deps;
  const spiffeId = spiffeIdFor(params.trustDomain, params.service);
  const checkMs = Math.max(10, deps.renewCheckMs ?? DEFAULT_RENEW_CHECK_MS);
  const random = deps.random ?? Math.random;
  const baseMs = deps.retry?.baseMs ?? 1000;
  const maxMs = deps.retry?.maxMs ?? 60_000;
  const signTimeoutMs = deps.signTimeoutMs ?? 30_000;

  let renewAt = 0; // wall ms; 0 = now
  let nextAttemptAt = 0;
  let failures = 0;
  let inFlight = false;
  let warnedExpired = false;
  let retryTimer: NodeJS.Timeout | undefined;
  let renewTimer: NodeJS.Timeout | undefined;

  const holder = new IdentityHolder(clock, onWarn, () => {
    clearInterval(interval);
    if (retryTimer !== undefined) clearTimeout(retryTimer);
    if (renewTimer !== undefined) clearTimeout(renewTimer);
  });

  const withTimeout = <T>(p: Promise<T>): Promise<T> =>
    new Promise<T>((resolve, reject) => {
      const t = setTimeout(() => reject(new Error(`the CA did not answer within ${signTimeoutMs} ms`)), signTimeoutMs);
      t.unref();
      p.then(
        (v) => {
          clearTimeout(t);
          resolve(v);
        },
        (e: unknown) => {
          clearTimeout(t);
          reject(e instanceof Error ? e : new Error(String(e)));
        },
      );
    });

  const attempt = async (): Promise<void> => {
    inFlight = true;
    try {
      const keys = await generateP256KeyPair();
      const csrPem = buildCsr(keys, params.service);
      const res = await withTimeout(params.sign(csrPem));
      if (holder.closed) return;
      let material: TlsMaterial;
      try {
        material = materialFromPem({ ca: res.caBundlePem, cert: res.certificateChainPem, key: privateKeyPem(keys.privateKey) }, { trustDomain: params.trustDomain, service: params.service });
      } catch (err) {
        throw new Error(`the CA returned unusable material: ${(err as Error).message}`, { cause: err });
      }
      const now = clock.wall();
      if (now >= material.notAfter) throw new Error(`the CA returned a certificate already expired at ${iso(material.notAfter)}`);
      const life = Math.min(material.notAfter - now, params.ttlMs ?? Number.POSITIVE_INFINITY);
      renewAt = now + (life * 2) / 3;
      failures = 0;
      warnedExpired = false;
      holder.set(material);
      // A life shorter than the check interval would expire between checks: also wake at renewAt.
      if (renewTimer !== undefined) clearTimeout(renewTimer);
      if (renewAt - now < checkMs) {
        renewTimer = setTimeout(() => {
          renewTimer = undefined;
          tick();
        }, Math.max(1, renewAt - now));
        renewTimer.unref();
      }
    } catch (err) {
      if (holder.closed) return;
      failures += 1;
      // Exponential backoff with full jitter (AWS Architecture Blog, "Exponential Backoff And Jitter").
      const cap = Math.min(maxMs, baseMs * 2 ** Math.min(failures - 1, 30));
      const delay = Math.max(1, Math.round(cap * random()));
      nextAttemptAt = clock.wall() + delay;
      const cur = holder.latest();
      const state = cur !== undefined ? `current certificate expires at ${iso(cur.notAfter)}` : 'no certificate yet';
      onWarn(`certificate ${cur !== undefined ? 'renewal' : 'request'} for ${spiffeId} failed (attempt ${failures}): ${(err as Error).message}; retrying in ${delay} ms; ${state}`);
      if (retryTimer !== undefined) clearTimeout(retryTimer);
      retryTimer = setTimeout(() => {
        retryTimer = undefined;
        nextAttemptAt = 0; // the backoff has elapsed on the timer, whatever the injected clock says
        tick();
      }, delay);
      retryTimer.unref();
    } finally {
      inFlight = false;
    }
  };

  function tick(): void {
    if (holder.closed || inFlight) return;
    const now = clock.wall();
    const cur = holder.latest();
    if (cur !== undefined && now >= cur.notAfter && !warnedExpired) {
      warnedExpired = true;
      onWarn(`certificate for ${spiffeId} expired at ${iso(cur.notAfter)} (NotAfter) and was not renewed; new mTLS connections fail closed`);
    }
    if ((cur === undefined || now >= renewAt) && now >= nextAttemptAt) void attempt();
  }

  const initial = params.initial;
  if (initial !== undefined && clock.wall() < initial.notAfter) {
    const life = Math.min(initial.notAfter - initial.notBefore, params.ttlMs ?? Number.POSITIVE_INFINITY);
    renewAt = initial.notBefore + (life * 2) / 3;
    holder.set(initial);
  }

  const interval = setInterval(tick, checkMs);
  interval.unref();
  queueMicrotask(tick);
  return holder;
}

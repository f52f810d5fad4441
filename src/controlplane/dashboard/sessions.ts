/**
 * Sign-in for a dashboard bound to a non-loopback address: the admin token, checked by the
 * control plane's own (constant-time) check, exchanges for a random session id in an HttpOnly,
 * SameSite=Strict cookie. The dashboard is read-only, so the only state-changing requests are
 * sign-in and sign-out; SameSite=Strict keeps the cookie off cross-site requests and sign-in
 * also checks Origin. Sessions are bounded (oldest evicted), expire, and sign-in attempts are
 * rate-limited so the token cannot be guessed through it.
 */
import { randomBytes } from 'node:crypto';
import type { Clock } from '../../core/clock.js';

export const SESSION_COOKIE = 'trellis_dashboard';
const TTL_MS = 12 * 3_600_000;
const MAX_SESSIONS = 1024;
/** Sign-in attempts: a burst of 10, then one per second. */
const BURST = 10;
const REFILL_PER_MS = 1 / 1000;

export class Sessions {
  readonly #sessions = new Map<string, number>();
  readonly #clock: Clock;
  readonly #check: (token: string) => boolean;
  #tokens = BURST;
  #refilledAt: number;

  constructor(check: (token: string) => boolean, clock: Clock) {
    this.#check = check;
    this.#clock = clock;
    this.#refilledAt = clock.now();
  }

  /** A new session id when `token` is the admin token; `limited` when attempts come too fast. */
  signIn(token: string): { ok: true; id: string } | { ok: false; reason: 'invalid' | 'limited' } {
    const now = this.#clock.now();
    this.#tokens = Math.min(BURST, this.#tokens + (now - this.#refilledAt) * REFILL_PER_MS);
    this.#refilledAt = now;
    if (this.#tokens < 1) return { ok: false, reason: 'limited' };
    this.#tokens -= 1;
    if (token.length === 0 || token.length > 256 || !this.#check(token)) return { ok: false, reason: 'invalid' };
    if (this.#sessions.size >= MAX_SESSIONS) {
      const oldest = this.#sessions.keys().next().value;
      if (oldest !== undefined) this.#sessions.delete(oldest);
    }
    const id = randomBytes(32).toString('base64url');
    this.#sessions.set(id, this.#clock.now() + TTL_MS);
    return { ok: true, id };
  }

  /** Whether the request's cookie header carries a live session. */
  valid(cookieHeader: string | undefined): boolean {
    const id = sessionIdOf(cookieHeader);
    if (id === undefined) return false;
    const exp = this.#sessions.get(id);
    if (exp === undefined) return false;
    if (exp <= this.#clock.now()) {
      this.#sessions.delete(id);
      return false;
    }
    return true;
  }

  signOut(cookieHeader: string | undefined): void {
    const id = sessionIdOf(cookieHeader);
    if (id !== undefined) this.#sessions.delete(id);
  }

  static cookie(id: string): string {
    return `${SESSION_COOKIE}=${id}; HttpOnly; SameSite=Strict; Path=/; Max-Age=${TTL_MS / 1000}`;
  }
}

function sessionIdOf(header: string | undefined): string | undefined {
  if (header === undefined) return undefined;
  for (const part of header.split(';')) {
    const [k, v] = part.trim().split('=', 2);
    if (k === SESSION_COOKIE && v !== undefined && /^[A-Za-z0-9_-]{43}$/.test(v)) return v;
  }
  return undefined;
}

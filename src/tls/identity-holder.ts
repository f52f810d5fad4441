/**
 * The state both identity providers share: the material in force, the 'rotated' event, and
 * `ready()` waiters. Providers decide when material changes; this decides what callers see.
 *
 * Invariant: `current()` never returns expired material (checked against the injected wall
 * clock on every call), so expiry fails closed without any timer having to fire.
 */
import { EventEmitter } from 'node:events';
import type { Clock } from '../core/clock.js';
import { NoIdentityError } from '../core/errors.js';
import type { IdentityProvider } from './identity.js';
import type { TlsMaterial } from './material.js';

interface Waiter {
  resolve: (m: TlsMaterial) => void;
  reject: (e: Error) => void;
}

export class IdentityHolder implements IdentityProvider {
  readonly #clock: Clock;
  readonly #onWarn: (m: string) => void;
  readonly #onClose: () => void;
  readonly #events = new EventEmitter();
  #material: TlsMaterial | undefined;
  #failure: Error | undefined;
  #waiters: Waiter[] = [];
  #closed = false;

  constructor(clock: Clock, onWarn: (m: string) => void, onClose: () => void) {
    this.#clock = clock;
    this.#onWarn = onWarn;
    this.#onClose = onClose;
  }

  get closed(): boolean {
    return this.#closed;
  }

  /** The latest material, expired or not (providers look at it to warn and renew). */
  latest(): TlsMaterial | undefined {
    return this.#material;
  }

  current(): TlsMaterial | undefined {
    const m = this.#material;
    return m !== undefined && this.#clock.wall() < m.notAfter ? m : undefined;
  }

  ready(): Promise<TlsMaterial> {
    const m = this.current();
    if (m !== undefined) return Promise.resolve(m);
    if (this.#closed) return Promise.reject(new NoIdentityError('the identity provider is closed'));
    if (this.#failure !== undefined) return Promise.reject(this.#failure);
    return new Promise((resolve, reject) => this.#waiters.push({ resolve, reject }));
  }

  /** Installs new material; emits 'rotated' when it replaces earlier material. */
  set(m: TlsMaterial): void {
    if (this.#closed) return;
    const previous = this.#material;
    this.#material = m;
    this.#failure = undefined;
    if (this.current() !== undefined) {
      const waiters = this.#waiters;
      this.#waiters = [];
      for (const w of waiters) w.resolve(m);
    }
    if (previous !== undefined) {
      try {
        this.#events.emit('rotated', m);
      } catch (err) {
        this.#onWarn(`a 'rotated' listener threw: ${(err as Error).message}`);
      }
    }
  }

  /** Records why there is no usable material; `ready()` rejects with it until material arrives. */
  fail(err: Error): void {
    this.#failure = err;
    const waiters = this.#waiters;
    this.#waiters = [];
    for (const w of waiters) w.reject(err);
  }

  on(event: 'rotated', listener: (m: TlsMaterial) => void): this {
    this.#events.on(event, listener);
    return this;
  }

  off(event: 'rotated', listener: (m: TlsMaterial) => void): this {
    this.#events.off(event, listener);
    return this;
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#onClose();
    const waiters = this.#waiters;
    this.#waiters = [];
    for (const w of waiters) w.reject(new NoIdentityError('the identity provider was closed before any certificate was available'));
    this.#events.removeAllListeners();
  }
}

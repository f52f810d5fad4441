/**
 * Test helper: records what an `EndpointSource` reports (updates, errors, warnings), with
 * arrival times, and waits for a condition without fixed sleeps.
 */
import { performance } from 'node:perf_hooks';
import type { Endpoint } from '../../src/discovery/endpoint.js';

export interface Stamped<T> {
  at: number;
  value: T;
}

export class Collector {
  readonly updates: Stamped<readonly Endpoint[]>[] = [];
  readonly errors: Stamped<Error>[] = [];
  readonly warnings: Stamped<string>[] = [];
  readonly onUpdate = (eps: readonly Endpoint[]): void => {
    this.updates.push({ at: performance.now(), value: eps });
  };
  readonly onError = (err: Error): void => {
    this.errors.push({ at: performance.now(), value: err });
  };
  readonly onWarn = (msg: string): void => {
    this.warnings.push({ at: performance.now(), value: msg });
  };

  /** Ids of the latest update, or undefined before the first. */
  latestIds(): string[] | undefined {
    return this.updates.at(-1)?.value.map((e) => e.id);
  }
}

/** Polls `cond` every 10 ms until it holds; fails after `timeoutMs`. */
export async function waitFor(cond: () => boolean, timeoutMs = 3000, what = 'condition'): Promise<void> {
  const deadline = performance.now() + timeoutMs;
  while (!cond()) {
    if (performance.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

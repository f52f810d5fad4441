/**
 * What a mesh remembers of its last accepted load, so the next load re-validates only the
 * documents that changed: each valid Service document by its canonical text (below), with its
 * checked raw spec and its normalized ServiceSpec. A reload of 1,000 Services where one changed
 * then runs the schema, the Service checks and normalization once, not 1,000 times, and hands
 * back the very ServiceSpec objects of the unchanged ones (so the destinations' input keys are
 * looked up, not serialized again: client/destination-key.ts).
 *
 * Sound because those steps judge one document alone: everything that looks across documents
 * (one Mesh, unique names, a Redis for global limits) runs on every load whatever the cache
 * holds. Only documents that passed are kept, and only those of the last load that passed as a
 * whole, so memory holds one configuration's worth.
 *
 * A document is named by its JSON text (JSON.stringify, native and several times faster than a
 * serializer of our own), used only when the generic limits' walk found nothing JSON would write
 * differently (undefined, NaN, ±Infinity, -0: limits.ts): then equal text is an equal document
 * (strings, finite numbers, booleans, null, lists, plain objects in key order). A document with
 * such a value is validated every time.
 */
import type { RawServiceSpec } from './schema-service.js';
import type { ServiceSpec } from './types.js';

export interface CachedService {
  readonly name: string;
  readonly raw: RawServiceSpec;
  readonly spec: ServiceSpec;
}

export class DocumentCache {
  #entries = new Map<string, CachedService>();
  #next: Map<string, CachedService> | undefined;

  get(key: string): CachedService | undefined {
    return this.#entries.get(key);
  }

  /** Starts collecting the entries of a load. */
  begin(): void {
    this.#next = new Map();
  }

  keep(key: string, entry: CachedService): void {
    this.#next?.set(key, entry);
  }

  /** The load passed: its documents are what the next load is compared with. */
  commit(): void {
    if (this.#next !== undefined) this.#entries = this.#next;
    this.#next = undefined;
  }

  /** The load failed: the last good load's entries stay. */
  abandon(): void {
    this.#next = undefined;
  }
}

/**
 * Opens the control plane's store: embedded in `dataDir`, or etcd when `etcd` lists members.
 *
 * PLACEHOLDER (cp-api branch): returns an in-memory store so the API can be built and tested
 * against the `Store` interface; replaced by the durable stores (embedded-store.ts,
 * etcd-store.ts) at merge.
 */
import { MemoryStore } from './memory-store.js';
import type { Store } from './store.js';

export async function openStore(opts: { dataDir: string; etcd?: string[] }): Promise<Store> {
  void opts;
  return new MemoryStore();
}

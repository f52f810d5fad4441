/**
 * The Store contract against MemoryStore (the reference semantics).
 */
import { MemoryStore } from '../../src/controlplane/store/memory-store.js';
import type { Store } from '../../src/controlplane/store/store.js';
import { storeConformance } from '../helpers/store-conformance.js';

const HISTORY = 5;

storeConformance({
  name: 'memory',
  open: async () => new MemoryStore({ historyLimit: HISTORY, sweepMs: 50 }),
  dispose: (s: Store) => s.close(),
  forget: async (s: Store) => {
    for (let i = 0; i <= HISTORY; i++) await s.commit([{ type: 'put', key: '/trellis/filler', value: i }]);
  },
  leases: { short: 2000, long: 5000, keepAliveEveryMs: 200 },
});

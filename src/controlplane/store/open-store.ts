/**
 * The control plane's store as its flags choose it: etcd when `--etcd` lists endpoints (several
 * replicas share it), otherwise the embedded store in `<dataDir>/store` (one replica; the data
 * directory also holds the CA files and the admin token).
 */
import { join } from 'node:path';
import { openEmbeddedStore } from './embedded-store.js';
import type { Store } from './store.js';

export async function openStore(opts: { dataDir: string; etcd?: string[] }): Promise<Store> {
  if (opts.etcd !== undefined && opts.etcd.length > 0) {
    // Loaded on demand: the etcd client parses its protobuf definitions when it loads.
    const { openEtcdStore } = await import('./etcd-store.js');
    return openEtcdStore(opts.etcd);
  }
  return openEmbeddedStore(join(opts.dataDir, 'store'));
}

/**
 * What an instance keeps on disk so it can start and serve while no control plane answers
 * (docs/reliability.md rows A3, A7): the trust bundle it pinned, its certificate and key, and
 * the last snapshot it applied. Default directory `${XDG_CACHE_HOME:-~/.cache}/trellis/<service>`
 * (mode 0700).
 *
 * Every file is written atomically (temporary file, fsync, rename) with mode 0600, and each
 * holds a SHA-256 of its content: a torn or flipped file is refused when read (with a warning)
 * and treated as absent, never half-used. The key lives with its certificate in one file, so
 * the two cannot come from different writes.
 */
import { createHash } from 'node:crypto';
import { mkdir, readFile } from 'node:fs/promises';
import { homedir } from 'node:os';
import path from 'node:path';
import { writeFileAtomic } from '../tls/atomic-write.js';
import type { SnapshotMessage } from '../controlplane/sync/protocol.js';

export interface CachedTrust {
  readonly bundlePem: string;
  readonly trustDomain: string;
  readonly pins: readonly string[];
}
export interface CachedIdentity {
  readonly ca: string;
  readonly cert: string;
  readonly key: string;
}
export interface CacheContents {
  trust: CachedTrust | undefined;
  identity: CachedIdentity | undefined;
  snapshot: SnapshotMessage | undefined;
}

const FILES = { trust: 'trust.json', identity: 'identity.json', snapshot: 'snapshot.json' } as const;

/** The default cache directory of `service`. */
export function defaultCacheDir(service: string, env: NodeJS.ProcessEnv = process.env): string {
  const base = env.XDG_CACHE_HOME !== undefined && env.XDG_CACHE_HOME !== '' ? env.XDG_CACHE_HOME : path.join(homedir(), '.cache');
  return path.join(base, 'trellis', service);
}

function digest(text: string): string {
  return createHash('sha256').update(text).digest('hex');
}

export class ClientCache {
  readonly dir: string;
  readonly #onWarn: (m: string) => void;

  constructor(dir: string, onWarn: (m: string) => void) {
    this.dir = dir;
    this.#onWarn = onWarn;
  }

  async #read(name: string): Promise<unknown> {
    const file = path.join(this.dir, name);
    let text: string;
    try {
      text = await readFile(file, 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') this.#onWarn(`cannot read ${file}, ignoring it: ${(err as Error).message}`);
      return undefined;
    }
    try {
      const wrapped = JSON.parse(text) as { sha256?: unknown; content?: unknown };
      if (typeof wrapped.content !== 'string' || wrapped.sha256 !== digest(wrapped.content)) throw new Error('checksum mismatch');
      return JSON.parse(wrapped.content);
    } catch (err) {
      this.#onWarn(`${file} is damaged (${(err as Error).message}), ignoring it`);
      return undefined;
    }
  }

  /** Writes under way (the client saves snapshots and certificates without waiting for them). */
  readonly #pending = new Set<Promise<void>>();

  #write(name: string, value: unknown): Promise<void> {
    const w = this.#writeNow(name, value);
    this.#pending.add(w);
    const done = (): void => {
      this.#pending.delete(w);
    };
    w.then(done, done);
    return w;
  }

  async #writeNow(name: string, value: unknown): Promise<void> {
    await mkdir(this.dir, { recursive: true, mode: 0o700 });
    const content = JSON.stringify(value);
    await writeFileAtomic(path.join(this.dir, name), JSON.stringify({ sha256: digest(content), content }), 0o600);
  }

  /** Resolves when every write started so far has ended (written or failed): nothing of the cache is left half-done. */
  async settled(): Promise<void> {
    while (this.#pending.size > 0) await Promise.allSettled([...this.#pending]);
  }

  async load(): Promise<CacheContents> {
    const [trust, identity, snapshot] = await Promise.all([this.#read(FILES.trust), this.#read(FILES.identity), this.#read(FILES.snapshot)]);
    const t = trust as Partial<CachedTrust> | undefined;
    const i = identity as Partial<CachedIdentity> | undefined;
    const s = snapshot as Partial<SnapshotMessage> | undefined;
    return {
      trust: typeof t?.bundlePem === 'string' && typeof t.trustDomain === 'string' && Array.isArray(t.pins) ? (t as CachedTrust) : undefined,
      identity: typeof i?.ca === 'string' && typeof i.cert === 'string' && typeof i.key === 'string' ? (i as CachedIdentity) : undefined,
      snapshot: s?.type === 'snapshot' && typeof s.version === 'string' ? (s as SnapshotMessage) : undefined,
    };
  }

  saveTrust(trust: CachedTrust): Promise<void> {
    return this.#write(FILES.trust, trust);
  }

  saveIdentity(identity: CachedIdentity): Promise<void> {
    return this.#write(FILES.identity, { ca: identity.ca, cert: identity.cert, key: identity.key });
  }

  saveSnapshot(snapshot: SnapshotMessage): Promise<void> {
    return this.#write(FILES.snapshot, snapshot);
  }
}

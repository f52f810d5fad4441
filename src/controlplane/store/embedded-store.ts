/**
 * The embedded store: the control plane's state in a directory on disk, for one replica.
 *
 * Files (all 0600, the directory 0700; the state holds CA material):
 *   lock                   the single-writer lock (dir-lock.ts)
 *   snapshot               the whole state at some point, one framed record, replaced atomically
 *                          (temporary file, fsync, rename, fsync of the directory)
 *   wal-<seq>.log          the write-ahead log after that snapshot (wal.ts): one framed JSON
 *                          record per transaction or lease grant
 *
 * A commit is applied in memory (so the next commit's conditions see it), appended to the log,
 * and acknowledged only after fdatasync, so every acknowledged commit survives kill -9 and power
 * loss. A transaction is one record: after a crash it is there whole or not at all, and a torn
 * last record (never acknowledged) is detected by its length and CRC and cut off. Watchers and
 * readers only ever see durable changes (MemoryStore's barrier).
 *
 * When the log passes `compactBytes`, a snapshot is taken: the log is rotated to wal-<seq+1> at a
 * point between records, the state at that point is written as the snapshot naming seq+1, then
 * older logs are removed. Recovery loads the snapshot and replays every log from its seq on; a
 * crash anywhere in that sequence leaves either the old snapshot and both logs, or the new one.
 *
 * Leases survive a restart with their expiry reset to now + ttl (their instances get a chance to
 * reconnect); watches from before the restart get onReset. After a failed write (disk full, I/O
 * error) the store refuses everything: memory may be ahead of the disk, so it must be reopened.
 */
import { mkdir, open, readdir, readFile, rm, rename, unlink } from 'node:fs/promises';
import type { FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { acquireDirLock, type DirLock } from './dir-lock.js';
import { MemoryStore, type MemoryStoreOptions } from './memory-store.js';
import { StoreCorruptError, StoreUnavailableError } from './store.js';
import { StoreState, type StateImage, type StoreRecord } from './store-state.js';
import { LogWriter, encodeFrame, readFrames } from './wal.js';

export interface EmbeddedStoreOptions extends MemoryStoreOptions {
  /** Log size that triggers a snapshot and a fresh log (default 8 MiB). */
  compactBytes?: number;
  /** Told about recoveries worth knowing (a torn log tail cut off). Default: process.emitWarning. */
  onWarning?: (message: string) => void;
  /** Awaited before a snapshot is renamed into place (tests hold a snapshot there to order races). */
  beforeSnapshotRename?: (walSeq: number) => Promise<void>;
}

const SNAPSHOT = 'snapshot';
const walName = (seq: number): string => `wal-${String(seq).padStart(12, '0')}.log`;
const WAL_RE = /^wal-(\d{12})\.log$/;

interface SnapshotFile extends StateImage {
  readonly format: 1;
  /** The first log that follows this snapshot. */
  readonly walSeq: number;
}

async function fsyncDir(dir: string): Promise<void> {
  const fh = await open(dir, 'r');
  try {
    await fh.sync();
  } finally {
    await fh.close();
  }
}

async function createLog(dir: string, seq: number): Promise<FileHandle> {
  const fh = await open(join(dir, walName(seq)), 'a', 0o600);
  await fsyncDir(dir);
  return fh;
}

/** Reads the snapshot and logs, cuts a torn tail off the last log, and returns the state and where to append. */
async function recover(dir: string, warn: (m: string) => void): Promise<{ state: StoreState; seq: number; bytes: number; oldLogs: number[] }> {
  const state = new StoreState();
  let walSeq = 0;
  const snapPath = join(dir, SNAPSHOT);
  const snapBuf = await readFile(snapPath).catch((err: NodeJS.ErrnoException) => {
    if (err.code === 'ENOENT') return undefined;
    throw err;
  });
  if (snapBuf !== undefined) {
    const { payloads, tornReason } = readFrames(snapBuf);
    // The snapshot is renamed into place whole: any damage is the disk's, not a crash's.
    if (tornReason !== undefined || payloads.length !== 1) throw new StoreCorruptError(snapPath, tornReason ?? `${payloads.length} records where one was expected`);
    let snap: SnapshotFile;
    try {
      snap = JSON.parse(payloads[0] as string) as SnapshotFile;
    } catch (err) {
      throw new StoreCorruptError(snapPath, `not JSON: ${(err as Error).message}`);
    }
    if (snap.format !== 1) throw new StoreCorruptError(snapPath, `unknown snapshot format ${String(snap.format)}`);
    state.load(snap, 0);
    walSeq = snap.walSeq;
  }
  const logs = (await readdir(dir))
    .map((n) => WAL_RE.exec(n))
    .filter((m): m is RegExpExecArray => m !== null)
    .map((m) => Number(m[1]))
    .sort((a, b) => a - b);
  const oldLogs = logs.filter((s) => s < walSeq);
  const replay = logs.filter((s) => s >= walSeq);
  if (walSeq === 0) walSeq = replay[0] ?? 1;
  if (replay.length > 0 && replay[0] !== walSeq) throw new StoreCorruptError(join(dir, walName(walSeq)), 'this log, which follows the snapshot, is missing');
  let bytes = 0;
  for (let i = 0; i < replay.length; i++) {
    const seq = replay[i] as number;
    if (i > 0 && seq !== (replay[i - 1] as number) + 1) throw new StoreCorruptError(join(dir, walName(seq - 1)), 'a log in the sequence is missing');
    const file = join(dir, walName(seq));
    const buf = await readFile(file);
    const { payloads, validLength, tornReason } = readFrames(buf);
    const last = i === replay.length - 1;
    if (tornReason !== undefined && !last) throw new StoreCorruptError(file, `${tornReason}, and later logs exist (acknowledged writes would be lost)`);
    for (const [n, p] of payloads.entries()) {
      try {
        state.replay(JSON.parse(p) as StoreRecord);
      } catch (err) {
        throw new StoreCorruptError(file, `record ${n + 1} cannot be replayed: ${(err as Error).message}`);
      }
    }
    if (tornReason !== undefined) {
      warn(`embedded store ${dir}: cut ${buf.length - validLength} bytes off ${walName(seq)} after ${tornReason} (an unacknowledged write torn by a crash)`);
      const fh = await open(file, 'r+');
      try {
        await fh.truncate(validLength);
        await fh.sync();
      } finally {
        await fh.close();
      }
    }
    if (last) bytes = validLength;
  }
  return { state, seq: replay.length > 0 ? (replay[replay.length - 1] as number) : walSeq, bytes, oldLogs };
}

export class EmbeddedStore extends MemoryStore {
  override readonly kind = 'embedded' as const;
  readonly dir: string;
  private readonly log: LogWriter;
  private readonly lock: DirLock;
  private seq: number;
  private readonly compactBytes: number;
  private compacting: Promise<void> | undefined;
  private readonly beforeSnapshotRename: ((walSeq: number) => Promise<void>) | undefined;
  /** The snapshot in progress, explicit or automatic (see compact()). */
  private snapshotting: Promise<void> | undefined;
  private failure: Error | undefined;
  private readonly warn: (message: string) => void;

  /** Use openEmbeddedStore. */
  constructor(dir: string, parts: { state: StoreState; log: LogWriter; lock: DirLock; seq: number; warn: (message: string) => void }, options: EmbeddedStoreOptions) {
    const opened = parts.state.revision;
    super(options, { state: parts.state, compactedReason: `the embedded store restarted at revision ${opened} and keeps no events from before` });
    this.dir = dir;
    this.log = parts.log;
    this.lock = parts.lock;
    this.seq = parts.seq;
    this.warn = parts.warn;
    this.compactBytes = options.compactBytes ?? 8 * 1024 * 1024;
    this.beforeSnapshotRename = options.beforeSnapshotRename;
    const now = this.now();
    for (const l of this.state.leases.values()) l.expiresAt = now + l.ttlMs;
  }

  protected override async persist(record: StoreRecord): Promise<void> {
    try {
      await this.log.append(JSON.stringify(record));
    } catch (err) {
      throw this.fail(err);
    }
    if (this.log.bytes >= this.compactBytes && this.compacting === undefined) {
      this.compacting = this.compact()
        // The logs still hold everything: a failed snapshot costs disk, not data. The next commit retries.
        .catch((err: unknown) => this.warn(`embedded store ${this.dir}: snapshot failed: ${(err as Error).message}`))
        .finally(() => (this.compacting = undefined));
    }
  }

  protected override async barrier(): Promise<void> {
    try {
      await this.log.flushed();
    } catch (err) {
      throw this.fail(err);
    }
  }

  /**
   * Snapshot of the state as of now, then a fresh log; older logs go. Snapshots run one at a
   * time: two at once could finish out of order, the older snapshot renamed over the newer one
   * after the newer one had removed the log the older one needs.
   */
  async compact(): Promise<void> {
    this.checkOpen();
    const run = (this.snapshotting ?? Promise.resolve()).catch(() => {}).then(() => this.snapshotNow());
    this.snapshotting = run;
    try {
      await run;
    } finally {
      if (this.snapshotting === run) this.snapshotting = undefined;
    }
  }

  private async snapshotNow(): Promise<void> {
    this.checkOpen();
    const seq = this.seq + 1;
    // Synchronously: the image and the rotation mark the same point between two records.
    const image: SnapshotFile = { format: 1, walSeq: seq, ...this.state.image() };
    const payload = JSON.stringify(image);
    const rotated = this.log.rotate(() => createLog(this.dir, seq));
    this.seq = seq;
    await rotated;
    const tmp = join(this.dir, `.${SNAPSHOT}.${randomBytes(6).toString('hex')}.tmp`);
    const fh = await open(tmp, 'wx', 0o600);
    try {
      await fh.writeFile(encodeFrame(payload));
      await fh.sync();
    } finally {
      await fh.close();
    }
    await this.beforeSnapshotRename?.(seq);
    await rename(tmp, join(this.dir, SNAPSHOT));
    await fsyncDir(this.dir);
    for (const name of await readdir(this.dir)) {
      const m = WAL_RE.exec(name);
      if (m !== null && Number(m[1]) < seq) await unlink(join(this.dir, name)).catch(() => {});
    }
  }

  override async health(): Promise<{ ok: boolean; detail: string }> {
    if (this.failure !== undefined) return { ok: false, detail: `embedded store ${this.dir} failed: ${this.failure.message}` };
    const h = await super.health();
    return { ok: h.ok, detail: `${h.detail}, in ${this.dir}` };
  }

  override async close(): Promise<void> {
    if (this.closed) return;
    await super.close();
    await this.compacting?.catch(() => {});
    await this.snapshotting?.catch(() => {});
    await this.log.close().catch(() => {});
    await this.lock.release();
  }

  protected override checkOpen(): void {
    super.checkOpen();
    if (this.failure !== undefined) throw new StoreUnavailableError(`the embedded store ${this.dir} failed and must be reopened: ${this.failure.message}`, { cause: this.failure });
  }

  private fail(err: unknown): StoreUnavailableError {
    const cause = err instanceof Error ? err : new Error(String(err));
    if (this.failure === undefined) {
      this.failure = cause;
      this.hub.resetAll(`the embedded store ${this.dir} failed: ${cause.message}`);
    }
    return new StoreUnavailableError(`the embedded store ${this.dir} could not write: ${cause.message}; nothing was acknowledged, reopen the store`, { cause });
  }
}

/**
 * Opens (creating if needed) the embedded store in `dir`. Rejects with StoreLockedError when
 * another live process holds it, StoreCorruptError when its files cannot be recovered safely.
 */
export async function openEmbeddedStore(dir: string, options: EmbeddedStoreOptions = {}): Promise<EmbeddedStore> {
  await mkdir(dir, { recursive: true, mode: 0o700 });
  const lock = await acquireDirLock(dir);
  try {
    const warn = options.onWarning ?? ((m: string) => process.emitWarning(m, 'TrellisStoreWarning'));
    const { state, seq, bytes, oldLogs } = await recover(dir, warn);
    // Leftovers of an interrupted snapshot: logs the snapshot covers, temporary files.
    for (const s of oldLogs) await unlink(join(dir, walName(s))).catch(() => {});
    for (const name of await readdir(dir)) if (name.startsWith(`.${SNAPSHOT}.`) && name.endsWith('.tmp')) await rm(join(dir, name), { force: true });
    const fh = await createLog(dir, seq);
    const log = new LogWriter(fh, bytes);
    return new EmbeddedStore(dir, { state, log, lock, seq, warn }, options);
  } catch (err) {
    await lock.release();
    throw err;
  }
}

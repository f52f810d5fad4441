/**
 * The embedded store's write-ahead log: framed records appended to a file and made durable
 * (fdatasync) before the writes they carry are acknowledged.
 *
 * Frame: [u32 LE payload length][u32 LE CRC-32 of the payload][payload: UTF-8 JSON]. A crash can
 * leave the last frames torn (short, zero-filled, or with a wrong checksum); they were never
 * acknowledged, because acknowledgement waits for fdatasync, so `readFrames` stops at the first
 * bad frame and reports where the good ones end, and the owner cuts the file there.
 *
 * `LogWriter` is a group commit: appends that arrive while a write+sync is under way go out
 * together in the next one, so concurrent commits share one fdatasync. Writes happen strictly in
 * order; a later batch is never durable before an earlier one. After a write or sync error the
 * writer is failed for good: what is in memory may be ahead of the disk, so the owner must stop.
 */
import type { FileHandle } from 'node:fs/promises';
import { crc32 } from 'node:zlib';

const HEADER = 8;
/** Far above any sane record; a larger length is a torn or damaged header, not a record. */
export const MAX_FRAME = 256 * 1024 * 1024;

export function encodeFrame(payload: string): Buffer {
  const body = Buffer.from(payload, 'utf8');
  const frame = Buffer.allocUnsafe(HEADER + body.length);
  frame.writeUInt32LE(body.length, 0);
  frame.writeUInt32LE(crc32(body), 4);
  body.copy(frame, HEADER);
  return frame;
}

export interface ReadFrames {
  readonly payloads: string[];
  /** Bytes of whole, valid frames from the start; everything after is torn. */
  readonly validLength: number;
  /** Why reading stopped before the end, if it did. */
  readonly tornReason?: string | undefined;
}

export function readFrames(buf: Buffer): ReadFrames {
  const payloads: string[] = [];
  let off = 0;
  while (off < buf.length) {
    if (buf.length - off < HEADER) return { payloads, validLength: off, tornReason: `a ${buf.length - off}-byte partial header at offset ${off}` };
    const len = buf.readUInt32LE(off);
    if (len === 0 || len > MAX_FRAME) return { payloads, validLength: off, tornReason: `an impossible record length ${len} at offset ${off}` };
    if (off + HEADER + len > buf.length) return { payloads, validLength: off, tornReason: `a record at offset ${off} cut short (${buf.length - off - HEADER} of ${len} bytes)` };
    const body = buf.subarray(off + HEADER, off + HEADER + len);
    if (crc32(body) !== buf.readUInt32LE(off + 4)) return { payloads, validLength: off, tornReason: `a checksum mismatch in the record at offset ${off}` };
    payloads.push(body.toString('utf8'));
    off += HEADER + len;
  }
  return { payloads, validLength: off };
}

type Item =
  | { readonly kind: 'frame'; readonly frame: Buffer; readonly resolve: () => void; readonly reject: (err: Error) => void }
  | { readonly kind: 'rotate'; readonly open: () => Promise<FileHandle>; readonly resolve: () => void; readonly reject: (err: Error) => void };

export class LogWriter {
  private fh: FileHandle;
  private readonly queue: Item[] = [];
  private running = false;
  private failure: Error | undefined;
  /** Bytes in the current file (written, or queued to be). */
  bytes: number;

  constructor(fh: FileHandle, bytes: number) {
    this.fh = fh;
    this.bytes = bytes;
  }

  get failed(): Error | undefined {
    return this.failure;
  }

  /** Queues one record; resolves once it is on disk. */
  append(payload: string): Promise<void> {
    const frame = encodeFrame(payload);
    this.bytes += frame.length;
    return this.enqueue((resolve, reject) => ({ kind: 'frame', frame, resolve, reject }));
  }

  /** Resolves once everything queued so far is on disk. */
  flushed(): Promise<void> {
    if (this.failure !== undefined) return Promise.reject(this.failure);
    if (this.queue.length === 0 && !this.running) return Promise.resolve();
    return this.enqueue((resolve, reject) => ({ kind: 'frame', frame: Buffer.alloc(0), resolve, reject }));
  }

  /** Records queued after this call go to the file `open` returns, once everything before is on disk. */
  rotate(open: () => Promise<FileHandle>): Promise<void> {
    this.bytes = 0;
    return this.enqueue((resolve, reject) => ({ kind: 'rotate', open, resolve, reject }));
  }

  /** Waits for the queue, then closes the file. */
  async close(): Promise<void> {
    try {
      await this.flushed();
    } finally {
      await this.fh.close().catch(() => {});
    }
  }

  private enqueue(make: (resolve: () => void, reject: (err: Error) => void) => Item): Promise<void> {
    if (this.failure !== undefined) return Promise.reject(this.failure);
    return new Promise<void>((resolve, reject) => {
      this.queue.push(make(resolve, reject));
      if (!this.running) void this.run();
    });
  }

  private async run(): Promise<void> {
    this.running = true;
    let inFlight: Item[] = [];
    try {
      while (this.queue.length > 0) {
        const head = this.queue[0] as Item;
        if (head.kind === 'rotate') {
          inFlight = [this.queue.shift() as Item];
          const next = await head.open();
          await this.fh.close();
          this.fh = next;
          head.resolve();
          continue;
        }
        inFlight = [];
        while (this.queue.length > 0 && (this.queue[0] as Item).kind === 'frame') inFlight.push(this.queue.shift() as Item);
        const bufs = inFlight.flatMap((i) => (i.kind === 'frame' && i.frame.length > 0 ? [i.frame] : []));
        if (bufs.length > 0) {
          await writeAll(this.fh, bufs.length === 1 ? (bufs[0] as Buffer) : Buffer.concat(bufs));
          await this.fh.datasync();
        }
        for (const i of inFlight) i.resolve();
      }
    } catch (err) {
      this.failure = err instanceof Error ? err : new Error(String(err));
      // The batch that failed and everything queued behind it are refused.
      for (const i of [...inFlight, ...this.queue.splice(0)]) i.reject(this.failure);
    } finally {
      this.running = false;
    }
  }
}

async function writeAll(fh: FileHandle, buf: Buffer): Promise<void> {
  let off = 0;
  while (off < buf.length) {
    const { bytesWritten } = await fh.write(buf, off, buf.length - off);
    off += bytesWritten;
  }
}

/**
 * A response body held whole in memory, standing in for undici's BodyReadable once the transport
 * has read a small body to its end (see response-body.ts): the same Readable events and the same
 * consume methods (`text`, `json`, `arrayBuffer`, `bytes`, `blob`, `dump`, `body`, `bodyUsed`), so
 * callers and the layers that watch for the body's end cannot tell it
 * from the original. It is destroyed with the call's signal reason if that aborts while unread,
 * as undici's body would be, so the overall timeout keeps bounding the body.
 */
import { Readable } from 'node:stream';
import type { CallSignal } from '../core/call-signal.js';

export class BufferedBody extends Readable {
  readonly #contentType: string;
  readonly #signal: CallSignal | undefined;
  readonly #onAbort = (): void => {
    // As undici does when it destroys a body: nobody may be listening, and that must not crash.
    this.on('error', () => undefined);
    this.destroy(this.#signal?.reason instanceof Error ? this.#signal.reason : new Error('aborted'));
  };

  constructor(chunks: readonly Buffer[], contentType: string, signal: CallSignal | undefined) {
    super({ read() {} });
    for (const c of chunks) this.push(c);
    this.push(null);
    this.#contentType = contentType;
    this.#signal = signal;
    if (signal !== undefined) {
      signal.addEventListener('abort', this.#onAbort);
      this.once('close', () => signal.removeEventListener('abort', this.#onAbort));
    }
  }

  get bodyUsed(): boolean {
    return Readable.isDisturbed(this);
  }

  /** A web ReadableStream over the body (undici's `body.body`). */
  get body(): ReadableStream {
    return Readable.toWeb(this) as ReadableStream;
  }

  async #consume(): Promise<Buffer> {
    if (this.errored !== null) throw this.errored;
    if (this.bodyUsed) throw new TypeError('unusable: the body has already been read');
    const parts: Buffer[] = [];
    for await (const chunk of this) parts.push(chunk as Buffer);
    return Buffer.concat(parts);
  }

  async text(): Promise<string> {
    return (await this.#consume()).toString('utf8');
  }

  async json(): Promise<unknown> {
    return JSON.parse(await this.text()) as unknown;
  }

  async arrayBuffer(): Promise<ArrayBuffer> {
    const b = await this.#consume();
    return b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength) as ArrayBuffer;
  }

  async bytes(): Promise<Uint8Array> {
    return new Uint8Array(await this.#consume());
  }

  async blob(): Promise<Blob> {
    return new Blob([await this.#consume()], { type: this.#contentType });
  }

  async formData(): Promise<never> {
    throw new TypeError('formData() is not supported (as in undici)');
  }

  /** Drops the body; it is already in memory, so this only ends the stream. */
  async dump(_opts?: { signal?: AbortSignal; limit?: number }): Promise<null> {
    if (this.destroyed) return null;
    this.on('error', () => undefined);
    this.resume();
    await new Promise<void>((resolve) => this.once('close', resolve));
    return null;
  }
}

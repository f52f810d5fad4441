/**
 * A response made by the mesh itself (an injected fault abort), shaped like undici's
 * `Dispatcher.ResponseData` so callers and the layers above cannot tell it from a real one: the
 * body is a Readable that also has undici BodyReadable's mixin (`text`, `json`, `bytes`,
 * `arrayBuffer`, `blob`, `bodyUsed`, `dump`), and emits `close` once consumed or dumped, which
 * is what `whenBodyDone` waits for.
 *
 * Invariants: the body can be read once, through the stream or one mixin method, as with undici
 * (a second read rejects with a TypeError); headers carry `x-trellis-fault: abort` unless the
 * caller overrides it, plus a correct `content-length`.
 */
import { Blob } from 'node:buffer';
import { STATUS_CODES } from 'node:http';
import { Readable } from 'node:stream';
import type { Dispatcher } from 'undici';

/** The body of a synthetic response: an in-memory Readable with undici's body mixin. */
export class SyntheticBody extends Readable {
  readonly #data: Buffer;
  readonly #contentType: string;
  #pushed = false;
  #used = false;

  constructor(data: Buffer, contentType: string) {
    super();
    this.#data = data;
    this.#contentType = contentType;
  }

  override _read(): void {
    if (!this.#pushed) {
      this.#pushed = true;
      if (this.#data.length > 0) this.push(this.#data);
    }
    this.push(null);
  }

  /** Whether the body was read (by a mixin method, the stream, or a dump). */
  get bodyUsed(): boolean {
    return this.#used || this.readableDidRead || this.destroyed;
  }

  /** undici's mixin exposes no web stream here either. */
  get body(): undefined {
    return undefined;
  }

  async #consume(): Promise<Buffer> {
    if (this.bodyUsed) throw new TypeError('Body is unusable: Body has already been read');
    this.#used = true;
    const chunks: Buffer[] = [];
    for await (const chunk of this) chunks.push(chunk as Buffer);
    return Buffer.concat(chunks);
  }

  async text(): Promise<string> {
    return (await this.#consume()).toString('utf8');
  }

  async json(): Promise<unknown> {
    return JSON.parse(await this.text()) as unknown;
  }

  async bytes(): Promise<Uint8Array> {
    return new Uint8Array(await this.#consume());
  }

  async arrayBuffer(): Promise<ArrayBuffer> {
    const bytes = await this.bytes();
    return bytes.buffer as ArrayBuffer;
  }

  async blob(): Promise<Blob> {
    return new Blob([await this.bytes()], { type: this.#contentType });
  }

  formData(): Promise<never> {
    return Promise.reject(new TypeError('formData is not supported (as in undici)'));
  }

  /** Drops the body; resolves once the stream has closed. */
  dump(_opts?: { limit: number; signal?: AbortSignal }): Promise<void> {
    this.#used = true;
    if (this.closed) return Promise.resolve();
    return new Promise<void>((resolve) => {
      this.once('close', () => resolve());
      this.destroy();
    });
  }
}

/**
 * A ResponseData for `status`, with a short text body (default `fault filter abort`, as Envoy
 * answers) and `x-trellis-fault: abort`. `headers` (lower-cased names) override the defaults.
 */
export function syntheticHttpResponse(status: number, body = 'fault filter abort', headers: Record<string, string> = {}): Dispatcher.ResponseData {
  const data = Buffer.from(body, 'utf8');
  const all: Record<string, string> = {
    'content-type': 'text/plain; charset=utf-8',
    'content-length': String(data.length),
    'x-trellis-fault': 'abort',
  };
  for (const [k, v] of Object.entries(headers)) all[k.toLowerCase()] = v;
  return {
    statusCode: status,
    statusText: STATUS_CODES[status] ?? '',
    headers: all,
    body: new SyntheticBody(data, all['content-type'] ?? ''),
    trailers: {},
    opaque: null,
    context: {},
  };
}

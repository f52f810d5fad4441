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
import { STATUS_CODES } from 'node:http';
import type { Dispatcher } from 'undici';
import { BufferedBody } from '../client/buffered-body.js';

/**
 * The body of a synthetic response: the in-memory body with undici's mixin that the transport
 * also uses for bodies it read whole (client/buffered-body.ts); its own class so the metrics
 * layer can tell an injected answer from a real one.
 */
export class SyntheticBody extends BufferedBody {
  constructor(data: Buffer, contentType: string) {
    super(data.length > 0 ? [data] : [], contentType, undefined);
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
    // undici's type says `body` is undefined on its BodyReadable; ours offers the web stream too.
    body: new SyntheticBody(data, all['content-type'] ?? '') as unknown as Dispatcher.ResponseData['body'],
    trailers: {},
    opaque: null,
    context: {},
  };
}

/**
 * A raw instance-stream client for tests (docs/control-plane.md, "The instance stream"): an
 * HTTP/2 + mTLS POST /v1/stream with a certificate for `service`, NDJSON both ways, every
 * message the control plane sent kept in order. `headers` adds request headers (the stream
 * features an instance asks for).
 */
import http2 from 'node:http2';
import { systemClock } from '../../src/core/clock.js';
import { issueLeaf } from '../../src/tls/authority.js';
import { generateP256KeyPair, privateKeyPem } from '../../src/tls/keys.js';
import { controlPlaneServerIdentity } from '../../src/controlplane-client/server-identity.js';
import { LineSplitter } from '../../src/controlplane/sync/ndjson.js';
import { TRUST_DOMAIN } from './control-plane-fixture.js';
import type { CaMaterial, CpFixture } from './control-plane-fixture.js';

/** A `hello` for a raw stream: no version held (`have: null`); labels `{ zone: 'a' }` unless given. */
export function hello(service: string, instance: string, labels: Record<string, string> = { zone: 'a' }): Record<string, unknown> {
  return { type: 'hello', instance, service, labels, agent: 'test', have: null, now: Date.now() };
}

export interface RawClient {
  messages: Record<string, unknown>[];
  send(msg: unknown): void;
  sendRaw(text: string): void;
  next(pred: (m: Record<string, unknown>) => boolean): Promise<Record<string, unknown>>;
  ended: Promise<void>;
  /** Everything received, as text (a refusal's JSON body is one line without a newline). */
  raw(): string;
  /** The response headers (status and, on a refusal, Retry-After). */
  response: Promise<http2.IncomingHttpHeaders>;
  close(): void;
}

export async function rawClient(cp: CpFixture, m: CaMaterial, service: string, headers: http2.OutgoingHttpHeaders = {}): Promise<RawClient> {
  const keys = await generateP256KeyPair();
  const leaf = issueLeaf(m.ca, { service, publicKey: keys.publicKey, ttlMs: 3_600_000 }, systemClock);
  const session = http2.connect(cp.url, { ca: m.ca.bundlePem, cert: leaf.certificateChainPem, key: privateKeyPem(keys.privateKey), checkServerIdentity: controlPlaneServerIdentity(TRUST_DOMAIN) });
  session.on('error', () => {});
  const stream = session.request({ ':method': 'POST', ':path': '/v1/stream', ...headers }, { endStream: false });
  stream.on('error', () => {});
  const messages: Record<string, unknown>[] = [];
  const waiters: { pred: (m: Record<string, unknown>) => boolean; resolve: (m: Record<string, unknown>) => void }[] = [];
  const splitter = new LineSplitter(8 * 1024 * 1024);
  let raw = '';
  stream.on('data', (c: Buffer) => {
    raw += c.toString('utf8');
    for (const line of splitter.push(c)) {
      const msg = JSON.parse(line) as Record<string, unknown>;
      messages.push(msg);
      for (const w of [...waiters]) {
        if (w.pred(msg)) {
          waiters.splice(waiters.indexOf(w), 1);
          w.resolve(msg);
        }
      }
    }
  });
  const response = new Promise<http2.IncomingHttpHeaders>((resolve) => stream.once('response', (h) => resolve(h)));
  const ended = new Promise<void>((resolve) => {
    stream.on('end', () => resolve());
    stream.on('close', () => resolve());
  });
  return {
    messages,
    send: (msg) => stream.write(`${JSON.stringify(msg)}\n`),
    sendRaw: (text) => stream.write(text),
    next: (pred) => {
      const seen = messages.find(pred);
      if (seen !== undefined) return Promise.resolve(seen);
      return new Promise((resolve) => waiters.push({ pred, resolve }));
    },
    ended,
    raw: () => raw,
    response,
    close: () => session.destroy(),
  };
}


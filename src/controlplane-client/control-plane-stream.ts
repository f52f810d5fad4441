/**
 * The instance's end of the stream (docs/control-plane.md, "The instance stream"): an HTTP/2
 * POST /v1/stream over mTLS to one replica at a time. It says `hello`, re-sends what it serves
 * (`register`) on every connection, hands each snapshot to `onSnapshot` and ACKs or NACKs with
 * its verdict (a `delta` is first applied to the ACKed snapshot it names, and handed on whole), pings every 5 s, and sends a `report` every 5 s when the reporter has one.
 *
 * Failure handling: a replica that refuses, drops the stream, or stays silent for 3 pings is
 * left for the next URL in the list, after a delay from `reconnectDelayMs` (1 s ×1.6, capped at
 * 120 s, ±20 %); the attempt counter resets once a replica answered. Nothing here touches the
 * configuration in force: while no replica answers the instance keeps routing and serving on
 * what it has.
 */
import http2 from 'node:http2';
import { createSecureContext, type SecureContext } from 'node:tls';
import type { ClientHttp2Session, ClientHttp2Stream } from 'node:http2';
import type { Random } from '../core/clock.js';
import { LineSplitter, LineTooLongError } from '../controlplane/sync/ndjson.js';
import { DELTA_FEATURE, encodeMessage, MAX_MESSAGE_BYTES, PING_INTERVAL_MS, STREAM_FEATURES_HEADER } from '../controlplane/sync/protocol.js';
import { applyDelta } from '../controlplane/sync/snapshot-delta.js';
import type { ControlPlaneMessage, EndpointProtocol, InstanceMessage, SnapshotMessage } from '../controlplane/sync/protocol.js';
import type { TlsMaterial } from '../tls/material.js';
import { reconnectDelayMs } from './backoff.js';
import { controlPlaneServerIdentity } from './server-identity.js';

export type ControlPlaneState = 'connecting' | 'connected' | 'disconnected';

/** The `control-plane` event: the stream's state, the replica, and why it changed. */
export interface ControlPlaneStateEvent {
  readonly state: ControlPlaneState;
  readonly url: string;
  readonly reason?: string | undefined;
}

export interface RegisteredAddress {
  readonly address: string;
  readonly protocol: EndpointProtocol;
}

export interface ControlPlaneStreamParams {
  readonly urls: readonly string[];
  readonly service: string;
  readonly instance: string;
  readonly labels: Readonly<Record<string, string>>;
  readonly agent: string;
  readonly trust: () => { bundlePem: string; trustDomain: string };
  readonly material: () => TlsMaterial | undefined;
  /** Validates and applies a snapshot: resolves with undefined (ACK) or the reason (NACK). */
  readonly onSnapshot: (snapshot: SnapshotMessage) => Promise<string | undefined>;
  /** The version in force, sent as `have` on each hello. */
  readonly have: () => string | null;
  readonly onState: (event: ControlPlaneStateEvent) => void;
  readonly onWarn: (message: string) => void;
  readonly reportSource?: (() => unknown) | undefined;
  readonly random: Random;
}

const SILENCE_MS = 3 * PING_INTERVAL_MS;
/**
 * A replica that has not answered the stream's request by then is left for the next: gRPC's
 * minimum connect timeout, long enough for a replica busy with a reconnect storm to get through
 * its handshakes (a shorter one would make the storm feed itself).
 */
const CONNECT_TIMEOUT_MS = 20_000;
const BARRIER_MS = 2000;
/** The longest Retry-After honoured (a larger one is taken as this). */
const MAX_RETRY_AFTER_MS = 120_000;

/** A Retry-After header's delay in ms (seconds form only), undefined when absent or not a number of seconds. */
function retryAfterOf(v: string | string[] | undefined): number | undefined {
  const text = Array.isArray(v) ? v[0] : v;
  if (text === undefined || !/^\d{1,6}$/.test(text.trim())) return undefined;
  const seconds = Number(text.trim());
  // "0" would make a refused instance come straight back: the backoff decides instead.
  return seconds >= 1 ? Math.min(MAX_RETRY_AFTER_MS, seconds * 1000) : undefined;
}
/** ACKed snapshots kept as delta bases (the control plane bases a delta on the last one ACKed). */
const ACKED_KEPT = 4;

export class ControlPlaneStream {
  readonly #p: ControlPlaneStreamParams;
  #urlIndex: number;
  #attempt = 0;
  #session: ClientHttp2Session | undefined;
  #stream: ClientHttp2Stream | undefined;
  #live = false;
  #closed = false;
  #timer: NodeJS.Timeout | undefined;
  #ping: NodeJS.Timeout | undefined;
  #silence: NodeJS.Timeout | undefined;
  #endpoints: RegisteredAddress[] = [];
  #pending: SnapshotMessage | undefined;
  /** The last snapshots this instance ACKed (or started from, `holding`), by version: what a delta is applied to. */
  readonly #acked = new Map<string, SnapshotMessage>();
  /** Set after a delta could not be applied: the next stream asks for whole snapshots only (once). */
  #wholeOnly = false;
  #applying = false;
  #pongWaiters: (() => void)[] = [];
  #state: ControlPlaneState = 'disconnected';
  /** The TLS context of the certificate in force (parsing PEM keys on every reconnect costs more than the handshake). */
  #context: { material: TlsMaterial; context: SecureContext } | undefined;

  constructor(params: ControlPlaneStreamParams) {
    this.#p = params;
    // Instances spread over the replicas from the start.
    this.#urlIndex = Math.floor(params.random() * params.urls.length) % params.urls.length;
  }

  get state(): ControlPlaneState {
    return this.#state;
  }

  /**
   * The instance runs `snap` without having ACKed it on a stream (it started from the cached
   * snapshot): its version goes out as `have`, so a replica may send a delta against it.
   */
  holding(snap: SnapshotMessage): void {
    this.#acked.set(snap.version, snap);
    if (this.#acked.size > ACKED_KEPT) this.#acked.delete(this.#acked.keys().next().value as string);
  }

  start(): void {
    this.#connect();
  }

  /** What this instance serves now (re-sent on every connection). */
  register(endpoints: readonly RegisteredAddress[]): void {
    this.#endpoints = [...endpoints];
    this.#send({ type: 'register', endpoints: this.#endpoints });
  }

  /**
   * Sends `register []` and waits (at most 2 s) for the replica to have written it: the pong to
   * the ping that follows comes after every earlier register is in the store.
   */
  async deregister(): Promise<void> {
    this.#endpoints = [];
    if (!this.#live) return;
    this.#send({ type: 'register', endpoints: [] });
    await new Promise<void>((resolve) => {
      const t = setTimeout(resolve, BARRIER_MS);
      t.unref();
      this.#pongWaiters.push(() => {
        clearTimeout(t);
        resolve();
      });
      this.#send({ type: 'ping', now: Date.now() });
    });
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#teardown();
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    for (const w of this.#pongWaiters.splice(0)) w();
  }

  #setState(state: ControlPlaneState, url: string, reason?: string): void {
    if (state === this.#state && state !== 'connecting') return;
    this.#state = state;
    this.#p.onState({ state, url, ...(reason !== undefined ? { reason } : {}) });
  }

  #send(msg: InstanceMessage): void {
    const s = this.#stream;
    if (s === undefined || !this.#live || s.destroyed || !s.writable) return;
    s.write(encodeMessage(msg));
  }

  #connect(): void {
    if (this.#closed) return;
    const url = this.#p.urls[this.#urlIndex] as string;
    const material = this.#p.material();
    this.#setState('connecting', url);
    if (material === undefined) return this.#retry(url, 'no valid workload certificate yet');
    const { bundlePem, trustDomain } = this.#p.trust();
    let session: ClientHttp2Session;
    try {
      if (this.#context?.material !== material) this.#context = { material, context: createSecureContext({ ca: bundlePem, cert: material.cert, key: material.key }) };
      session = http2.connect(url, { secureContext: this.#context.context, checkServerIdentity: controlPlaneServerIdentity(trustDomain) });
    } catch (err) {
      return this.#retry(url, (err as Error).message);
    }
    this.#session = session;
    let failed = false;
    /** A replica that refused with Retry-After (admission during a reconnect storm) is waited for that long. */
    let retryAfterMs: number | undefined;
    const fail = (reason: string): void => {
      if (failed || this.#session !== session) return;
      failed = true;
      this.#teardown();
      this.#retry(url, reason, retryAfterMs);
    };
    session.on('error', (err) => fail(err.message));
    session.on('goaway', () => fail('the replica is going away'));
    session.on('close', () => fail('connection closed'));
    // After an unusable delta, this one stream asks for whole snapshots; the next asks for deltas again.
    const wholeOnly = this.#wholeOnly;
    this.#wholeOnly = false;
    const stream = session.request(
      { ':method': 'POST', ':path': '/v1/stream', 'content-type': 'application/x-ndjson', ...(wholeOnly ? {} : { [STREAM_FEATURES_HEADER]: DELTA_FEATURE }) },
      { endStream: false },
    );
    this.#stream = stream;
    const splitter = new LineSplitter(MAX_MESSAGE_BYTES);
    const errorBody: Buffer[] = [];
    let status = 0;
    // A blackholed address gives no error for minutes: bound the wait for the answer.
    const connectTimer = setTimeout(() => fail(`no answer within ${CONNECT_TIMEOUT_MS} ms`), CONNECT_TIMEOUT_MS);
    connectTimer.unref();
    session.once('close', () => clearTimeout(connectTimer));
    stream.on('response', (headers) => {
      clearTimeout(connectTimer);
      status = Number(headers[':status']);
      if (status !== 200) {
        retryAfterMs = retryAfterOf(headers['retry-after']);
        return;
      }
      this.#live = true;
      this.#send({ type: 'hello', instance: this.#p.instance, service: this.#p.service, labels: this.#p.labels, agent: this.#p.agent, have: this.#p.have(), now: Date.now() });
      if (this.#endpoints.length > 0) this.#send({ type: 'register', endpoints: this.#endpoints });
      this.#ping = setInterval(() => {
        this.#send({ type: 'ping', now: Date.now() });
        const report = this.#p.reportSource?.();
        if (report !== undefined && report !== null && typeof report === 'object') this.#send({ ...(report as Record<string, unknown>), type: 'report' });
      }, PING_INTERVAL_MS);
      this.#ping.unref();
      this.#silence = setTimeout(() => fail(`no message from the replica for ${SILENCE_MS} ms`), SILENCE_MS);
      this.#silence.unref();
    });
    stream.on('data', (chunk: Buffer) => {
      if (status !== 200) {
        if (errorBody.length < 16) errorBody.push(chunk);
        return;
      }
      this.#silence?.refresh();
      let lines: string[];
      try {
        lines = splitter.push(chunk);
      } catch (err) {
        return fail(err instanceof LineTooLongError ? err.message : String(err));
      }
      for (const line of lines) {
        let msg: ControlPlaneMessage;
        try {
          msg = JSON.parse(line) as ControlPlaneMessage;
        } catch {
          return fail('the replica sent a line that is not JSON');
        }
        this.#onMessage(msg, url, fail);
      }
    });
    stream.on('end', () => fail(status === 200 ? 'the replica ended the stream' : `the replica answered ${status}: ${Buffer.concat(errorBody).toString('utf8').slice(0, 300)}`));
    stream.on('error', (err) => fail(err.message));
  }

  #onMessage(msg: ControlPlaneMessage, url: string, fail: (reason: string) => void): void {
    switch (msg.type) {
      case 'snapshot':
        this.#markAnswered(url);
        this.#pending = msg;
        void this.#drain();
        return;
      case 'delta': {
        this.#markAnswered(url);
        const base = this.#acked.get(msg.base);
        let snap: SnapshotMessage | undefined;
        let why: string;
        if (base === undefined) why = `delta ${String(msg.version)} is against version ${String(msg.base)}, which this instance does not hold`;
        else {
          try {
            snap = applyDelta(base, msg);
          } catch (err) {
            why = (err as Error).message;
          }
        }
        if (snap === undefined) {
          // Never expected: the next stream asks for a whole snapshot rather than guess.
          this.#wholeOnly = true;
          this.#p.onWarn(`the control plane at ${url} sent a delta this instance cannot apply (${why!}); reconnecting for a whole snapshot`);
          return fail(`unusable delta: ${why!}`);
        }
        this.#pending = snap;
        void this.#drain();
        return;
      }
      case 'pong':
        this.#markAnswered(url);
        for (const w of this.#pongWaiters.splice(0)) w();
        return;
      case 'error':
        this.#p.onWarn(`the control plane at ${url} closed the stream: ${String(msg.code)}: ${String(msg.message)}`);
        return fail(`${String(msg.code)}: ${String(msg.message)}`);
      default:
        return;
    }
  }

  #markAnswered(url: string): void {
    this.#attempt = 0;
    this.#setState('connected', url);
  }

  /** Applies snapshots one at a time; a newer one that arrived meanwhile replaces any waiting. */
  async #drain(): Promise<void> {
    if (this.#applying) return;
    this.#applying = true;
    try {
      while (this.#pending !== undefined) {
        const snap = this.#pending;
        this.#pending = undefined;
        let reason: string | undefined;
        try {
          reason = await this.#p.onSnapshot(snap);
        } catch (err) {
          reason = (err as Error).message;
        }
        if (reason === undefined) {
          this.#acked.delete(snap.version);
          this.holding(snap);
        }
        this.#send(reason === undefined ? { type: 'ack', version: snap.version } : { type: 'nack', version: snap.version, reason: reason.slice(0, 64 * 1024) });
      }
    } finally {
      this.#applying = false;
    }
  }

  #teardown(): void {
    this.#live = false;
    if (this.#ping !== undefined) clearInterval(this.#ping);
    if (this.#silence !== undefined) clearTimeout(this.#silence);
    this.#ping = undefined;
    this.#silence = undefined;
    const session = this.#session;
    this.#session = undefined;
    this.#stream = undefined;
    if (session !== undefined && !session.destroyed) {
      // End our side so the replica sees a clean close, then drop the connection.
      session.destroy();
    }
  }

  #retry(url: string, reason: string, retryAfterMs?: number): void {
    if (this.#closed) return;
    this.#setState('disconnected', url, reason);
    // The replica's own Retry-After (±20 %, so the refused do not come back together) when it
    // gave one; the backoff's count is left as it was (the replica answered).
    const delay = retryAfterMs !== undefined ? retryAfterMs * (0.8 + 0.4 * this.#p.random()) : reconnectDelayMs(this.#attempt++, this.#p.random);
    this.#urlIndex = (this.#urlIndex + 1) % this.#p.urls.length;
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    this.#timer = setTimeout(() => {
      this.#timer = undefined;
      this.#connect();
    }, delay);
    this.#timer.unref();
  }
}

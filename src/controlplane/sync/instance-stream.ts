/**
 * One instance's stream on the control plane: the state machine of docs/control-plane.md
 * ("The instance stream"). `hello` first (as the certificate's service and no other), then any
 * of `register`, `ack`, `nack`, `ping`, `report`. The stream pushes snapshots of its service's
 * view, at most one unacknowledged at a time (another goes out after the ACK or NACK, or after
 * 10 s without one), never the same version twice, so a NACKed version is not re-pushed in a
 * loop (cilium/cilium#12016): the next push is the next change.
 *
 * Registry: `register` puts the instance's record under a store lease of `leaseTtlMs`, kept
 * alive by its pings; `register []` revokes the lease (the record goes at once). When the
 * stream just ends, the lease is left to expire: the instance may be failing over to another
 * replica, which re-registers it under a lease of its own. A keep-alive that finds the lease
 * gone (the store lost it, a partition outlived it) registers again (anti-entropy, A12).
 *
 * Limits: every message at most 4 MiB, at most RATE_PER_S messages per second (burst BURST),
 * a message at least every IDLE_MS; a violation closes the stream with an `error` line naming
 * the reason. Store writes of one stream are serialized, so a quick register/deregister pair
 * cannot land out of order.
 */
import type { ServerHttp2Stream } from 'node:http2';
import type { InstanceRecord, InstanceStatus, Store } from '../store/store.js';
import { KEYS } from '../store/store.js';
import { LineSplitter, LineTooLongError } from './ndjson.js';
import { encodeMessage, MAX_MESSAGE_BYTES, parseInstanceMessage, PING_INTERVAL_MS, ProtocolError } from './protocol.js';
import type { HelloMessage, InstanceMessage, RegisterMessage } from './protocol.js';
import type { StatusWriter } from './status-writer.js';
import type { SyncMetrics } from './sync-metrics.js';

/** A computed view: shared by every stream of the service. `changedAt` is when the change that made it reached this replica (monotonic ms), undefined for a first computation. */
export interface View {
  readonly version: string;
  readonly bytes: Buffer;
  readonly changedAt: number | undefined;
}

export interface StreamPeer {
  service: string;
  spiffeId: string;
  certificateNotAfter: number;
}

/** What a stream needs from the replica it runs on. */
export interface StreamHub {
  readonly store: Store;
  readonly replicaId: string;
  readonly leaseTtlMs: number;
  readonly metrics: SyncMetrics;
  readonly status: StatusWriter;
  readonly now: () => number;
  readonly wall: () => number;
  onWarn(message: string): void;
  onReport?(instance: { id: string; service: string }, report: unknown): void;
  /** Resolves once the replica holds a copy of the store. */
  ready(): Promise<void>;
  attach(stream: InstanceStream): void;
  detach(stream: InstanceStream): void;
  /** The latest view of `service` (computed if needed). */
  view(service: string): View;
  /** The delta line from version `base` to `view`, when `base` is still kept and the delta is smaller than `view`. */
  delta(service: string, view: View, base: string): Buffer | undefined;
  /** Whether version `version` of the service's view is kept (a base for deltas). */
  knows(service: string, version: string): boolean;
}

export interface StreamOptions {
  /** The instance asked for deltas (`trellis-stream-features: delta`). */
  readonly deltas: boolean;
}

const UNACKED_MS = 10_000;
/** After our side ended, how long the instance has to close its side before the stream is reset. */
const CLOSE_GRACE_MS = 5000;
const IDLE_MS = 3 * PING_INTERVAL_MS + 5000;
const RATE_PER_S = 20;
const BURST = 200;
/** A status line is rewritten on pings at most this often (skew, last seen). */
const STATUS_REFRESH_MS = 30_000;

export class InstanceStream {
  readonly #stream: ServerHttp2Stream;
  readonly #peer: StreamPeer;
  readonly #hub: StreamHub;
  readonly #splitter = new LineSplitter(MAX_MESSAGE_BYTES);
  #state: 'hello' | 'open' | 'closed' = 'hello';
  #hello: HelloMessage | undefined;
  #connectedAt = 0;
  #sent: string | undefined;
  /** The version the instance is known to hold (ACKed, or its `have`): the base of a delta. */
  #holds: string | undefined;
  readonly #deltas: boolean;
  #inflight: { version: string; changedAt: number | undefined } | undefined;
  #inflightTimer: NodeJS.Timeout | undefined;
  readonly #idle: NodeJS.Timeout;
  #tokens = BURST;
  #tokensAt: number;
  #lease: string | undefined;
  /** Whether the record for the current endpoints is in the store (under `#lease`). */
  #recorded = false;
  #endpoints: RegisterMessage['endpoints'] = [];
  #work: Promise<void> = Promise.resolve();
  #status: InstanceStatus | undefined;
  #statusAt = 0;

  constructor(stream: ServerHttp2Stream, peer: StreamPeer, hub: StreamHub, options: StreamOptions = { deltas: false }) {
    this.#stream = stream;
    this.#deltas = options.deltas;
    this.#peer = peer;
    this.#hub = hub;
    this.#tokensAt = hub.now();
    this.#idle = setTimeout(() => this.fail('TRELLIS_TIMEOUT', `no message for ${IDLE_MS} ms (an instance pings every ${PING_INTERVAL_MS} ms)`), IDLE_MS);
    this.#idle.unref();
    stream.on('data', (chunk: Buffer) => this.#onData(chunk));
    stream.on('close', () => this.#cleanup());
    stream.on('error', () => this.#cleanup());
    // The request body ended: the instance has nothing more to say; end ours too.
    stream.on('end', () => this.end());
  }

  get service(): string {
    return this.#peer.service;
  }

  /** The instance id (after hello). */
  get id(): string {
    return this.#hello?.instance ?? '';
  }

  /** Whether the instance has a registry record (its status then goes with the record). */
  get registered(): boolean {
    return this.#lease !== undefined || this.#endpoints.length > 0;
  }

  get open(): boolean {
    return this.#state === 'open';
  }

  /** Sends `view` now if it is new to this instance and nothing is waiting for an ACK (or it waited 10 s). */
  offer(view: View): void {
    if (this.#state !== 'open' || view.version === this.#sent) return;
    if (this.#inflight !== undefined) return;
    // A view grown past the message limit still reaches an instance that holds a base, as a delta.
    const delta = this.#deltas && this.#holds !== undefined ? this.#hub.delta(this.service, view, this.#holds) : undefined;
    const message = delta ?? view.bytes;
    if (message.length > MAX_MESSAGE_BYTES) {
      this.#hub.onWarn(`${delta === undefined ? 'snapshot' : 'delta to'} ${view.version} for ${this.service} is ${message.length} bytes, over the ${MAX_MESSAGE_BYTES}-byte message limit: not sent`);
      return;
    }
    this.#sent = view.version;
    this.#inflight = { version: view.version, changedAt: view.changedAt };
    this.#stream.write(message);
    this.#hub.metrics.pushes.inc();
    this.#hub.metrics.pushedBytes.inc({ kind: delta === undefined ? 'snapshot' : 'delta' }, message.length);
    if (this.#inflightTimer === undefined) {
      this.#inflightTimer = setTimeout(() => this.#unblock(), UNACKED_MS);
      this.#inflightTimer.unref();
    } else this.#inflightTimer.refresh();
    this.#setStatus({ sent: view.version });
  }

  #unblock(): void {
    this.#inflight = undefined;
    if (this.#state === 'open') this.offer(this.#hub.view(this.service));
  }

  /** Ends the stream with an `error` line giving the reason. */
  fail(code: string, message: string): void {
    if (this.#state === 'closed') return;
    this.#hub.metrics.refused.inc({ code });
    this.#finish(encodeMessage({ type: 'error', code, message }));
  }

  /** Ends the stream without an error (the instance ended its side). */
  end(): void {
    this.#finish(undefined);
  }

  /** Ends our side (after `last`, which must not be lost to a reset), then resets the stream if the instance keeps it open. */
  #finish(last: Buffer | undefined): void {
    const stream = this.#stream;
    if (!stream.destroyed && stream.writable) {
      if (last !== undefined) stream.end(last);
      else stream.end();
      const reset = setTimeout(() => !stream.destroyed && stream.close(), CLOSE_GRACE_MS);
      reset.unref();
      stream.once('close', () => clearTimeout(reset));
      this.#cleanup(false);
    } else this.#cleanup(true);
  }

  #cleanup(reset = true): void {
    if (this.#state === 'closed') return;
    const wasOpen = this.#state === 'open';
    this.#state = 'closed';
    clearTimeout(this.#idle);
    if (this.#inflightTimer !== undefined) clearTimeout(this.#inflightTimer);
    if (wasOpen) this.#hub.detach(this);
    if (reset && !this.#stream.destroyed) this.#stream.close();
  }

  #onData(chunk: Buffer): void {
    if (this.#state === 'closed') return;
    let lines: string[];
    try {
      lines = this.#splitter.push(chunk);
    } catch (err) {
      if (err instanceof LineTooLongError) this.fail('TRELLIS_INVALID_ARGUMENT', err.message);
      else throw err;
      return;
    }
    for (const line of lines) {
      if (!this.#live()) return;
      if (!this.#admit()) {
        this.fail('TRELLIS_RATE_LIMITED', `more than ${RATE_PER_S} messages per second (burst ${BURST})`);
        return;
      }
      let msg: InstanceMessage;
      try {
        msg = parseInstanceMessage(line);
      } catch (err) {
        if (err instanceof ProtocolError) this.fail(err.code, err.message);
        else throw err;
        return;
      }
      this.#idle.refresh();
      this.#handle(msg);
    }
  }

  #live(): boolean {
    return this.#state !== 'closed';
  }

  #admit(): boolean {
    const now = this.#hub.now();
    this.#tokens = Math.min(BURST, this.#tokens + ((now - this.#tokensAt) * RATE_PER_S) / 1000);
    this.#tokensAt = now;
    if (this.#tokens < 1) return false;
    this.#tokens -= 1;
    return true;
  }

  #handle(msg: InstanceMessage): void {
    if (this.#state === 'hello') {
      if (msg.type !== 'hello') return this.fail('TRELLIS_INVALID_ARGUMENT', `the first message must be hello, got ${msg.type}`);
      if (msg.service !== this.#peer.service) {
        return this.fail('TRELLIS_FORBIDDEN', `this certificate (${this.#peer.spiffeId}) is for service "${this.#peer.service}"; it cannot subscribe or register as "${msg.service}"`);
      }
      this.#hello = msg;
      this.#connectedAt = this.#hub.wall();
      this.#state = 'open';
      this.#setStatus({ clockSkewMs: msg.now - this.#hub.wall() });
      this.#hub.attach(this);
      // `have`: the instance already holds this version (a reconnect); nothing to send until it changes.
      const have = msg.have;
      void this.#hub.ready().then(() => {
        if (this.#state !== 'open') return;
        const view = this.#hub.view(this.service);
        if (have !== null && this.#hub.knows(this.service, have)) this.#holds = have;
        if (have !== null && have === view.version) this.#sent = have;
        else this.offer(view);
      });
      return;
    }
    switch (msg.type) {
      case 'hello':
        return this.fail('TRELLIS_INVALID_ARGUMENT', 'hello was already sent on this stream');
      case 'register':
        this.#serially(() => this.#register(msg.endpoints));
        return;
      case 'ack':
      case 'nack': {
        const inflight = this.#inflight;
        if (inflight !== undefined && inflight.version === msg.version) {
          this.#inflight = undefined;
          if (msg.type === 'ack' && inflight.changedAt !== undefined) this.#hub.metrics.pushLatency.observe((this.#hub.now() - inflight.changedAt) / 1000);
        }
        const at = this.#hub.wall();
        // Only a version this stream sent can be a delta's base (an ACK of anything else proves nothing).
        if (msg.type === 'ack' && msg.version === this.#sent) this.#holds = msg.version;
        if (msg.type === 'ack') this.#setStatus({ acked: msg.version, ackedAt: at });
        else {
          this.#hub.metrics.nacks.inc({ service: this.service });
          this.#setStatus({ nacked: { version: msg.version, reason: msg.reason, at } });
        }
        if (this.#inflight === undefined) this.offer(this.#hub.view(this.service));
        return;
      }
      case 'ping': {
        if (this.#hub.now() - this.#statusAt > STATUS_REFRESH_MS) this.#setStatus({ clockSkewMs: msg.now - this.#hub.wall() });
        // The pong follows every earlier registry write of this stream: an instance that sent
        // `register []` then a ping knows, at the pong, that it is out of the registry.
        this.#serially(async () => {
          try {
            if (this.#endpoints.length > 0) await this.#keepAlive();
          } finally {
            if (this.#state === 'open' && this.#stream.writable) this.#stream.write(encodeMessage({ type: 'pong', now: this.#hub.wall() }));
          }
        });
        return;
      }
      case 'report':
        try {
          this.#hub.onReport?.({ id: this.id, service: this.service }, msg);
        } catch (err) {
          this.#hub.onWarn(`the report handler failed for ${this.service}/${this.id}: ${(err as Error).message}`);
        }
        return;
    }
  }

  #serially(task: () => Promise<void>): void {
    this.#work = this.#work.then(task).catch((err: unknown) => {
      this.#hub.onWarn(`registry write for ${this.service}/${this.id} failed: ${(err as Error).message}`);
    });
  }

  async #register(endpoints: RegisterMessage['endpoints']): Promise<void> {
    this.#endpoints = endpoints;
    this.#recorded = false;
    if (endpoints.length === 0) {
      // Deregistration before a drain: the record goes now, not when the lease expires.
      const lease = this.#lease;
      this.#lease = undefined;
      if (lease !== undefined) await this.#hub.store.revokeLease(lease);
      return;
    }
    await this.#putRecord();
  }

  async #keepAlive(): Promise<void> {
    const lease = this.#lease;
    if (lease !== undefined) {
      try {
        await this.#hub.store.keepAlive(lease);
        if (this.#recorded) return;
      } catch {
        // The lease is gone (expired during a partition, lost by the store): register again.
        if (this.#lease === lease) this.#lease = undefined;
      }
    }
    // Also when an earlier write of the record failed: the ping retries it.
    if (this.#endpoints.length > 0) await this.#putRecord();
  }

  async #putRecord(): Promise<void> {
    const hello = this.#hello;
    if (hello === undefined) return;
    const store = this.#hub.store;
    this.#lease ??= await store.grantLease(this.#hub.leaseTtlMs);
    const record: InstanceRecord = {
      id: hello.instance,
      service: this.service,
      labels: hello.labels,
      endpoints: this.#endpoints,
      replica: this.#hub.replicaId,
      connectedAt: this.#connectedAt,
      certificateNotAfter: this.#peer.certificateNotAfter,
      agent: hello.agent,
    };
    try {
      await store.commit([{ type: 'put', key: KEYS.instance(this.service, hello.instance), value: record, lease: this.#lease }]);
    } catch (err) {
      // A lease that vanished between grant and write is granted again on the next ping.
      this.#lease = undefined;
      throw err;
    }
    this.#recorded = true;
  }

  #setStatus(change: Partial<InstanceStatus>): void {
    const hello = this.#hello;
    if (hello === undefined) return;
    this.#statusAt = this.#hub.now();
    this.#status = { ...(this.#status ?? { id: hello.instance, service: this.service }), ...change, lastSeen: this.#hub.wall() };
    this.#hub.status.put(this.#status);
  }
}

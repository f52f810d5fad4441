/**
 * The instance stream's messages (docs/control-plane.md, "The instance stream"): their types,
 * and the strict reader of what an instance sends. Both ends import this file, so the wire shape
 * is written once.
 *
 * Invariants: a message the control plane reads is a JSON object of a known `type` with only
 * that type's fields, each of the right type and within its bound; anything else is a
 * ProtocolError naming the field, and the stream is closed with that reason (an unknown field
 * is refused, never ignored: a client that thinks it asked for something must learn it did not).
 * `report` alone is open: its body belongs to the golden-metrics reporter (issue 10).
 */

import { isLabelKey, isLabelValue } from '../../config/schema-common.js';
import { refusedAddressReason } from '../../config/address.js';

/** Largest message (one line of NDJSON) either end accepts. */
export const MAX_MESSAGE_BYTES = 4 * 1024 * 1024;
/** How often an instance pings; the lease lives `3 ×` this. */
export const PING_INTERVAL_MS = 5000;
/** Default registry lease (kept alive by pings). */
export const DEFAULT_LEASE_TTL_MS = 15_000;
/** Most endpoints one instance may register. */
export const MAX_REGISTERED_ENDPOINTS = 64;
export const PROTOCOLS = ['http', 'http2', 'grpc', 'tcp'] as const;
export type EndpointProtocol = (typeof PROTOCOLS)[number];

export interface HelloMessage {
  readonly type: 'hello';
  readonly instance: string;
  readonly service: string;
  readonly labels: Readonly<Record<string, string>>;
  readonly agent: string;
  readonly have: string | null;
  readonly now: number;
}
export interface RegisterMessage {
  readonly type: 'register';
  readonly endpoints: readonly { readonly address: string; readonly protocol: EndpointProtocol }[];
}
export interface AckMessage {
  readonly type: 'ack';
  readonly version: string;
}
export interface NackMessage {
  readonly type: 'nack';
  readonly version: string;
  readonly reason: string;
}
export interface PingMessage {
  readonly type: 'ping';
  readonly now: number;
}
export interface ReportMessage {
  readonly type: 'report';
  readonly [field: string]: unknown;
}
export type InstanceMessage = HelloMessage | RegisterMessage | AckMessage | NackMessage | PingMessage | ReportMessage;

/** One registry endpoint as a snapshot lists it. */
export interface SnapshotEndpoint {
  readonly address: string;
  readonly labels: Readonly<Record<string, string>>;
  readonly instance: string;
}
/** A Mesh or Service document as a snapshot carries it. */
export interface SnapshotDocument {
  readonly apiVersion: 'trellis/v1';
  readonly kind: 'Mesh' | 'Service';
  readonly metadata: { readonly name: string };
  readonly spec: unknown;
}
export interface SnapshotMessage {
  readonly type: 'snapshot';
  readonly version: string;
  readonly mesh: SnapshotDocument | null;
  readonly services: readonly SnapshotDocument[];
  readonly endpoints: Readonly<Record<string, readonly SnapshotEndpoint[]>>;
}
export interface PongMessage {
  readonly type: 'pong';
  readonly now: number;
}
/** Sent once before the control plane ends a stream: why (a stable code and a message). */
export interface ErrorMessage {
  readonly type: 'error';
  readonly code: string;
  readonly message: string;
}
/**
 * What changed since a snapshot the instance ACKed (`base`), sent instead of the whole snapshot
 * to an instance that asked for deltas (request header `trellis-stream-features: delta`) when it
 * is smaller. Absent fields did not change. `services.set` adds or replaces documents by name;
 * `endpoints.set` replaces a service's whole list, `add`/`remove` change single endpoints (by
 * address and instance), `drop` removes a service's list.
 */
export interface DeltaMessage {
  readonly type: 'delta';
  readonly version: string;
  readonly base: string;
  readonly mesh?: SnapshotDocument | null;
  readonly services?: { readonly set?: readonly SnapshotDocument[]; readonly remove?: readonly string[] };
  readonly endpoints?: {
    readonly set?: Readonly<Record<string, readonly SnapshotEndpoint[]>>;
    readonly add?: Readonly<Record<string, readonly SnapshotEndpoint[]>>;
    readonly remove?: Readonly<Record<string, readonly { readonly address: string; readonly instance: string }[]>>;
    readonly drop?: readonly string[];
  };
}
export type ControlPlaneMessage = SnapshotMessage | DeltaMessage | PongMessage | ErrorMessage;

/** The request header an instance sets on POST /v1/stream to receive `delta` messages. */
export const STREAM_FEATURES_HEADER = 'trellis-stream-features';
export const DELTA_FEATURE = 'delta';

/** Why a stream is refused; `code` goes on the wire in the `error` message. */
export class ProtocolError extends Error {
  readonly code: string;
  constructor(code: string, message: string) {
    super(message);
    this.name = 'ProtocolError';
    this.code = code;
  }
}

const INSTANCE_ID = /^[A-Za-z0-9._:-]{1,128}$/;
const SERVICE = /^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/;
const ADDRESS = /^(\[[0-9A-Fa-f:.]{2,45}\]|[A-Za-z0-9.-]{1,253}):([0-9]{1,5})$/;
const MAX_LABELS = 64;
const MAX_STRING = 1024;

const FIELDS: Readonly<Record<string, readonly string[]>> = {
  hello: ['type', 'instance', 'service', 'labels', 'agent', 'have', 'now'],
  register: ['type', 'endpoints'],
  ack: ['type', 'version'],
  nack: ['type', 'version', 'reason'],
  ping: ['type', 'now'],
};

function bad(message: string): ProtocolError {
  return new ProtocolError('TRELLIS_INVALID_ARGUMENT', message);
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function str(msg: Record<string, unknown>, field: string, max = MAX_STRING): string {
  const v = msg[field];
  if (typeof v !== 'string' || v.length > max) throw bad(`${String(msg.type)}.${field}: expected a string of at most ${max} characters`);
  return v;
}

function epochMs(msg: Record<string, unknown>, field: string): number {
  const v = msg[field];
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 0) throw bad(`${String(msg.type)}.${field}: expected epoch milliseconds`);
  return v;
}

function labels(v: unknown): Record<string, string> {
  if (v === undefined) return {};
  if (!isObject(v)) throw bad('hello.labels: expected an object of strings');
  const keys = Object.keys(v);
  if (keys.length > MAX_LABELS) throw bad(`hello.labels: at most ${MAX_LABELS} labels`);
  const out: Record<string, string> = {};
  for (const k of keys) {
    const val = v[k];
    if (k.length > 63 || typeof val !== 'string' || val.length > 253) throw bad(`hello.labels.${k.slice(0, 63)}: expected a label name (≤ 63) with a string value (≤ 253)`);
    // The labels a Service document accepts, or every caller's snapshot listing this instance
    // would fail validation: one instance must not freeze the configuration of its callers.
    if (!isLabelKey(k) || !isLabelValue(val)) throw bad(`hello.labels.${k.slice(0, 63)}: ${JSON.stringify(val.slice(0, 64))} is not a label Service documents accept (keys and values: letters, digits, "-", "_", ".", at most 63)`);
    out[k] = val;
  }
  return out;
}

function endpoints(v: unknown): RegisterMessage['endpoints'] {
  if (!Array.isArray(v) || v.length > MAX_REGISTERED_ENDPOINTS) throw bad(`register.endpoints: expected a list of at most ${MAX_REGISTERED_ENDPOINTS} endpoints`);
  return v.map((e: unknown, i) => {
    if (!isObject(e)) throw bad(`register.endpoints[${i}]: expected { address, protocol }`);
    for (const k of Object.keys(e)) if (k !== 'address' && k !== 'protocol') throw bad(`register.endpoints[${i}].${k.slice(0, 64)}: unknown field`);
    const m = typeof e.address === 'string' ? ADDRESS.exec(e.address) : null;
    if (m === null || Number(m[2]) < 1 || Number(m[2]) > 65535) throw bad(`register.endpoints[${i}].address: expected host:port`);
    // The address policy static endpoints obey (docs/security.md, SSRF through routing data):
    // no instance may point callers at the metadata service or an address that names no host.
    const host = (m[1] as string).replace(/^\[|\]$/g, '');
    const refused = refusedAddressReason(host);
    if (refused !== undefined) throw bad(`register.endpoints[${i}].address: ${e.address as string} ${refused}`);
    if (!(PROTOCOLS as readonly unknown[]).includes(e.protocol)) throw bad(`register.endpoints[${i}].protocol: expected ${PROTOCOLS.join(' | ')}`);
    return { address: e.address as string, protocol: e.protocol as EndpointProtocol };
  });
}

/**
 * Reads one line an instance sent.
 *
 * @example
 * const msg = parseInstanceMessage('{"type":"ping","now":1700000000000}');
 * @throws ProtocolError (`TRELLIS_INVALID_ARGUMENT`) naming the type and field at fault.
 */
export function parseInstanceMessage(line: string): InstanceMessage {
  let msg: unknown;
  try {
    msg = JSON.parse(line);
  } catch {
    throw bad('a message is one JSON object per line; this line is not JSON');
  }
  if (!isObject(msg)) throw bad('a message is a JSON object');
  const type = msg.type;
  if (type === 'report') return msg as ReportMessage;
  const fields = typeof type === 'string' ? FIELDS[type] : undefined;
  if (fields === undefined) throw bad(`unknown message type ${JSON.stringify(type)?.slice(0, 64)} (expected hello, register, ack, nack, ping or report)`);
  for (const k of Object.keys(msg)) if (!fields.includes(k)) throw bad(`${type}.${k.slice(0, 64)}: unknown field`);
  switch (type) {
    case 'hello': {
      const instance = str(msg, 'instance', 128);
      if (!INSTANCE_ID.test(instance)) throw bad('hello.instance: expected 1-128 characters of [A-Za-z0-9._:-]');
      const service = str(msg, 'service', 63);
      if (!SERVICE.test(service)) throw bad('hello.service: expected a service name');
      const have = msg.have === null || msg.have === undefined ? null : str(msg, 'have', 64);
      return { type, instance, service, labels: labels(msg.labels), agent: msg.agent === undefined ? '' : str(msg, 'agent', 128), have, now: epochMs(msg, 'now') };
    }
    case 'register':
      return { type, endpoints: endpoints(msg.endpoints) };
    case 'ack':
      return { type, version: str(msg, 'version', 64) };
    case 'nack':
      return { type, version: str(msg, 'version', 64), reason: str(msg, 'reason', 64 * 1024) };
    default:
      return { type: 'ping', now: epochMs(msg, 'now') };
  }
}

/** One message as a line of NDJSON. */
export function encodeMessage(msg: InstanceMessage | ControlPlaneMessage): Buffer {
  return Buffer.from(`${JSON.stringify(msg)}\n`);
}

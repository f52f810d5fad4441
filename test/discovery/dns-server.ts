/**
 * A small, real authoritative DNS server for tests: UDP (node:dgram) on 127.0.0.1, port 0,
 * answering A, AAAA and SRV questions from a mutable in-memory zone. Wire format (RFC 1035
 * §4, SRV from RFC 2782) is encoded and decoded by hand: questions may use name compression,
 * answers are written with uncompressed names.
 *
 * Behaviour: a name absent from the zone is NXDOMAIN; a name present without records of the
 * asked type is NOERROR with no answers (NODATA). `mode` switches the whole server to
 * NXDOMAIN, SERVFAIL or silence (`drop`) to simulate failures. Every question is logged in
 * `queries`. Invariant: one server per test, closed in `after()`/`finally`.
 */
import dgram from 'node:dgram';
import { once } from 'node:events';
import { isIPv4, isIPv6 } from 'node:net';

export interface TestSrvRecord {
  priority: number;
  weight: number;
  port: number;
  /** Target host name (or, as some registries write them, a literal IPv4 address). */
  target: string;
}

export interface ZoneEntry {
  a?: string[];
  aaaa?: string[];
  srv?: TestSrvRecord[];
  /** TTL in seconds of every record of this name; default 0 (no caching anywhere). */
  ttl?: number;
}

export type ServerMode = 'answer' | 'nxdomain' | 'servfail' | 'drop';

const TYPE_A = 1;
const TYPE_AAAA = 28;
const TYPE_SRV = 33;
const CLASS_IN = 1;
const RCODE_OK = 0;
const RCODE_FORMERR = 1;
const RCODE_SERVFAIL = 2;
const RCODE_NXDOMAIN = 3;

const TYPE_NAMES: Record<number, string> = { [TYPE_A]: 'A', [TYPE_AAAA]: 'AAAA', [TYPE_SRV]: 'SRV' };

interface Question {
  /** Raw bytes of the question section, echoed back verbatim (keeps any case randomization). */
  raw: Buffer;
  name: string;
  type: number;
}

/** Reads a possibly compressed name; returns it (lower case, no trailing dot) and the offset after it. */
function readName(msg: Buffer, start: number): { name: string; next: number } {
  const labels: string[] = [];
  let offset = start;
  let next = -1;
  for (let jumps = 0; jumps < 64; jumps++) {
    const len = msg.readUInt8(offset);
    if (len === 0) {
      if (next < 0) next = offset + 1;
      return { name: labels.join('.').toLowerCase(), next };
    }
    if ((len & 0xc0) === 0xc0) {
      if (next < 0) next = offset + 2;
      offset = msg.readUInt16BE(offset) & 0x3fff;
      continue;
    }
    labels.push(msg.toString('latin1', offset + 1, offset + 1 + len));
    offset += 1 + len;
  }
  throw new Error('name compression loop');
}

function parseQuestion(msg: Buffer): Question {
  const { name, next } = readName(msg, 12);
  const type = msg.readUInt16BE(next);
  return { raw: msg.subarray(12, next + 4), name, type };
}

function encodeName(name: string): Buffer {
  const parts = name.replace(/\.$/, '').split('.').filter((l) => l.length > 0);
  const bufs = parts.map((label) => Buffer.concat([Buffer.from([label.length]), Buffer.from(label, 'latin1')]));
  return Buffer.concat([...bufs, Buffer.from([0])]);
}

function ipv4Bytes(address: string): Buffer {
  return Buffer.from(address.split('.').map((x) => Number(x)));
}

function ipv6Bytes(address: string): Buffer {
  const [head = '', tail] = address.split('::');
  const h = head === '' ? [] : head.split(':');
  const t = tail === undefined || tail === '' ? [] : tail.split(':');
  const groups = tail === undefined ? h : [...h, ...new Array<string>(8 - h.length - t.length).fill('0'), ...t];
  const out = Buffer.alloc(16);
  groups.forEach((g, i) => out.writeUInt16BE(parseInt(g, 16), i * 2));
  return out;
}

function rr(owner: string, type: number, ttl: number, rdata: Buffer): Buffer {
  const fixed = Buffer.alloc(10);
  fixed.writeUInt16BE(type, 0);
  fixed.writeUInt16BE(CLASS_IN, 2);
  fixed.writeUInt32BE(ttl, 4);
  fixed.writeUInt16BE(rdata.length, 8);
  return Buffer.concat([encodeName(owner), fixed, rdata]);
}

function srvRdata(r: TestSrvRecord): Buffer {
  const fixed = Buffer.alloc(6);
  fixed.writeUInt16BE(r.priority, 0);
  fixed.writeUInt16BE(r.weight, 2);
  fixed.writeUInt16BE(r.port, 4);
  return Buffer.concat([fixed, encodeName(r.target)]);
}

function header(id: number, requestFlags: number, rcode: number, qd: number, an: number): Buffer {
  const h = Buffer.alloc(12);
  const opcode = (requestFlags >> 11) & 0xf;
  const rd = (requestFlags >> 8) & 1;
  h.writeUInt16BE(id, 0);
  // QR=1, same opcode, AA=1, RD echoed, RA=0.
  h.writeUInt16BE(0x8000 | (opcode << 11) | 0x0400 | (rd << 8) | rcode, 2);
  h.writeUInt16BE(qd, 4);
  h.writeUInt16BE(an, 6);
  return h;
}

export class TestDnsServer {
  /** What the server does with every question (default: answer from the zone). */
  mode: ServerMode = 'answer';
  /** Every question received, in order: `A products.test`. */
  readonly queries: string[] = [];
  readonly #zone = new Map<string, ZoneEntry>();
  readonly #socket: dgram.Socket;

  private constructor(socket: dgram.Socket) {
    this.#socket = socket;
    socket.on('message', (msg, rinfo) => {
      const reply = this.#answer(msg);
      if (reply !== undefined) socket.send(reply, rinfo.port, rinfo.address);
    });
  }

  /** Starts a server on 127.0.0.1, port 0, with an optional initial zone. */
  static async start(zone: Record<string, ZoneEntry> = {}): Promise<TestDnsServer> {
    const socket = dgram.createSocket('udp4');
    socket.bind(0, '127.0.0.1');
    await once(socket, 'listening');
    const server = new TestDnsServer(socket);
    for (const [name, entry] of Object.entries(zone)) server.set(name, entry);
    return server;
  }

  get port(): number {
    return this.#socket.address().port;
  }

  /** `127.0.0.1:port`, as `Resolver.setServers` takes it. */
  get address(): string {
    return `127.0.0.1:${this.port}`;
  }

  /** Replaces every record of `name`. */
  set(name: string, entry: ZoneEntry): void {
    for (const a of entry.a ?? []) if (!isIPv4(a)) throw new Error(`not IPv4: ${a}`);
    for (const a of entry.aaaa ?? []) if (!isIPv6(a)) throw new Error(`not IPv6: ${a}`);
    this.#zone.set(name.toLowerCase().replace(/\.$/, ''), entry);
  }

  /** Removes `name` (later questions for it get NXDOMAIN). */
  remove(name: string): void {
    this.#zone.delete(name.toLowerCase().replace(/\.$/, ''));
  }

  async close(): Promise<void> {
    this.#socket.close();
    await once(this.#socket, 'close');
  }

  #answer(msg: Buffer): Buffer | undefined {
    if (msg.length < 12) return undefined;
    const id = msg.readUInt16BE(0);
    const flags = msg.readUInt16BE(2);
    if ((flags & 0x8000) !== 0 || msg.readUInt16BE(4) < 1) return undefined;
    let q: Question;
    try {
      q = parseQuestion(msg);
    } catch {
      return header(id, flags, RCODE_FORMERR, 0, 0);
    }
    this.queries.push(`${TYPE_NAMES[q.type] ?? String(q.type)} ${q.name}`);
    if (this.mode === 'drop') return undefined;
    if (this.mode === 'servfail') return Buffer.concat([header(id, flags, RCODE_SERVFAIL, 1, 0), q.raw]);
    const entry = this.mode === 'nxdomain' ? undefined : this.#zone.get(q.name);
    if (entry === undefined) return Buffer.concat([header(id, flags, RCODE_NXDOMAIN, 1, 0), q.raw]);
    const ttl = entry.ttl ?? 0;
    const answers: Buffer[] = [];
    if (q.type === TYPE_A) for (const a of entry.a ?? []) answers.push(rr(q.name, TYPE_A, ttl, ipv4Bytes(a)));
    if (q.type === TYPE_AAAA) for (const a of entry.aaaa ?? []) answers.push(rr(q.name, TYPE_AAAA, ttl, ipv6Bytes(a)));
    if (q.type === TYPE_SRV) for (const r of entry.srv ?? []) answers.push(rr(q.name, TYPE_SRV, ttl, srvRdata(r)));
    return Buffer.concat([header(id, flags, RCODE_OK, 1, answers.length), q.raw, ...answers]);
  }
}

/**
 * DnsResolution with a scripted querier: the partial-failure and SRV corner cases that are
 * awkward to stage on a real server (one family failing while the other answers, one SRV
 * target failing, duplicate targets).
 */
import assert from 'node:assert/strict';
import type { RecordWithTtl, SrvRecord } from 'node:dns';
import { describe, it } from 'node:test';
import { DnsQueryError, DnsResolution, type DnsQuerier } from '../../src/discovery/dns-resolve.js';
import type { DnsSpec } from '../../src/config/types.js';

type Answer<T> = T[] | string; // records, or an error code to reject with

function dnsError(code: string): Error {
  return Object.assign(new Error(`query ${code}`), { code });
}

class ScriptedQuerier implements DnsQuerier {
  a = new Map<string, Answer<RecordWithTtl>>();
  aaaa = new Map<string, Answer<RecordWithTtl>>();
  srv = new Map<string, Answer<SrvRecord>>();
  async resolve4(name: string): Promise<RecordWithTtl[]> {
    return this.#answer(this.a.get(name) ?? 'ENOTFOUND');
  }
  async resolve6(name: string): Promise<RecordWithTtl[]> {
    return this.#answer(this.aaaa.get(name) ?? 'ENOTFOUND');
  }
  async resolveSrv(name: string): Promise<SrvRecord[]> {
    return this.#answer(this.srv.get(name) ?? 'ENOTFOUND');
  }
  #answer<T>(a: Answer<T>): T[] {
    if (typeof a === 'string') throw dnsError(a);
    return a;
  }
}

const aSpec: DnsSpec = { name: 'svc.test', port: 80, type: 'a', labels: {} };
const srvSpec: DnsSpec = { name: '_h._tcp.svc.test', port: undefined, type: 'srv', labels: {} };

describe('DnsResolution', () => {
  it('A: TTL is the lowest record TTL of both families', async () => {
    const q = new ScriptedQuerier();
    q.a.set('svc.test', [{ address: '127.0.0.1', ttl: 30 }, { address: '127.0.0.2', ttl: 5 }]);
    q.aaaa.set('svc.test', [{ address: '::1', ttl: 10 }]);
    const out = await new DnsResolution(q, aSpec).resolve();
    assert.equal(out.kind, 'ok');
    assert.equal(out.kind === 'ok' && out.ttlMs, 5000);
  });

  it('A: one family failing keeps its last good addresses and marks the round partial', async () => {
    const q = new ScriptedQuerier();
    q.a.set('svc.test', [{ address: '127.0.0.1', ttl: 1 }]);
    q.aaaa.set('svc.test', [{ address: '::1', ttl: 1 }]);
    const r = new DnsResolution(q, aSpec);
    await r.resolve();
    q.a.set('svc.test', [{ address: '127.0.0.9', ttl: 1 }]);
    q.aaaa.set('svc.test', 'ETIMEOUT');
    const out = await r.resolve();
    assert.equal(out.kind, 'ok');
    if (out.kind !== 'ok') return;
    assert.deepEqual(out.endpoints.map((e) => e.id).sort(), ['127.0.0.9:80', '[::1]:80']);
    assert.ok(out.partial instanceof DnsQueryError && out.partial.code === 'ETIMEOUT' && out.partial.rrtype === 'AAAA');
  });

  it('A: both families failing, or one failing and the other empty, is an error (never "gone")', async () => {
    const q = new ScriptedQuerier();
    q.a.set('svc.test', 'ESERVFAIL');
    q.aaaa.set('svc.test', 'ETIMEOUT');
    assert.equal((await new DnsResolution(q, aSpec).resolve()).kind, 'error');
    q.aaaa.set('svc.test', 'ENODATA');
    assert.equal((await new DnsResolution(q, aSpec).resolve()).kind, 'error');
  });

  it('A: NXDOMAIN on both is gone/NXDOMAIN; NODATA is gone/NODATA', async () => {
    const q = new ScriptedQuerier();
    const nx = await new DnsResolution(q, aSpec).resolve();
    assert.deepEqual(nx.kind === 'gone' && nx.reason, 'NXDOMAIN');
    q.a.set('svc.test', 'ENODATA');
    q.aaaa.set('svc.test', 'ENODATA');
    const nodata = await new DnsResolution(q, aSpec).resolve();
    assert.deepEqual(nodata.kind === 'gone' && nodata.reason, 'NODATA');
  });

  it('SRV: a failing target keeps its last good addresses; others refresh', async () => {
    const q = new ScriptedQuerier();
    q.srv.set('_h._tcp.svc.test', [
      { name: 'a.test', port: 1, priority: 0, weight: 1 },
      { name: 'b.test', port: 2, priority: 0, weight: 1 },
    ]);
    q.a.set('a.test', [{ address: '127.0.0.1', ttl: 1 }]);
    q.a.set('b.test', [{ address: '127.0.0.2', ttl: 1 }]);
    q.aaaa.set('a.test', 'ENODATA');
    q.aaaa.set('b.test', 'ENODATA');
    const r = new DnsResolution(q, srvSpec);
    await r.resolve();
    q.a.set('a.test', 'ETIMEOUT');
    q.aaaa.set('a.test', 'ETIMEOUT');
    q.a.set('b.test', [{ address: '127.0.0.3', ttl: 1 }]);
    const out = await r.resolve();
    assert.equal(out.kind, 'ok');
    if (out.kind !== 'ok') return;
    assert.deepEqual(out.endpoints.map((e) => e.id).sort(), ['127.0.0.1:1', '127.0.0.3:2']);
    assert.ok(out.partial instanceof AggregateError || out.partial instanceof DnsQueryError);
  });

  it('SRV: every target failing is an error, not a fall-through to the next priority', async () => {
    const q = new ScriptedQuerier();
    q.srv.set('_h._tcp.svc.test', [
      { name: 'a.test', port: 1, priority: 0, weight: 1 },
      { name: 'backup.test', port: 2, priority: 1, weight: 1 },
    ]);
    q.a.set('a.test', 'ESERVFAIL');
    q.aaaa.set('a.test', 'ESERVFAIL');
    q.a.set('backup.test', [{ address: '127.0.0.2', ttl: 1 }]);
    assert.equal((await new DnsResolution(q, srvSpec).resolve()).kind, 'error');
  });

  it('SRV: two records to one address and port sum their weights; "." targets are ignored', async () => {
    const q = new ScriptedQuerier();
    q.srv.set('_h._tcp.svc.test', [
      { name: 'a.test', port: 1, priority: 0, weight: 3 },
      { name: 'alias.test', port: 1, priority: 0, weight: 4 },
      { name: '', port: 9, priority: 0, weight: 9 },
    ]);
    q.a.set('a.test', [{ address: '127.0.0.1', ttl: 1 }]);
    q.a.set('alias.test', [{ address: '127.0.0.1', ttl: 1 }]);
    q.aaaa.set('a.test', 'ENODATA');
    q.aaaa.set('alias.test', 'ENODATA');
    const out = await new DnsResolution(q, srvSpec).resolve();
    assert.equal(out.kind, 'ok');
    assert.deepEqual(out.kind === 'ok' && out.endpoints.map((e) => [e.id, e.weight]), [['127.0.0.1:1', 7]]);
  });

  it('SRV: no records is gone; only "." targets is gone; resolver failure is an error', async () => {
    const q = new ScriptedQuerier();
    assert.equal((await new DnsResolution(q, srvSpec).resolve()).kind, 'gone');
    q.srv.set('_h._tcp.svc.test', [{ name: '.', port: 0, priority: 0, weight: 0 }]);
    assert.equal((await new DnsResolution(q, srvSpec).resolve()).kind, 'gone');
    q.srv.set('_h._tcp.svc.test', 'ECONNREFUSED');
    const out = await new DnsResolution(q, srvSpec).resolve();
    assert.ok(out.kind === 'error' && out.error instanceof DnsQueryError && out.error.code === 'ECONNREFUSED');
  });
});

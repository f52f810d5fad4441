import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  extract,
  formatB3Single,
  formatTraceparent,
  inject,
  isTraceHeader,
  parseB3Multi,
  parseB3Single,
  parseTraceparent,
  parseTracestate,
  withoutTraceHeaders,
} from '../../src/observability/propagation.js';
import { randomTraceIds, sequentialTraceIds } from '../../src/observability/trace-ids.js';

const TRACE = '4bf92f3577b34da6a3ce929d0e0e4736';
const SPAN = '00f067aa0ba902b7';

test('traceparent: the W3C example parses, sampled and not', () => {
  assert.deepEqual(parseTraceparent(`00-${TRACE}-${SPAN}-01`), { traceId: TRACE, spanId: SPAN, sampled: true });
  assert.deepEqual(parseTraceparent(`00-${TRACE}-${SPAN}-00`), { traceId: TRACE, spanId: SPAN, sampled: false });
  // Only bit 0 means sampled; other flags are ignored.
  assert.equal(parseTraceparent(`00-${TRACE}-${SPAN}-03`)?.sampled, true);
  assert.equal(parseTraceparent(`00-${TRACE}-${SPAN}-02`)?.sampled, false);
});

test('traceparent: invalid values are refused', () => {
  const bad = [
    undefined,
    '',
    `ff-${TRACE}-${SPAN}-01`, // version ff is forbidden
    `00-${'0'.repeat(32)}-${SPAN}-01`, // all-zero trace id
    `00-${TRACE}-${'0'.repeat(16)}-01`, // all-zero span id
    `00-${TRACE.toUpperCase()}-${SPAN}-01`, // upper case
    `00-${TRACE.slice(1)}-${SPAN}-01`, // short trace id
    `00-${TRACE}-${SPAN}0-01`, // long span id
    `00-${TRACE}-${SPAN}-1`, // short flags
    `00-${TRACE}-${SPAN}-01-extra`, // version 00 has no more fields
    `00-${TRACE}-${SPAN}-0x`,
    `0-${TRACE}-${SPAN}-01`,
    `00_${TRACE}_${SPAN}_01`,
    `00-${TRACE}-${SPAN}-01, 00-${TRACE}-${SPAN}-01`, // two headers joined by node
    [`00-${TRACE}-${SPAN}-01`, `00-${TRACE}-${SPAN}-01`], // sent twice
  ];
  for (const v of bad) assert.equal(parseTraceparent(v), undefined, `should refuse ${JSON.stringify(v)}`);
});

test('traceparent: a future version is read for its first four fields', () => {
  assert.deepEqual(parseTraceparent(`cc-${TRACE}-${SPAN}-01-what-the-future-holds`), { traceId: TRACE, spanId: SPAN, sampled: true });
  assert.equal(parseTraceparent(`cc-${TRACE}-${SPAN}-01x`), undefined);
});

test('traceparent: formats version 00', () => {
  assert.equal(formatTraceparent({ traceId: TRACE, spanId: SPAN, sampled: true }), `00-${TRACE}-${SPAN}-01`);
  assert.equal(formatTraceparent({ traceId: TRACE, spanId: SPAN, sampled: false }), `00-${TRACE}-${SPAN}-00`);
});

test('tracestate: validated and normalized; invalid lists dropped', () => {
  assert.equal(parseTracestate('congo=t61rcWkgMzE,rojo=00f067aa0ba902b7'), 'congo=t61rcWkgMzE,rojo=00f067aa0ba902b7');
  assert.equal(parseTracestate(['congo=t61rcWkgMzE', 'rojo=1']), 'congo=t61rcWkgMzE,rojo=1');
  assert.equal(parseTracestate(' a=1 , , tenant@vendor=x '), 'a=1,tenant@vendor=x');
  assert.equal(parseTracestate(''), undefined);
  assert.equal(parseTracestate('UPPER=1'), undefined);
  assert.equal(parseTracestate('a=1,a=2'), undefined, 'duplicate keys');
  assert.equal(parseTracestate('novalue'), undefined);
  assert.equal(parseTracestate('a=b=c'), undefined, '= is not allowed in a value');
  assert.equal(parseTracestate(Array.from({ length: 33 }, (_, i) => `k${i}=v`).join(',')), undefined, 'more than 32 members');
});

test('extract: traceparent with tracestate; a bad tracestate keeps the traceparent', () => {
  assert.deepEqual(extract({ traceparent: `00-${TRACE}-${SPAN}-01`, tracestate: 'rojo=00f067aa0ba902b7' }), { traceId: TRACE, spanId: SPAN, sampled: true, traceState: 'rojo=00f067aa0ba902b7' });
  assert.deepEqual(extract({ traceparent: `00-${TRACE}-${SPAN}-01`, tracestate: 'BAD' }), { traceId: TRACE, spanId: SPAN, sampled: true });
});

test('b3 single: 128- and 64-bit ids, sampling states, parent', () => {
  assert.deepEqual(parseB3Single(`${TRACE}-${SPAN}-1`), { traceId: TRACE, spanId: SPAN, sampled: true });
  assert.deepEqual(parseB3Single(`${TRACE}-${SPAN}-0`), { traceId: TRACE, spanId: SPAN, sampled: false });
  assert.deepEqual(parseB3Single(`${TRACE}-${SPAN}-d`), { traceId: TRACE, spanId: SPAN, sampled: true }, 'debug implies sampled');
  assert.deepEqual(parseB3Single(`${TRACE}-${SPAN}`), { traceId: TRACE, spanId: SPAN, sampled: false }, 'deferred continues unsampled');
  assert.deepEqual(parseB3Single(`a3ce929d0e0e4736-${SPAN}-1-05e3ac9a4f6e3b90`), { traceId: `0000000000000000a3ce929d0e0e4736`, spanId: SPAN, sampled: true }, '64-bit ids are left-padded');
});

test('b3 single: invalid values are refused', () => {
  for (const v of ['0', '1', 'd', `${TRACE}`, `${TRACE}-${SPAN}-2`, `${TRACE}-${SPAN}-1-${'0'.repeat(16)}`, `${TRACE}-${SPAN}-1-abc`, `${'0'.repeat(16)}-${SPAN}-1`, `${TRACE}-${'0'.repeat(16)}-1`, `${TRACE.slice(2)}-${SPAN}-1`, `${TRACE}-${SPAN.toUpperCase()}-1`, `${TRACE}-${SPAN}-1-${SPAN}-x`]) {
    assert.equal(parseB3Single(v), undefined, `should refuse ${v}`);
  }
  assert.equal(formatB3Single({ traceId: TRACE, spanId: SPAN, sampled: true }), `${TRACE}-${SPAN}-1`);
});

test('b3 multi: sampled, flags, legacy true/false, 64-bit ids', () => {
  assert.deepEqual(parseB3Multi({ 'x-b3-traceid': TRACE, 'x-b3-spanid': SPAN, 'x-b3-sampled': '1' }), { traceId: TRACE, spanId: SPAN, sampled: true });
  assert.deepEqual(parseB3Multi({ 'x-b3-traceid': TRACE, 'x-b3-spanid': SPAN, 'x-b3-sampled': 'true' }), { traceId: TRACE, spanId: SPAN, sampled: true });
  assert.deepEqual(parseB3Multi({ 'x-b3-traceid': TRACE, 'x-b3-spanid': SPAN, 'x-b3-sampled': '0' }), { traceId: TRACE, spanId: SPAN, sampled: false });
  assert.deepEqual(parseB3Multi({ 'x-b3-traceid': TRACE, 'x-b3-spanid': SPAN, 'x-b3-flags': '1' }), { traceId: TRACE, spanId: SPAN, sampled: true });
  assert.deepEqual(parseB3Multi({ 'x-b3-traceid': TRACE, 'x-b3-spanid': SPAN }), { traceId: TRACE, spanId: SPAN, sampled: false });
  assert.deepEqual(parseB3Multi({ 'x-b3-traceid': 'a3ce929d0e0e4736', 'x-b3-spanid': SPAN, 'x-b3-sampled': '1', 'x-b3-parentspanid': '05e3ac9a4f6e3b90' }), { traceId: '0000000000000000a3ce929d0e0e4736', spanId: SPAN, sampled: true });
  assert.equal(parseB3Multi({ 'x-b3-traceid': TRACE }), undefined);
  assert.equal(parseB3Multi({ 'x-b3-traceid': TRACE, 'x-b3-spanid': SPAN, 'x-b3-sampled': 'yes' }), undefined);
  assert.equal(parseB3Multi({ 'x-b3-traceid': TRACE, 'x-b3-spanid': SPAN, 'x-b3-flags': '2' }), undefined);
  assert.equal(parseB3Multi({ 'x-b3-traceid': '0'.repeat(16), 'x-b3-spanid': SPAN }), undefined);
  assert.equal(parseB3Multi({ 'x-b3-traceid': [TRACE, TRACE], 'x-b3-spanid': SPAN }), undefined);
});

test('extract: traceparent is preferred, then b3, then x-b3-*; a bad traceparent falls back', () => {
  const other = 'aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa';
  const all = {
    traceparent: `00-${TRACE}-${SPAN}-01`,
    b3: `${other}-${SPAN}-0`,
    'x-b3-traceid': 'bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb',
    'x-b3-spanid': SPAN,
  };
  assert.equal(extract(all)?.traceId, TRACE);
  assert.equal(extract({ ...all, traceparent: 'garbage' })?.traceId, other);
  assert.equal(extract({ ...all, traceparent: 'garbage', b3: '1' })?.traceId, 'bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb');
  assert.equal(extract({}), undefined);
  assert.equal(extract({ b3: '0' }), undefined, 'a sampling-only b3 has no context');
});

test('inject: both formats by default order, tracestate only for W3C', () => {
  const ctx = { traceId: TRACE, spanId: SPAN, sampled: true, traceState: 'rojo=1' };
  assert.deepEqual(inject(ctx, {}, ['tracecontext', 'b3']), {
    traceparent: `00-${TRACE}-${SPAN}-01`,
    tracestate: 'rojo=1',
    'x-b3-traceid': TRACE,
    'x-b3-spanid': SPAN,
    'x-b3-sampled': '1',
  });
  assert.deepEqual(inject({ ...ctx, sampled: false }, {}, ['b3']), { 'x-b3-traceid': TRACE, 'x-b3-spanid': SPAN, 'x-b3-sampled': '0' });
  assert.deepEqual(inject({ traceId: TRACE, spanId: SPAN, sampled: false }, { keep: 'me' }, ['tracecontext']), { keep: 'me', traceparent: `00-${TRACE}-${SPAN}-00` });
});

test('inject then extract round-trips in each format; a padded 64-bit id stays the same trace', () => {
  const ctx = { traceId: '0000000000000000a3ce929d0e0e4736', spanId: SPAN, sampled: true };
  assert.deepEqual(extract(inject(ctx, {}, ['tracecontext'])), ctx);
  assert.deepEqual(extract(inject(ctx, {}, ['b3'])), ctx);
});

test('withoutTraceHeaders drops every trace header and keeps the rest', () => {
  const h = { traceparent: 'x', tracestate: 'y', b3: 'z', 'x-b3-traceid': 'a', 'x-b3-spanid': 'b', 'x-b3-sampled': '1', 'x-b3-flags': '1', 'x-b3-parentspanid': 'c', accept: 'json', 'x-b3x': 'not a B3 header' };
  assert.deepEqual(withoutTraceHeaders(h), { accept: 'json', 'x-b3x': 'not a B3 header' });
  assert.equal(isTraceHeader('x-request-id'), false);
});

test('random ids: right length, lower-case hex, never zero, distinct; sequential ids for tests', () => {
  const ids = randomTraceIds();
  const seen = new Set<string>();
  for (let i = 0; i < 2000; i++) {
    const t = ids.traceId();
    const s = ids.spanId();
    assert.match(t, /^[0-9a-f]{32}$/);
    assert.match(s, /^[0-9a-f]{16}$/);
    assert.notEqual(t, '0'.repeat(32));
    seen.add(t);
  }
  assert.equal(seen.size, 2000);
  // The pool's bytes, in order, as hex slices: 170 pairs (24 bytes each) and one trace id fill 4 KiB exactly.
  let fills = 0;
  const counting = randomTraceIds((buf) => {
    fills++;
    for (let i = 0; i < buf.length; i++) buf[i] = (i + fills) & 0xff;
  });
  const hexOf = (from: number, n: number): string => Array.from({ length: n }, (_, i) => ((from + i + 1) & 0xff).toString(16).padStart(2, '0')).join('');
  assert.equal(counting.traceId(), hexOf(0, 16));
  assert.equal(counting.spanId(), hexOf(16, 8));
  for (let i = 1; i < 170; i++) {
    counting.traceId();
    counting.spanId();
  }
  assert.equal(counting.traceId(), hexOf(4080, 16), 'the last 16 bytes of the pool');
  assert.equal(fills, 1);
  const s2 = counting.spanId();
  assert.equal(fills, 2, 'refilled when the pool ran short');
  assert.equal(s2, Array.from({ length: 8 }, (_, i) => ((i + 2) & 0xff).toString(16).padStart(2, '0')).join(''));
  // An all-zero id is never handed out: the next bytes are taken instead.
  let zeros = 0;
  const zeroFirst = randomTraceIds((buf) => {
    buf.fill(zeros++ === 0 ? 0 : 0xab, 0, 16);
    buf.fill(0xcd, 16);
  });
  assert.equal(zeroFirst.traceId(), 'cd'.repeat(16));
  const seq = sequentialTraceIds();
  assert.equal(seq.traceId(), '00000000000000000000000000000001');
  assert.equal(seq.spanId(), '0000000000000002');
});

test('a new root traceparent from the id pool: the ids traceId() and spanId() would draw, never zero, flags as sampled', () => {
  const ids = randomTraceIds();
  const seen = new Set<string>();
  for (let i = 0; i < 500; i++) {
    const tp = ids.traceparent(i % 2 === 0);
    assert.match(tp, i % 2 === 0 ? /^00-[0-9a-f]{32}-[0-9a-f]{16}-01$/ : /^00-[0-9a-f]{32}-[0-9a-f]{16}-00$/);
    seen.add(tp.slice(3, 35));
  }
  assert.equal(seen.size, 500);
  const counting = (): ReturnType<typeof randomTraceIds> => {
    let fills = 0;
    return randomTraceIds((buf) => {
      fills++;
      for (let i = 0; i < buf.length; i++) buf[i] = (i * 7 + fills) & 0xff;
    });
  };
  const a = counting();
  const b = counting();
  for (let i = 0; i < 400; i++) {
    // Across refills, both ways of drawing give the same ids.
    assert.equal(a.traceparent(true), `00-${b.traceId()}-${b.spanId()}-01`);
  }
  // All-zero ids are skipped, as traceId() and spanId() skip them.
  let calls = 0;
  const zeros = randomTraceIds((buf) => {
    buf.fill(calls++ === 0 ? 0 : 0xab);
    buf.fill(0x12, 32, 40);
  });
  assert.equal(zeros.traceparent(true), `00-${'12'.repeat(8)}${'00'.repeat(8)}-${'ab'.repeat(8)}-01`);
  assert.equal(sequentialTraceIds().traceparent(false), '00-00000000000000000000000000000001-0000000000000002-00');
});

test('traceparents made a pool at a time draw what traceId() and spanId() draw: mixed with single ids, across refills, skipping an all-zero id inside the batch', () => {
  // The same deterministic pool contents for both generators; pairs 3 and 7 of each fill hold an all-zero trace id or span id.
  const source = (): ReturnType<typeof randomTraceIds> => {
    let fills = 0;
    return randomTraceIds((buf) => {
      fills++;
      for (let i = 0; i < buf.length; i++) buf[i] = (i * 13 + fills * 5 + 1) & 0xff || 1;
      buf.fill(0, 24 * 3 + 24, 24 * 3 + 40); // the trace id of the pair after the first traceparent's 3rd
      buf.fill(0, 24 * 7 + 16, 24 * 7 + 24); // a span id
    });
  };
  const a = source();
  const b = source();
  const expect = (): string => `00-${b.traceId()}-${b.spanId()}-01`;
  for (let i = 0; i < 700; i++) {
    if (i % 97 === 5) {
      // A single id in between shifts the pool position off the batch's pairs.
      assert.equal(a.spanId(), b.spanId());
      continue;
    }
    const tp = a.traceparent(true);
    assert.equal(tp, expect(), `traceparent ${i}`);
    assert.doesNotMatch(tp, /-0{32}-|-0{16}-/);
  }
});

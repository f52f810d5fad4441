/**
 * Metric label sets, pinned value by value (STYLE.md: a rule that guards accounting has a test
 * that a one-line change makes fail; `npm run mutate -- observability` measures it). Each label
 * set is a closed list: a value added, dropped or blanked changes which series exist.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ERROR_CODES, TimeoutError } from '../../src/core/errors.js';
import {
  OTHER_METHOD,
  OUTCOMES,
  OUTCOME_FAILURE,
  OUTCOME_FAULT,
  OUTCOME_SUCCESS,
  UNKNOWN,
  errorOutcome,
  normalizeMethod,
  normalizeOutcome,
  normalizeStatus,
  statusLabel,
} from '../../src/observability/metrics-labels.js';

describe('metric label sets (mutation-level)', () => {
  it('the fixed label values are spelled as DESIGN.md names them', () => {
    assert.equal(OTHER_METHOD, '_OTHER');
    assert.equal(UNKNOWN, 'unknown');
    assert.equal(OUTCOME_SUCCESS, 'success');
    assert.equal(OUTCOME_FAILURE, 'failure');
    assert.equal(OUTCOME_FAULT, 'fault');
  });

  it('method: exactly the nine OpenTelemetry methods are kept, case-sensitive; the rest is _OTHER', () => {
    for (const m of ['CONNECT', 'DELETE', 'GET', 'HEAD', 'OPTIONS', 'PATCH', 'POST', 'PUT', 'TRACE']) assert.equal(normalizeMethod(m), m);
    for (const m of ['', 'get', 'Get', 'PURGE', 'QUERY', 'GET ', 'X'.repeat(10_000)]) assert.equal(normalizeMethod(m), '_OTHER', m.slice(0, 10));
  });

  it('status_code from a number: 100..599 as digits, anything else empty', () => {
    assert.equal(statusLabel(100), '100');
    assert.equal(statusLabel(200), '200');
    assert.equal(statusLabel(599), '599');
    for (const s of [undefined, 0, 16, 99, 600, 1000, -1, 200.5, Number.NaN]) assert.equal(statusLabel(s), '', String(s));
  });

  it('status_code from a string: HTTP 100..599 and gRPC 0..16 are kept, anything else empty', () => {
    for (const s of ['0', '1', '16', '100', '404', '599']) assert.equal(normalizeStatus(s), s);
    for (const s of ['', '17', '99', '600', '0200', '2xx', 'OK', '-1']) assert.equal(normalizeStatus(s), '', s);
  });

  it('outcome: success, failure, fault and the outcomes of ERROR_CODES; nothing else', () => {
    const expected = new Set(['success', 'failure', 'fault', ...Object.values(ERROR_CODES).map((i) => i.outcome)]);
    assert.deepEqual(new Set(OUTCOMES), expected);
    for (const o of ['timeout', 'circuit_open', 'rate_limited', 'no_endpoints', 'forbidden']) assert.ok(OUTCOMES.has(o), o);
    assert.ok(!OUTCOMES.has(''));
    for (const o of expected) assert.equal(normalizeOutcome(o), o);
    for (const o of ['', 'bogus', 'SUCCESS', 'Timeout']) assert.equal(normalizeOutcome(o), 'failure', o);
  });

  it("an error's outcome is its code's, or failure for anything that is not a Trellis error", () => {
    assert.equal(errorOutcome(new TimeoutError('t')), 'timeout');
    assert.equal(errorOutcome(new Error('x')), 'failure');
    assert.equal(errorOutcome('not an error'), 'failure');
  });
});

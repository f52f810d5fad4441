/**
 * isTrellisError and trellisErrorOf find a TrellisError behind wrappers (fetch's `TypeError:
 * fetch failed`, an application's own), outermost first, within a bounded depth; `instanceof`
 * stays strict.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { ConnectFailedError, RetriesExhaustedError, TimeoutError, TrellisError, isTrellisError, trellisErrorOf } from 'trellis';

describe('isTrellisError and trellisErrorOf through cause chains', () => {
  it('see a TrellisError wrapped in a TypeError, as fetch reports it', () => {
    const inner = new TimeoutError('too slow', { service: 'products' });
    const wrapped = new TypeError('fetch failed', { cause: inner });
    assert.equal(isTrellisError(wrapped), true);
    assert.equal(isTrellisError(wrapped, 'TRELLIS_TIMEOUT'), true);
    assert.equal(isTrellisError(wrapped, 'TRELLIS_RESET'), false);
    assert.equal(trellisErrorOf(wrapped), inner);
    assert.equal(trellisErrorOf(new Error('app', { cause: wrapped }))?.code, 'TRELLIS_TIMEOUT');
  });

  it('take the outermost TrellisError: retries exhausted is not its connect-failure cause', () => {
    const err = new TypeError('fetch failed', { cause: new RetriesExhaustedError('all failed', { cause: new ConnectFailedError('refused') }) });
    assert.equal(trellisErrorOf(err)?.code, 'TRELLIS_RETRIES_EXHAUSTED');
    assert.equal(isTrellisError(err, 'TRELLIS_CONNECT_FAILED'), false);
  });

  it('stop on cycles and past the depth bound, and ignore non-errors', () => {
    const a = new Error('a') as Error & { cause?: unknown };
    const b = new Error('b', { cause: a });
    a.cause = b;
    assert.equal(isTrellisError(a), false);
    let deep: unknown = new TimeoutError('deep');
    for (let i = 0; i < 20; i++) deep = new Error(`level ${i}`, { cause: deep });
    assert.equal(isTrellisError(deep), false);
    assert.equal(isTrellisError(undefined), false);
    assert.equal(isTrellisError('TRELLIS_TIMEOUT'), false);
  });

  it('leave instanceof strict: a wrapper is not an instance', () => {
    const wrapped = new TypeError('fetch failed', { cause: new TimeoutError('slow') });
    assert.equal(wrapped instanceof TrellisError, false);
    assert.equal(wrapped instanceof TimeoutError, false);
    assert.equal(wrapped.cause instanceof TimeoutError, true);
  });
});

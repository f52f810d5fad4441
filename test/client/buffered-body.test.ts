/**
 * BufferedBody: the stand-in for undici's body once a small response was read whole. It must
 * answer the same consume methods, end like a stream (so layers waiting for 'close' release
 * their timers and load), refuse a second read, and still die with the call's signal.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { CallController } from '../../src/core/call-signal.js';
import { BufferedBody } from '../../src/client/buffered-body.js';

const chunks = [Buffer.from('{"a":'), Buffer.from('1}')];

test('consume methods read the whole body once', async () => {
  assert.deepEqual(await new BufferedBody(chunks, 'application/json', undefined).json(), { a: 1 });
  assert.equal(Buffer.from(await new BufferedBody(chunks, '', undefined).arrayBuffer()).toString(), '{"a":1}');
  assert.equal((await new BufferedBody(chunks, '', undefined).bytes()).length, 7);
  const blob = await new BufferedBody(chunks, 'application/json', undefined).blob();
  assert.equal(blob.type, 'application/json');
  assert.equal(await blob.text(), '{"a":1}');
  const body = new BufferedBody(chunks, '', undefined);
  assert.equal(body.bodyUsed, false);
  assert.equal(await body.text(), '{"a":1}');
  assert.equal(body.bodyUsed, true);
  await assert.rejects(body.text(), TypeError);
});

test('ends like a stream: close after the data, and after dump()', async () => {
  const read = new BufferedBody(chunks, '', undefined);
  const closed = new Promise<void>((resolve) => read.once('close', resolve));
  const parts: Buffer[] = [];
  read.on('data', (c: Buffer) => parts.push(c));
  await closed;
  assert.equal(Buffer.concat(parts).toString(), '{"a":1}');
  const dumped = new BufferedBody(chunks, '', undefined);
  await dumped.dump();
  assert.equal(dumped.destroyed, true);
});

test("an unread body is destroyed with the call signal's reason", async () => {
  const ac = new CallController();
  const body = new BufferedBody(chunks, '', ac.signal);
  const reason = new Error('deadline');
  ac.abort(reason);
  await assert.rejects(body.text(), (err: unknown) => err === reason);
});

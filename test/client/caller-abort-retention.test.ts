/**
 * The abort function a call hands its caller (onConnect) must not keep the call alive once it
 * ended. Node's fetch() keeps that function on its controller, whose objects survive minor GCs;
 * a closure over the call made every fetch's call graph (its options, body, headers, attempts)
 * outlive it. Judged by what a full GC frees: the request body the call held.
 */
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import type { Dispatcher } from 'undici';
import { meshClient } from 'trellis';
import type { Mesh } from 'trellis';
import { serviceYaml, startServers } from '../helpers/servers.js';
import type { TestServer } from '../helpers/servers.js';

setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;

describe('the caller-held abort function after the call ended', () => {
  let ss: TestServer[];
  let mesh: Mesh;
  before(async () => {
    ss = await startServers(1, 'svc');
    mesh = await meshClient({ config: serviceYaml('products', ss.map((s) => ({ address: s.address }))) });
  });
  after(async () => {
    await mesh.close();
    await Promise.all(ss.map((s) => s.close()));
  });

  /** Sends one POST whose body only the mesh holds; resolves with the abort it was given and a WeakRef to the body. */
  function post(): Promise<{ abort: (e?: Error) => void; body: WeakRef<Buffer>; errors: Error[] }> {
    return new Promise((resolve, reject) => {
      let abort: ((e?: Error) => void) | undefined;
      const errors: Error[] = [];
      let body: Buffer | undefined = Buffer.from('x'.repeat(1024));
      const ref = new WeakRef(body);
      const handler: Dispatcher.DispatchHandler = {
        onConnect(a: (e?: Error) => void) {
          abort = a;
        },
        onHeaders: () => true,
        onData: () => true,
        onComplete() {
          setImmediate(() => resolve({ abort: abort as (e?: Error) => void, body: ref, errors }));
        },
        onError(err: Error) {
          errors.push(err);
          reject(err);
        },
      } as Dispatcher.DispatchHandler;
      mesh.dispatcher.dispatch({ origin: 'http://products', path: '/keep', method: 'POST', body, headers: { 'content-type': 'text/plain' } }, handler);
      body = undefined;
    });
  }

  it('lets the call (and the body it held) be collected while the caller keeps its abort function', async () => {
    const { abort, body, errors } = await post();
    for (let i = 0; i < 10 && body.deref() !== undefined; i++) {
      await new Promise((r) => setImmediate(r));
      gc();
    }
    assert.equal(body.deref(), undefined, 'the ended call is unreachable from the abort function its caller kept');
    // Still a function the caller may call: a no-op once the call ended.
    abort(new Error('late abort'));
    assert.deepEqual(errors, []);
  });
});

/**
 * The examples run: each is started as a user would (`node --import tsx FILE`) and must exit 0
 * by itself with the expected output. docs/ quotes them verbatim (test/docs checks that).
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { runNode } from '../helpers/processes.js';

describe('examples', () => {
  it('quickstart makes one request and exits', async () => {
    const r = await runNode(['examples/quickstart.ts'], 20_000);
    assert.equal(r.code, 0, r.err);
    assert.match(r.out, /^200 hello from \/greeting/m);
  });

  it('the demo runs for a bounded time and its summary shows the mesh at work', async () => {
    // The banner always names the endpoints and the words "retries" and "breaker", so matching
    // those proved nothing. The summary's numbers do: the caller's requests add up, retries
    // happened, and they hid 503s that products-3 (20% 503) really sent. Counts, not timings,
    // so a loaded machine changes the numbers but not these relations.
    const r = await runNode(['examples/demo/main.ts', '--duration', '5'], 40_000);
    assert.equal(r.code, 0, r.err);
    const summary = r.out.slice(r.out.indexOf('══ summary'));
    assert.notEqual(r.out.indexOf('══ summary'), -1, r.out);
    const caller = /^products: (\d+) requests, (\d+) ok \([\d.]+%\)(?:, (\d+) failed \(([^)]*)\))?/m.exec(summary);
    assert.ok(caller, summary);
    const [requests, ok, failed] = [Number(caller[1]), Number(caller[2]), Number(caller[3] ?? 0)];
    assert.ok(ok > 0, summary);
    assert.equal(ok + failed, requests, summary);
    const mesh = /^ {2}mesh: (\d+) requests, (\d+) retries/m.exec(summary);
    assert.ok(mesh, summary);
    assert.equal(Number(mesh[1]), requests, 'the mesh counted the requests the caller made');
    assert.ok(Number(mesh[2]) > 0, 'retries happened');
    const server503 = Number(/^ {2}products-3 .*?(\d+) 503/m.exec(summary)?.[1] ?? NaN);
    const caller503 = Number(/HTTP 503 (\d+)/.exec(caller[4] ?? '')?.[1] ?? 0);
    assert.ok(server503 > 0, `products-3 sent no 503 at all:\n${summary}`);
    assert.ok(caller503 < server503, `retries hid none of the ${server503} 503s (the caller saw ${caller503})`);
    assert.match(r.out, /^mesh and servers closed\.$/m);
  });
});

/**
 * Closing an inbound HTTP/2 session gracefully while the peer is still sending requests.
 *
 * node:http2's `session.close()` marks the session closed before its GOAWAY is written; a
 * request read in between takes node's "closed session" branch, which resets the stream from
 * inside nghttp2's read callback and can corrupt the heap (CI saw a glibc abort in a test that
 * sends GOAWAYs under load). `mesh.serve` closes in two steps instead (GOAWAY, then close once
 * it is written). Here a raw node:http2 client sends eight requests in the very turn the server
 * starts draining its idle session, so they are read inside that window, and node's own trace
 * (NODE_DEBUG=http2, in a child process since node reads it at start-up) shows which branch ran:
 * every one of them must arrive on an open session, be refused by nghttp2 with REFUSED_STREAM
 * (the code a client retries, since the request was not processed) and never reach the handler.
 * With `session.close()` in place of the two steps, the trace shows requests received after the
 * session was marked closed, and this test fails.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const CHILD = fileURLToPath(new URL('../helpers/h2-goaway-window.ts', import.meta.url));
const REFUSED_STREAM = 7;

interface Run {
  served: string[];
  outcomes: { path: string; status?: number; rstCode?: number }[];
  /** The server session's lines of node's HTTP/2 trace, in order. */
  trace: string[];
}

function runChild(): Promise<Run> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', CHILD], { env: { ...process.env, NODE_DEBUG: 'http2' }, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString('utf8')));
    child.stderr.on('data', (d: Buffer) => (err += d.toString('utf8')));
    child.on('error', reject);
    child.on('close', (code) => {
      if (code !== 0) return reject(new Error(`child exited ${code}: ${err.slice(-2000)}`));
      const r = JSON.parse(out.trim().split('\n').pop() ?? '{}') as Omit<Run, 'trace'>;
      resolve({ ...r, trace: err.split('\n').filter((l) => l.includes('[Http2Session server]') || l.includes('Http2Session server:')) });
    });
  });
}

describe('HTTP/2 inbound: a graceful close while requests are arriving', () => {
  it('requests read in the GOAWAY window arrive on an open session, are refused (REFUSED_STREAM) and never served', async () => {
    let run: Run | undefined;
    let inWindow: string[] = [];
    // The window is one turn of the event loop; a loaded machine may deliver the requests a
    // turn late (after the GOAWAY, when nghttp2 ignores them): try again, a bounded number of times.
    for (let attempt = 0; attempt < 5 && inWindow.length === 0; attempt++) {
      run = await runChild();
      const goaway = run.trace.findIndex((l) => l.includes('submitting goaway'));
      inWindow = goaway < 0 ? [] : run.trace.slice(goaway).filter((l) => l.includes('headers received'));
    }
    assert.ok(run !== undefined && inWindow.length > 0, `no request was read between the drain and its GOAWAY in 5 runs:\n${run?.trace.join('\n')}`);
    const marked = run.trace.findIndex((l) => l.includes('marking session closed'));
    assert.ok(marked >= 0, 'the session was closed');
    const afterClosed = run.trace.slice(marked).filter((l) => l.includes('headers received'));
    assert.deepEqual(afterClosed, [], `requests were read on a session already marked closed (node's unsafe branch):\n${run.trace.join('\n')}`);
    assert.deepEqual(run.served, ['/warm'], 'a request refused by the GOAWAY reached the handler');
    assert.equal(run.outcomes.length, 8);
    for (const o of run.outcomes) {
      assert.equal(o.rstCode, REFUSED_STREAM, `${o.path}: ${JSON.stringify(o)}`);
    }
  });
});

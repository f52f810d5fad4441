/**
 * Issue 13 item 10e: `mesh.close()` is bounded by its own drain deadline, not by the timeout of
 * the outbound calls in flight. Calls to a blackhole (a TCP listener that accepts, reads and
 * never answers) with a 60 s timeout are cut when the deadline passes: they fail with
 * TRELLIS_CLOSED, the blackhole sees their connections close, and close() resolves.
 *
 * The wait is a liveness bound far below the calls' timeout, never a timing assertion.
 */
import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import type { AddressInfo } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { isTrellisError, meshClient } from 'trellis';
import { quietLogger, serviceYaml } from '../helpers/servers.js';

/** Far below the calls' 60 s timeout: close() must not need it. */
const NEVER_MS = 20_000;

interface Blackhole {
  readonly port: number;
  /** Connections that delivered request bytes, and how many of them are still open. */
  requests: number;
  open: number;
  /** Answers 200 on every open connection (a late upstream, not a dead one). */
  answer(): void;
  close(): Promise<void>;
}

async function blackhole(): Promise<Blackhole> {
  const sockets = new Set<net.Socket>();
  const b = { port: 0, requests: 0, open: 0 } as Blackhole;
  const server = net.createServer((socket) => {
    sockets.add(socket);
    b.open++;
    socket.once('data', () => b.requests++);
    socket.on('error', () => undefined);
    socket.on('close', () => {
      sockets.delete(socket);
      b.open--;
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return Object.assign(b, {
    port: (server.address() as AddressInfo).port,
    answer: () => {
      for (const s of sockets) s.write('HTTP/1.1 200 OK\r\ncontent-length: 4\r\n\r\nlate');
    },
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  });
}

async function until(cond: () => boolean): Promise<boolean> {
  const end = performance.now() + NEVER_MS;
  while (!cond() && performance.now() < end) await sleep(20);
  return cond();
}

describe('mesh.close() drain deadline (issue 13 item 10e)', () => {
  const holes: Blackhole[] = [];
  after(async () => {
    await Promise.all(holes.map((h) => h.close()));
  });

  it('cuts outbound calls to a blackhole at the deadline: TRELLIS_CLOSED, and close() resolves', async () => {
    const hole = await blackhole();
    holes.push(hole);
    const mesh = await meshClient({ config: serviceYaml('hole', [{ address: `127.0.0.1:${hole.port}` }], 'timeout: 60s'), logger: quietLogger() });
    const calls = Array.from({ length: 3 }, (_, i) =>
      mesh
        .http('hole')
        .request({ method: i === 0 ? 'POST' : 'GET', path: `/${i}`, ...(i === 0 ? { body: 'x' } : {}) })
        .then(
          () => 'answered',
          (err: unknown) => err,
        ),
    );
    assert.ok(await until(() => hole.requests === 3), `the blackhole received ${hole.requests} of 3 requests`);
    const closed = await Promise.race([mesh.close({ drainTimeoutMs: 100 }).then(() => true), sleep(NEVER_MS).then(() => false)]);
    assert.ok(closed, 'mesh.close() waited for the calls instead of its drain deadline');
    for (const result of await Promise.all(calls)) {
      assert.ok(isTrellisError(result, 'TRELLIS_CLOSED'), `a call ended with ${String(result)}`);
    }
    assert.ok(await until(() => hole.open === 0), `${hole.open} connections to the blackhole left open`);
  });

  it('lets calls that finish within the deadline finish', async () => {
    const hole = await blackhole();
    holes.push(hole);
    const mesh = await meshClient({ config: serviceYaml('hole', [{ address: `127.0.0.1:${hole.port}` }], 'timeout: 60s'), logger: quietLogger() });
    const call = mesh.http('hole').request({ method: 'GET', path: '/' });
    assert.ok(await until(() => hole.requests === 1));
    const closing = mesh.close({ drainTimeoutMs: 60_000 });
    // The upstream answers once close() has begun: the call completes, close() then resolves.
    hole.answer();
    const res = await call;
    assert.equal(res.statusCode, 200);
    assert.equal(await res.body.text(), 'late');
    const closed = await Promise.race([closing.then(() => true), sleep(NEVER_MS).then(() => false)]);
    assert.ok(closed, 'mesh.close() did not resolve after the last call finished');
  });
});

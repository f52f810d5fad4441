/**
 * A real `redis-server` for tests: started on 127.0.0.1 on a free port (or a given one), with no
 * persistence, ready once it answers PING; stopped (and waited for) by `stop()`, and killed if
 * the test process exits first.
 *
 * When the binary is missing: `redisSkipReason()` returns a loud reason to skip locally, but in
 * CI (`CI` set) it returns false, so the tests run and fail on `startRedis` — CI must install it
 * (`apt-get install -y redis-server`).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { accessSync, constants } from 'node:fs';
import net from 'node:net';
import path from 'node:path';

export interface RedisServer {
  readonly port: number;
  readonly url: string;
  readonly child: ChildProcess;
  stop(): Promise<void>;
}

/** The redis-server on PATH (or in the usual places), or undefined. */
export function findRedisServer(): string | undefined {
  const dirs = [...(process.env.PATH ?? '').split(path.delimiter), '/usr/bin', '/usr/local/bin', '/usr/sbin'];
  for (const dir of dirs) {
    if (dir === '') continue;
    const candidate = path.join(dir, 'redis-server');
    try {
      accessSync(candidate, constants.X_OK);
      return candidate;
    } catch {
      // not here
    }
  }
  return undefined;
}

/** A reason to skip Redis tests (printed loudly), or false to run them (binary found, or in CI). */
export function redisSkipReason(): string | false {
  if (findRedisServer() !== undefined) return false;
  if (process.env.CI !== undefined && process.env.CI !== '') return false;
  const reason = 'redis-server is not installed: SKIPPING the global rate limit tests (apt-get install -y redis-server; in CI they fail instead)';
  console.warn(`\n!!! ${reason}\n`);
  return reason;
}

/** A TCP port free on 127.0.0.1 right now. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address();
      const port = typeof addr === 'object' && addr !== null ? addr.port : 0;
      srv.close(() => resolve(port));
    });
  });
}

/** Sends PING and resolves true on +PONG within `timeoutMs`. */
function ping(port: number, timeoutMs: number): Promise<boolean> {
  return new Promise((resolve) => {
    const sock = net.connect({ host: '127.0.0.1', port });
    let buf = '';
    const done = (ok: boolean): void => {
      clearTimeout(timer);
      sock.destroy();
      resolve(ok);
    };
    const timer = setTimeout(() => done(false), timeoutMs);
    sock.on('connect', () => sock.write('PING\r\n'));
    sock.on('data', (d: Buffer) => {
      buf += d.toString();
      if (buf.includes('\r\n')) done(buf.startsWith('+PONG'));
    });
    sock.on('error', () => done(false));
  });
}

const live = new Set<ChildProcess>();
let exitHookInstalled = false;

/** Starts redis-server on `port` (a free one when omitted) and waits until it answers PING. */
export async function startRedis(port?: number): Promise<RedisServer> {
  const bin = findRedisServer();
  if (bin === undefined) throw new Error('redis-server not found on PATH: install it (apt-get install -y redis-server)');
  const p = port ?? (await freePort());
  const child = spawn(bin, ['--port', String(p), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--protected-mode', 'no'], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  live.add(child);
  if (!exitHookInstalled) {
    exitHookInstalled = true;
    process.once('exit', () => {
      for (const c of live) c.kill('SIGKILL');
    });
  }
  let output = '';
  child.stdout?.on('data', (d: Buffer) => (output = (output + d.toString()).slice(-4000)));
  child.stderr?.on('data', (d: Buffer) => (output = (output + d.toString()).slice(-4000)));
  let exited = false;
  const exit = new Promise<void>((resolve) => {
    child.once('exit', () => {
      exited = true;
      live.delete(child);
      resolve();
    });
  });

  const deadline = performance.now() + 5000;
  while (!(await ping(p, 200))) {
    if (exited) throw new Error(`redis-server on port ${p} exited early:\n${output}`);
    if (performance.now() > deadline) {
      child.kill('SIGKILL');
      throw new Error(`redis-server on port ${p} did not answer PING within 5 s:\n${output}`);
    }
    await new Promise((r) => setTimeout(r, 20));
  }

  return {
    port: p,
    url: `redis://127.0.0.1:${p}`,
    child,
    async stop() {
      if (exited) return;
      child.kill('SIGTERM');
      const killer = setTimeout(() => child.kill('SIGKILL'), 2000);
      await exit;
      clearTimeout(killer);
    },
  };
}

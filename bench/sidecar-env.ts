/**
 * The three request paths the sidecar and latency benches compare, set up once and torn down
 * together:
 *
 *   direct          raw undici `Pool` → upstream (plain node:http)
 *   haproxy-plain   `Pool` → client-side HAProxy → server-side HAProxy → upstream, plain HTTP
 *   haproxy-mtls    the same two HAProxy processes, mTLS (TLS 1.3, P-256 leaves from src/tls)
 *                   between them: the sidecar pattern (one proxy per side, the app speaking
 *                   plaintext to its local proxy)
 *   trellis-mtls    `meshClient` with tls files → `mesh.serve()` upstream with strict mTLS
 *   trellis-plain   (optional) the same client stack, `mtls: off`, to the plain server
 *
 * Every process but the client is a child: the upstream (bench/sidecar-upstream.ts: a plain
 * server and a mesh-served one) and one HAProxy per side and mode (Debian's /usr/sbin/haproxy,
 * one thread each, HTTP mode with keep-alive to the next hop, run under coreutils `timeout` so
 * it cannot outlive the bench even if the bench is SIGKILLed). CPU of each process is read from
 * /proc (run time of every thread; see cpuUs). When haproxy is missing the HAProxy paths are
 * left out and `haproxyMissing` says so.
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync, readdirSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Pool } from 'undici';
import { createAuthority, generateP256KeyPair, issueLeaf, meshClient, privateKeyPem, systemClock } from 'trellis';
import type { Mesh, MeshHttpClient } from 'trellis';
import { benchServiceYaml } from './bench-service.js';

export const HAPROXY = '/usr/sbin/haproxy';
const TD = 'bench.local';

/** A process whose CPU the bench reads: `self` is this process (process.cpuUsage). */
export interface Proc {
  readonly name: string;
  readonly pid: number | 'self';
}

export interface Path {
  readonly key: string;
  readonly label: string;
  /** One GET, body consumed; true on a 2xx. */
  readonly call: () => Promise<boolean>;
  /** The processes this path runs through, client first. */
  readonly procs: readonly Proc[];
}

export interface Env {
  paths: Path[];
  readonly haproxyMissing: boolean;
  readonly mesh: Mesh;
  /** Connections the upstream's plain and mesh servers have accepted so far. */
  connections(): Promise<{ plain: number; mesh: number }>;
  close(): Promise<void>;
}

const TICK_US = 1e6 / Number(execFileSync('getconf', ['CLK_TCK']).toString().trim() || 100);
const HAS_SCHEDSTAT = existsSync('/proc/self/schedstat');

/**
 * CPU time (µs, every thread) of a process so far. From /proc/<pid>/task/<tid>/schedstat (run
 * time in ns, summed over threads) where the kernel has it: /proc/<pid>/stat counts in clock
 * ticks (10 ms), too coarse for a few seconds at a few thousand requests per second. Falls back
 * to stat's utime + stime. The same method for every process, this one included.
 */
export function cpuUs(proc: Proc): number {
  const pid = proc.pid === 'self' ? 'self' : String(proc.pid);
  if (HAS_SCHEDSTAT) {
    let ns = 0;
    for (const tid of readdirSync(`/proc/${pid}/task`)) {
      try {
        ns += Number(readFileSync(`/proc/${pid}/task/${tid}/schedstat`, 'utf8').split(' ')[0]);
      } catch {
        // the thread ended while we looked
      }
    }
    return ns / 1000;
  }
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  // Fields after the command name (which may hold spaces) start at field 3: utime is 14, stime 15.
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(f[11]) + Number(f[12])) * TICK_US;
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address() as net.AddressInfo;
      s.close(() => resolve(port));
    });
  });
}

async function writeCerts(dir: string): Promise<void> {
  const ca = await createAuthority({ trustDomain: TD }, systemClock);
  writeFileSync(path.join(dir, 'ca.pem'), ca.bundlePem);
  for (const service of ['bench', 'products', 'proxy-client', 'proxy-server']) {
    const k = await generateP256KeyPair();
    const leaf = issueLeaf(ca, { service, publicKey: k.publicKey, ttlMs: 24 * 3_600_000 }, systemClock);
    const key = privateKeyPem(k.privateKey);
    writeFileSync(path.join(dir, `${service}.pem`), leaf.certificateChainPem);
    writeFileSync(path.join(dir, `${service}.key`), key, { mode: 0o600 });
    writeFileSync(path.join(dir, `${service}.haproxy.pem`), leaf.certificateChainPem + key, { mode: 0o600 });
  }
}

interface Child {
  proc: ChildProcess;
  /** The process to measure (haproxy under `timeout` is a grandchild). */
  pid: number;
  stop(): void;
}

type Upstream = Child & { plain: number; meshPort: number; connections(): Promise<{ plain: number; mesh: number }> };

function startUpstream(dir: string, maxSeconds: number): Promise<Upstream> {
  const script = fileURLToPath(new URL('./sidecar-upstream.ts', import.meta.url));
  const child = spawn(process.execPath, ['--import', 'tsx', script, dir, String(maxSeconds)], { stdio: ['pipe', 'pipe', 'inherit'] });
  const stop = (): void => {
    child.stdin?.end();
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
  };
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      stop();
      reject(new Error('upstream child did not print its ports within 20 s'));
    }, 20_000);
    let buf = '';
    let waiting: ((c: { plain: number; mesh: number }) => void)[] = [];
    child.stdout?.on('data', (d: Buffer) => {
      buf += d.toString();
      for (let m = /CONNS (\d+) (\d+)\n/.exec(buf); m !== null; m = /CONNS (\d+) (\d+)\n/.exec(buf)) {
        buf = buf.slice(m.index + m[0].length);
        waiting.shift()?.({ plain: Number(m[1]), mesh: Number(m[2]) });
      }
      const m = /PORTS (\d+) (\d+)\n/.exec(buf);
      if (m === null) return;
      buf = buf.slice(m.index + m[0].length);
      clearTimeout(timer);
      const connections = (): Promise<{ plain: number; mesh: number }> =>
        new Promise((res) => {
          waiting.push(res);
          child.stdin?.write('\n');
        });
      resolve({ proc: child, pid: child.pid as number, stop, plain: Number(m[1]), meshPort: Number(m[2]), connections });
    });
    child.once('exit', () => {
      for (const w of waiting) w({ plain: NaN, mesh: NaN });
      waiting = [];
    });
    child.once('exit', (code, signal) => {
      clearTimeout(timer);
      reject(new Error(`upstream child exited early (code ${code}, signal ${signal})`));
    });
  });
}

/** The pid of `parent`'s only child (haproxy under `timeout`), waiting for it to appear. */
async function childPid(parent: number): Promise<number> {
  for (let i = 0; i < 100; i++) {
    for (const e of readdirSync('/proc')) {
      if (!/^\d+$/.test(e)) continue;
      try {
        const stat = readFileSync(`/proc/${e}/stat`, 'utf8');
        const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
        if (ppid === parent) return Number(e);
      } catch {
        // the process ended while we looked
      }
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`no child of ${parent} (haproxy) appeared`);
}

function waitListening(port: number, ms: number): Promise<void> {
  const end = Date.now() + ms;
  return new Promise((resolve, reject) => {
    const attempt = (): void => {
      const s = net.connect(port, '127.0.0.1');
      s.once('connect', () => {
        s.destroy();
        resolve();
      });
      s.once('error', () => {
        s.destroy();
        if (Date.now() > end) reject(new Error(`nothing listens on 127.0.0.1:${port} after ${ms} ms`));
        else setTimeout(attempt, 50);
      });
    };
    attempt();
  });
}

/**
 * One HAProxy: `bind` the listening side, `server` the next hop (each with its TLS options or
 * ''). One thread, HTTP mode, keep-alive on both sides and connection reuse to the next hop, as
 * a sidecar runs; no logging.
 */
async function startHaproxy(dir: string, name: string, port: number, bindTls: string, next: number, serverTls: string, maxSeconds: number): Promise<Child> {
  const cfg = path.join(dir, `${name}.cfg`);
  writeFileSync(
    cfg,
    `global
  nbthread 1
  maxconn 4000
  ssl-default-bind-options ssl-min-ver TLSv1.3
  ssl-default-server-options ssl-min-ver TLSv1.3
defaults
  mode http
  option http-keep-alive
  http-reuse always
  timeout connect 5s
  timeout client 60s
  timeout server 60s
  timeout http-keep-alive 60s
frontend fe
  bind 127.0.0.1:${port}${bindTls}
  default_backend be
backend be
  server next 127.0.0.1:${next}${serverTls}
`,
  );
  const child = spawn('timeout', ['--kill-after=5', String(maxSeconds), HAPROXY, '-db', '-f', cfg], { stdio: ['ignore', 'ignore', 'pipe'] });
  let err = '';
  child.stderr?.on('data', (d: Buffer) => {
    err += d.toString();
  });
  child.once('exit', (code) => {
    if (code !== 0 && code !== null && code !== 143) process.stderr.write(`haproxy ${name} exited ${code}: ${err}\n`);
  });
  const pid = await childPid(child.pid as number);
  await waitListening(port, 10_000).catch((e: unknown) => {
    throw new Error(`haproxy ${name}: ${String(e)}; stderr: ${err}`);
  });
  return {
    proc: child,
    pid,
    stop: () => {
      try {
        process.kill(pid, 'SIGTERM');
      } catch {
        // already gone
      }
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
    },
  };
}

/** The mesh client's Service: the same full stack as `npm run bench` (bench/run.ts), one endpoint. */
function clientConfig(meshPort: number): string {
  return `apiVersion: trellis/v1
kind: Mesh
metadata: { name: default }
spec: { trustDomain: ${TD}, mtls: strict }
---
${benchServiceYaml([meshPort])}`;
}

const get = async (pool: Pool): Promise<boolean> => {
  const res = await pool.request({ method: 'GET', path: '/' });
  await res.body.dump();
  return res.statusCode < 300;
};

/** Starts every process and client; `maxSeconds` bounds each child's life. */
export async function startEnv(maxSeconds: number, which: { haproxyPlain: boolean; trellisPlain: boolean }): Promise<Env> {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'trellis-sidecar-'));
  const children: Child[] = [];
  const pools: Pool[] = [];
  let mesh: Mesh | undefined;
  let plainMesh: Mesh | undefined;
  const close = async (): Promise<void> => {
    await mesh?.close({ drainTimeoutMs: 0 }).catch(() => {});
    await plainMesh?.close({ drainTimeoutMs: 0 }).catch(() => {});
    await Promise.all(pools.map((p) => p.destroy().catch(() => {})));
    for (const c of children) c.stop();
    rmSync(dir, { recursive: true, force: true });
  };
  try {
    await writeCerts(dir);
    const up = await startUpstream(dir, maxSeconds);
    children.push(up);
    const upstream: Proc = { name: 'upstream', pid: up.pid };
    const client: Proc = { name: 'client', pid: 'self' };
    const paths: Path[] = [];

    // Raw pools get the mesh's default connection limit (100 per endpoint); the rest are undici's defaults.
    const direct = new Pool(`http://127.0.0.1:${up.plain}`, { connections: 100 });
    pools.push(direct);
    paths.push({ key: 'direct', label: 'raw undici `Pool` → upstream', call: () => get(direct), procs: [client, upstream] });

    const haproxyMissing = !existsSync(HAPROXY);
    if (!haproxyMissing) {
      const modes = which.haproxyPlain ? (['plain', 'mtls'] as const) : (['mtls'] as const);
      for (const mode of modes) {
        const [pc, ps] = [await freePort(), await freePort()];
        const tls = mode === 'mtls';
        const bindTls = tls ? ` ssl crt ${dir}/proxy-server.haproxy.pem ca-file ${dir}/ca.pem verify required` : '';
        const serverTls = tls ? ` ssl crt ${dir}/proxy-client.haproxy.pem ca-file ${dir}/ca.pem verify required` : '';
        const server = await startHaproxy(dir, `server-${mode}`, ps, bindTls, up.plain, '', maxSeconds);
        children.push(server);
        const clientSide = await startHaproxy(dir, `client-${mode}`, pc, '', ps, serverTls, maxSeconds);
        children.push(clientSide);
        const pool = new Pool(`http://127.0.0.1:${pc}`, { connections: 100 });
        pools.push(pool);
        paths.push({
          key: `haproxy-${mode}`,
          label: `\`Pool\` → HAProxy (client side) → ${tls ? 'mTLS' : 'plain HTTP'} → HAProxy (server side) → upstream`,
          call: () => get(pool),
          procs: [client, { name: 'proxy-c', pid: clientSide.pid }, { name: 'proxy-s', pid: server.pid }, upstream],
        });
      }
    }

    mesh = await meshClient({
      service: 'bench',
      config: clientConfig(up.meshPort),
      tls: { ca: path.join(dir, 'ca.pem'), cert: path.join(dir, 'bench.pem'), key: path.join(dir, 'bench.key') },
      logger: { warn: (m) => process.stderr.write(`[trellis] ${m}\n`) },
    });
    const products: MeshHttpClient = mesh.http('products');
    paths.push({
      key: 'trellis-mtls',
      label: "`mesh.http('products').request()` with mTLS → `mesh.serve()` upstream, strict mTLS (full client stack as in `npm run bench`)",
      call: async () => {
        const res = await products.request({ method: 'GET', path: '/' });
        await res.body.dump();
        return res.statusCode < 300;
      },
      procs: [client, upstream],
    });
    if (which.trellisPlain) {
      // The same client stack without TLS, straight to the plain server (no inbound stack): what
      // the mesh's layers cost apart from mTLS and the inbound side.
      plainMesh = await meshClient({
        service: 'bench',
        config: clientConfig(up.plain).replace('mtls: strict', 'mtls: off'),
        logger: { warn: (m) => process.stderr.write(`[trellis] ${m}\n`) },
      });
      const plainProducts = plainMesh.http('products');
      paths.push({
        key: 'trellis-plain',
        label: "the same mesh client with `mtls: off`, to the plain upstream server (no inbound stack): the client-side layers alone",
        call: async () => {
          const res = await plainProducts.request({ method: 'GET', path: '/' });
          await res.body.dump();
          return res.statusCode < 300;
        },
        procs: [client, upstream],
      });
    }
    const m = mesh;
    return { paths, haproxyMissing, mesh: m, connections: up.connections, close };
  } catch (err) {
    await close();
    throw err;
  }
}

/** Markdown table (first column left-aligned). */
export function markdownTable(head: string[], body: string[][]): string {
  const align = head.map((_, i) => (i === 0 ? ':--' : '--:'));
  return [head, align, ...body].map((r) => `| ${r.join(' | ')} |`).join('\n');
}

export const fmt = (n: number, digits = 0): string => (Number.isFinite(n) ? n.toFixed(digits) : '-');

/** This bench's own arguments, whether run alone or as `npm run bench -- <name> ...`. */
export function benchArgs(name: string): string[] {
  const a = process.argv.slice(2);
  return a[0] === name ? a.slice(1) : a;
}

/** Load average and CPU count, for the report (numbers here are taken on a shared machine). */
export function machineLine(): string {
  const cpus = os.cpus();
  const [l1, l5] = os.loadavg();
  return `Node ${process.version}, ${cpus.length} × ${cpus[0]?.model.trim() ?? 'CPU'}, load average ${fmt(l1 ?? NaN, 1)} (1 min) / ${fmt(l5 ?? NaN, 1)} (5 min) at start`;
}

/**
 * Bounds a bench that holds an Env: past `budgetMs` it closes the environment (every child
 * process) and exits 1; SIGINT/SIGTERM close it and exit 130. Returns the watchdog, to clear.
 */
export function guardEnv(name: string, budgetMs: number, env: () => Env | undefined): NodeJS.Timeout {
  const watchdog = setTimeout(() => {
    process.stderr.write(`${name} bench: still running after ${Math.round(budgetMs / 1000)} s; giving up\n`);
    void env()?.close().finally(() => process.exit(1));
    setTimeout(() => process.exit(1), 3000).unref();
  }, budgetMs);
  watchdog.unref();
  for (const sig of ['SIGINT', 'SIGTERM'] as const) {
    process.once(sig, () => {
      void env()?.close().finally(() => process.exit(130));
    });
  }
  return watchdog;
}

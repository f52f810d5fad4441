/**
 * Real control-plane and instance processes for the end-to-end tests, driven as an operator
 * would: the built CLI (`node dist/cli/main.js control-plane --data DIR --listen 127.0.0.1:0
 * --dashboard off`), `trellis apply|get|token create|check` with `TRELLIS_CONTROL_PLANE` and
 * `TRELLIS_ADMIN_TOKEN`, and instances in their own processes (test/helpers/e2e-instance.ts).
 * Every process started here is tracked and SIGKILLed by `killAll()` (call it in `after`) and
 * when the test process exits; waits are bounded and judged by what the processes printed.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('../..', import.meta.url));
export const CLI = fileURLToPath(new URL('../../dist/cli/main.js', import.meta.url));
const INSTANCE = fileURLToPath(new URL('./e2e-instance.ts', import.meta.url));

const live = new Set<ChildProcess>();
let hooked = false;
function track(child: ChildProcess): void {
  child.setMaxListeners(0); // one exit listener per bounded wait
  live.add(child);
  child.once('exit', () => live.delete(child));
  if (!hooked) {
    hooked = true;
    process.once('exit', () => {
      for (const c of live) c.kill('SIGKILL');
    });
  }
}

/** SIGKILLs every process these helpers started and waits for their exits. */
export async function killAll(): Promise<void> {
  await Promise.all([...live].map((c) => stopChild(c, 'SIGKILL', 10_000)));
}

function exited(child: ChildProcess): Promise<number | null> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve(child.exitCode);
  return new Promise((resolve) => child.once('exit', (code) => resolve(code)));
}

/** Sends `signal`, then SIGKILL if it is still running after `graceMs`; resolves on exit. */
async function stopChild(child: ChildProcess, signal: NodeJS.Signals, graceMs: number): Promise<number | null> {
  if (child.exitCode !== null || child.signalCode !== null) return child.exitCode;
  const done = exited(child);
  child.kill(signal);
  const t = setTimeout(() => child.kill('SIGKILL'), graceMs);
  const code = await done;
  clearTimeout(t);
  return code;
}

/** A child's output, with a bounded wait for a line that matches. */
class Output {
  text = '';
  #waiters: { re: RegExp; from: number; resolve: (m: RegExpExecArray) => void }[] = [];
  push(chunk: string): void {
    this.text += chunk;
    for (const w of [...this.#waiters]) {
      const m = w.re.exec(this.text.slice(w.from));
      if (m !== null) {
        this.#waiters.splice(this.#waiters.indexOf(w), 1);
        w.resolve(m);
      }
    }
  }
  wait(re: RegExp, timeoutMs: number, what: string, from = 0, child?: ChildProcess): Promise<RegExpExecArray> {
    const m = re.exec(this.text.slice(from));
    if (m !== null) return Promise.resolve(m);
    return new Promise((resolve, reject) => {
      const t = setTimeout(() => {
        this.#waiters = this.#waiters.filter((w) => w.resolve !== done);
        reject(new Error(`timed out after ${timeoutMs} ms waiting for ${what} (${re}); output so far:\n${this.text.slice(-3000)}`));
      }, timeoutMs);
      const done = (x: RegExpExecArray): void => {
        clearTimeout(t);
        resolve(x);
      };
      this.#waiters.push({ re, from, resolve: done });
      child?.once('exit', (code) => {
        if (!this.#waiters.some((w) => w.resolve === done)) return;
        clearTimeout(t);
        this.#waiters = this.#waiters.filter((w) => w.resolve !== done);
        reject(new Error(`the process exited (${code}) before ${what}; output:\n${this.text.slice(-3000)}`));
      });
    });
  }
}

export interface CpProcess {
  readonly url: string;
  readonly port: number;
  readonly dataDir: string;
  readonly adminToken: string;
  /** The replica id it printed (`cp-...`), as registry records name it. */
  readonly replicaId: string;
  /** The dashboard's URL, when one was asked for. */
  readonly dashboardUrl: string | undefined;
  readonly child: ChildProcess;
  readonly stdout: Output;
  readonly stderr: Output;
  /** SIGKILL (a crash) and wait for the exit. */
  kill(): Promise<void>;
  /** SIGTERM (graceful), SIGKILL past 15 s; resolves with the exit code. */
  stop(): Promise<number | null>;
}

export interface CpProcessOptions {
  readonly dataDir: string;
  /** Default `127.0.0.1:0`. */
  readonly listen?: string;
  readonly etcd?: readonly string[];
  readonly trustDomain?: string;
  /** The admin token when this replica's data directory does not hold it (a second etcd replica). */
  readonly adminToken?: string;
  /** `--dashboard HOST:PORT` (default off). */
  readonly dashboard?: string;
}

/** Starts `trellis control-plane` and waits for its "listening on" line. */
export async function startCpProcess(o: CpProcessOptions): Promise<CpProcess> {
  const args = [CLI, 'control-plane', '--data', o.dataDir, '--listen', o.listen ?? '127.0.0.1:0', '--dashboard', o.dashboard ?? 'off'];
  if (o.etcd !== undefined) args.push('--etcd', o.etcd.join(','));
  if (o.trustDomain !== undefined) args.push('--trust-domain', o.trustDomain);
  const child = spawn(process.execPath, args, { cwd: root, stdio: ['ignore', 'pipe', 'pipe'] });
  track(child);
  const stdout = new Output();
  const stderr = new Output();
  child.stdout?.on('data', (d: Buffer) => stdout.push(d.toString()));
  child.stderr?.on('data', (d: Buffer) => stderr.push(d.toString()));
  let m: RegExpExecArray;
  try {
    m = await stdout.wait(/control plane (\S+) listening on (https:\/\/127\.0\.0\.1:(\d+))[^]*?dashboard: (\S+)\n/, 60_000, 'the control plane to listen', 0, child);
  } catch (err) {
    child.kill('SIGKILL');
    throw new Error(`${(err as Error).message}\nstderr:\n${stderr.text.slice(-2000)}`);
  }
  const adminToken = o.adminToken ?? (await readFile(`${o.dataDir}/admin-token`, 'utf8')).trim();
  return {
    replicaId: m[1] as string,
    dashboardUrl: m[4] === 'off' ? undefined : m[4],
    url: m[2] as string,
    port: Number(m[3]),
    dataDir: o.dataDir,
    adminToken,
    child,
    stdout,
    stderr,
    kill: async () => void (await stopChild(child, 'SIGKILL', 10_000)),
    stop: () => stopChild(child, 'SIGTERM', 15_000),
  };
}

export interface CliResult {
  readonly code: number | null;
  readonly out: string;
  readonly err: string;
}

/** Runs the `trellis` CLI against a control plane (its URL and admin token in the environment). */
export function trellis(args: readonly string[], cp: { url: string; adminToken: string }, timeoutMs = 60_000): Promise<CliResult> {
  const child = spawn(process.execPath, [CLI, ...args], {
    cwd: root,
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, TRELLIS_CONTROL_PLANE: cp.url, TRELLIS_ADMIN_TOKEN: cp.adminToken },
  });
  track(child);
  let out = '';
  let err = '';
  child.stdout?.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr?.on('data', (d: Buffer) => (err += d.toString()));
  const t = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
  return exited(child).then((code) => {
    clearTimeout(t);
    return { code, out, err };
  });
}

/** `trellis token create --service NAME`: the token alone on stdout. */
export async function bootstrapToken(cp: { url: string; adminToken: string }, service: string): Promise<string> {
  const r = await trellis(['token', 'create', '--service', service], cp);
  if (r.code !== 0) throw new Error(`token create failed (${r.code}): ${r.err}`);
  return r.out.trim();
}

export interface CallResult {
  readonly ok: number;
  readonly failed: number;
  readonly servers: Record<string, number>;
  /** Who the servers said called them (the SPIFFE service of the verified client certificate). */
  readonly seenAs: Record<string, number>;
  readonly errors: Record<string, number>;
}

export interface InstanceProcess {
  readonly name: string;
  readonly child: ChildProcess;
  readonly stdout: Output;
  readonly stderr: Output;
  /** The port it serves on (undefined with `serve: false`). */
  readonly port: number | undefined;
  /** N sequential calls to `service` through the instance's mesh. */
  call(service: string, n: number): Promise<CallResult>;
  /** Waits for a stdout line matching `re` printed after offset `from` (default: anywhere). */
  waitFor(re: RegExp, what: string, timeoutMs?: number, from?: number): Promise<RegExpExecArray>;
  kill(): Promise<void>;
  /** SIGTERM: the mesh closes (deregisters first), the process exits 0. */
  stop(): Promise<number | null>;
}

export interface InstanceOptions {
  readonly name: string;
  readonly service: string;
  readonly urls: readonly string[];
  readonly token?: string | undefined;
  readonly cacheDir: string;
  readonly port?: number;
  readonly labels?: Record<string, string>;
  readonly serve?: boolean;
}

/** Starts an instance process; resolves once it serves (or is ready, with `serve: false`). */
export async function startInstance(o: InstanceOptions): Promise<InstanceProcess> {
  const child = spawn(process.execPath, ['--import', 'tsx', INSTANCE, JSON.stringify(o)], { cwd: root, stdio: ['pipe', 'pipe', 'pipe'] });
  track(child);
  const stdout = new Output();
  const stderr = new Output();
  child.stdout?.on('data', (d: Buffer) => stdout.push(d.toString()));
  child.stderr?.on('data', (d: Buffer) => stderr.push(d.toString()));
  let port: number | undefined;
  try {
    const m = await stdout.wait(/^(?:PORT (\d+)|READY)$/m, 90_000, `instance ${o.name} to start`, 0, child);
    port = m[1] === undefined ? undefined : Number(m[1]);
  } catch (err) {
    child.kill('SIGKILL');
    throw new Error(`${(err as Error).message}\nstderr:\n${stderr.text.slice(-3000)}`);
  }
  let calls = 0;
  const resultEnds: number[] = [];
  return {
    name: o.name,
    child,
    stdout,
    stderr,
    port,
    async call(service, n) {
      const nth = ++calls;
      child.stdin?.write(`call ${service} ${n}\n`);
      // The nth RESULT line answers the nth call (they run in order): wait for the text after
      // the (nth-1)th one to hold a RESULT line.
      const from = nth === 1 ? 0 : resultEnds[nth - 2];
      if (from === undefined) throw new Error('calls answered out of order');
      const m = await stdout.wait(/^RESULT (.*)\n/m, 120_000, `${o.name}'s answer to call ${nth}`, from, child);
      resultEnds.push(from + m.index + m[0].length);
      return JSON.parse(m[1] as string) as CallResult;
    },
    waitFor: (re, what, timeoutMs = 60_000, from = 0) => stdout.wait(re, timeoutMs, `${o.name}: ${what}`, from, child),
    kill: async () => void (await stopChild(child, 'SIGKILL', 10_000)),
    stop: () => stopChild(child, 'SIGTERM', 15_000),
  };
}

/** Polls `check` (every 200 ms, at most `timeoutMs`) until it returns a value that is not undefined. */
export async function eventually<T>(what: string, check: () => Promise<T | undefined> | T | undefined, timeoutMs = 60_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const v = await check();
      if (v !== undefined) return v;
    } catch (err) {
      last = err;
    }
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${last !== undefined ? `: ${String(last)}` : ''}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

/** The trust domain of the e2e control planes. */
export const E2E_TRUST_DOMAIN = 'e2e.test';

/** The shop the e2e tests apply: the Mesh, `products` (retried) and `frontend`. */
export const E2E_SHOP_YAML = `apiVersion: trellis/v1
kind: Mesh
metadata: { name: default }
spec: { trustDomain: ${E2E_TRUST_DOMAIN} }
---
apiVersion: trellis/v1
kind: Service
metadata: { name: products }
spec:
  protocol: http
  timeout: 2s
  retries: { attempts: 3, on: [connect-failure, reset, gateway-error] }
---
apiVersion: trellis/v1
kind: Service
metadata: { name: frontend }
spec: { protocol: http, timeout: 2s }
`;

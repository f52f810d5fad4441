/**
 * The demo's child processes: the control plane (`trellis control-plane`), the CLI runs
 * (`trellis apply`, `token create`, `stat`) and the shop's instances. Every child is tracked, so
 * `stopAll()` ends each one (SIGTERM, then SIGKILL past a grace period) and waits for its exit,
 * and the process's `exit` hook SIGKILLs any left if the demo dies some other way. Children run
 * in their own process group: Ctrl-C reaches the demo alone, which then closes them in order
 * (traffic, instances, control plane).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('../..', import.meta.url));
const CLI = fileURLToPath(new URL('../../dist/cli/main.js', import.meta.url));
const INSTANCE = fileURLToPath(new URL('./instance.ts', import.meta.url));

export interface Child {
  readonly name: string;
  readonly pid: number;
  readonly process: ChildProcess;
  /** Resolves with the first match of `re` in stdout; rejects if the process exits first or after `timeoutMs`. */
  waitFor(re: RegExp, timeoutMs: number): Promise<RegExpExecArray>;
  /** Called with each stdout line. */
  onLine(f: (line: string) => void): void;
  stderr(): string;
}

const children = new Set<ChildProcess>();
process.once('exit', () => {
  for (const c of children) c.kill('SIGKILL');
});

function start(name: string, args: string[], env?: NodeJS.ProcessEnv): Child {
  const child = spawn(process.execPath, args, { cwd: root, stdio: ['pipe', 'pipe', 'pipe'], detached: true, env: env ?? process.env });
  children.add(child);
  child.once('exit', () => children.delete(child));
  child.setMaxListeners(0);
  let out = '';
  let err = '';
  let partial = '';
  const lineHandlers: ((line: string) => void)[] = [];
  child.stdout?.on('data', (d: Buffer) => {
    out += d.toString();
    partial += d.toString();
    const lines = partial.split('\n');
    partial = lines.pop() ?? '';
    for (const l of lines) for (const f of lineHandlers) f(l);
  });
  child.stderr?.on('data', (d: Buffer) => {
    err = (err + d.toString()).slice(-8000);
  });
  return {
    name,
    pid: child.pid ?? -1,
    process: child,
    onLine: (f) => void lineHandlers.push(f),
    stderr: () => err,
    waitFor: (re, timeoutMs) =>
      new Promise((resolve, reject) => {
        const check = (): boolean => {
          const m = re.exec(out);
          if (m === null) return false;
          cleanup();
          resolve(m);
          return true;
        };
        const onExit = (code: number | null): void => {
          if (check()) return;
          cleanup();
          reject(new Error(`${name} exited (${code}) before it was ready:\n${err.trim().slice(-2000)}`));
        };
        const t = setTimeout(() => {
          cleanup();
          reject(new Error(`${name} was not ready within ${timeoutMs / 1000} s:\n${err.trim().slice(-2000)}`));
        }, timeoutMs);
        const cleanup = (): void => {
          clearTimeout(t);
          child.stdout?.off('data', onData);
          child.off('exit', onExit);
        };
        const onData = (): void => void check();
        if (check()) return;
        child.stdout?.on('data', onData);
        child.once('exit', onExit);
      }),
  };
}

/** `trellis control-plane` on `listen`, its dashboard on `dashboard`, state in `dataDir`. */
export function startControlPlane(dataDir: string, listen: string, dashboard: string): Child {
  return start('control-plane', [CLI, 'control-plane', '--data', dataDir, '--listen', listen, '--dashboard', dashboard, '--trust-domain', 'shop.demo']);
}

export interface InstanceArgs {
  readonly role: 'frontend' | 'products' | 'reviews';
  readonly name: string;
  readonly version: string;
  readonly urls: string[];
  readonly token: string;
  readonly cacheDir: string;
  readonly failing?: boolean;
}

/** One shop instance (examples/demo/instance.ts) in its own process. */
export function startInstance(a: InstanceArgs): Child {
  return start(a.name, ['--import', 'tsx', INSTANCE, JSON.stringify(a)]);
}

/** Runs the `trellis` CLI against the control plane; resolves with its exit code and output. */
export function trellis(args: string[], cp: { url: string; adminToken: string }, timeoutMs = 60_000): Promise<{ code: number | null; out: string; err: string }> {
  const c = start(`trellis ${args[0] ?? ''}`, [CLI, ...args], { ...process.env, TRELLIS_CONTROL_PLANE: cp.url, TRELLIS_ADMIN_TOKEN: cp.adminToken });
  c.process.stdin?.end();
  let out = '';
  let err = '';
  c.process.stdout?.on('data', (d: Buffer) => (out += d.toString()));
  c.process.stderr?.on('data', (d: Buffer) => (err += d.toString()));
  const t = setTimeout(() => c.process.kill('SIGKILL'), timeoutMs);
  return new Promise((resolve) =>
    c.process.once('exit', (code) => {
      clearTimeout(t);
      resolve({ code, out, err });
    }),
  );
}

function exited(c: ChildProcess): Promise<void> {
  if (c.exitCode !== null || c.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => c.once('exit', () => resolve()));
}

/** SIGTERM to `these` (every child when absent), SIGKILL to those still running after `graceMs`; resolves once all exited. */
export async function stop(these: readonly Child[] | undefined, graceMs: number): Promise<void> {
  const list = these?.map((c) => c.process) ?? [...children];
  await Promise.all(
    list.map(async (c) => {
      const done = exited(c);
      c.kill('SIGTERM');
      const t = setTimeout(() => c.kill('SIGKILL'), graceMs);
      await done;
      clearTimeout(t);
    }),
  );
}

/** How many children are still running. */
export function running(): number {
  return children.size;
}

/**
 * Spawns test servers as child processes (real crashes with SIGKILL), and cleans them up.
 */
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const script = fileURLToPath(new URL('./server-process.ts', import.meta.url));

export interface ProcessServer {
  readonly name: string;
  readonly port: number;
  readonly address: string;
  readonly child: ChildProcess;
  kill(signal?: NodeJS.Signals): void;
}

/**
 * Starts `script` (default: server-process.ts) as `node --import tsx SCRIPT NAME ...args`; the
 * script prints `PORT <n>` once listening. Its stdout stays readable on `child.stdout`.
 */
export function startProcessServer(name: string, options: { script?: string; args?: string[] } = {}): Promise<ProcessServer> {
  const child = spawn(process.execPath, ['--import', 'tsx', options.script ?? script, name, ...(options.args ?? [])], { stdio: ['ignore', 'pipe', 'inherit'] });
  return new Promise((resolve, reject) => {
    let buf = '';
    const onData = (d: Buffer): void => {
      buf += d.toString();
      const m = /PORT (\d+)/.exec(buf);
      if (m?.[1] !== undefined) {
        child.stdout?.off('data', onData);
        const port = Number(m[1]);
        resolve({ name, port, address: `127.0.0.1:${port}`, child, kill: (sig = 'SIGKILL') => child.kill(sig) });
      }
    };
    child.stdout?.on('data', onData);
    child.once('exit', (code) => reject(new Error(`server process ${name} exited early (${code})`)));
  });
}

const root = fileURLToPath(new URL('../..', import.meta.url));

/** Runs `node --import tsx ARGS...` from the repository root as a user would; SIGKILLed past `timeoutMs`. */
export function runNode(args: string[], timeoutMs: number): Promise<{ code: number | null; out: string; err: string }> {
  const child = spawn(process.execPath, ['--import', 'tsx', ...args], { cwd: root, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  child.stdout?.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr?.on('data', (d: Buffer) => (err += d.toString()));
  return new Promise((resolve) => {
    const t = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.on('exit', (code) => {
      clearTimeout(t);
      resolve({ code, out, err });
    });
  });
}

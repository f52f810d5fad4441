/**
 * Starts bench/upstream.ts in a child process and reads the ports it prints. The child dies
 * with its stdin, so it cannot outlive the bench even if the bench is killed with SIGKILL;
 * `stop()` ends it at once.
 */
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';

export interface Upstream {
  readonly ports: number[];
  readonly pid: number | undefined;
  stop(): void;
}

const script = fileURLToPath(new URL('./upstream.ts', import.meta.url));

export function startUpstream(count: number, maxSeconds: number): Promise<Upstream> {
  const child = spawn(process.execPath, ['--import', 'tsx', script, String(count), String(maxSeconds)], {
    stdio: ['pipe', 'pipe', 'inherit'],
  });
  const stop = (): void => {
    child.stdin?.end();
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
  };
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      stop();
      reject(new Error('upstream child did not print its ports within 15 s'));
    }, 15_000);
    let buf = '';
    child.stdout?.on('data', (d: Buffer) => {
      buf += d.toString();
      const m = /PORTS ([\d ]+)\n/.exec(buf);
      if (m?.[1] === undefined) return;
      clearTimeout(timer);
      resolve({ ports: m[1].trim().split(' ').map(Number), pid: child.pid, stop });
    });
    child.once('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
    child.once('exit', (code, signal) => {
      clearTimeout(timer);
      reject(new Error(`upstream child exited early (code ${code}, signal ${signal})`));
    });
  });
}

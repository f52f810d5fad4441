/**
 * `trellis check --pre`: can a control plane run on this machine — a supported Node.js, the
 * listen address free, the data directory writable (or creatable).
 */
import { randomBytes } from 'node:crypto';
import { access, constants, mkdir, rm, stat, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { dirname, join, resolve } from 'node:path';
import { parseListen } from '../controlplane/listen-address.js';
import type { CheckReport } from './check-report.js';
import { optionalString } from './args.js';
import type { OptionValues } from './command.js';

/** The oldest Node.js the package supports (package.json `engines`). */
export const MIN_NODE = [20, 18] as const;

async function portFree(host: string, port: number): Promise<string | undefined> {
  return new Promise((done) => {
    const server = createServer();
    server.once('error', (err: NodeJS.ErrnoException) => done(err.code === 'EADDRINUSE' ? `${host}:${port} is in use` : `${host}:${port}: ${err.code ?? err.message}`));
    server.listen(port, host, () => server.close(() => done(undefined)));
  });
}

async function writable(dir: string): Promise<string | undefined> {
  let existing = resolve(dir);
  try {
    const s = await stat(existing);
    if (!s.isDirectory()) return `${dir} is not a directory`;
  } catch {
    // Missing: the nearest existing parent must let us create it.
    while (true) {
      const parent = dirname(existing);
      try {
        await access(parent, constants.W_OK | constants.X_OK);
        await mkdir(existing, { recursive: false, mode: 0o700 });
        await rm(existing, { recursive: true });
        return undefined;
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'ENOENT' || parent === existing) return `${dir} cannot be created: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`;
        existing = parent;
      }
    }
  }
  const probe = join(existing, `.trellis-check-${randomBytes(4).toString('hex')}`);
  try {
    await writeFile(probe, 'probe', { mode: 0o600 });
    await rm(probe);
    return undefined;
  } catch (err) {
    return `${dir} is not writable: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`;
  }
}

export async function runPreChecks(values: OptionValues, report: CheckReport): Promise<void> {
  report.section('pre-installation');
  const [major, minor] = process.versions.node.split('.').map(Number) as [number, number];
  if (major > MIN_NODE[0] || (major === MIN_NODE[0] && minor >= MIN_NODE[1])) report.pass(`Node.js ${process.versions.node} is supported (>= ${MIN_NODE.join('.')})`);
  else report.fail(`Node.js is supported`, [`this is Node.js ${process.versions.node}; Trellis needs ${MIN_NODE.join('.')} or later`]);

  const listenText = optionalString(values, 'listen') ?? '127.0.0.1:7400';
  let listen;
  try {
    listen = parseListen(listenText);
  } catch (err) {
    report.fail('listen address is free', [(err as Error).message]);
  }
  if (listen !== undefined) {
    const problem = listen.port === 0 ? undefined : await portFree(listen.host, listen.port);
    if (problem === undefined) report.pass(`listen address ${listenText} is free`);
    else report.fail(`listen address ${listenText} is free`, [problem]);
  }

  const data = optionalString(values, 'data');
  if (data === undefined) report.warn('data directory not checked (give --data DIR)');
  else {
    const problem = await writable(data);
    if (problem === undefined) report.pass(`data directory ${data} is writable`);
    else report.fail(`data directory ${data} is writable`, [problem]);
  }
}

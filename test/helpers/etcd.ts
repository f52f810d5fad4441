/**
 * Real etcd members for tests (Debian's `etcd-server`, binary `etcd`): one member or a cluster of
 * several, each on free 127.0.0.1 client and peer ports with a temporary data directory. Ready
 * once every member answers `/health` with `"health":"true"`; `stop()` ends the processes and
 * removes their directories, and members still alive when the test process exits are killed.
 *
 * When the binary is missing: `etcdSkipReason()` returns a loud reason to skip locally, but in
 * CI (`CI` set) it returns false, so the tests run and fail on `startEtcd` — CI must install it
 * (`apt-get install -y etcd-server`).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { accessSync, constants } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { freePort } from './redis.js';

export interface EtcdMember {
  readonly name: string;
  /** `http://127.0.0.1:PORT`, what a client dials. */
  readonly clientUrl: string;
  readonly peerUrl: string;
  readonly dataDir: string;
  /** True until the process exits. */
  alive(): boolean;
  /** SIGKILL, and waits for the exit (its data directory stays until the cluster stops). */
  kill(): Promise<void>;
  /** SIGSTOP: the process hangs with its sockets open (a member that stopped answering). */
  pause(): void;
  /** SIGCONT after pause(). */
  resume(): void;
}

export interface EtcdCluster {
  readonly members: readonly EtcdMember[];
  /** Every member's client URL. */
  readonly endpoints: string[];
  /** Stops every member still running and deletes every data directory. */
  stop(): Promise<void>;
}

/** The etcd binary on PATH (or in the usual places), or undefined. */
export function findEtcd(): string | undefined {
  const dirs = [...(process.env.PATH ?? '').split(path.delimiter), '/usr/bin', '/usr/local/bin', '/usr/sbin'];
  for (const dir of dirs) {
    if (dir === '') continue;
    const candidate = path.join(dir, 'etcd');
    try {
      accessSync(candidate, constants.X_OK);
      return candidate;
    } catch {
      // not here
    }
  }
  return undefined;
}

/** A reason to skip etcd tests (printed loudly), or false to run them (binary found, or in CI). */
export function etcdSkipReason(): string | false {
  if (findEtcd() !== undefined) return false;
  if (process.env.CI !== undefined && process.env.CI !== '') return false;
  const reason = 'etcd is not installed: SKIPPING the etcd store tests (apt-get install -y etcd-server; in CI they fail instead)';
  console.warn(`\n!!! ${reason}\n`);
  return reason;
}

const live = new Set<ChildProcess>();
let exitHookInstalled = false;

async function healthy(clientUrl: string): Promise<boolean> {
  try {
    const res = await fetch(`${clientUrl}/health`, { signal: AbortSignal.timeout(1000) });
    const body = await res.text();
    return res.ok && body.includes('"health":"true"');
  } catch {
    return false;
  }
}

/**
 * Starts `size` members (1 or 3 in these tests) forming one new cluster and waits until each
 * reports healthy (up to `readyTimeoutMs`, default 30 s: elections are slow on a loaded machine).
 */
export async function startEtcd(size = 1, options: { readyTimeoutMs?: number } = {}): Promise<EtcdCluster> {
  const bin = findEtcd();
  if (bin === undefined) throw new Error('etcd not found on PATH: install it (apt-get install -y etcd-server)');
  if (!exitHookInstalled) {
    exitHookInstalled = true;
    process.once('exit', () => {
      for (const c of live) c.kill('SIGKILL');
    });
  }
  const root = await mkdtemp(path.join(os.tmpdir(), 'trellis-etcd-'));
  const specs: { name: string; client: number; peer: number }[] = [];
  for (let i = 0; i < size; i++) specs.push({ name: `m${i}`, client: await freePort(), peer: await freePort() });
  const initialCluster = specs.map((s) => `${s.name}=http://127.0.0.1:${s.peer}`).join(',');
  const token = `trellis-test-${path.basename(root)}`;

  const members: (EtcdMember & { exited: Promise<void>; output: () => string; child: ChildProcess })[] = [];
  for (const s of specs) {
    const dataDir = path.join(root, s.name);
    const clientUrl = `http://127.0.0.1:${s.client}`;
    const peerUrl = `http://127.0.0.1:${s.peer}`;
    const child = spawn(
      bin,
      [
        '--name', s.name,
        '--data-dir', dataDir,
        '--listen-client-urls', clientUrl,
        '--advertise-client-urls', clientUrl,
        '--listen-peer-urls', peerUrl,
        '--initial-advertise-peer-urls', peerUrl,
        '--initial-cluster', initialCluster,
        '--initial-cluster-state', 'new',
        '--initial-cluster-token', token,
        '--log-level', 'warn',
        '--logger', 'zap',
      ],
      { stdio: ['ignore', 'ignore', 'pipe'] },
    );
    live.add(child);
    let output = '';
    child.stderr?.on('data', (d: Buffer) => (output = (output + d.toString()).slice(-4000)));
    let running = true;
    const exited = new Promise<void>((resolve) => {
      child.once('exit', () => {
        running = false;
        live.delete(child);
        resolve();
      });
    });
    members.push({
      name: s.name,
      clientUrl,
      peerUrl,
      dataDir,
      child,
      exited,
      output: () => output,
      alive: () => running,
      async kill() {
        if (!running) return;
        child.kill('SIGKILL');
        await exited;
      },
      pause: () => void child.kill('SIGSTOP'),
      resume: () => void child.kill('SIGCONT'),
    });
  }

  const stop = async (): Promise<void> => {
    for (const m of members) {
      if (!m.alive()) continue;
      m.child.kill('SIGCONT');
      m.child.kill('SIGTERM');
      const killer = setTimeout(() => m.child.kill('SIGKILL'), 3000);
      await m.exited;
      clearTimeout(killer);
    }
    await rm(root, { recursive: true, force: true });
  };

  const deadline = performance.now() + (options.readyTimeoutMs ?? 30_000);
  for (const m of members) {
    while (!(await healthy(m.clientUrl))) {
      if (!m.alive() || performance.now() > deadline) {
        const why = m.alive() ? 'did not become healthy in time' : 'exited early';
        const out = m.output();
        await stop();
        throw new Error(`etcd member ${m.name} (${m.clientUrl}) ${why}:\n${out}`);
      }
      await new Promise((r) => setTimeout(r, 100));
    }
  }
  return { members, endpoints: members.map((m) => m.clientUrl), stop };
}

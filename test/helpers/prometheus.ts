/**
 * Prometheus for tests: a parser of the text exposition format (to read exact sample values),
 * and a real `prometheus` binary started on 127.0.0.1 with a temporary config and TSDB that
 * scrapes given targets every second. The process and its folder are removed by `close()`.
 */
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { access, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { constants } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

/** Parses Prometheus text exposition (comments skipped, label values unescaped). */
export function parseExposition(text: string): Sample[] {
  const out: Sample[] = [];
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const brace = line.indexOf('{');
    const space = line.lastIndexOf(' ');
    let name: string;
    const labels: Record<string, string> = {};
    if (brace >= 0 && brace < space) {
      name = line.slice(0, brace);
      const re = /([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g;
      const body = line.slice(brace + 1, line.lastIndexOf('}'));
      for (const m of body.matchAll(re)) {
        labels[m[1] as string] = (m[2] as string).replace(/\\(["\\n])/g, (_, c: string) => (c === 'n' ? '\n' : c));
      }
    } else {
      name = line.slice(0, space);
    }
    out.push({ name, labels, value: Number(line.slice(space + 1)) });
  }
  return out;
}

/** Samples of `name` whose labels include every pair in `match`. */
export function samples(text: string, name: string, match: Record<string, string> = {}): Sample[] {
  return parseExposition(text).filter((s) => s.name === name && Object.entries(match).every(([k, v]) => s.labels[k] === v));
}

/** Sum of the samples of `name` whose labels include `match` (0 when none). */
export function sampleSum(text: string, name: string, match: Record<string, string> = {}): number {
  return samples(text, name, match).reduce((a, s) => a + s.value, 0);
}

/** Every query of docs/grafana-dashboard.json, with its panel's title. */
export async function dashboardQueries(): Promise<{ title: string; expr: string }[]> {
  const file = fileURLToPath(new URL('../../docs/grafana-dashboard.json', import.meta.url));
  const d = JSON.parse(await readFile(file, 'utf8')) as { panels: { title: string; targets?: { expr: string }[] }[] };
  return d.panels.flatMap((p) => (p.targets ?? []).map((t) => ({ title: p.title, expr: t.expr })));
}

const CANDIDATES = ['/usr/bin/prometheus', '/usr/local/bin/prometheus', '/bin/prometheus'];

/** The prometheus binary's path, or undefined when it is not installed. */
export async function findPrometheus(): Promise<string | undefined> {
  for (const p of CANDIDATES) {
    try {
      await access(p, constants.X_OK);
      return p;
    } catch {
      // try the next place
    }
  }
  return undefined;
}

/** A port that was free a moment ago (the kernel's choice for port 0). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as net.AddressInfo).port;
      s.close(() => resolve(port));
    });
  });
}

export interface PromVectorSample {
  metric: Record<string, string>;
  value: [number, string];
}

export interface PrometheusServer {
  readonly url: string;
  /** Runs an instant query; resolves with the vector (empty when nothing matches yet). */
  query(promql: string): Promise<PromVectorSample[]>;
  /** Last lines Prometheus wrote to stderr, for failure messages. */
  log(): string;
  close(): Promise<void>;
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/**
 * Starts Prometheus scraping `targets` (`host:port`, path /metrics) every second, and waits until
 * it answers /-/ready (at most `readyTimeoutMs`).
 */
export async function startPrometheus(binary: string, targets: string[], readyTimeoutMs = 15_000): Promise<PrometheusServer> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'trellis-prometheus-'));
  const config = [
    'global:',
    '  scrape_interval: 1s',
    '  scrape_timeout: 1s',
    '  evaluation_interval: 1s',
    'scrape_configs:',
    '  - job_name: trellis',
    '    metrics_path: /metrics',
    '    static_configs:',
    `      - targets: [${targets.map((t) => `'${t}'`).join(', ')}]`,
    '',
  ].join('\n');
  const configFile = path.join(dir, 'prometheus.yml');
  await writeFile(configFile, config);
  const port = await freePort();
  const url = `http://127.0.0.1:${port}`;
  const child: ChildProcess = spawn(
    binary,
    [`--config.file=${configFile}`, `--storage.tsdb.path=${path.join(dir, 'data')}`, `--web.listen-address=127.0.0.1:${port}`, '--log.level=warn'],
    { stdio: ['ignore', 'ignore', 'pipe'] },
  );
  let stderr = '';
  child.stderr?.on('data', (d: Buffer) => {
    stderr = (stderr + d.toString()).slice(-4000);
  });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  let exitedEarly = false;
  void exited.then(() => {
    exitedEarly = true;
  });

  const close = async (): Promise<void> => {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGTERM');
      const hard = setTimeout(() => child.kill('SIGKILL'), 5_000);
      await exited;
      clearTimeout(hard);
    }
    await rm(dir, { recursive: true, force: true });
  };

  try {
    const until = Date.now() + readyTimeoutMs;
    for (;;) {
      if (exitedEarly) throw new Error(`prometheus exited before it was ready: ${stderr}`);
      try {
        const res = await fetch(`${url}/-/ready`, { signal: AbortSignal.timeout(1_000) });
        await res.arrayBuffer();
        if (res.status === 200) break;
      } catch {
        // not listening yet
      }
      if (Date.now() > until) throw new Error(`prometheus not ready after ${readyTimeoutMs} ms: ${stderr}`);
      await sleep(100);
    }
  } catch (err) {
    await close();
    throw err;
  }

  return {
    url,
    log: () => stderr,
    async query(promql) {
      const res = await fetch(`${url}/api/v1/query?query=${encodeURIComponent(promql)}`, { signal: AbortSignal.timeout(2_000) });
      const body = (await res.json()) as { status: string; error?: string; data?: { resultType: string; result: PromVectorSample[] } };
      if (body.status !== 'success') throw new Error(`query ${promql} failed: ${body.error ?? res.status}`);
      return body.data?.result ?? [];
    },
    close,
  };
}

/**
 * `npm run bench -- overload`: what event-loop-aware shedding buys a CPU-bound service under
 * overload. A meshed server (bench/overload-server.ts, its own process) burns 2 ms of CPU per
 * request. Its capacity is measured first (closed loop), then it is driven open-loop at 1x, 2x
 * and 4x that rate, with and without `inbound.overload`, each run on a fresh server process.
 * Every request carries a 500 ms deadline (`x-trellis-timeout-ms`, and the client gives up
 * then). Reported per run: goodput (responses 200 within the deadline, per second, and as a
 * share of capacity), p50/p99 of the accepted (200) requests, shed share, timeouts. Writes
 * docs/overload.md's figures and docs/overload.svg unless --no-write. Bounded: each run lasts
 * `--seconds` (default 4), the whole bench about a minute.
 */
import { spawn } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { Pool } from 'undici';

const { values } = parseArgs({
  args: process.argv.slice(3),
  options: { seconds: { type: 'string', default: '4' }, 'no-write': { type: 'boolean', default: false } },
});
const SECONDS = Number(values.seconds);
const DEADLINE_MS = 500;
const CPU_MS = 2;
const MULTIPLIERS = [1, 2, 4];
/** Connections the load generator keeps open (opened before measuring); excess requests queue in the client. */
const CONNECTIONS = 256;
const serverScript = fileURLToPath(new URL('./overload-server.ts', import.meta.url));

interface Server {
  port: number;
  stop(): void;
}

function startServer(overload: boolean): Promise<Server> {
  const child = spawn(process.execPath, ['--import', 'tsx', serverScript, '--cpu-ms', String(CPU_MS), ...(overload ? ['--overload'] : [])], { stdio: ['pipe', 'pipe', 'inherit'] });
  return new Promise((resolve, reject) => {
    let out = '';
    child.stdout.on('data', (d: Buffer) => {
      out += d.toString();
      const m = /PORT (\d+)/.exec(out);
      if (m?.[1] !== undefined) resolve({ port: Number(m[1]), stop: () => { child.stdin.end(); child.kill('SIGKILL'); } });
    });
    child.once('exit', (code) => reject(new Error(`overload server exited (${code})`)));
  });
}

interface RunResult {
  mode: 'off' | 'on';
  multiplier: number;
  offered: number;
  goodput: number;
  p50: number;
  p99: number;
  shedShare: number;
  timeoutShare: number;
}

function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)] as number;
}

/**
 * Warms the server's code and opens `parallel` connections up front: opened under load, a burst
 * of new connections overflows the listen backlog and the drops (a 1 s SYN retry) would be
 * measured instead of the server.
 */
async function warm(pool: Pool, parallel = 1): Promise<void> {
  for (let round = 0; round < 2; round++) {
    await Promise.all(Array.from({ length: parallel }, async () => {
      const r = await pool.request({ method: 'GET', path: '/' });
      await r.body.dump();
    }));
  }
  for (let i = 0; i < 100; i++) {
    const r = await pool.request({ method: 'GET', path: '/' });
    await r.body.dump();
  }
}

async function capacity(port: number): Promise<number> {
  const pool = new Pool(`http://127.0.0.1:${port}`, { connections: 8 });
  await warm(pool);
  let done = 0;
  const end = performance.now() + 2000;
  const worker = async (): Promise<void> => {
    while (performance.now() < end) {
      const r = await pool.request({ method: 'GET', path: '/' });
      await r.body.dump();
      done++;
    }
  };
  const start = performance.now();
  await Promise.all(Array.from({ length: 4 }, worker));
  const rps = done / ((performance.now() - start) / 1000);
  await pool.close();
  return rps;
}

async function openLoop(port: number, rate: number): Promise<{ ok: number[]; shed: number; timeouts: number; other: number; sent: number }> {
  const pool = new Pool(`http://127.0.0.1:${port}`, { connections: CONNECTIONS, pipelining: 1 });
  await warm(pool, CONNECTIONS);
  const ok: number[] = [];
  let shed = 0;
  let timeouts = 0;
  let other = 0;
  let sent = 0;
  const pending = new Set<Promise<void>>();
  const one = async (): Promise<void> => {
    const start = performance.now();
    const ac = new AbortController();
    const t = setTimeout(() => ac.abort(), DEADLINE_MS);
    try {
      const r = await pool.request({ method: 'GET', path: '/', headers: { 'x-trellis-timeout-ms': String(DEADLINE_MS) }, signal: ac.signal });
      await r.body.dump();
      const ms = performance.now() - start;
      if (r.statusCode === 200 && ms <= DEADLINE_MS) ok.push(ms);
      else if (r.statusCode === 503 && r.headers['x-trellis-shed'] !== undefined) shed++;
      else if (r.statusCode === 200) timeouts++;
      else other++;
    } catch {
      timeouts++;
    } finally {
      clearTimeout(t);
    }
  };
  const begin = performance.now();
  const stopAt = begin + SECONDS * 1000;
  await new Promise<void>((resolve) => {
    const tick = setInterval(() => {
      const now = performance.now();
      const due = Math.floor(((Math.min(now, stopAt) - begin) / 1000) * rate);
      while (sent < due) {
        sent++;
        const p = one();
        pending.add(p);
        void p.finally(() => pending.delete(p));
      }
      if (now >= stopAt) {
        clearInterval(tick);
        resolve();
      }
    }, 2);
  });
  await Promise.all(pending);
  await pool.destroy();
  return { ok, shed, timeouts, other, sent };
}

const results: RunResult[] = [];
const probe = await startServer(false);
const cap = await capacity(probe.port);
probe.stop();
console.log(`overload: capacity ${cap.toFixed(0)} req/s (${CPU_MS} ms CPU per request), ${SECONDS} s per run, deadline ${DEADLINE_MS} ms`);
for (const multiplier of MULTIPLIERS) {
  for (const mode of ['off', 'on'] as const) {
    const server = await startServer(mode === 'on');
    const rate = cap * multiplier;
    const r = await openLoop(server.port, rate);
    server.stop();
    const sorted = [...r.ok].sort((a, b) => a - b);
    const res: RunResult = {
      mode,
      multiplier,
      offered: rate,
      goodput: r.ok.length / SECONDS,
      p50: percentile(sorted, 50),
      p99: percentile(sorted, 99),
      shedShare: r.shed / Math.max(1, r.sent),
      timeoutShare: r.timeouts / Math.max(1, r.sent),
    };
    results.push(res);
    console.log(`  ${multiplier}x shedding ${mode.padEnd(3)}: offered ${rate.toFixed(0)}/s, goodput ${res.goodput.toFixed(0)}/s (${((res.goodput / cap) * 100).toFixed(0)}% of capacity), accepted p50 ${res.p50.toFixed(1)} ms p99 ${res.p99.toFixed(1)} ms, shed ${(res.shedShare * 100).toFixed(0)}%, timed out ${(res.timeoutShare * 100).toFixed(0)}%`);
  }
}

function chart(rs: RunResult[], capacityRps: number): string {
  const W = 720;
  const H = 300;
  const panel = (x0: number, title: string, value: (r: RunResult) => number, max: number, unit: string): string => {
    const pw = 300;
    const ph = 200;
    const y0 = 60;
    const px = (m: number): number => x0 + ((MULTIPLIERS.indexOf(m) + 0.5) / MULTIPLIERS.length) * pw;
    const py = (v: number): number => y0 + ph - (Math.min(v, max) / max) * ph;
    const line = (mode: 'on' | 'off', color: string, dash: string): string => {
      const pts = rs.filter((r) => r.mode === mode).map((r) => `${px(r.multiplier).toFixed(1)},${py(value(r)).toFixed(1)}`);
      const dots = rs.filter((r) => r.mode === mode).map((r) => `<circle cx="${px(r.multiplier).toFixed(1)}" cy="${py(value(r)).toFixed(1)}" r="4" fill="${color}"><title>${mode}, ${r.multiplier}x: ${value(r).toFixed(0)}${unit}</title></circle>`);
      return `<polyline fill="none" stroke="${color}" stroke-width="2.5" stroke-dasharray="${dash}" points="${pts.join(' ')}"/>${dots.join('')}`;
    };
    const ticks = [0, 0.2, 0.4, 0.6, 0.8, 1].map((f) => `<line x1="${x0}" x2="${x0 + pw}" y1="${py(f * max)}" y2="${py(f * max)}" stroke="#ddd"/><text x="${x0 - 6}" y="${py(f * max) + 4}" text-anchor="end" font-size="11">${(f * max).toFixed(0)}${unit}</text>`).join('');
    const xl = MULTIPLIERS.map((m) => `<text x="${px(m)}" y="${y0 + ph + 18}" text-anchor="middle" font-size="12">${m}x</text>`).join('');
    return `<text x="${x0 + pw / 2}" y="${y0 - 20}" text-anchor="middle" font-size="14" font-weight="bold">${title}</text>${ticks}${xl}<text x="${x0 + pw / 2}" y="${y0 + ph + 36}" text-anchor="middle" font-size="12">offered load (× capacity)</text>${line('off', '#c0392b', '6 4')}${line('on', '#1e6fbf', '')}`;
  };
  const goodMax = 125;
  const p99Max = Math.max(DEADLINE_MS, ...rs.map((r) => (Number.isFinite(r.p99) ? r.p99 : 0)));
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H + 40}" viewBox="0 0 ${W} ${H + 40}" font-family="sans-serif" role="img" aria-label="Goodput and p99 latency with and without overload shedding">
<rect width="100%" height="100%" fill="#fff"/>
${panel(60, 'Goodput (% of capacity)', (r) => (r.goodput / capacityRps) * 100, goodMax, '%')}
${panel(420, 'p99 of accepted requests', (r) => (Number.isFinite(r.p99) ? r.p99 : 0), p99Max, ' ms')}
<g font-size="12"><line x1="200" x2="230" y1="${H + 22}" y2="${H + 22}" stroke="#1e6fbf" stroke-width="2.5"/><text x="236" y="${H + 26}">shedding on (inbound.overload)</text>
<line x1="440" x2="470" y1="${H + 22}" y2="${H + 22}" stroke="#c0392b" stroke-width="2.5" stroke-dasharray="6 4"/><text x="476" y="${H + 26}">shedding off</text></g>
</svg>
`;
}

if (values['no-write'] !== true) {
  const svg = fileURLToPath(new URL('../docs/overload.svg', import.meta.url));
  writeFileSync(svg, chart(results, cap));
  const table = [
    '| offered | shedding | goodput /s | goodput % of capacity | accepted p50 ms | accepted p99 ms | shed | timed out |',
    '| --: | :-: | --: | --: | --: | --: | --: | --: |',
    ...results.map((r) => `| ${r.multiplier}x (${r.offered.toFixed(0)}/s) | ${r.mode} | ${r.goodput.toFixed(0)} | ${((r.goodput / cap) * 100).toFixed(0)}% | ${Number.isFinite(r.p50) ? r.p50.toFixed(1) : '—'} | ${Number.isFinite(r.p99) ? r.p99.toFixed(1) : '—'} | ${(r.shedShare * 100).toFixed(0)}% | ${(r.timeoutShare * 100).toFixed(0)}% |`),
  ].join('\n');
  const file = fileURLToPath(new URL('../docs/overload-results.md', import.meta.url));
  writeFileSync(file, `<!-- generated by npm run bench -- overload (bench/overload.ts); rerun rather than edit -->\nMeasured ${new Date().toISOString().slice(0, 16).replace('T', ' ')} UTC, Node ${process.version}: capacity ${cap.toFixed(0)} req/s (${CPU_MS} ms CPU per request, one server process), ${SECONDS} s per run, deadline ${DEADLINE_MS} ms.\n\n${table}\n`);
  console.log(`wrote ${svg} and ${file}`);
}

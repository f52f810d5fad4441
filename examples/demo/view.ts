/**
 * The demo's terminal output: a fixed-width snapshot per service every interval (the endpoints
 * as the servers and the mesh see them, then the caller's view) with the events since the
 * last snapshot, and a final summary. Plain text, no colours, lines under 100 columns.
 */
import type { MeshInspection, ServiceInspection } from 'trellis';
import type { DemoService } from './services.js';
import type { CallerStats } from './traffic.js';
import { percentile } from './traffic.js';

const num = (n: number, digits = 0): string => (Number.isFinite(n) ? n.toFixed(digits) : '-');
const ms = (n: number): string => (Number.isFinite(n) ? `${n.toFixed(1)} ms` : '-');
const rule = (title: string, char = '─', width = 96): string => `${char.repeat(2)} ${title} ${char.repeat(Math.max(0, width - title.length - 4))}`;

/** Fixed-width columns; `align` has one letter per column, `l` or `r`. */
function table(head: string[], rows: string[][], align: string): string[] {
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (r: string[]): string =>
    `  ${r.map((c, i) => (align[i] === 'l' ? c.padEnd(widths[i] ?? 0) : c.padStart(widths[i] ?? 0))).join('  ')}`.trimEnd();
  return [line(head), ...rows.map(line)];
}

function failures(stats: CallerStats): string {
  if (stats.failures.size === 0) return '';
  const parts = [...stats.failures].sort((a, b) => b[1] - a[1]).map(([k, v]) => `${k} ${v}`);
  return ` (${parts.join(', ')})`;
}

function portOf(endpointId: string): number {
  const m = /:(\d+)$/.exec(endpointId);
  return m?.[1] !== undefined ? Number(m[1]) : -1;
}

function budgetText(s: ServiceInspection): string {
  if (s.budget === undefined) return 'budget -';
  return `budget ${s.budget.available} left (${s.budget.retries} retries / ${s.budget.requests} req in window)`;
}

/** Keeps the previous counters, to show what changed in each interval. */
export class View {
  readonly #servers: readonly DemoService[];
  readonly #lastServed = new Map<string, { served: number; errors: number; dropped: number }>();
  readonly #lastRetries = new Map<string, number>();
  readonly #intervalS: number;

  /** `intervalS`: seconds between snapshots, for the per-interval column labels. */
  constructor(servers: readonly DemoService[], intervalS = 2) {
    this.#servers = servers;
    this.#intervalS = intervalS;
  }

  snapshot(elapsedS: number, rate: number, inspection: MeshInspection, interval: Map<string, CallerStats>, events: string[]): string {
    const out = [rule(`t=${num(elapsedS, 1)} s · offering ${rate} req/s`)];
    for (const s of inspection.services) {
      const stats = interval.get(s.name);
      const retries = s.counters.retries - (this.#lastRetries.get(s.name) ?? 0);
      this.#lastRetries.set(s.name, s.counters.retries);
      out.push(`${s.name}   ${s.loadBalancer} · breaker ${s.breaker} · retries +${retries} (total ${s.counters.retries}) · ${budgetText(s)}`);
      const rows = s.endpoints.map((e) => {
        const server = this.#servers.find((d) => d.port === portOf(e.id));
        // Every count is for this interval (differences of the server's cumulative counters), so a
        // row compares like with like (503s are part of served; cut connections are not).
        // Totals are in the final summary.
        const now = server === undefined ? { served: 0, errors: 0, dropped: 0 } : { served: server.served.ok + server.served.errors, errors: server.served.errors, dropped: server.served.dropped };
        const key = `${s.name} ${e.id}`;
        const last = this.#lastServed.get(key) ?? { served: 0, errors: 0, dropped: 0 };
        this.#lastServed.set(key, now);
        const known = server !== undefined;
        return [
          e.id,
          e.labels.version ?? '-',
          server?.behaviour ?? '?',
          server === undefined ? '?' : server.up ? 'up' : 'DOWN',
          known ? String(now.served - last.served) : '-',
          known ? String(now.errors - last.errors) : '-',
          known ? String(now.dropped - last.dropped) : '-',
          num(e.ewmaMs, 1),
          String(e.outstanding),
          e.ejected ? 'EJECTED' : 'no',
        ];
      });
      const per = `/${num(this.#intervalS, 0)}s`;
      out.push(...table(['endpoint', 'ver', 'behaviour', 'server', `served${per}`, `503s${per}`, `cut${per}`, 'ewma ms', 'in flight', 'ejected'], rows, 'llllrrrrrrl'));
      if (stats !== undefined) {
        const shed = stats.shed > 0 ? `, ${stats.shed} shed` : '';
        out.push(`  caller: ${stats.requests} req, ${stats.ok} ok, ${stats.requests - stats.ok} failed${failures(stats)}${shed}`);
        out.push(`          p50 ${ms(percentile(stats.latencies, 0.5))}, p99 ${ms(percentile(stats.latencies, 0.99))}`);
      }
    }
    if (events.length > 0) out.push('events', ...events.map((e) => `  ${e}`));
    return out.join('\n');
  }

  summary(elapsedS: number, inspection: MeshInspection | undefined, totals: Map<string, CallerStats>, eventCounts: Map<string, number>): string {
    let all = 0;
    for (const t of totals.values()) all += t.requests;
    const out = ['', rule(`summary: ${num(elapsedS, 1)} s, ${all} requests`, '═')];
    for (const [name, t] of totals) {
      const s = inspection?.services.find((x) => x.name === name);
      const okPct = t.requests > 0 ? (t.ok / t.requests) * 100 : Number.NaN;
      out.push(`${name}: ${t.requests} requests, ${t.ok} ok (${num(okPct, 2)}%), ${t.requests - t.ok} failed${failures(t)}${t.shed > 0 ? `, ${t.shed} shed` : ''}`);
      out.push(`  latency p50 ${ms(percentile(t.latencies, 0.5))}, p99 ${ms(percentile(t.latencies, 0.99))}, max ${ms(t.latencies.length > 0 ? t.latencies.reduce((a, b) => Math.max(a, b), 0) : Number.NaN)}`);
      if (s !== undefined) {
        out.push(`  mesh: ${s.counters.requests} requests, ${s.counters.retries} retries (${s.counters.budgetExhausted} more refused by the retry budget), breaker ${s.breaker}`);
      }
      for (const d of this.#servers.filter((x) => x.service === name)) {
        out.push(`  ${d.name.padEnd(11)} 127.0.0.1:${d.port} ${d.version}  ${d.behaviour.padEnd(17)} ${String(d.served.ok).padStart(6)} ok  ${String(d.served.errors).padStart(5)} 503  ${String(d.served.dropped).padStart(4)} cut`);
      }
    }
    const counted = [...eventCounts].map(([k, v]) => `${v} ${k}`).join(', ');
    out.push(`events: ${counted === '' ? 'none' : counted}`);
    return out.join('\n');
  }
}
